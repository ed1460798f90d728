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
	lowerBoundWithClassesTrials(t, 11, nil)
}

// Coarsened shapes (what workloads of more than assignMaxShapes shapes of
// several classes get) must keep the bound below the optimum too: forced
// here on instances the brute force can solve, checking the assignment
// relaxation's own value (coarsened, and whole at 64), not only the bound
// it may lose to. (The shape-row master is what workloads of too many
// types for the decomposition get: forced here too.)
func TestCoarsenedLowerBoundNeverExceedsBruteForceOptimum(t *testing.T) {
	defer SetRelaxMaxTypeRows(0)()
	for _, limit := range []int{6, 7, 64} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			defer SetAssignMaxShapes(limit)()
			// Through coarsening below 64.
			assignBoundsNeverExceedOptimum(t, 13+int64(limit), func(coarse bool) bool { return coarse || limit == 64 })
		})
	}
}

// assignBoundsNeverExceedOptimum runs lowerBoundWithClassesTrials and
// checks every assignment bound computed that keep accepts (by whether
// its shapes were coarsened) against the trial's optimum, and that most
// trials computed a positive one (not vacuous).
func assignBoundsNeverExceedOptimum(t *testing.T, seed int64, keep func(coarse bool) bool) {
	t.Helper()
	var bounds []float64
	defer ObserveAssignmentBounds(func(coarse bool, bound float64) {
		if keep(coarse) {
			bounds = append(bounds, bound)
		}
	})()
	trials, computed := 0, 0
	lowerBoundWithClassesTrials(t, seed, func(trial int, opt float64) {
		defer func() { bounds = bounds[:0] }()
		if math.IsInf(opt, 1) {
			return // no packing: the bound is of the pods placed
		}
		trials++
		for _, b := range bounds {
			if b > opt*(1+1e-9) {
				t.Fatalf("trial %d: assignment bound %.6f above the optimum %.6f", trial, b, opt)
			}
			if b > 0 {
				computed++
			}
		}
	})
	if computed < trials/2 {
		t.Fatalf("only %d of %d trials computed an assignment bound", computed, trials)
	}
	t.Logf("%d of %d trials computed an assignment bound", computed, trials)
}

// lowerBoundWithClassesTrials checks the bound against the brute-force
// optimum on random instances; with check, on instances of 7-9 pods, each
// pinned to one arch (enough shapes of few classes to coarsen), calling
// check after each trial with a known optimum.
func lowerBoundWithClassesTrials(t *testing.T, seed int64, check func(trial int, opt float64)) {
	r := rand.New(rand.NewSource(seed))
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
		if check != nil {
			n = 7 + r.Intn(3)
		}
		var ps []*corev1.Pod
		var reqs [][3]int64
		var allowed [][]bool
		for i := 0; i < n; i++ {
			cpu := int64(100 * (1 + r.Intn(30)))
			mem := int64(128*(1+r.Intn(48))) << 20
			var opts []podOpt
			want := ""
			k := r.Intn(3)
			if check != nil {
				k = 1 + r.Intn(2)
			}
			if k > 0 {
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
			if check != nil {
				check(trial, opt)
			}
			continue
		}
		if len(plan.Unschedulable) > 0 {
			t.Fatalf("trial %d: %d pods unschedulable though a packing exists", trial, len(plan.Unschedulable))
		}
		if plan.LowerBoundPricePerHour > opt*(1+1e-9) {
			t.Fatalf("trial %d: lower bound %.6f above the optimum %.6f (plan %.6f)", trial, plan.LowerBoundPricePerHour, opt, plan.TotalPricePerHour)
		}
		if check != nil {
			check(trial, opt)
		}
	}
}

// The bound is of what the plan is billed, not of the risk-weighted prices
// the solver compares (spotrisk.go): here every m.large spot offering is as
// risky as can be, so the plan avoids them, but the cheapest machine that
// carries the pod is still m.large spot in zone-a, billed $0.063/h.
func TestLowerBoundIsOfBilledPricesUnderSpotRisk(t *testing.T) {
	risky := map[string]int{"m.large/zone-a": 1, "m.large/zone-b": 1, "m.large/zone-c": 1}
	p := solveChecked(t, spotRiskSnapshot(10, risky, nil))
	wantAllPlaced(t, p)
	const optimum = 0.063
	t.Logf("plan $%.4f/h (%s), lower bound $%.4f/h", p.TotalPricePerHour, p.NewNodes[0].InstanceType.Name, p.LowerBoundPricePerHour)
	if p.LowerBoundPricePerHour > optimum*(1+1e-9) {
		t.Fatalf("lower bound $%.4f/h above the cheapest billed machine for the pod, $%.4f/h", p.LowerBoundPricePerHour, optimum)
	}
}

// The relaxation solved whole by decomposition (what workloads of few
// enough types get) never exceeds the brute-force optimum either, and is
// computed on most trials (ObserveAssignmentBounds computes it even where
// the cone's bound already beats it).
func TestDecomposedAssignmentBoundNeverExceedsBruteForceOptimum(t *testing.T) {
	assignBoundsNeverExceedOptimum(t, 101, func(coarse bool) bool {
		if coarse {
			t.Fatalf("coarsened shapes, though the decomposition takes every instance here")
		}
		return true
	})
}
