package solver_test

import (
	"math"
	"testing"

	. "github.com/joinery-dev/joinery/solver"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func wantPrice(t *testing.T, p *Plan, want float64) {
	t.Helper()
	if math.Abs(p.TotalPricePerHour-want) > 1e-9 {
		var types []string
		for _, n := range p.NewNodes {
			types = append(types, n.InstanceType.Name)
		}
		t.Fatalf("want $%.4f/h, got $%.4f/h on %v", want, p.TotalPricePerHour, types)
	}
}

var packingCases = []ruleCase{
	{name: "compute and memory pods share the nodes their mix makes cheapest",
		// 16 pods of 1 cpu/1Gi and 16 of 1 cpu/7Gi: 32 cpu and 128 GiB, the
		// m.2xlarge ratio exactly. Each group alone prefers c and r nodes
		// ($1.68 in all); mixed, four m.2xlarge carry everything ($1.60).
		snap: func() *Snapshot {
			types := []*InstanceType{
				itype("c.2xlarge", 8, 16, 0.34),
				itype("m.2xlarge", 8, 32, 0.40),
				itype("r.2xlarge", 8, 64, 0.50),
			}
			ps := append(pods(16, "cpu", "1", "1Gi"), pods(16, "mem", "1", "7Gi")...)
			return &Snapshot{Pods: ps, Pools: []*Pool{testPool("default", types)}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantPrice(t, p, 1.60)
		}},
	{name: "pods left after the whole nodes land on a node of their size",
		// 70 pods of 1 cpu: one big node (cheapest per cpu) takes 63, the
		// other 7 go on a medium node rather than a second big one.
		snap: func() *Snapshot {
			types := []*InstanceType{itype("big", 64, 256, 2.56), itype("med", 8, 32, 0.40)}
			return &Snapshot{Pods: pods(70, "p", "1", "1Gi"), Pools: []*Pool{testPool("default", types)}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 2)
			wantPrice(t, p, 2.96)
		}},
	{name: "underused node is emptied into free room",
		// The plain pods are packed onto a node of their own before the
		// affinity pod (whose partner is placed after it) is retried and
		// grows its partner's node; the plain pods then move into the room
		// that growth left and their node is dropped.
		snap: func() *Snapshot {
			late := testPod("late", "1900m", "1Gi", withLabels("app", "late"))
			needy := testPod("needy", "3", "1Gi", withPodAffinity(v1alpha1.LabelHostname, map[string]string{"app": "late"}))
			ps := append([]*corev1.Pod{needy, late}, pods(2, "plain", "500m", "1Gi")...)
			return onePool(ps)
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			wantType(t, p, 0, "m.2xlarge")
		}},
	{name: "cpu-bound and memory-bound nodes trade pods and both shrink",
		// Pods with (loose) spread rules are placed group by group: the
		// cpu-heavy ones fill one 16-cpu node's cpu, the memory-heavy ones
		// another's memory ($1.60). Traded until both are balanced, the
		// two fit $1.20 of nodes.
		snap: func() *Snapshot {
			types := []*InstanceType{itype("m4", 4, 16, 0.2), itype("m8", 8, 32, 0.4), itype("m12", 12, 48, 0.6), itype("m16", 16, 64, 0.8)}
			loose := func(app string) podOpt {
				return withSpread(v1alpha1.LabelHostname, 50, corev1.DoNotSchedule, map[string]string{"app": app})
			}
			ps := append(pods(8, "cpu", "2", "1Gi", withLabels("app", "cpu"), loose("cpu")),
				pods(4, "mem", "1", "16Gi", withLabels("app", "mem"), loose("mem"))...)
			return &Snapshot{Pods: ps, Pools: []*Pool{testPool("default", types)}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantPrice(t, p, 1.2)
		}},
	{name: "lower bound prices small nodes by whole pods",
		// Four pods of 1.2 cpu on a 2-cpu type: one per node. The plain LP
		// says 2.4 nodes; whole-pod patterns say 4, which is the optimum.
		snap: func() *Snapshot {
			return &Snapshot{Pods: pods(4, "p", "1200m", "1Gi"), Pools: []*Pool{testPool("default", []*InstanceType{itype("c.large", 2, 4, 0.085)})}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantNodes(t, p, 4)
			if p.LowerBoundPricePerHour < p.TotalPricePerHour*(1-1e-5) {
				t.Fatalf("lower bound %.4f below the optimum %.4f", p.LowerBoundPricePerHour, p.TotalPricePerHour)
			}
		}},
	{name: "lower bound counts whole nodes of the type it buys",
		// 200 pods of 100m on a 16-cpu type holding 110 pods: the LP buys
		// 1.82 nodes, but any packing needs 2, and the bound says so.
		snap: func() *Snapshot {
			return &Snapshot{Pods: pods(200, "p", "100m", "128Mi"), Pools: []*Pool{testPool("default", []*InstanceType{itype("m.4xlarge", 16, 64, 0.80)})}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantNodes(t, p, 2)
			if p.LowerBoundPricePerHour < p.TotalPricePerHour*(1-1e-5) {
				t.Fatalf("lower bound %.4f below the optimum %.4f", p.LowerBoundPricePerHour, p.TotalPricePerHour)
			}
		}},
	{name: "pods without requests are packed by pod count",
		snap: func() *Snapshot {
			var ps []*corev1.Pod
			for _, p := range pods(150, "be", "1", "1Gi") {
				p.Spec.Containers[0].Resources.Requests = nil
				ps = append(ps, p)
			}
			return onePool(ps)
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 2) // 110 pods per node
			wantPrice(t, p, 2*0.085)
		}},
	{name: "plain pods of a pool with minValues keep enough fallbacks",
		snap: func() *Snapshot {
			s := onePool(pods(12, "p", "1", "2Gi"))
			s.Pools[0].Requirements = append(s.Pools[0].Requirements, Requirement{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily,
				Operator: OpExists, MinValues: ptr(2)})
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	{name: "plain pods stay within the pool's cpu limit",
		snap: func() *Snapshot {
			s := onePool(pods(40, "p", "1", "2Gi"))
			s.Pools[0].Limits = corev1.ResourceList{corev1.ResourceCPU: resourceQ("24")}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			cpu := int64(0)
			for _, n := range p.NewNodes {
				cpu += n.InstanceType.Capacity.Cpu().Value()
			}
			if cpu > 24 {
				t.Fatalf("%d cpu launched over a limit of 24", cpu)
			}
			if len(p.Unschedulable) == 0 {
				t.Fatalf("40 cpu of pods cannot fit 24 cpu")
			}
		}},
}

func TestPackingRules(t *testing.T) {
	for _, tc := range packingCases {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap()
			p := solveChecked(t, snap, tc.opts)
			tc.expect(t, snap, p)
		})
	}
}

func resourceQ(s string) resource.Quantity { return resource.MustParse(s) }

// Rebalancing moves pods that carry spread, affinity and anti-affinity
// rules; the checker replays every plan of the diverse benchmark workload
// over several seeds.
func TestDiverseWorkloadPlansStayValid(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		p := solveChecked(t, genericSnapshot(400+int(seed)*50, seed))
		wantAllPlaced(t, p)
	}
}
