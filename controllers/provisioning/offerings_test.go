package provisioning

import (
	"sync/atomic"
	"testing"

	"github.com/joinery-dev/joinery/cloud"
)

// switchable is a cloud.Source whose catalog a test replaces, as the live
// refresher does.
type switchable struct{ c atomic.Pointer[cloud.Catalog] }

func (s *switchable) Current() *cloud.Catalog { return s.c.Load() }

func TestARefreshedCatalogIsUsedFromTheNextPass(t *testing.T) {
	tables := cloud.Tables{
		InstanceTypes:  []cloud.InstanceType{{Name: "m5.large", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 8192}},
		OnDemandPrices: []cloud.OnDemandPrice{{Region: "r1", InstanceType: "m5.large", USDPerHour: 0.096}},
		Offerings:      []cloud.ZoneOffering{{Region: "r1", ZoneID: "r1-az1", InstanceType: "m5.large"}, {Region: "r1", ZoneID: "r1-az2", InstanceType: "m5.large"}},
	}
	before, err := cloud.New(tables)
	if err != nil {
		t.Fatal(err)
	}
	after, err := before.Update(cloud.RegionUpdate{Region: "r1", Offerings: []cloud.ZoneOffering{{ZoneID: "r1-az2", InstanceType: "m5.large"}},
		SpotPrices: []cloud.ZoneSpotPrice{{ZoneID: "r1-az2", InstanceType: "m5.large", USDPerHour: 0.03}}})
	if err != nil {
		t.Fatal(err)
	}
	source := &switchable{}
	source.c.Store(before)
	cache := &offeringsCache{source: source}
	count := func() int {
		t.Helper()
		offered, err := cache.get("r1", nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ito := range offered {
			n += len(ito.Offerings)
		}
		return n
	}
	if got := count(); got != 2 {
		t.Fatalf("offerings before the refresh = %d, want on-demand in r1-az1 and r1-az2", got)
	}
	source.c.Store(after)
	if got := count(); got != 2 {
		t.Errorf("offerings after the refresh = %d, want on-demand and spot in r1-az2 only", got)
	}
	offered, _ := cache.get("r1", nil)
	if zone := offered[0].Offerings[0].ZoneID; zone != "r1-az2" {
		t.Errorf("first offering after the refresh is in %s, want r1-az2: the cache kept the old catalog's", zone)
	}
}
