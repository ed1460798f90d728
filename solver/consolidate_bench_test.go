package solver_test

import (
	"fmt"
	"math/rand"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// consolidationSnapshot is a cluster of n existing nodes of mixed sizes
// (2 to 32 cpu of benchInstanceTypes), each filled to 30-90% of its cpu and memory
// with pods of the generic workload's sizes: ~10 pods a node. Of the pods,
// 10% spread over zones (maxSkew 5, placed round-robin so the spread holds)
// and 10% repel their own app by hostname; the rest are plain.
func consolidationSnapshot(n int, seed int64) (*Snapshot, []Candidate) {
	r := rand.New(rand.NewSource(seed))
	its := benchInstanceTypes(400)
	pool := &Pool{Name: "default", Requirements: onDemandAndSpot(), InstanceTypes: its}
	snap := &Snapshot{Pools: []*Pool{pool}}
	var cands []Candidate
	zones := []string{"test-zone-1", "test-zone-2", "test-zone-3"}
	sizes := []int{2, 4, 8, 16, 32}
	podID, spread := 0, 0
	for i := 0; i < n; i++ {
		cpu := sizes[r.Intn(len(sizes))]
		it := its[cpu-1]
		name := fmt.Sprintf("node-%d", i)
		zone := zones[i%len(zones)]
		node := &Node{Pool: "default", Node: &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				v1alpha1.LabelHostname: name, v1alpha1.LabelZone: zone, v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux",
				v1alpha1.LabelCapacityType: v1alpha1.CapacityTypeOnDemand, v1alpha1.LabelInstanceType: it.Name,
				v1alpha1.LabelNodePool: "default", "size": it.Labels["size"],
			}},
			Status: corev1.NodeStatus{Allocatable: it.Allocatable},
		}}
		fill := 0.3 + 0.6*r.Float64()
		budget, memBudget := int64(float64(cpu*1000-100)*fill), int64(float64(cpu*2048-10)*fill)
		var used, memUsed int64
		for misses := 0; misses < 5 && len(node.Pods) < cpu*10-1; {
			mcpu := []int64{100, 250, 500, 1000, 1500}[r.Intn(5)]
			mem := []int64{100, 256, 512, 1024, 2048}[r.Intn(5)]
			if used+mcpu > budget || memUsed+mem > memBudget {
				misses++
				continue
			}
			used, memUsed = used+mcpu, memUsed+mem
			labels := map[string]string{"app": fmt.Sprintf("app-%d", r.Intn(20))}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", podID), Namespace: "default",
				UID: types.UID(fmt.Sprintf("uid-%d", podID)), Labels: labels},
				Spec: corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: *resource.NewMilliQuantity(mcpu, resource.DecimalSI), corev1.ResourceMemory: *resource.NewQuantity(mem<<20, resource.BinarySI)}}}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning}}
			podID++
			switch k := r.Intn(10); {
			case k == 0 && i%len(zones) == spread%len(zones):
				spread++
				labels["tier"] = "spread"
				pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 5, TopologyKey: v1alpha1.LabelZone,
					WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "spread"}}}}
			case k == 1 && !hasApp(node.Pods, labels["app"]):
				labels["guard"] = labels["app"]
				pod.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
					{TopologyKey: v1alpha1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"guard": labels["app"]}}}}}}
			}
			node.Pods = append(node.Pods, pod)
		}
		snap.Nodes = append(snap.Nodes, node)
		cands = append(cands, Candidate{Name: name, PricePerHour: it.Offerings[2].PricePerHour,
			CapacityType: v1alpha1.CapacityTypeOnDemand, DisruptionCost: float64(len(node.Pods))})
	}
	return snap, cands
}

func hasApp(pods []*corev1.Pod, app string) bool {
	for _, p := range pods {
		if p.Labels["guard"] == app {
			return true
		}
	}
	return false
}

func BenchmarkConsolidate1000Nodes(b *testing.B) {
	snap, cands := consolidationSnapshot(1000, 42)
	pods := 0
	for _, n := range snap.Nodes {
		pods += len(n.Pods)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var action *ConsolidationAction
	for i := 0; i < b.N; i++ {
		var err error
		action, err = Consolidate(snap, cands, ConsolidationOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if action == nil {
		b.Fatalf("no consolidation found among %d nodes, %d pods", len(snap.Nodes), pods)
	}
	b.ReportMetric(float64(pods), "pods")
	b.ReportMetric(float64(len(action.Remove)), "removed")
	b.ReportMetric(action.SavingsPerHour, "$/h-saved")
	b.Logf("%s", action.Reason)
}
