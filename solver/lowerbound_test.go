package solver_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	. "github.com/joinery-dev/joinery/solver"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// bruteForceOptimum is the cheapest way to put every pod on new nodes of
// the given types (each pod alone on no more than its node's allocatable),
// by dynamic programming over subsets of pods. repel pods (the first repel)
// must each be on a node of their own; pod i may only use the types
// allowed[i] marks (nil allows every type to every pod).
func bruteForceOptimum(reqs [][3]int64, types []*InstanceType, repel int, allowed [][]bool) float64 {
	n := len(reqs)
	full := 1<<n - 1
	nodeCost := make([]float64, full+1)
	for mask := 1; mask <= full; mask++ {
		var sum [3]int64
		repelling := 0
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				for r := 0; r < 3; r++ {
					sum[r] += reqs[i][r]
				}
				if i < repel {
					repelling++
				}
			}
		}
		nodeCost[mask] = math.Inf(1)
		if repelling > 1 {
			continue
		}
		for ti, it := range types {
			ok := true
			for i := 0; allowed != nil && i < n; i++ {
				if mask&(1<<i) != 0 && !allowed[i][ti] {
					ok = false
				}
			}
			a := it.Allocatable
			if ok && sum[0] <= a.Cpu().MilliValue() && sum[1] <= a.Memory().Value() && sum[2] <= a.Pods().Value() {
				nodeCost[mask] = math.Min(nodeCost[mask], it.Offerings[0].PricePerHour)
			}
		}
	}
	best := make([]float64, full+1)
	for mask := 1; mask <= full; mask++ {
		best[mask] = math.Inf(1)
		low := mask & -mask
		for sub := mask; sub > 0; sub = (sub - 1) & mask {
			if sub&low != 0 {
				best[mask] = math.Min(best[mask], nodeCost[sub]+best[mask^sub])
			}
		}
	}
	return best[full]
}

// The bound must hold for every packing, so it may never exceed the true
// optimum: checked against exhaustive search on small random workloads,
// with types small enough that whole-pod patterns and node-count branching
// (not just the LP) decide the bound.
func TestLowerBoundNeverExceedsBruteForceOptimum(t *testing.T) {
	lowerBoundTrials(t, 7)
}

// With whole-pod patterns only for types that hold few pods, the cone
// prices the others and node-count branching splits on them, where a leaf
// whose LP lacks the patterns that would make it feasible is not yet
// proven empty (a bound 22% above the optimum before that was checked);
// the second bound, run on every instance here, prices the types the
// first one's solution uses by patterns. Both must stay at or below the
// optimum.
func TestWiderPatternBoundNeverExceedsBruteForceOptimum(t *testing.T) {
	for _, sz := range []struct{ small, wider int }{{1, 16}, {2, 4}, {4, 8}} {
		t.Run(fmt.Sprintf("small %d wider %d", sz.small, sz.wider), func(t *testing.T) {
			defer SetPatternSizes(sz.small, sz.wider)()
			runs := WiderRuns()
			lowerBoundTrials(t, 11)
			if WiderRuns() == runs {
				t.Fatal("no bound was priced again with wider patterns: the trials check only the first")
			}
			t.Logf("%d bounds priced again with wider patterns", WiderRuns()-runs)
		})
	}
}

func lowerBoundTrials(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	trials := 400
	if testing.Short() {
		trials = 100
	}
	for trial := 0; trial < trials; trial++ {
		var types []*InstanceType
		for i := 0; i < 2+r.Intn(5); i++ {
			cpu, mem := 1+r.Intn(8), 1+r.Intn(24)
			price := 0.02*float64(cpu) + 0.005*float64(mem) + 0.01*r.Float64()
			it := itype(fmt.Sprintf("t%d", i), cpu, mem, price)
			it.Allocatable[corev1.ResourcePods] = *resource.NewQuantity(int64(2+r.Intn(10)), resource.DecimalSI)
			types = append(types, it)
		}
		n := 2 + r.Intn(8)
		repel := 0
		if r.Intn(4) == 0 {
			repel = 2 + r.Intn(3)
			if repel > n {
				repel = n
			}
		}
		var ps []*corev1.Pod
		var reqs [][3]int64
		for i := 0; i < n; i++ {
			cpu := int64(100 * (1 + r.Intn(30)))
			mem := int64(128*(1+r.Intn(48))) << 20
			opts := []podOpt{}
			if i < repel {
				opts = append(opts, withLabels("app", "repel"), withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": "repel"}))
			}
			ps = append(ps, testPod(fmt.Sprintf("p%d", i), fmt.Sprintf("%dm", cpu), fmt.Sprintf("%dMi", mem>>20), opts...))
			reqs = append(reqs, [3]int64{cpu, mem, 1})
		}
		snap := &Snapshot{Pods: ps, Pools: []*Pool{testPool("default", types)}}
		opt := bruteForceOptimum(reqs, types, repel, nil)
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
		if plan.TotalPricePerHour < opt*(1-1e-9) {
			t.Fatalf("trial %d: plan %.6f below the optimum %.6f", trial, plan.TotalPricePerHour, opt)
		}
	}
}
