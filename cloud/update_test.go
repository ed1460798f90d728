package cloud

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// liveR1 is what EC2 might say of r1 in synthetic's catalog: the account
// names its zones differently, a.large left r1-az10, a new type n.large
// appeared, and spot prices differ per zone.
func liveR1() RegionUpdate {
	return RegionUpdate{
		Region: "r1",
		Zones:  []Zone{{ZoneID: "r1-az1", ZoneName: "r1b"}, {ZoneID: "r1-az2", ZoneName: "r1a"}, {ZoneID: "r1-az10", ZoneName: "r1c"}},
		InstanceTypes: []InstanceType{
			{Name: "a.large", Arch: ArchARM64, VCPU: 64, MemoryMiB: 1}, // known: the catalog's row wins
			{Name: "n.large", Arch: ArchAMD64, VCPU: 2, MemoryMiB: 4096},
		},
		Offerings: []ZoneOffering{
			{ZoneID: "r1-az1", InstanceType: "a.large"}, {ZoneID: "r1-az2", InstanceType: "a.large"},
			{ZoneID: "r1-az2", InstanceType: "b.large"}, {ZoneID: "r1-az1", InstanceType: "c.large"},
			{ZoneID: "r1-az10", InstanceType: "n.large"},
		},
		SpotPrices: []ZoneSpotPrice{
			{ZoneID: "r1-az1", InstanceType: "a.large", USDPerHour: 0.25, AsOf: "2026-11-22T10:00:00Z"},
			{ZoneID: "r1-az2", InstanceType: "a.large", USDPerHour: 0.35},
			{ZoneID: "r1-az10", InstanceType: "n.large", USDPerHour: 0.05},
		},
	}
}

func TestUpdateRules(t *testing.T) {
	base := synthetic(t)
	for _, tc := range []struct {
		rule   string
		update RegionUpdate
		want   []string
	}{
		{"nothing read keeps the snapshot's offerings and prices", RegionUpdate{Region: "r1"}, []string{
			"a.large r1a r1-az1 on-demand 1", "a.large r1a r1-az1 spot 0.4",
			"a.large r1b r1-az2 on-demand 1", "a.large r1b r1-az2 spot 0.4",
			"a.large r1c r1-az10 on-demand 1", "a.large r1c r1-az10 spot 0.4",
			"b.large r1b r1-az2 on-demand 2",
			"c.large r1a r1-az1 spot 0.6",
		}},
		{"live offerings, zone names and per-zone spot prices replace the region's; no zone price, no spot offering; a new type is offered", liveR1(), []string{
			"a.large r1b r1-az1 on-demand 1", "a.large r1b r1-az1 spot 0.25",
			"a.large r1a r1-az2 on-demand 1", "a.large r1a r1-az2 spot 0.35",
			"b.large r1a r1-az2 on-demand 2",
			"n.large r1c r1-az10 spot 0.05",
		}},
		{"spot prices alone reprice spot and keep the snapshot's offerings", RegionUpdate{Region: "r1", SpotPrices: []ZoneSpotPrice{
			{ZoneID: "r1-az10", InstanceType: "a.large", USDPerHour: 0.1},
		}}, []string{
			"a.large r1a r1-az1 on-demand 1",
			"a.large r1b r1-az2 on-demand 1",
			"a.large r1c r1-az10 on-demand 1", "a.large r1c r1-az10 spot 0.1",
			"b.large r1b r1-az2 on-demand 2",
		}},
		{"zones the account does not name are not offered", RegionUpdate{Region: "r1", Zones: []Zone{{ZoneID: "r1-az2", ZoneName: "r1x"}}}, []string{
			"a.large r1x r1-az2 on-demand 1", "a.large r1x r1-az2 spot 0.4",
			"b.large r1x r1-az2 on-demand 2",
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			c, err := base.Update(tc.update)
			if err != nil {
				t.Fatal(err)
			}
			offerings, err := c.RegionOfferings("r1")
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(offerings); !slices.Equal(got, tc.want) {
				t.Errorf("offerings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestUpdateKeepsTheOriginalAndKnownShapes(t *testing.T) {
	base := synthetic(t)
	before := base.Tables()
	c, err := base.Update(liveR1())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(base.Tables(), before) {
		t.Error("Update changed the catalog it was called on")
	}
	if a, _ := c.InstanceType("a.large"); a.VCPU != 2 || a.Arch != ArchAMD64 {
		t.Errorf("a.large = %d vCPUs %s, want the catalog's 2 vCPUs amd64, not EC2's", a.VCPU, a.Arch)
	}
	if n, ok := c.InstanceType("n.large"); !ok || n.Family != "n" || n.Size != "large" {
		t.Errorf("n.large = %+v, %v; want it added and normalized", n, ok)
	}
	if p, _ := c.SpotPrice("r1", "a.large"); p.MinUSDPerHour != 0.25 || p.MaxUSDPerHour != 0.35 || p.ZoneSamples != 2 {
		t.Errorf("spot sample of a.large = %+v, want 0.25-0.35 over 2 zones, from the zone prices", p)
	}
	if _, ok := c.SpotPrice("r1", "c.large"); ok {
		t.Error("c.large keeps a spot sample though EC2 gave it no zone price")
	}
	if got := c.ZoneNames("r1"); got["r1-az1"] != "r1b" {
		t.Errorf("ZoneNames = %v, want the account's", got)
	}
	if p, ok := c.ZoneSpotPrice("r1", "r1-az2", "a.large"); !ok || p != 0.35 {
		t.Errorf("ZoneSpotPrice = %v, %v", p, ok)
	}
	if p, ok := c.OnDemandPrice("r1", "a.large"); !ok || p != 1 {
		t.Errorf("on-demand price = %v, %v; want the snapshot's 1", p, ok)
	}
}

func TestUpdatedCatalogRoundTripsThroughWriteDir(t *testing.T) {
	c, err := synthetic(t).Update(liveR1())
	if err != nil {
		t.Fatal(err)
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
		t.Errorf("read back:\n%+v\nwant\n%+v", back.Tables(), c.Tables())
	}
	// Writing a snapshot-only catalog into the same directory must not
	// leave the live files behind.
	if err := synthetic(t).WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	again, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tb := again.Tables(); tb.Zones != nil || tb.ZoneSpotPrices != nil {
		t.Errorf("stale live tables read back: %d zones, %d zone spot prices", len(tb.Zones), len(tb.ZoneSpotPrices))
	}
}

func TestUpdateErrors(t *testing.T) {
	base := synthetic(t)
	for _, tc := range []struct {
		rule   string
		update RegionUpdate
		want   string
	}{
		{"a region is needed", RegionUpdate{}, "no region"},
		{"rows of another region are refused", RegionUpdate{Region: "r1", Offerings: []ZoneOffering{{Region: "r2", ZoneID: "r2-az1", InstanceType: "a.large"}}}, "a row is of region r2"},
		{"offerings of an unknown type are refused", RegionUpdate{Region: "r1", Offerings: []ZoneOffering{{ZoneID: "r1-az1", InstanceType: "zz.large"}}}, "zz.large in r1-az1 is not in instance-types.csv"},
		{"spot prices of an unknown type are refused", RegionUpdate{Region: "r1", SpotPrices: []ZoneSpotPrice{{ZoneID: "r1-az1", InstanceType: "zz.large", USDPerHour: 1}}}, "spot-prices-zones.csv: zz.large"},
		{"two zones with one name are refused", RegionUpdate{Region: "r1", Zones: []Zone{{ZoneID: "r1-az1", ZoneName: "x"}, {ZoneID: "r1-az2", ZoneName: "x"}}}, "are both named x"},
		{"a zone ID must be one", RegionUpdate{Region: "r1", Zones: []Zone{{ZoneID: "r1a", ZoneName: "r1a"}}}, `zone ID "r1a" does not end in -az<number>`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := base.Update(tc.update)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCatalogIsItsOwnSource(t *testing.T) {
	c := synthetic(t)
	var s Source = c
	if s.Current() != c {
		t.Error("a fixed catalog's Current is not itself")
	}
}
