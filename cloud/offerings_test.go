package cloud

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// synthetic builds a small catalog in region r1 with zone IDs r1-az1,
// r1-az2, r1-az10 (so numeric and string order differ):
//
//	a.large  amd64  az1, az2, az10  on-demand 1.00, spot 0.20-0.40
//	b.large  amd64  az2             on-demand 2.00, no spot
//	c.large  amd64  az1             no on-demand price, spot 0.50-0.60
//	d.metal  (no arch) az1          on-demand 9.00, spot 1-2
//	e.large  amd64  (no offerings)  on-demand 3.00
func synthetic(t *testing.T) *Catalog {
	t.Helper()
	shape := func(name, arch string) InstanceType {
		return InstanceType{Name: name, Arch: arch, VCPU: 2, MemoryMiB: 8192, MaxPodsENI: 29}
	}
	c, err := New(Tables{
		InstanceTypes: []InstanceType{shape("a.large", ArchAMD64), shape("b.large", ArchAMD64), shape("c.large", ArchAMD64), shape("d.metal", ""), shape("e.large", ArchAMD64)},
		OnDemandPrices: []OnDemandPrice{
			{Region: "r1", InstanceType: "a.large", USDPerHour: 1},
			{Region: "r1", InstanceType: "b.large", USDPerHour: 2},
			{Region: "r1", InstanceType: "d.metal", USDPerHour: 9},
			{Region: "r1", InstanceType: "e.large", USDPerHour: 3},
		},
		SpotPrices: []SpotPrice{
			{Region: "r1", InstanceType: "a.large", MinUSDPerHour: 0.2, MaxUSDPerHour: 0.4, ZoneSamples: 3},
			{Region: "r1", InstanceType: "c.large", MinUSDPerHour: 0.5, MaxUSDPerHour: 0.6, ZoneSamples: 1},
			{Region: "r1", InstanceType: "d.metal", MinUSDPerHour: 1, MaxUSDPerHour: 2, ZoneSamples: 1},
		},
		Offerings: []ZoneOffering{
			{Region: "r1", ZoneID: "r1-az10", InstanceType: "a.large"},
			{Region: "r1", ZoneID: "r1-az2", InstanceType: "a.large"},
			{Region: "r1", ZoneID: "r1-az1", InstanceType: "a.large"},
			{Region: "r1", ZoneID: "r1-az2", InstanceType: "b.large"},
			{Region: "r1", ZoneID: "r1-az1", InstanceType: "c.large"},
			{Region: "r1", ZoneID: "r1-az1", InstanceType: "d.metal"},
		},
	})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return c
}

// describe renders offerings as "type zone capacity-type price" lines.
func describe(offerings []InstanceTypeOfferings) []string {
	var lines []string
	for _, ito := range offerings {
		for _, o := range ito.Offerings {
			if o.InstanceType != ito.InstanceType.Name || !o.Available {
				lines = append(lines, fmt.Sprintf("BAD %+v", o))
			}
			lines = append(lines, fmt.Sprintf("%s %s %s %s %g", o.InstanceType, o.Zone, o.ZoneID, o.CapacityType, o.PricePerHour))
		}
	}
	return lines
}

func TestRegionOfferingRules(t *testing.T) {
	c := synthetic(t)
	for _, tc := range []struct {
		rule string
		opts []OfferingOption
		want []string
	}{
		{"on-demand where listed and priced, spot only where the spot sample has the type, spot at the sample's maximum", nil, []string{
			"a.large r1a r1-az1 on-demand 1", "a.large r1a r1-az1 spot 0.4",
			"a.large r1b r1-az2 on-demand 1", "a.large r1b r1-az2 spot 0.4",
			"a.large r1c r1-az10 on-demand 1", "a.large r1c r1-az10 spot 0.4",
			"b.large r1b r1-az2 on-demand 2",
			"c.large r1a r1-az1 spot 0.6",
		}},
		{"zones filter keeps only the named zones", []OfferingOption{WithZones("r1b")}, []string{
			"a.large r1b r1-az2 on-demand 1", "a.large r1b r1-az2 spot 0.4",
			"b.large r1b r1-az2 on-demand 2",
		}},
		{"no zone names keep every zone", []OfferingOption{WithZones()}, []string{
			"a.large r1a r1-az1 on-demand 1", "a.large r1a r1-az1 spot 0.4",
			"a.large r1b r1-az2 on-demand 1", "a.large r1b r1-az2 spot 0.4",
			"a.large r1c r1-az10 on-demand 1", "a.large r1c r1-az10 spot 0.4",
			"b.large r1b r1-az2 on-demand 2",
			"c.large r1a r1-az1 spot 0.6",
		}},
		{"zone names option replaces the default mapping", []OfferingOption{
			WithZoneNames(map[string]string{"r1-az1": "r1c", "r1-az2": "r1a", "r1-az10": "r1b", "other-az1": "otherx"}),
			WithZones("r1a"),
		}, []string{
			"a.large r1a r1-az2 on-demand 1", "a.large r1a r1-az2 spot 0.4",
			"b.large r1a r1-az2 on-demand 2",
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			offerings, err := c.RegionOfferings("r1", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(offerings); !slices.Equal(got, tc.want) {
				t.Errorf("offerings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestRegionOfferingErrors(t *testing.T) {
	c := synthetic(t)
	for _, tc := range []struct {
		rule   string
		region string
		opts   []OfferingOption
		want   string
	}{
		{"unknown region is an error naming the known ones", "r9", nil, `region "r9" has no offerings in the catalog; regions with offerings: r1`},
		{"a zone the region lacks is an error listing its zones", "r1", []OfferingOption{WithZones("r1a", "r1z")}, `zone "r1z" is not a zone of region r1 in the catalog; its zones are r1a, r1b, r1c`},
		{"zone names must cover every zone ID", "r1", []OfferingOption{WithZoneNames(map[string]string{"r1-az1": "x"})}, "zone ID r1-az2 of region r1 has no name"},
		{"zone names must be distinct", "r1", []OfferingOption{WithZoneNames(map[string]string{"r1-az1": "x", "r1-az2": "x", "r1-az10": "y"})}, "are both named x"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := c.RegionOfferings(tc.region, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RegionOfferings() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestZoneNamesFollowSortedZoneIDs(t *testing.T) {
	for _, tc := range []struct {
		rule   string
		region string
		ids    []string
		want   map[string]string
	}{
		{"zone names follow sorted zone ids, gaps closed", "us-west-1", []string{"usw1-az3", "usw1-az1"},
			map[string]string{"usw1-az1": "us-west-1a", "usw1-az3": "us-west-1b"}},
		{"zone ids sort by number, not by string", "r1", []string{"r1-az10", "r1-az2", "r1-az1"},
			map[string]string{"r1-az1": "r1a", "r1-az2": "r1b", "r1-az10": "r1c"}},
		{"past z names continue aa, ab", "r", zoneIDs("r", 28),
			map[string]string{"r-az1": "ra", "r-az26": "rz", "r-az27": "raa", "r-az28": "rab"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			got := DefaultZoneNames(tc.region, tc.ids)
			for id, want := range tc.want {
				if got[id] != want {
					t.Errorf("%s named %q, want %q", id, got[id], want)
				}
			}
		})
	}
	t.Run("us-east-1 in the snapshot has six zones named a to f", func(t *testing.T) {
		got := embeddedCatalog(t).ZoneNames("us-east-1")
		want := map[string]string{
			"use1-az1": "us-east-1a", "use1-az2": "us-east-1b", "use1-az3": "us-east-1c",
			"use1-az4": "us-east-1d", "use1-az5": "us-east-1e", "use1-az6": "us-east-1f",
		}
		if !maps.Equal(got, want) {
			t.Errorf("ZoneNames(us-east-1) = %v, want %v", got, want)
		}
	})
}

func zoneIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-az%d", prefix, i+1)
	}
	return ids
}

func TestEmbeddedOfferings(t *testing.T) {
	c := embeddedCatalog(t)
	offerings, err := c.RegionOfferings("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]InstanceTypeOfferings{}
	for _, ito := range offerings {
		byName[ito.InstanceType.Name] = ito
	}
	t.Run("m5.large is offered on-demand at its price and spot at the sample maximum in each listed zone", func(t *testing.T) {
		ito, ok := byName["m5.large"]
		if !ok {
			t.Fatal("m5.large is not offered in us-east-1")
		}
		spot, _ := c.SpotPrice("us-east-1", "m5.large")
		zones := c.zonesOf["us-east-1"]["m5.large"]
		if len(ito.Offerings) != 2*len(zones) || len(zones) == 0 {
			t.Fatalf("m5.large has %d offerings over %d zones, want one on-demand and one spot per zone", len(ito.Offerings), len(zones))
		}
		for _, o := range ito.Offerings {
			want := 0.096
			if o.CapacityType == v1alpha1.CapacityTypeSpot {
				want = spot.MaxUSDPerHour
			}
			if o.PricePerHour != want {
				t.Errorf("%s %s costs %v, want %v", o.Zone, o.CapacityType, o.PricePerHour, want)
			}
		}
	})
	t.Run("every offering has a price rule behind it", func(t *testing.T) {
		for _, ito := range offerings {
			for _, o := range ito.Offerings {
				var want float64
				var ok bool
				if o.CapacityType == v1alpha1.CapacityTypeOnDemand {
					want, ok = c.OnDemandPrice("us-east-1", o.InstanceType)
				} else {
					var s SpotPrice
					s, ok = c.SpotPrice("us-east-1", o.InstanceType)
					want = s.MaxUSDPerHour
				}
				if !ok || o.PricePerHour != want {
					t.Fatalf("%+v: price rule gives %v (found %v)", o, want, ok)
				}
			}
		}
	})
	t.Run("offering labels name zone, zone id, region and capacity type", func(t *testing.T) {
		o := byName["m5.large"].Offerings[0]
		want := map[string]string{
			v1alpha1.LabelZone: o.Zone, v1alpha1.LabelZoneID: o.ZoneID,
			v1alpha1.LabelRegion: "us-east-1", v1alpha1.LabelCapacityType: o.CapacityType,
		}
		if got := o.Labels(); !maps.Equal(got, want) {
			t.Errorf("Labels() = %v, want %v", got, want)
		}
	})
}

func TestTypesWithoutArchAreNotOffered(t *testing.T) {
	offerings, err := synthetic(t).RegionOfferings("r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ito := range offerings {
		if ito.InstanceType.Name == "d.metal" {
			t.Fatalf("d.metal has no arch but is offered: %+v", ito.Offerings)
		}
	}
}
