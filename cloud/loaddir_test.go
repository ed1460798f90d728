package cloud

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteDirRoundTrips(t *testing.T) {
	c := embeddedCatalog(t)
	dir := t.TempDir()
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir(WriteDir(embedded)) = %v", err)
	}
	want, got := c.Tables(), back.Tables()
	if !reflect.DeepEqual(got, want) {
		for i := range want.InstanceTypes {
			if !reflect.DeepEqual(got.InstanceTypes[i], want.InstanceTypes[i]) {
				t.Fatalf("instance type %d read back as\n%+v\nwant\n%+v", i, got.InstanceTypes[i], want.InstanceTypes[i])
			}
		}
		t.Fatal("the catalog read back differs from the one written")
	}

	t.Run("writing is deterministic", func(t *testing.T) {
		again := t.TempDir()
		if err := back.WriteDir(again); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{InstanceTypesFile, OnDemandPricesFile, SpotPricesFile, OfferingsFile} {
			a, _ := os.ReadFile(filepath.Join(dir, name))
			b, _ := os.ReadFile(filepath.Join(again, name))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s differs between two writes of the same catalog (%d and %d bytes)", name, len(a), len(b))
			}
		}
	})
}

func TestSyntheticCatalogRoundTrips(t *testing.T) {
	tables := Tables{
		InstanceTypes: []InstanceType{
			// Category and Family/Size are derived from the name by New.
			{Name: "x9.huge", Arch: ArchARM64, VCPU: 64, MemoryMiB: 262144, MaxPodsENI: 110, GPUCount: 2, GPUManufacturer: "nvidia", GPUName: "t4", GPUMemoryMiB: 16384},
			{Name: "a1.tiny", Arch: ArchAMD64, VCPU: 1, MemoryMiB: 512, Unknown: AttrBareMetal | AttrEFACount},
		},
		OnDemandPrices: []OnDemandPrice{{Region: "r1", InstanceType: "x9.huge", USDPerHour: 1.5}, {Region: "r1", InstanceType: "a1.tiny", USDPerHour: 0.01}},
		Offerings:      []ZoneOffering{{Region: "r1", ZoneID: "r1-az1", InstanceType: "x9.huge"}},
	}
	c, err := New(tables)
	if err != nil {
		t.Fatal(err)
	}
	if tables.InstanceTypes[0].Name != "x9.huge" {
		t.Error("New reordered the caller's slice; it must work on a copy")
	}
	dir := t.TempDir()
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Tables(), c.Tables()) {
		t.Errorf("read back %+v\nwant %+v", back.Tables(), c.Tables())
	}
	it, _ := back.InstanceType("x9.huge")
	if it.Category != "x" || it.Family != "x9" || it.Size != "huge" {
		t.Errorf("derived fields: category %q family %q size %q", it.Category, it.Family, it.Size)
	}
}

// writeCatalogDir writes a minimal valid catalog, with files replaced by
// the overrides (file name -> content; "" deletes the file).
func writeCatalogDir(t *testing.T, overrides map[string]string) string {
	t.Helper()
	files := map[string]string{
		InstanceTypesFile:  "name,arch,vcpu,memory_mib\nm5.large,amd64,2,8192\n",
		OnDemandPricesFile: "region,instance_type,usd_per_hour\nus-east-1,m5.large,0.096\n",
		OfferingsFile:      "region,zone_id,instance_type\nus-east-1,use1-az1,m5.large\n",
	}
	for name, content := range overrides {
		files[name] = content
	}
	dir := t.TempDir()
	for name, content := range files {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirNeedsOnlyTheColumnsItUses(t *testing.T) {
	c, err := LoadDir(writeCatalogDir(t, nil))
	if err != nil {
		t.Fatalf("LoadDir(minimal catalog) = %v", err)
	}
	offerings, err := c.RegionOfferings("us-east-1")
	if err != nil || len(offerings) != 1 || len(offerings[0].Offerings) != 1 {
		t.Fatalf("minimal catalog offers %+v, %v; want one on-demand offering (no spot file, no spot)", offerings, err)
	}
	it := offerings[0].InstanceType
	if it.Family != "m5" || it.Size != "large" || it.Category != "m" || it.Known(AttrBareMetal) {
		t.Errorf("minimal m5.large read as %+v", it)
	}
}

func TestLoadDirErrorsNameFileLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		rule      string
		overrides map[string]string
		want      string
	}{
		{"a word where a number belongs", map[string]string{InstanceTypesFile: "name,arch,vcpu,memory_mib\nm5.large,amd64,two,8192\n"},
			`instance-types.csv:2:16: column vcpu: "two" is not a whole number >= 0; write digits only`},
		{"an unknown architecture", map[string]string{InstanceTypesFile: "name,arch,vcpu,memory_mib\nm5.large,x86_64,2,8192\n"},
			`instance-types.csv:2:10: column arch: "x86_64" is not an architecture; write amd64 or arm64`},
		{"an empty required cell", map[string]string{InstanceTypesFile: "name,arch,vcpu,memory_mib\nm5.large,amd64,2,\n"},
			`instance-types.csv:2:18: column memory_mib: is empty; every row needs it`},
		{"a bad boolean", map[string]string{InstanceTypesFile: "name,arch,vcpu,memory_mib,bare_metal\nm5.large,amd64,2,8192,yes\n"},
			`instance-types.csv:2:23: column bare_metal: "yes" is not a boolean; write true or false`},
		{"a missing required column", map[string]string{InstanceTypesFile: "name,arch,memory_mib\nm5.large,amd64,8192\n"},
			`instance-types.csv:1: the header has no "vcpu" column; it needs at least name,vcpu,memory_mib`},
		{"a bad price", map[string]string{OnDemandPricesFile: "region,instance_type,usd_per_hour\nus-east-1,m5.large,$0.10\n"},
			`on-demand-prices.csv:2:20: column usd_per_hour: "$0.10" is not a price; write USD per hour`},
		{"spot maximum below minimum", map[string]string{SpotPricesFile: "region,instance_type,spot_min_usd_per_hour,spot_max_usd_per_hour\nus-east-1,m5.large,0.05,0.04\n"},
			`spot-prices-sample.csv:2:25: column spot_max_usd_per_hour: 0.04 is below spot_min_usd_per_hour 0.05; swap them`},
		{"a zone name where a zone ID belongs", map[string]string{OfferingsFile: "region,zone_id,instance_type\nus-east-1,us-east-1a,m5.large\n"},
			`offerings.csv:2:11: column zone_id: zone ID "us-east-1a" does not end in -az<number>; write zone IDs as EC2 does, e.g. use1-az1`},
		{"an offering of an unknown type", map[string]string{OfferingsFile: "region,zone_id,instance_type\nus-east-1,use1-az1,m9.large\n"},
			`offerings.csv: m9.large in use1-az1 is not in instance-types.csv; add the type or drop the row`},
		{"a duplicated type", map[string]string{InstanceTypesFile: "name,arch,vcpu,memory_mib\nm5.large,amd64,2,8192\nm5.large,amd64,2,8192\n"},
			`instance-types.csv: instance type "m5.large" appears twice; keep one row per type`},
		{"a missing required file", map[string]string{OfferingsFile: ""},
			`offerings.csv: no such file; a catalog directory needs instance-types.csv, on-demand-prices.csv and offerings.csv`},
		{"a ragged row", map[string]string{OfferingsFile: "region,zone_id,instance_type\nus-east-1,use1-az1\n"},
			`offerings.csv: record on line 2: wrong number of fields`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			dir := writeCatalogDir(t, tc.overrides)
			_, err := LoadDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadDir() error = %v\nwant one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory %s", err, dir)
			}
		})
	}
}
