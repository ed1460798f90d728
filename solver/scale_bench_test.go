package solver_test

import (
	"fmt"
	"math/rand"
	"testing"

	. "github.com/joinery-dev/joinery/solver"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scalePods is microservicePods with the constraints real deployments
// carry: a fifth of the deployments spread their replicas over zones
// (maxSkew 1, DoNotSchedule) and a tenth keep replicas on separate nodes
// (required hostname anti-affinity), each rule selecting its own
// deployment. The rest only request cpu and memory.
func scalePods(count int, seed int64) []*corev1.Pod {
	pods := microservicePods(count, seed)
	// A second source, so the requests stay those of microservicePods.
	r := rand.New(rand.NewSource(seed + 1000))
	kind := map[string]int{}
	for _, p := range pods {
		app := p.Labels["app"]
		k, seen := kind[app]
		if !seen {
			k = r.Intn(10)
			kind[app] = k
		}
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		switch {
		case k < 2:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1,
				TopologyKey: v1alpha1.LabelZone, WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel}}
		case k == 2:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: v1alpha1.LabelHostname, LabelSelector: sel}}}}
		}
	}
	return pods
}

func scaleSnapshot(tb testing.TB, count int, seed int64) *Snapshot {
	return onRealCatalog(tb, scalePods(count, seed))
}

// BenchmarkSolveGenericPods measures how the solver scales with the number
// of pods: ns/pod should stay flat from 1k to 100k.
func BenchmarkSolveGenericPods(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000, 100000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			snap := scaleSnapshot(b, n, 1)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			var plan *Plan
			for i := 0; i < b.N; i++ {
				var err error
				plan, err = Solve(snap, Options{})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu1, _ := processCPU()
			if len(plan.Unschedulable) > 0 {
				b.Fatalf("%d pods unschedulable: %s", len(plan.Unschedulable), plan.Unschedulable[0].Reason)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/pod")
			if cpuOK {
				// On a loaded machine wall time includes waiting for a core.
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/pod")
			}
			b.ReportMetric(float64(len(plan.NewNodes)), "nodes")
			// The plan's price, so a speed-up that buys worse plans shows.
			b.ReportMetric(plan.TotalPricePerHour, "usd/h")
			b.ReportMetric(plan.TotalPricePerHour/plan.LowerBoundPricePerHour, "cost/lb")
		})
	}
}
