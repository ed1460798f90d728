package cloud

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func embeddedCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := Embedded()
	if err != nil {
		t.Fatalf("Embedded() = %v", err)
	}
	return c
}

// The counts are those data/README.md states for the snapshot.
func TestEmbeddedCatalogMatchesTheSnapshotREADME(t *testing.T) {
	c := embeddedCatalog(t)
	tables := c.Tables()
	distinct := func(n int, key func(i int) string) int {
		seen := map[string]bool{}
		for i := range n {
			seen[key(i)] = true
		}
		return len(seen)
	}
	for _, tc := range []struct {
		rule      string
		got, want int
	}{
		{"1412 instance types", len(c.InstanceTypes()), 1412},
		{"17437 on-demand price rows", len(tables.OnDemandPrices), 17437},
		{"over 100 price region keys", len(c.PriceRegions()), 100},
		{"33102 offering rows", len(tables.Offerings), 33102},
		{"over 17 offering regions", len(c.Regions()), 17},
		{"10764 spot rows", len(tables.SpotPrices), 10764},
		{"over 17 spot regions", distinct(len(tables.SpotPrices), func(i int) string { return tables.SpotPrices[i].Region }), 17},
		{"78 types with GPUs", countTypes(c, func(it InstanceType) bool { return it.GPUCount > 0 }), 78},
		{"1410 types with an arch", countTypes(c, func(it InstanceType) bool { return it.Arch != "" }), 1410},
		{"1397 types with an ENI pod limit", countTypes(c, func(it InstanceType) bool { return it.MaxPodsENI > 0 }), 1397},
		{"1349 types with a baseline bandwidth", countTypes(c, func(it InstanceType) bool { return it.NetworkBandwidthMbps > 0 }), 1349},
		{"1397 types whose bare-metal flag is known", countTypes(c, func(it InstanceType) bool { return it.Known(AttrBareMetal) }), 1397},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %d", tc.rule, tc.got)
		}
	}
}

func countTypes(c *Catalog, match func(InstanceType) bool) int {
	n := 0
	for _, it := range c.InstanceTypes() {
		if match(it) {
			n++
		}
	}
	return n
}

func TestEmbeddedCatalogFacts(t *testing.T) {
	c := embeddedCatalog(t)
	t.Run("cn-north-1 is priced in yuan, so it has no USD price", func(t *testing.T) {
		if slices.Contains(c.PriceRegions(), "cn-north-1") {
			t.Error("cn-north-1 has USD prices; its prices are yuan and must stay out")
		}
	})
	t.Run("us-east-1 m5.large costs what the snapshot says", func(t *testing.T) {
		if p, ok := c.OnDemandPrice("us-east-1", "m5.large"); !ok || p != 0.096 {
			t.Errorf("OnDemandPrice(us-east-1, m5.large) = %v, %v; want 0.096, true", p, ok)
		}
	})
	t.Run("a price for a type without a shape is kept but the type is unknown", func(t *testing.T) {
		if _, ok := c.InstanceType("i3p.16xlarge"); ok {
			t.Error("i3p.16xlarge has a shape; the snapshot has none")
		}
		if _, ok := c.OnDemandPrice("us-gov-west-1", "i3p.16xlarge"); !ok {
			t.Error("the i3p.16xlarge price row is missing")
		}
	})
	t.Run("types without an arch say so", func(t *testing.T) {
		for _, name := range []string{"mac-m4.metal", "mac-m4pro.metal"} {
			if it, _ := c.InstanceType(name); it.Arch != "" {
				t.Errorf("%s arch = %q, want unknown", name, it.Arch)
			}
		}
	})
	t.Run("empty cells where zero is real are marked unknown", func(t *testing.T) {
		mac, _ := c.InstanceType("mac2.metal")
		if mac.Known(AttrAcceleratorCount) || mac.Known(AttrEFACount) {
			t.Errorf("mac2.metal accelerator and EFA counts are empty in the CSV but read as known")
		}
		m5, _ := c.InstanceType("m5.large")
		if !m5.Known(AttrAcceleratorCount) || !m5.Known(AttrBareMetal) || m5.BareMetal {
			t.Errorf("m5.large: accelerator count and bare-metal flag should be known (0, false): %+v", m5)
		}
	})
	t.Run("category is Karpenter's letters, class the broad AWS class", func(t *testing.T) {
		for name, want := range map[string][2]string{
			"m5.large":      {"m", "general"},
			"inf2.xlarge":   {"inf", "accelerated"},
			"u-6tb1.metal":  {"u", "memory"},
			"hpc7g.4xlarge": {"hpc", "hpc"},
			"mac-m4.metal":  {"", "general"},
		} {
			it, ok := c.InstanceType(name)
			if !ok || it.Category != want[0] || it.Class != want[1] {
				t.Errorf("%s: category %q class %q, want %q %q", name, it.Category, it.Class, want[0], want[1])
			}
		}
	})
}

// go generate copies shared/data/ec2 byte for byte; where the snapshot is
// present the embedded copy must equal it, or `make generate` would change
// committed files.
func TestEmbeddedDataIsTheSnapshot(t *testing.T) {
	src := filepath.Join("..", "..", "shared", "data", "ec2")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("snapshot %s not present: %v", src, err)
	}
	entries, err := fs.ReadDir(embeddedData, "data")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("data/ holds %d files, want 5 (README.md and four CSVs)", len(entries))
	}
	for _, e := range entries {
		want, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Errorf("data/%s has no source in %s: %v", e.Name(), src, err)
			continue
		}
		got, _ := fs.ReadFile(embeddedData, "data/"+e.Name())
		if !bytes.Equal(got, want) {
			t.Errorf("data/%s differs from %s; run go generate ./cloud", e.Name(), src)
		}
	}
}

// Parse speed is measured by BenchmarkParseEmbedded (run with -benchmem), not
// asserted in a timed test: CI machines are shared and noisy.
func BenchmarkParseEmbedded(b *testing.B) {
	sub, err := fs.Sub(embeddedData, "data")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := load(sub, "cloud/data"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegionOfferings(b *testing.B) {
	c := embeddedCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.RegionOfferings("us-east-1"); err != nil {
			b.Fatal(err)
		}
	}
}
