package provisioning

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

func staticPool(replicas int32) *v1alpha1.NodePool {
	return &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "fixed"},
		Spec: v1alpha1.NodePoolSpec{
			ClusterName: "workload-1",
			Replicas:    ptr.To(replicas),
			Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
				Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
					{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{"on-demand"}},
					{Key: corev1.LabelInstanceTypeStable, Operator: v1alpha1.OpIn, Values: []string{"m5.large", "m5.xlarge"}},
				},
			}},
		},
	}
}

func usEast1(t *testing.T) []cloud.InstanceTypeOfferings {
	t.Helper()
	catalog, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	offered, err := catalog.RegionOfferings("us-east-1", cloud.WithZones("us-east-1a", "us-east-1b"))
	if err != nil {
		t.Fatal(err)
	}
	return offered
}

func machine(name, pool string, annotations map[string]string) clusterv1.Machine {
	return clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNodePool: pool}, Annotations: annotations}}
}

// A replacement counts in place of the Machine it replaces from the
// moment it exists: before, in the window between its creation and the
// replaced-by annotation on the old Machine, both counted and the static
// scale-down deleted the replacement as surplus (seen on the testbed).
func TestStaticMachinesCountAReplacementInPlaceOfItsMachine(t *testing.T) {
	deleting := machine("fixed-c", "fixed", nil)
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	for _, tc := range []struct {
		name     string
		machines []clusterv1.Machine
		want     string
	}{
		{"replacement just created", []clusterv1.Machine{machine("fixed-a", "fixed", nil), machine("fixed-r", "fixed", map[string]string{AnnotationReplaces: "fixed-a"})}, "fixed-a"},
		{"old Machine annotated", []clusterv1.Machine{machine("fixed-a", "fixed", map[string]string{AnnotationReplacedBy: "fixed-r"}), machine("fixed-r", "fixed", map[string]string{AnnotationReplaces: "fixed-a"})}, "fixed-a"},
		{"old Machine deleting", []clusterv1.Machine{deleting, machine("fixed-r", "fixed", map[string]string{AnnotationReplaces: "fixed-c"})}, "fixed-r"},
		{"another pool's Machines are not counted", []clusterv1.Machine{machine("fixed-a", "fixed", nil), machine("other-a", "other", nil)}, "fixed-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range StaticMachines("fixed", tc.machines) {
				got = append(got, m.Name)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("counted %v, want %s", got, tc.want)
			}
		})
	}
}

// Karpenter: static/provisioning/suite_test.go (one NodeClaim per missing
// replica, from the pool's template). Each slot is one node of the pool,
// its cheapest offering, and the slot makes the Machine's name.
func TestStaticPlanLaunchesOneNodePerSlot(t *testing.T) {
	pool := staticPool(3)
	plan, err := StaticPlan(solverinput.Objects{NodePools: []*v1alpha1.NodePool{pool}}, usEast1(t), nil, nil, pool, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewNodes) != 3 || len(plan.Unschedulable) != 0 {
		t.Fatalf("planned %d nodes, %d unplaced; want 3 and 0", len(plan.NewNodes), len(plan.Unschedulable))
	}
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "workload-1"}}
	names := map[string]bool{}
	for _, n := range plan.NewNodes {
		if n.Pool != "fixed" || n.InstanceType.Name != "m5.large" {
			t.Errorf("planned %s of pool %s, want the cheapest type, m5.large, of pool fixed", n.InstanceType.Name, n.Pool)
		}
		names[RelaunchName(LaunchSpec{Cluster: cluster, NodePool: pool, Node: n})] = true
		d := NewDecision(n, metav1.Now())
		staticDecisionPods(&d, n)
		if d.PodCount != 0 || len(d.Pods) != 0 {
			t.Errorf("decision records the stand-in pods: %v", d.Pods)
		}
	}
	if len(names) != 3 {
		t.Errorf("3 slots made %d distinct Machine names", len(names))
	}
}

// The slots are a function of the Machines that exist: a crash after a
// create finds the slot held and launches no second Machine for it.
func TestFreeSlotsSkipTheSlotsLiveMachinesHold(t *testing.T) {
	pool := staticPool(3)
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "workload-1"}}
	slot1 := RelaunchName(LaunchSpec{Cluster: cluster, NodePool: pool, Node: &solver.NewNode{Pods: []*corev1.Pod{staticSlotPod("fixed", 1)}}})
	relaunched0 := RelaunchName(LaunchSpec{Cluster: cluster, NodePool: pool, Node: &solver.NewNode{Pods: []*corev1.Pod{staticSlotPod("fixed", 0)}}, Relaunch: 1})
	machines := []clusterv1.Machine{machine(slot1, "fixed", nil), machine(relaunched0, "fixed", nil), machine("by-hand", "fixed", nil)}
	if got := freeSlots(cluster, pool, machines, 2); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("free slots %v, want [2 3]: slots 0 and 1 are held", got)
	}
	if got := freeSlots(cluster, pool, nil, 2); len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("free slots of an empty pool %v, want [0 1]", got)
	}
}

// Karpenter: static/provisioning/suite_test.go "should respect node
// limits"; ours are the pool's resource limits, counted with the nodes the
// pool already has.
func TestStaticPlanStopsAtTheLimits(t *testing.T) {
	pool := staticPool(3)
	pool.Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("6")}
	existing := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fixed-old", Labels: map[string]string{
		v1alpha1.LabelNodePool: "fixed", corev1.LabelInstanceTypeStable: "m5.large"}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}
	objs := solverinput.Objects{NodePools: []*v1alpha1.NodePool{pool}, Nodes: []*corev1.Node{existing}}
	plan, err := StaticPlan(objs, usEast1(t), nil, nil, pool, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewNodes) != 2 || len(plan.Unschedulable) != 1 {
		t.Fatalf("planned %d nodes, %d unplaced; want 2 within 6 cpu (one 2-cpu node exists) and 1 refused", len(plan.NewNodes), len(plan.Unschedulable))
	}
	if !strings.Contains(plan.Unschedulable[0].Reason, "limits") {
		t.Errorf("refused for %q, want the limits named", plan.Unschedulable[0].Reason)
	}
}

// Karpenter: provisioning/suite_test.go "should not schedule pods to
// static NodePools": a static pool launches nothing for pending pods, but
// its nodes take them.
func TestStaticPoolsLaunchNothingForPendingPods(t *testing.T) {
	pool := staticPool(1)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}}}
	snap, err := solverinput.Snapshot(solverinput.Objects{NodePools: []*v1alpha1.NodePool{pool}, Pods: []*corev1.Pod{pod}}, usEast1(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	withholdStatic(snap, []*v1alpha1.NodePool{pool})
	plan, err := solver.Solve(snap, solver.Options{SkipLowerBound: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewNodes) != 0 || len(plan.Unschedulable) != 1 {
		t.Errorf("planned %d nodes for a pending pod with only a static pool", len(plan.NewNodes))
	}
}
