package solver_test

import (
	. "github.com/joinery-dev/joinery/solver"
	"reflect"
	"strings"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

type ruleCase struct {
	name   string
	snap   func() *Snapshot
	opts   Options
	expect func(t *testing.T, s *Snapshot, p *Plan)
}

func onePool(ps []*corev1.Pod, mods ...func(*Pool)) *Snapshot {
	return &Snapshot{Pods: ps, Pools: []*Pool{testPool("default", standardTypes(), mods...)}}
}

func wantNodes(t *testing.T, p *Plan, n int) {
	t.Helper()
	if len(p.NewNodes) != n {
		t.Fatalf("want %d new nodes, got %d", n, len(p.NewNodes))
	}
}

func wantType(t *testing.T, p *Plan, i int, name string) {
	t.Helper()
	if got := p.NewNodes[i].InstanceType.Name; got != name {
		t.Fatalf("node %d: want type %s, got %s", i, name, got)
	}
}

func wantAllPlaced(t *testing.T, p *Plan) {
	t.Helper()
	for _, u := range p.Unschedulable {
		t.Fatalf("pod %s unschedulable: %s", u.Pod.Name, u.Reason)
	}
}

func wantUnschedulable(t *testing.T, p *Plan, n int, reasonParts ...string) {
	t.Helper()
	if len(p.Unschedulable) != n {
		t.Fatalf("want %d unschedulable, got %d: %+v", n, len(p.Unschedulable), p.Unschedulable)
	}
	for _, u := range p.Unschedulable {
		for _, part := range reasonParts {
			if !strings.Contains(u.Reason, part) {
				t.Fatalf("reason %q lacks %q", u.Reason, part)
			}
		}
	}
}

func zoneOf(p *Plan, node string) string {
	for _, n := range p.NewNodes {
		if n.Name == node {
			return n.Offering.Zone
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

var ruleCases = []ruleCase{
	{name: "pod gets the cheapest type that fits",
		snap: func() *Snapshot { return onePool([]*corev1.Pod{testPod("p", "3", "4Gi")}) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantNodes(t, p, 1)
			wantType(t, p, 0, "c.xlarge")
		}},
	{name: "identical pods are packed onto few nodes",
		snap: func() *Snapshot { return onePool(pods(40, "web", "500m", "1Gi")) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if p.TotalPricePerHour > 0.85+1e-9 { // optimum: 5x c.xlarge
				t.Fatalf("poor packing: %v/h over %d nodes", p.TotalPricePerHour, len(p.NewNodes))
			}
		}},
	{name: "init containers count as max of init and sum of containers",
		snap: func() *Snapshot {
			pod := testPod("p", "1", "1Gi")
			pod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}}
			return onePool([]*corev1.Pod{pod})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "c.xlarge") }},
	{name: "sidecar init containers add to the pod's requests",
		snap: func() *Snapshot {
			pod := testPod("p", "1500m", "1Gi")
			always := corev1.ContainerRestartPolicyAlways
			pod.Spec.InitContainers = []corev1.Container{{Name: "sidecar", RestartPolicy: &always, Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}
			return onePool([]*corev1.Pod{pod})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "c.xlarge") }},
	{name: "pod overhead is counted",
		snap: func() *Snapshot {
			pod := testPod("p", "1800m", "1Gi")
			pod.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
			return onePool([]*corev1.Pod{pod})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "c.xlarge") }},
	{name: "daemonset overhead lands on every new node",
		snap: func() *Snapshot {
			s := onePool([]*corev1.Pod{testPod("p", "1500m", "1Gi")})
			s.DaemonSets = []*appsv1.DaemonSet{daemonSet("logs", "1", "256Mi")}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "c.xlarge") }},
	{name: "daemonset that does not tolerate the pool taint adds no overhead",
		snap: func() *Snapshot {
			s := onePool([]*corev1.Pod{testPod("p", "1500m", "1Gi", withToleration("team", "a", corev1.TaintEffectNoSchedule))},
				func(p *Pool) {
					p.Taints = []corev1.Taint{{Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule}}
				})
			s.DaemonSets = []*appsv1.DaemonSet{daemonSet("logs", "1", "256Mi")}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "c.large") }},
	{name: "pod requiring arm64 gets an arm64 type",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withNodeSelector(v1alpha1.LabelArch, "arm64"))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "a.large") }},
	{name: "required node affinity falls through to a satisfiable term",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelArch, corev1.NodeSelectorOpIn, "riscv")},
				[]corev1.NodeSelectorRequirement{nsr(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily, corev1.NodeSelectorOpIn, "m5")},
			))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantType(t, p, 0, "m.large") }},
	{name: "node affinity Gt on instance cpu",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{nsr(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCPU, corev1.NodeSelectorOpGt, "4")}))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "m.2xlarge") }},
	{name: "preferred node affinity is honored when possible",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withPreferred(10, nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-c")))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if z := p.NewNodes[0].Offering.Zone; z != "zone-c" {
				t.Fatalf("zone %s", z)
			}
		}},
	{name: "preferred node affinity is relaxed when it cannot be met",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withPreferred(10, nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-z")))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	{name: "untolerated pool taint sends pod to another pool",
		snap: func() *Snapshot {
			tainted := testPool("gpu", standardTypes(), func(p *Pool) {
				p.Weight = 10
				p.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
			})
			return &Snapshot{Pods: []*corev1.Pod{testPod("p", "1", "1Gi")}, Pools: []*Pool{tainted, testPool("default", standardTypes())}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].Pool != "default" {
				t.Fatalf("pool %s", p.NewNodes[0].Pool)
			}
		}},
	{name: "pod fitting nowhere is reported with each pool's reason",
		snap: func() *Snapshot {
			gpu := testPool("gpu", []*InstanceType{itype("g.xlarge", 4, 16, 0.8, withGPU(1))})
			tainted := testPool("default", standardTypes(), func(p *Pool) {
				p.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
			})
			return &Snapshot{Pods: []*corev1.Pod{testPod("p", "1", "1Gi", withGPURequest(2))}, Pools: []*Pool{gpu, tainted}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, `nodepool "gpu": no instance type has room for requests`, "nvidia.com/gpu=2",
				`nodepool "default": taint gpu=true:NoSchedule not tolerated`)
		}},
	{name: "unsatisfiable node selector is reported with the requirements",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withNodeSelector(v1alpha1.LabelArch, "riscv"))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "no instance type satisfies requirements [kubernetes.io/arch=riscv]")
		}},
	{name: "startup taints are ignored for scheduling",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi")}, func(p *Pool) {
				p.StartupTaints = []corev1.Taint{{Key: "cni-not-ready", Effect: corev1.TaintEffectNoSchedule}}
			})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	{name: "gpu pod gets a gpu type",
		snap:   func() *Snapshot { return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withGPURequest(2))}) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantType(t, p, 0, "g.2xlarge") }},
	{name: "existing node is filled before new machines",
		snap: func() *Snapshot {
			s := onePool(pods(3, "p", "1", "1Gi"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, []*corev1.Pod{testPod("bound", "1", "1Gi")})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantNodes(t, p, 0)
			if len(p.Existing) != 3 {
				t.Fatalf("existing placements %d", len(p.Existing))
			}
		}},
	{name: "existing node taints are respected",
		snap: func() *Snapshot {
			s := onePool(pods(1, "p", "1", "1Gi"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil, func(n *Node) {
				n.Node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 1) }},
	{name: "in-flight machine is filled and its boot taints ignored",
		snap: func() *Snapshot {
			s := onePool(pods(2, "p", "1", "1Gi"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil, func(n *Node) {
				n.InFlight = true
				n.Pool = "default"
				n.Node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}
			})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 0); wantAllPlaced(t, p) }},
	{name: "a registered node CAPI has not initialized yet is filled",
		snap: func() *Snapshot {
			s := onePool(pods(2, "p", "1", "1Gi"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil, func(n *Node) {
				n.InFlight = true
				n.Pool = "default"
				n.Node.Spec.Taints = []corev1.Taint{{Key: "node.cluster.x-k8s.io/uninitialized", Effect: corev1.TaintEffectNoSchedule}}
			})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 0); wantAllPlaced(t, p) }},
	{name: "cordoned node takes nothing",
		snap: func() *Snapshot {
			s := onePool(pods(1, "p", "1", "1Gi"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil, func(n *Node) { n.Node.Spec.Unschedulable = true })}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 1) }},
	{name: "existing node label mismatch is skipped",
		snap: func() *Snapshot {
			s := onePool(pods(1, "p", "1", "1Gi", withNodeSelector(v1alpha1.LabelArch, "arm64")))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil)}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 1); wantType(t, p, 0, "a.large") }},
	{name: "pool at cpu limit creates nothing",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi"), func(p *Pool) {
				p.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100")}
				p.InUse = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100")}
			})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 0); wantUnschedulable(t, p, 1, "limits") }},
	{name: "pool cpu limit caps what is launched",
		snap: func() *Snapshot {
			return onePool(pods(10, "p", "1", "1Gi"), func(p *Pool) {
				p.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}
				p.InUse = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
			})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if len(p.Unschedulable) == 0 {
				t.Fatalf("expected some pods over the limit")
			}
		}},
	{name: "pool price limit is respected",
		snap: func() *Snapshot {
			return onePool(pods(20, "p", "1", "1Gi"), func(p *Pool) { p.PricePerHourLimit = ptr(0.5) })
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.TotalPricePerHour > 0.5 {
				t.Fatalf("total %v", p.TotalPricePerHour)
			}
		}},
	{name: "higher weight pool is tried first",
		snap: func() *Snapshot {
			cheap := testPool("cheap", standardTypes())
			heavy := testPool("heavy", []*InstanceType{itype("m.xlarge", 4, 16, 0.5)}, func(p *Pool) { p.Weight = 50 })
			return &Snapshot{Pods: pods(1, "p", "1", "1Gi"), Pools: []*Pool{cheap, heavy}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].Pool != "heavy" {
				t.Fatalf("pool %s", p.NewNodes[0].Pool)
			}
		}},
	{name: "spot chosen when the pool allows it and it is cheaper",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi"), func(p *Pool) { p.Requirements = onDemandAndSpot() })
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].Offering.CapacityType != "spot" {
				t.Fatalf("got %s", p.NewNodes[0].Offering.CapacityType)
			}
		}},
	{name: "pool without capacity type requirement buys on-demand",
		snap: func() *Snapshot { return onePool(pods(1, "p", "1", "1Gi"), func(p *Pool) { p.Requirements = nil }) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].Offering.CapacityType != "on-demand" {
				t.Fatalf("got %s", p.NewNodes[0].Offering.CapacityType)
			}
		}},
	{name: "unavailable offerings are never chosen",
		snap: func() *Snapshot {
			s := onePool(pods(1, "p", "1", "1Gi"))
			s.Unavailable = UnavailableOfferings{}
			for _, z := range testZones[:2] {
				s.Unavailable[OfferingKey{InstanceType: "a.large", Zone: z, CapacityType: "on-demand"}] = struct{}{}
			}
			for _, it := range s.Pools[0].InstanceTypes {
				if it.Name == "a.large" {
					it.Offerings[4].Available = false // zone-c on-demand
				}
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].InstanceType.Name == "a.large" {
				t.Fatalf("chose an unavailable offering")
			}
		}},
	{name: "fallbacks fit the same pods and are cheapest first",
		snap: func() *Snapshot { return onePool(pods(1, "p", "3", "4Gi")) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if len(p.NewNodes[0].Fallbacks) == 0 {
				t.Fatalf("no fallbacks")
			}
		}},
	{name: "minValues keeps enough instance families among fallbacks",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi"), func(p *Pool) {
				p.Requirements = append(onDemandOnly(), Requirement{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily,
					Operator: OpIn, Values: []string{"m5", "c5", "m6g"}, MinValues: ptr(3)})
			})
		},
		opts: Options{MaxFallbacks: 1},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			fams := map[string]bool{p.NewNodes[0].InstanceType.Labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily]: true}
			for _, f := range p.NewNodes[0].Fallbacks {
				fams[f.InstanceType.Labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily]] = true
			}
			if len(fams) < 3 {
				t.Fatalf("families %v", fams)
			}
		}},
	{name: "minValues that cannot be met makes the pod unschedulable",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi", withNodeSelector(v1alpha1.LabelArch, "arm64")), func(p *Pool) {
				p.Requirements = append(onDemandOnly(), Requirement{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily,
					Operator: OpExists, MinValues: ptr(2)})
			})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1, "minValues") }},
	{name: "zone spread balances pods across zones",
		snap: func() *Snapshot {
			return onePool(pods(6, "p", "1", "1Gi", withLabels("app", "web"),
				withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "web"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			perZone := map[string]int{}
			for _, pl := range p.Order {
				perZone[zoneOf(p, pl.NodeName)]++
			}
			if len(perZone) != 3 || perZone["zone-a"] != 2 || perZone["zone-b"] != 2 {
				t.Fatalf("per zone %v", perZone)
			}
		}},
	{name: "zone spread accounts for existing pods",
		snap: func() *Snapshot {
			bound := pods(2, "old", "100m", "100Mi", withLabels("app", "web"))
			s := onePool(pods(4, "p", "1", "1Gi", withLabels("app", "web"),
				withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "web"})))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 1, 1, bound)}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			for _, pl := range p.Order {
				if zoneOf(p, pl.NodeName) == "zone-a" {
					t.Fatalf("zone-a already has 2")
				}
			}
		}},
	{name: "hostname spread caps pods per node at maxSkew",
		snap: func() *Snapshot {
			return onePool(pods(6, "p", "100m", "100Mi", withLabels("app", "web"),
				withSpread(v1alpha1.LabelHostname, 2, corev1.DoNotSchedule, map[string]string{"app": "web"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 3) }},
	{name: "capacity type spread uses spot and on-demand",
		snap: func() *Snapshot {
			return onePool(pods(4, "p", "1", "1Gi", withLabels("app", "web"),
				withSpread(v1alpha1.LabelCapacityType, 1, corev1.DoNotSchedule, map[string]string{"app": "web"})),
				func(p *Pool) { p.Requirements = onDemandAndSpot() })
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			cts := map[string]int{}
			for _, pl := range p.Order {
				cts[newNodeByName(p, pl.NodeName).Offering.CapacityType]++
			}
			if cts["spot"] != 2 || cts["on-demand"] != 2 {
				t.Fatalf("capacity types %v", cts)
			}
		}},
	{name: "minDomains above zone count caps pods per zone at maxSkew",
		snap: func() *Snapshot {
			return onePool(pods(5, "p", "1", "1Gi", withLabels("app", "web"),
				withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "web"},
					func(c *corev1.TopologySpreadConstraint) { c.MinDomains = ptr(int32(5)) })))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 2) }},
	{name: "spread honors node affinity when counting domains",
		snap: func() *Snapshot {
			return onePool(pods(4, "p", "1", "1Gi", withLabels("app", "web"),
				withRequiredTerms([]corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-a", "zone-b")}),
				withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "web"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	{name: "ScheduleAnyway spread is a preference that is relaxed",
		snap: func() *Snapshot {
			return onePool(pods(4, "p", "1", "1Gi", withLabels("app", "web"),
				withNodeSelector(v1alpha1.LabelZone, "zone-a"),
				withSpread(v1alpha1.LabelZone, 1, corev1.ScheduleAnyway, map[string]string{"app": "web"}, func(c *corev1.TopologySpreadConstraint) {
					c.NodeAffinityPolicy = ptr(corev1.NodeInclusionPolicyIgnore)
				})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	{name: "hostname anti-affinity puts one pod per node",
		snap: func() *Snapshot {
			return onePool(pods(4, "p", "100m", "100Mi", withLabels("app", "db"), withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": "db"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 4) }},
	{name: "zone anti-affinity allows one pod per zone",
		snap: func() *Snapshot {
			return onePool(pods(4, "p", "100m", "100Mi", withLabels("app", "db"), withAntiAffinity(v1alpha1.LabelZone, map[string]string{"app": "db"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1) }},
	{name: "anti-affinity of a bound pod repels new pods",
		snap: func() *Snapshot {
			bound := testPod("guard", "100m", "100Mi", withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": "web"}))
			s := onePool(pods(1, "p", "100m", "100Mi", withLabels("app", "web")))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, []*corev1.Pod{bound})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantNodes(t, p, 1) }},
	{name: "hostname pod affinity colocates pods",
		snap: func() *Snapshot {
			return onePool(pods(3, "p", "500m", "1Gi", withLabels("app", "pair"), withPodAffinity(v1alpha1.LabelHostname, map[string]string{"app": "pair"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	{name: "zonal pod affinity follows an existing pod's zone",
		snap: func() *Snapshot {
			s := onePool(pods(2, "p", "3", "4Gi", withPodAffinity(v1alpha1.LabelZone, map[string]string{"app": "cache"})))
			s.Nodes = []*Node{existingNode("n1", "zone-b", 1, 1, []*corev1.Pod{testPod("cache", "100m", "100Mi", withLabels("app", "cache"))})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			for _, n := range p.NewNodes {
				if n.Offering.Zone != "zone-b" {
					t.Fatalf("zone %s", n.Offering.Zone)
				}
				for _, fb := range n.Fallbacks {
					if fb.Offering.Zone != "zone-b" {
						t.Fatalf("fallback zone %s", fb.Offering.Zone)
					}
				}
			}
		}},
	{name: "pod affinity to a missing pod is unschedulable",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi", withPodAffinity(v1alpha1.LabelZone, map[string]string{"app": "nothing"})))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1, "pod affinity") }},
	{name: "bound volume pins the pod to its zone",
		snap: func() *Snapshot {
			pod := testPod("p", "1", "1Gi")
			pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
			s := onePool([]*corev1.Pod{pod})
			pvc := &corev1.PersistentVolumeClaim{}
			pvc.Name, pvc.Namespace, pvc.Spec.VolumeName = "data", "default", "pv-1"
			pv := &corev1.PersistentVolume{}
			pv.Name = "pv-1"
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-c")}}}}}
			s.PersistentVolumeClaims = []*corev1.PersistentVolumeClaim{pvc}
			s.PersistentVolumes = []*corev1.PersistentVolume{pv}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			if p.NewNodes[0].Offering.Zone != "zone-c" {
				t.Fatalf("zone %s", p.NewNodes[0].Offering.Zone)
			}
		}},
	{name: "host port conflicts force separate nodes",
		snap:   func() *Snapshot { return onePool(pods(3, "p", "100m", "100Mi", withHostPort(8080))) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 3) }},
	{name: "custom pool labels reach node labels and selectors",
		snap: func() *Snapshot {
			return onePool(pods(1, "p", "1", "1Gi", withNodeSelector("team", "blue")), func(p *Pool) { p.Labels = map[string]string{"team": "blue"} })
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if p.NewNodes[0].Labels["team"] != "blue" {
				t.Fatalf("labels %v", p.NewNodes[0].Labels)
			}
		}},
}

func TestRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			p := solveChecked(t, s, tc.opts)
			tc.expect(t, s, p)
		})
	}
}

func TestDeterministic(t *testing.T) {
	a := solveChecked(t, genericSnapshot(500, 7))
	b := solveChecked(t, genericSnapshot(500, 7))
	if len(a.NewNodes) != len(b.NewNodes) || a.TotalPricePerHour != b.TotalPricePerHour {
		t.Fatalf("plans differ: %d/%v vs %d/%v", len(a.NewNodes), a.TotalPricePerHour, len(b.NewNodes), b.TotalPricePerHour)
	}
	for i := range a.NewNodes {
		x, y := a.NewNodes[i], b.NewNodes[i]
		if x.Name != y.Name || x.InstanceType.Name != y.InstanceType.Name || x.Offering != y.Offering || len(x.Pods) != len(y.Pods) {
			t.Fatalf("node %d differs", i)
		}
		for j := range x.Pods {
			if x.Pods[j].Name != y.Pods[j].Name {
				t.Fatalf("node %d pod %d differs", i, j)
			}
		}
		if !reflect.DeepEqual(x.Labels, y.Labels) {
			t.Fatalf("labels differ")
		}
	}
}

func TestGenericWorkloadValidAndBounded(t *testing.T) {
	for _, n := range []int{100, 1000} {
		p := solveChecked(t, genericSnapshot(n, 1))
		wantAllPlaced(t, p)
		gap := (p.TotalPricePerHour - p.LowerBoundPricePerHour) / p.LowerBoundPricePerHour
		t.Logf("%d pods: %d nodes, $%.2f/h, lower bound $%.2f/h, gap %.1f%%", n, len(p.NewNodes), p.TotalPricePerHour, p.LowerBoundPricePerHour, 100*gap)
	}
}
