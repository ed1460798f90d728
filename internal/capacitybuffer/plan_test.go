package capacitybuffer

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

func realPod(name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

func chunks(name string, n int32, cpu string) []*corev1.Pod {
	cb := buffer(podTemplateRef)
	cb.Name, cb.UID = name, types.UID("uid-"+name)
	return VirtualPods(cb, corev1.PodTemplateSpec{Spec: realPod("x", cpu).Spec}, n)
}

func node(name string, cpu int, bound ...*corev1.Pod) *solver.Node {
	for _, p := range bound {
		p.Spec.NodeName = name
		p.Status.Phase = corev1.PodRunning
	}
	return &solver.Node{Node: &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelHostname: name, v1alpha1.LabelZone: "zone-a", v1alpha1.LabelArch: "amd64", v1alpha1.LabelCapacityType: "on-demand",
		}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: *resource.NewQuantity(int64(cpu), resource.DecimalSI), corev1.ResourceMemory: resource.MustParse("64Gi"),
			corev1.ResourcePods: resource.MustParse("110"),
		}},
	}, Pods: bound}
}

// pool makes 4-CPU machines, at most limitCPU CPUs of them in all.
func pool(limitCPU string) *solver.Pool {
	it := &solver.InstanceType{Name: "m.xlarge", Labels: map[string]string{
		v1alpha1.LabelInstanceType: "m.xlarge", v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux"},
		Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Offerings: []solver.Offering{{Zone: "zone-a", ZoneID: "use1-az1", CapacityType: v1alpha1.CapacityTypeOnDemand, PricePerHour: 0.2, Available: true}}}
	it.Allocatable = it.Capacity.DeepCopy()
	p := &solver.Pool{Name: "default", InstanceTypes: []*solver.InstanceType{it},
		Requirements: solver.Requirements{{Key: v1alpha1.LabelCapacityType, Operator: solver.OpIn, Values: []string{"on-demand"}}}}
	if limitCPU != "" {
		p.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(limitCPU)}
	}
	return p
}

// Follows Karpenter's provisioning buffers_test.go, "classifyBufferPods
// should bucket virtual pods by buffer namespace/name across existing and
// new nodes": real pods are not counted.
func TestPlacements(t *testing.T) {
	web, api := chunks("web", 3, "1"), chunks("api", 1, "1")
	plan := &solver.Plan{
		Existing:      []solver.Placement{{Pod: web[0], NodeName: "n1"}, {Pod: web[1], NodeName: "n1"}, {Pod: realPod("r", "1"), NodeName: "n1"}},
		NewNodes:      []*solver.NewNode{{Pods: []*corev1.Pod{web[2], realPod("r2", "1")}}},
		Unschedulable: []solver.Unschedulable{{Pod: api[0], Reason: "no pool"}, {Pod: realPod("r3", "1"), Reason: "x"}},
	}
	got := Placements(plan)
	if len(got) != 2 {
		t.Fatalf("buffers %v", got)
	}
	if w := got["shop/web"]; w.Existing != 2 || w.New != 1 || w.Unplaced != 0 || w.Nodes["n1"] != 2 {
		t.Errorf("web: %+v", w)
	}
	if a := got["shop/api"]; a.Existing != 0 || a.Unplaced != 1 || a.Reasons[0] != "no pool" {
		t.Errorf("api: %+v", a)
	}
	if h := Headroom(got); h["n1"] != "shop/web ×2" {
		t.Errorf("headroom %v", h)
	}
}

// Headroom is planned like pending pods (Karpenter's provisioner adds the
// virtual pods to its pending pods): with nothing else pending, a buffer
// that does not fit launches a machine.
func TestSolveLaunchesForHeadroom(t *testing.T) {
	snap := &solver.Snapshot{Pools: []*solver.Pool{pool("")}, Nodes: []*solver.Node{node("n1", 4, realPod("busy", "3"))},
		Pods: chunks("web", 2, "1")}
	plan, without, err := Solve(snap, solver.Options{SkipLowerBound: true})
	if err != nil {
		t.Fatal(err)
	}
	p := Placements(plan)["shop/web"]
	if without || p.Existing != 1 || p.New != 1 || len(plan.NewNodes) != 1 {
		t.Errorf("placement %+v, %d new nodes, without headroom %v; want 1 on n1 and 1 on a new machine", p, len(plan.NewNodes), without)
	}
}

// A buffer never costs a real pod its place: when the pool's limit has room
// for the real pods or the headroom but not both, the real pods get it.
// Karpenter orders by size only, so a big buffer could take a limit first;
// this is Joinery's rule.
func TestSolvePutsRealPodsFirst(t *testing.T) {
	real := []*corev1.Pod{realPod("a", "3"), realPod("b", "3")}
	pending := append(append([]*corev1.Pod{}, chunks("web", 3, "3")...), real...)
	snap := &solver.Snapshot{Pools: []*solver.Pool{pool("8")}, Pods: pending}
	plan, without, err := Solve(snap, solver.Options{SkipLowerBound: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range plan.Unschedulable {
		if !IsVirtual(u.Pod) {
			t.Errorf("real pod %s fits nowhere: %s", u.Pod.Name, u.Reason)
		}
	}
	if !without || len(plan.NewNodes) != 2 {
		t.Errorf("without headroom %v, %d new nodes; want the plan for the real pods alone (2 machines)", without, len(plan.NewNodes))
	}
}

// Follows Karpenter's emptiness_test.go Context "Buffer pod protection":
// "should not disrupt a node that hosts virtual buffer pods", "should only
// protect the specific node with buffer pods, not others", "should protect
// multiple nodes that each host buffer pods" and "should disrupt a node
// once buffer pods are cleared".
func TestKeepForHeadroom(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nodes     []*solver.Node
		headroom  []*corev1.Pod
		empty     []string
		removable []string
	}{
		{"should not disrupt a node that hosts virtual buffer pods",
			[]*solver.Node{node("busy", 4, realPod("p", "4")), node("idle", 4)}, chunks("web", 2, "1"), []string{"idle"}, nil},
		{"should only protect the specific node with buffer pods, not others",
			[]*solver.Node{node("idle-1", 4), node("idle-2", 4)}, chunks("web", 2, "1"), []string{"idle-1", "idle-2"}, []string{"idle-1"}},
		{"should protect multiple nodes that each host buffer pods",
			[]*solver.Node{node("idle-1", 4), node("idle-2", 4), node("idle-3", 4)}, chunks("web", 2, "3"), []string{"idle-1", "idle-2", "idle-3"}, []string{"idle-1"}},
		{"should disrupt a node once buffer pods are cleared",
			[]*solver.Node{node("idle", 4)}, nil, []string{"idle"}, []string{"idle"}},
		{"headroom that fits on a busy node's free room keeps no empty node",
			[]*solver.Node{node("busy", 8, realPod("p", "2")), node("idle", 4)}, chunks("web", 2, "2"), []string{"idle"}, []string{"idle"}},
		{"headroom that fits nowhere keeps no node (it needs new machines anyway)",
			[]*solver.Node{node("idle", 4)}, chunks("web", 1, "8"), []string{"idle"}, []string{"idle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := &solver.Snapshot{Nodes: tc.nodes}
			removable, kept, err := KeepForHeadroom(snap, tc.headroom, tc.empty)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(removable) != fmt.Sprint(tc.removable) {
				t.Errorf("removable %v, want %v (kept: %v)", removable, tc.removable, kept)
			}
			for name, why := range kept {
				if !strings.Contains(why, "CapacityBuffer headroom") {
					t.Errorf("%s kept for %q", name, why)
				}
			}
			if len(kept)+len(removable) != len(tc.empty) {
				t.Errorf("kept %v and removable %v do not cover %v", kept, removable, tc.empty)
			}
		})
	}
}
