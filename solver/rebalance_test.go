package solver

import (
	"fmt"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTradeDoesNotMoveAGroupBack: a cpu-bound node a sends b (short of
// memory) the one cpu-heavy pod b has room for; b's own pods cannot move
// (they need each other on b), so the only pod b could send back is that
// one. Sending it back undoes the trade, and doing so in turn until the
// trade's step limit was most of rebalance's work on large plans; the pod
// stays on b.
func TestTradeDoesNotMoveAGroupBack(t *testing.T) {
	it := &InstanceType{
		Name:   "m.xlarge",
		Labels: map[string]string{v1alpha1.LabelInstanceType: "m.xlarge", v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux"},
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		},
		Offerings: []Offering{{Zone: "zone-a", ZoneID: "zone-a-id", CapacityType: v1alpha1.CapacityTypeOnDemand, PricePerHour: 0.2, Available: true}},
	}
	it.Allocatable = it.Capacity.DeepCopy()
	pod := func(name, app, cpu, mem string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			}}}},
		}
	}
	var pods []*corev1.Pod
	for i := range 4 {
		pods = append(pods, pod(fmt.Sprintf("cpu-%d", i), "cpu", "1", "1536Mi"))
	}
	for i := range 2 {
		p := pod(fmt.Sprintf("mem-%d", i), "mem", "500m", "7Gi")
		p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: v1alpha1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mem"}}}}}}
		pods = append(pods, p)
	}
	snap := &Snapshot{Pods: pods, Pools: []*Pool{{Name: "default", InstanceTypes: []*InstanceType{it}}}}
	s, err := newState(snap, Options{})
	if err != nil {
		t.Fatal(err)
	}
	groupOf := map[string]*podGroup{}
	for _, g := range s.groups {
		groupOf[g.labels["app"]] = g
	}
	// cpu first: a takes all four (4 cpu, 6Gi); b the two memory pods
	// (1 cpu, 14Gi), with room for one cpu pod (1 cpu, 1.5Gi of 3 cpu, 2Gi).
	s.placeGroup(groupOf["cpu"])
	s.placeGroup(groupOf["mem"])
	if len(s.planned) != 2 {
		t.Fatalf("want 2 planned nodes, got %d", len(s.planned))
	}
	a, b := s.planned[0], s.planned[1]
	if a.skew() <= rebalanceSkew || b.skew() >= -rebalanceSkew {
		t.Fatalf("want a cpu-bound and b memory-bound, got skews %.2f and %.2f", a.skew(), b.skew())
	}
	moved := map[*corev1.Pod]*nodeState{}
	if !s.trade(a, b, moved) {
		t.Fatal("the trade moved nothing; b has room for one cpu pod")
	}
	if len(moved) != 1 {
		t.Errorf("want one pod moved, got %d", len(moved))
	}
	for p, to := range moved {
		if to != b {
			t.Errorf("pod %s moved back to %s", p.Name, to.name)
		}
	}
	if got := len(b.placed); got != 3 {
		t.Errorf("b carries %d pods, want 3 (its two and one cpu pod)", got)
	}
}
