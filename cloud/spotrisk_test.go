package cloud

import (
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

func TestWithPlacementScores(t *testing.T) {
	base, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	zone := base.zonesOf["us-east-1"]["m5.large"][0]
	scored, err := base.WithPlacementScores("us-east-1", []PlacementScore{{Region: "us-east-1", ZoneID: zone, InstanceType: "m5.large", Score: 3}})
	if err != nil {
		t.Fatal(err)
	}
	offered, err := scored.RegionOfferings("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, it := range offered {
		for _, o := range it.Offerings {
			if o.PlacementScore != 0 {
				seen[it.InstanceType.Name+"/"+o.ZoneID+"/"+o.CapacityType] = o.PlacementScore
			}
		}
	}
	if want := "m5.large/" + zone + "/" + v1alpha1.CapacityTypeSpot; len(seen) != 1 || seen[want] != 3 {
		t.Fatalf("scored offerings %v, want only %s at 3 (unscored ones unknown, 0; on-demand never scored)", seen, want)
	}
	if base.PlacementScoreOf("us-east-1", zone, "m5.large") != 0 {
		t.Fatalf("WithPlacementScores changed the catalog it was called on")
	}
	for _, bad := range []PlacementScore{{Region: "us-east-1", ZoneID: zone, InstanceType: "m5.large", Score: 0},
		{Region: "us-east-1", ZoneID: zone, InstanceType: "m5.large", Score: 11}, {Region: "eu-west-1", ZoneID: zone, InstanceType: "m5.large", Score: 5}} {
		if _, err := base.WithPlacementScores("us-east-1", []PlacementScore{bad}); err == nil || !strings.Contains(err.Error(), "m5.large") {
			t.Fatalf("score %+v: err = %v, want one naming the type", bad, err)
		}
	}
}
