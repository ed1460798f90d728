package live

import (
	"context"
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// spotScores maps type/zoneID to the placement score of its spot offering.
func spotScores(t *testing.T, c *cloud.Catalog) map[string]int {
	t.Helper()
	offered, err := c.RegionOfferings(region)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, it := range offered {
		for _, o := range it.Offerings {
			if o.CapacityType == v1alpha1.CapacityTypeSpot {
				out[it.InstanceType.Name+"/"+o.ZoneID] = o.PlacementScore
			}
		}
	}
	return out
}

func TestRefreshReadsPlacementScoresPerFamily(t *testing.T) {
	l := startLive(t, DefaultOptions())
	zone := l.base.ZoneNames(region)
	var zoneID string
	for id := range zone {
		if zoneID == "" || id < zoneID {
			zoneID = id
		}
	}
	// Every m5 type scores 2 in one zone: the family's score there is 2.
	families := map[string]bool{}
	offered, err := l.base.RegionOfferings(region)
	if err != nil {
		t.Fatal(err)
	}
	perFamily := map[string]int{}
	for _, it := range offered {
		for _, o := range it.Offerings {
			if o.CapacityType == v1alpha1.CapacityTypeSpot {
				perFamily[it.InstanceType.Family]++
				if it.InstanceType.Family == "m5" && o.ZoneID == zoneID {
					l.ec2.SetPlacementScore(it.InstanceType.Name, zoneID, 2)
				}
				break
			}
		}
	}
	for f, n := range perFamily {
		if n >= placementScoreMinTypes {
			families[f] = true
		}
	}
	l.refresh(t)
	if got := l.ec2.Calls("GetSpotPlacementScores"); got != len(families) {
		t.Fatalf("GetSpotPlacementScores was called %d times, want once per family with at least 3 spot types (%d)", got, len(families))
	}
	scores := spotScores(t, l.r.Current())
	if s := scores["m5.large/"+zoneID]; s != 2 {
		t.Fatalf("m5.large spot in %s scores %d, want the family's 2", zoneID, s)
	}
	for k, s := range scores {
		family, _, _ := strings.Cut(k, ".")
		switch {
		case !families[family] && s != 0:
			t.Fatalf("%s is scored %d, but its family has fewer than 3 spot types: unknown (0) expected", k, s)
		case families[family] && family != "m5" && s != 10:
			t.Fatalf("%s scores %d, want the simulator's default 10", k, s)
		}
	}

	// A failing read keeps the last scores and fails nothing else.
	l.ec2.FailWith("GetSpotPlacementScores", "UnauthorizedOperation", 403)
	l.ec2.SetPlacementScore("m5.large", zoneID, 9)
	if err := l.r.RefreshSpotPrices(context.Background()); err != nil {
		t.Fatalf("RefreshSpotPrices with placement scores failing: %v", err)
	}
	if s := spotScores(t, l.r.Current())["m5.large/"+zoneID]; s != 2 {
		t.Fatalf("after a failed read m5.large in %s scores %d, want the last read's 2", zoneID, s)
	}
}
