package solver_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Pods that may only use some types must not have their demand covered by
// cheaper types other pods use: arm64 pods on arm64 types ($0.045 per
// cpu), amd64 pods on m-family types ($0.05 per cpu). The assignment
// relaxation (and the optimum) is 10 cpu of each, $0.95/h; pooling the 20
// cpu of demand onto the cheapest cpu gives $0.90/h.
func TestLowerBoundKeepsPodsOnTheTypesTheyMayUse(t *testing.T) {
	var ps []*corev1.Pod
	ps = append(ps, pods(10, "arm", "1", "1Gi", withNodeSelector(v1alpha1.LabelArch, "arm64"))...)
	ps = append(ps, pods(10, "amd", "1", "1Gi", withNodeSelector(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily, "m5"))...)
	p := solveChecked(t, onePool(ps))
	wantAllPlaced(t, p)
	const assignment = 0.95
	if p.LowerBoundPricePerHour < assignment*(1-1e-6) {
		t.Fatalf("lower bound $%.4f/h below the assignment relaxation $%.4f/h (plan $%.4f/h)", p.LowerBoundPricePerHour, assignment, p.TotalPricePerHour)
	}
}

// The bound, now with the assignment relaxation, still never exceeds the
// optimum when pods of different classes may use different types.
func TestLowerBoundWithClassesNeverExceedsBruteForceOptimum(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	trials := 300
	if testing.Short() {
		trials = 80
	}
	for trial := 0; trial < trials; trial++ {
		var types []*InstanceType
		for i := 0; i < 2+r.Intn(5); i++ {
			cpu, mem := 1+r.Intn(8), 1+r.Intn(24)
			price := 0.02*float64(cpu) + 0.005*float64(mem) + 0.01*r.Float64()
			arch := []string{"amd64", "arm64"}[r.Intn(2)]
			it := itype(fmt.Sprintf("t%d", i), cpu, mem, price, withArch(arch))
			it.Allocatable[corev1.ResourcePods] = *resource.NewQuantity(int64(2+r.Intn(10)), resource.DecimalSI)
			// Spot stays out: the brute force prices on-demand offerings.
			types = append(types, it)
		}
		n := 2 + r.Intn(8)
		var ps []*corev1.Pod
		var reqs [][3]int64
		var allowed [][]bool
		for i := 0; i < n; i++ {
			cpu := int64(100 * (1 + r.Intn(30)))
			mem := int64(128*(1+r.Intn(48))) << 20
			var opts []podOpt
			want := ""
			if k := r.Intn(3); k > 0 {
				want = []string{"amd64", "arm64"}[k-1]
				opts = append(opts, withNodeSelector(v1alpha1.LabelArch, want))
			}
			ps = append(ps, testPod(fmt.Sprintf("p%d", i), fmt.Sprintf("%dm", cpu), fmt.Sprintf("%dMi", mem>>20), opts...))
			reqs = append(reqs, [3]int64{cpu, mem, 1})
			ok := make([]bool, len(types))
			for ti, it := range types {
				ok[ti] = want == "" || it.Labels[v1alpha1.LabelArch] == want
			}
			allowed = append(allowed, ok)
		}
		snap := &Snapshot{Pods: ps, Pools: []*Pool{testPool("default", types)}}
		opt := bruteForceOptimum(reqs, types, 0, allowed)
		plan := solveChecked(t, snap)
		if math.IsInf(opt, 1) {
			continue
		}
		if len(plan.Unschedulable) > 0 {
			t.Fatalf("trial %d: %d pods unschedulable though a packing exists", trial, len(plan.Unschedulable))
		}
		if plan.LowerBoundPricePerHour > opt*(1+1e-9) {
			t.Fatalf("trial %d: lower bound %.6f above the optimum %.6f (plan %.6f)", trial, plan.LowerBoundPricePerHour, opt, plan.TotalPricePerHour)
		}
	}
}
