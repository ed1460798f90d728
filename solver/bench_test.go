package solver_test

import (
	"fmt"
	. "github.com/joinery-dev/joinery/solver"
	"math/rand"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// benchInstanceTypes mirrors Karpenter's fake.InstanceTypes(400): type i has
// i+1 cpu, 2(i+1) GiB, 10(i+1) pods, 100m/10Mi kube-reserved, offerings
// spot in zones 1-2 and on-demand in zones 1-3, priced 0.1/cpu + 0.1/GB.
func benchInstanceTypes(n int) []*InstanceType {
	out := make([]*InstanceType, 0, n)
	for i := 0; i < n; i++ {
		cpu := int64(i + 1)
		mem := int64(2*(i+1)) << 30
		name := fmt.Sprintf("fake-it-%d", i)
		capacity := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(10*cpu, resource.DecimalSI),
		}
		alloc := capacity.DeepCopy()
		alloc[corev1.ResourceCPU] = *resource.NewMilliQuantity(cpu*1000-100, resource.DecimalSI)
		alloc[corev1.ResourceMemory] = *resource.NewQuantity(mem-10<<20, resource.BinarySI)
		price := 0.1*float64(cpu) + 0.1*float64(mem)/1e9
		size := "small"
		if cpu > 4 && mem > 8<<30 {
			size = "large"
		}
		it := &InstanceType{Name: name, Capacity: capacity, Allocatable: alloc, Labels: map[string]string{
			v1alpha1.LabelInstanceType: name, v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux", "size": size,
		}}
		for _, o := range []struct{ ct, zone string }{{"spot", "test-zone-1"}, {"spot", "test-zone-2"},
			{"on-demand", "test-zone-1"}, {"on-demand", "test-zone-2"}, {"on-demand", "test-zone-3"}} {
			it.Offerings = append(it.Offerings, Offering{Zone: o.zone, CapacityType: o.ct, PricePerHour: price, Available: true})
		}
		out = append(out, it)
	}
	return out
}

// genericSnapshot mirrors Karpenter's makeDiversePods: a fifth each of plain
// pods, zonal spread, hostname spread, zonal self-affinity and hostname
// anti-affinity; cpu from {100m..1500m}, memory from {100Mi..4Gi}.
func genericSnapshot(count int, seed int64) *Snapshot {
	r := rand.New(rand.NewSource(seed))
	labelValue := func() string { return []string{"a", "b", "c", "d", "e", "f", "g"}[r.Intn(7)] }
	req := func() corev1.ResourceList {
		cpu := []int{100, 250, 500, 1000, 1500}[r.Intn(5)]
		mem := []int{100, 256, 512, 1024, 2048, 4096}[r.Intn(6)]
		return corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(fmt.Sprintf("%dm", cpu)),
			corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", mem)),
		}
	}
	var ps []*corev1.Pod
	mk := func(labels map[string]string) *corev1.Pod {
		i := len(ps)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: "default",
			UID: types.UID(fmt.Sprintf("uid-%d", i)), Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: req()}}}}}
		ps = append(ps, p)
		return p
	}
	per := count / 5
	for i := 0; i < per; i++ {
		mk(map[string]string{"my-label": labelValue()})
	}
	for _, key := range []string{v1alpha1.LabelZone, v1alpha1.LabelHostname} {
		for i := 0; i < per; i++ {
			p := mk(map[string]string{"my-label": labelValue()})
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: key,
				WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"my-label": labelValue()}}}}
		}
	}
	for i := 0; i < per; i++ {
		l := map[string]string{"my-affininity": labelValue()}
		p := mk(l)
		p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
			{TopologyKey: v1alpha1.LabelZone, LabelSelector: &metav1.LabelSelector{MatchLabels: l}}}}}
	}
	for i := 0; i < per; i++ {
		l := map[string]string{"app": "nginx"}
		p := mk(l)
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
			{TopologyKey: v1alpha1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: l}}}}}
	}
	for len(ps) < count {
		mk(map[string]string{"my-label": labelValue()})
	}
	pool := &Pool{Name: "default", Requirements: onDemandAndSpot(), InstanceTypes: benchInstanceTypes(400),
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10000000"), corev1.ResourceMemory: resource.MustParse("10000000Gi")}}
	return &Snapshot{Pods: ps, Pools: []*Pool{pool}}
}

func benchmarkSolve(b *testing.B, n int) {
	snap := genericSnapshot(n, 42)
	b.ReportAllocs()
	b.ResetTimer()
	var plan *Plan
	for i := 0; i < b.N; i++ {
		var err error
		plan, err = Solve(snap, Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(plan.Unschedulable) > 0 {
		b.Fatalf("%d pods unschedulable: %s", len(plan.Unschedulable), plan.Unschedulable[0].Reason)
	}
	b.ReportMetric(float64(len(plan.NewNodes)), "nodes")
	b.ReportMetric(plan.TotalPricePerHour, "$/h")
	if plan.LowerBoundPricePerHour > 0 {
		b.ReportMetric(100*(plan.TotalPricePerHour-plan.LowerBoundPricePerHour)/plan.LowerBoundPricePerHour, "gap%")
	}
}

func BenchmarkSolve100(b *testing.B)   { benchmarkSolve(b, 100) }
func BenchmarkSolve1000(b *testing.B)  { benchmarkSolve(b, 1000) }
func BenchmarkSolve5000(b *testing.B)  { benchmarkSolve(b, 5000) }
func BenchmarkSolve20000(b *testing.B) { benchmarkSolve(b, 20000) }
