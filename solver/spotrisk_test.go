package solver_test

import (
	"math"
	"strings"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
)

func TestOfferingRisk(t *testing.T) {
	for _, tc := range []struct {
		name     string
		score    int
		observed float64
		want     float64
	}{
		{"nothing known is no risk", 0, 0, 0},
		{"score 10 is no risk", 10, 0, 0},
		{"score 1 is the highest risk", 1, 0, 1},
		{"score 7 is a third", 7, 0, 1.0 / 3},
		{"an out-of-range score says nothing", 11, 0, 0},
		{"one interruption just now is even odds", 0, 1, 0.5},
		{"a faded interruption counts less", 0, 0.25, 1 - math.Exp2(-0.25)},
		{"score and interruptions compound", 7, 1, 1 - (2.0/3)*0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OfferingRisk(tc.score, tc.observed); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("OfferingRisk(%d, %v) = %v, want %v", tc.score, tc.observed, got, tc.want)
			}
		})
	}
}

// spotRiskSnapshot: one pod that fits m.large, a pool that buys spot only,
// m.large spot at $0.063 in zone-a and $0.070 elsewhere, m.xlarge spot at
// $0.140.
func spotRiskSnapshot(weight float64, scores map[string]int, seen map[OfferingKey]float64) *Snapshot {
	types := []*InstanceType{itype("m.large", 2, 8, 0.10), itype("m.xlarge", 4, 16, 0.20)}
	for _, it := range types {
		for i := range it.Offerings {
			if o := &it.Offerings[i]; it.Name == "m.large" && o.Zone == "zone-a" && o.CapacityType == v1alpha1.CapacityTypeSpot {
				o.PricePerHour = 0.063
			}
			if s, ok := scores[it.Name+"/"+it.Offerings[i].Zone]; ok && it.Offerings[i].CapacityType == v1alpha1.CapacityTypeSpot {
				it.Offerings[i].PlacementScore = s
			}
		}
	}
	pool := testPool("default", types, capacityTypes(v1alpha1.CapacityTypeSpot))
	return &Snapshot{Pods: pods(1, "p", "1", "1Gi"), Pools: []*Pool{pool}, SpotRisk: SpotRisk{Weight: weight, Interruptions: seen}}
}

// The rule each case pins: the cheapest spot offering whose price weighed
// by its risk is lowest; real prices for totals; explained rejections.
func TestSpotRiskChoice(t *testing.T) {
	lowAll := map[string]int{"m.large/zone-a": 1, "m.large/zone-b": 1, "m.large/zone-c": 1}
	for _, tc := range []struct {
		name       string
		snap       *Snapshot
		wantType   string
		wantZone   string
		wantReason bool // a rejection for spot risk is recorded
	}{
		{name: "without a weight the cheapest wins whatever its score (cheapest-first)",
			snap: spotRiskSnapshot(0, lowAll, nil), wantType: "m.large", wantZone: "zone-a"},
		{name: "a low placement score in one zone moves to the same type in another zone",
			snap:     spotRiskSnapshot(1, map[string]int{"m.large/zone-a": 1}, nil),
			wantType: "m.large", wantZone: "zone-b", wantReason: true},
		{name: "a risky offering still wins while its weighed price is the lowest",
			snap:     spotRiskSnapshot(1, lowAll, nil),
			wantType: "m.large", wantZone: "zone-a"},
		{name: "a heavier weight moves a risky type to a larger type with nothing against it",
			snap:     spotRiskSnapshot(2, lowAll, nil),
			wantType: "m.xlarge", wantZone: "zone-a", wantReason: true},
		{name: "recent interruptions of an offering move the choice to another zone",
			snap: spotRiskSnapshot(1, nil, map[OfferingKey]float64{
				{InstanceType: "m.large", Zone: "zone-a", CapacityType: v1alpha1.CapacityTypeSpot}: 2}),
			wantType: "m.large", wantZone: "zone-b", wantReason: true},
		{name: "a slight risk does not outweigh a large saving",
			snap: func() *Snapshot {
				s := spotRiskSnapshot(1, map[string]int{"m.large/zone-a": 9, "m.large/zone-b": 9, "m.large/zone-c": 9}, nil)
				return s
			}(), wantType: "m.large", wantZone: "zone-a"},
		{name: "an unknown score is not a low one",
			snap:     spotRiskSnapshot(1, map[string]int{"m.large/zone-a": 0}, nil),
			wantType: "m.large", wantZone: "zone-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := solveChecked(t, tc.snap, Options{RecordRejections: true})
			wantAllPlaced(t, plan)
			if len(plan.NewNodes) != 1 {
				t.Fatalf("planned %d nodes, want 1", len(plan.NewNodes))
			}
			n := plan.NewNodes[0]
			if n.InstanceType.Name != tc.wantType || n.Offering.Zone != tc.wantZone {
				t.Fatalf("chose %s in %s, want %s in %s", n.InstanceType.Name, n.Offering.Zone, tc.wantType, tc.wantZone)
			}
			if plan.TotalPricePerHour != n.Offering.PricePerHour {
				t.Fatalf("TotalPricePerHour = %v, want the real price %v", plan.TotalPricePerHour, n.Offering.PricePerHour)
			}
			var risky *Rejection
			for i := range n.Rejected {
				if n.Rejected[i].Reason == RejectedForSpotRisk {
					risky = &n.Rejected[i]
				}
			}
			if (risky != nil) != tc.wantReason {
				t.Fatalf("rejections %+v: spot-risk rejection recorded = %v, want %v", n.Rejected, risky != nil, tc.wantReason)
			}
			if risky != nil {
				f := risky.Offerings[0]
				if f.Offering.PricePerHour >= n.Offering.PricePerHour || f.Risk <= 0 {
					t.Fatalf("rejected for risk: %+v; want a cheaper offering with its risk", f)
				}
				if !strings.Contains(risky.Reason, "placement score") {
					t.Fatalf("reason %q does not name the placement score", risky.Reason)
				}
			}
		})
	}
}

// A pool's pricePerHour limit counts real prices: weighing by risk must not
// make a pool look fuller than it is.
func TestSpotRiskKeepsRealPricesForLimits(t *testing.T) {
	snap := spotRiskSnapshot(1, map[string]int{"m.large/zone-a": 1, "m.large/zone-b": 1, "m.large/zone-c": 1}, nil)
	limit := 0.0631 // one m.large spot, not one m.large weighed at twice its price
	snap.Pools[0].PricePerHourLimit = &limit
	plan := solveChecked(t, snap)
	wantAllPlaced(t, plan)
}
