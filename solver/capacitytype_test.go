package solver_test

import (
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
)

func capacityTypes(cts ...string) func(*Pool) {
	return func(p *Pool) {
		p.Requirements = Requirements{{Key: v1alpha1.LabelCapacityType, Operator: OpIn, Values: cts}}
	}
}

// withReservedOffering gives a type a reserved offering in zone-a at a
// fraction of its on-demand price, as Karpenter's fake provider prices
// reservations (PriceFromResources / 100000): already paid for.
func withReservedOffering(it *InstanceType) {
	it.Offerings = append(it.Offerings, Offering{Zone: "zone-a", ZoneID: "zone-a-id", CapacityType: v1alpha1.CapacityTypeReserved,
		PricePerHour: it.Offerings[0].PricePerHour / 100000, Available: true})
}

func wantCapacityTypes(t *testing.T, p *Plan, want string) {
	t.Helper()
	for _, n := range p.NewNodes {
		if n.Offering.CapacityType != want || n.Labels[v1alpha1.LabelCapacityType] != want {
			t.Fatalf("node %s is %s (label %q), want %s", n.Name, n.Offering.CapacityType, n.Labels[v1alpha1.LabelCapacityType], want)
		}
		for _, fb := range p.NewNodes[0].Fallbacks {
			if fb.Offering.CapacityType == v1alpha1.CapacityTypeReserved && want != v1alpha1.CapacityTypeReserved {
				t.Fatalf("fallback %s is reserved", fb.InstanceType.Name)
			}
		}
	}
}

// capacityTypeCases follow Karpenter v1.15.0's reserved capacity semantics
// (core pkg/controllers/provisioning/scheduling/suite_test.go "Reserved
// Instance Types", and the AWS provider's test/suites/scheduling
// "Capacity Reservations"). Without a reserved offering (no capacity
// reservation selected, or none with room), a pool that may only buy
// reserved capacity must say that, not report a generic misfit; the
// reservations themselves are capacityreservation_test.go's.
var capacityTypeCases = []ruleCase{
	// Karpenter AWS: scheduling "Capacity Reservations" / "should fall back when compatible
	// capacity reservations are exhausted" (here: there are none to begin with).
	{name: "reserved and on-demand falls back to on-demand",
		snap: func() *Snapshot {
			return onePool(pods(3, "p", "1", "1Gi"), capacityTypes(v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeOnDemand))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantCapacityTypes(t, p, v1alpha1.CapacityTypeOnDemand)
		}},
	{name: "reserved and spot falls back to spot",
		snap: func() *Snapshot {
			return onePool(pods(3, "p", "1", "1Gi"), capacityTypes(v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeSpot))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantCapacityTypes(t, p, v1alpha1.CapacityTypeSpot)
		}},
	// Karpenter core: "Reserved Instance Types" with every reservation gone; its scheduler
	// reports the pool incompatible on karpenter.sh/capacity-type.
	{name: "reserved only, with no reserved offering, says so",
		snap: func() *Snapshot {
			return onePool(pods(2, "p", "1", "1Gi"), capacityTypes(v1alpha1.CapacityTypeReserved))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 2, `nodepool "default": no reserved offering`)
		}},
	{name: "a pod requiring reserved on a pool that also allows on-demand says so",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withNodeSelector(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeReserved))},
				capacityTypes(v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeOnDemand))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "no reserved offering")
		}},
	// The class, not the instance: any capacity type the pool allows but no
	// offering of its types carries is named.
	{name: "spot only, on types with no spot offering, says so",
		snap: func() *Snapshot {
			types := standardTypes()
			for _, it := range types {
				var od []Offering
				for _, o := range it.Offerings {
					if o.CapacityType == v1alpha1.CapacityTypeOnDemand {
						od = append(od, o)
					}
				}
				it.Offerings = od
			}
			return &Snapshot{Pods: pods(1, "p", "1", "1Gi"), Pools: []*Pool{testPool("default", types, capacityTypes(v1alpha1.CapacityTypeSpot))}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "no spot offering")
		}},
	// Like Karpenter, a pool that names no capacity type buys on-demand only.
	{name: "a pool naming no capacity type, on types offered as spot only, says no on-demand offering",
		snap: func() *Snapshot {
			types := standardTypes()
			for _, it := range types {
				var spot []Offering
				for _, o := range it.Offerings {
					if o.CapacityType == v1alpha1.CapacityTypeSpot {
						spot = append(spot, o)
					}
				}
				it.Offerings = spot
			}
			return &Snapshot{Pods: pods(1, "p", "1", "1Gi"), Pools: []*Pool{testPool("default", types, func(p *Pool) { p.Requirements = nil })}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "no on-demand offering")
		}},
	// Karpenter core: "Reserved Instance Types" / "shouldn't fallback to on-demand or spot when
	// compatible reserved offerings are available": once the catalog has them, a reserved
	// offering is taken (and labelled) before on-demand.
	{name: "a reserved offering, when there is one, is taken first",
		snap: func() *Snapshot {
			types := standardTypes()
			for _, it := range types {
				if it.Name == "m.large" {
					withReservedOffering(it)
				}
			}
			return &Snapshot{Pods: pods(1, "p", "1800m", "1Gi"),
				Pools: []*Pool{testPool("default", types, capacityTypes(v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeOnDemand))}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			wantType(t, p, 0, "m.large")
			wantCapacityTypes(t, p, v1alpha1.CapacityTypeReserved)
		}},
}

func TestCapacityTypes(t *testing.T) {
	for _, tc := range capacityTypeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			p := solveChecked(t, s, tc.opts)
			tc.expect(t, s, p)
		})
	}
}

// On the embedded us-east-1 catalog: a reserved-only pool built the way the
// manager builds it explains itself, and reserved plus on-demand plans the
// same machines as on-demand alone.
func TestCapacityTypesRealCatalog(t *testing.T) {
	pools := realPools(t)
	onDemand := pools[1]
	reservedOnly := *onDemand
	reservedOnly.Name = "reserved"
	reservedOnly.Requirements = append(Requirements{{Key: v1alpha1.LabelCapacityType, Operator: OpIn, Values: []string{v1alpha1.CapacityTypeReserved}}},
		withoutKey(onDemand.Requirements, v1alpha1.LabelCapacityType)...)
	p := solveChecked(t, &Snapshot{Pods: pods(4, "p", "2", "4Gi"), Pools: []*Pool{&reservedOnly}})
	wantUnschedulable(t, p, 4, `nodepool "reserved": no reserved offering`)

	withFallback := reservedOnly
	withFallback.Name = "reserved-or-on-demand"
	withFallback.Requirements = append(Requirements{{Key: v1alpha1.LabelCapacityType, Operator: OpIn,
		Values: []string{v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeOnDemand}}}, withoutKey(onDemand.Requirements, v1alpha1.LabelCapacityType)...)
	got := solveChecked(t, &Snapshot{Pods: pods(40, "p", "2", "4Gi"), Pools: []*Pool{&withFallback}})
	want := solveChecked(t, &Snapshot{Pods: pods(40, "p", "2", "4Gi"), Pools: []*Pool{onDemand}})
	wantAllPlaced(t, got)
	wantCapacityTypes(t, got, v1alpha1.CapacityTypeOnDemand)
	if got.TotalPricePerHour != want.TotalPricePerHour || len(got.NewNodes) != len(want.NewNodes) {
		t.Fatalf("reserved+on-demand: %d nodes $%.4f/h; on-demand alone: %d nodes $%.4f/h",
			len(got.NewNodes), got.TotalPricePerHour, len(want.NewNodes), want.TotalPricePerHour)
	}
}

func withoutKey(rs Requirements, key string) Requirements {
	var out Requirements
	for _, r := range rs {
		if r.Key != key {
			out = append(out, r)
		}
	}
	return out
}
