package solver_test

import (
	"math"
	"strings"
	"testing"

	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
)

// rfcTotals is the pool of Karpenter's balanced_test.go: ten nodes, eight
// m7i.xlarge ($4.84/day) and two m7i.2xlarge ($9.68/day), 80 pods.
var rfcTotals = PoolTotals{CostPerHour: 58.08, DisruptionCost: 90}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestScoreMove ports Karpenter v1.15's ScoreMove suites
// (pkg/controllers/disruption/balanced_test.go "ScoreMove" and
// balanced_scoring_test.go "ScoreMove (SavingsRatio)"), case by case.
func TestScoreMove(t *testing.T) {
	hundred := PoolTotals{CostPerHour: 100, DisruptionCost: 100}
	for _, tc := range []struct {
		name               string // the Karpenter It/Entry it follows
		savings, cost      float64
		totals             PoolTotals
		k                  int
		wantScore          float64 // -1: +Inf
		wantApproved       bool
		wantSavingsFrac    float64
		wantDisruptionFrac float64
	}{
		{name: "should approve an oversized node consolidation", savings: 7.26, cost: 4, totals: rfcTotals, k: 2,
			wantScore: (7.26 / 58.08) / (4.0 / 90), wantApproved: true, wantSavingsFrac: 7.26 / 58.08, wantDisruptionFrac: 4.0 / 90},
		{name: "should approve a spare capacity delete", savings: 4.84, cost: 5, totals: rfcTotals, k: 2,
			wantScore: (4.84 / 58.08) / (5.0 / 90), wantApproved: true},
		{name: "should reject a marginal move", savings: 2.42, cost: 9, totals: rfcTotals, k: 2,
			wantScore: (2.42 / 58.08) / (9.0 / 90), wantApproved: false},
		{name: "should reject a well-packed node with zero savings", savings: 0, cost: 11, totals: rfcTotals, k: 2,
			wantScore: 0, wantApproved: false},
		{name: "should approve a replace in a uniform pool", savings: 2.42, cost: 9, totals: PoolTotals{CostPerHour: 48.40, DisruptionCost: 90}, k: 2,
			wantScore: (2.42 / 48.40) / (9.0 / 90), wantApproved: true},
		{name: "should approve low-disruption nodes (node A)", savings: 4.84, cost: 5, totals: PoolTotals{CostPerHour: 58.08, DisruptionCost: 117}, k: 2,
			wantScore: (4.84 / 58.08) / (5.0 / 117), wantApproved: true},
		{name: "should reject high-disruption nodes (node B)", savings: 4.84, cost: 32, totals: PoolTotals{CostPerHour: 58.08, DisruptionCost: 117}, k: 2,
			wantScore: (4.84 / 58.08) / (32.0 / 117), wantApproved: false},
		{name: "should approve with +Inf score when move disruption is zero and savings positive", savings: 4.84, cost: 0, totals: rfcTotals, k: 2,
			wantScore: -1, wantApproved: true},
		{name: "should reject when both savings and disruption are zero", savings: 0, cost: 0, totals: rfcTotals, k: 2,
			wantScore: 0, wantApproved: false},
		{name: "should reject when nodepool cost is zero", savings: 4.84, cost: 5, totals: PoolTotals{CostPerHour: 0, DisruptionCost: 90}, k: 2,
			wantScore: 0, wantApproved: false},
		{name: "should reject at k=2 for a marginal move", savings: 2.42, cost: 9, totals: rfcTotals, k: 2,
			wantScore: (2.42 / 58.08) / (9.0 / 90), wantApproved: false},
		{name: "should approve at k=3 for the same move", savings: 2.42, cost: 9, totals: rfcTotals, k: 3,
			wantScore: (2.42 / 58.08) / (9.0 / 90), wantApproved: true},
		{name: "should reject at k=1 for the same move", savings: 2.42, cost: 9, totals: rfcTotals, k: 1,
			wantScore: (2.42 / 58.08) / (9.0 / 90), wantApproved: false},
		{name: "ScoreMove table: high savings low disruption", savings: 20, cost: 5, totals: hundred, k: 2, wantScore: 4, wantApproved: true},
		{name: "ScoreMove table: equal fractions", savings: 10, cost: 10, totals: hundred, k: 2, wantScore: 1, wantApproved: true},
		{name: "ScoreMove table: low savings high disruption", savings: 5, cost: 50, totals: hundred, k: 2, wantScore: 0.10, wantApproved: false},
		{name: "ScoreMove table: zero disruption cost", savings: 10, cost: 0, totals: hundred, k: 2, wantScore: -1, wantApproved: true},
		{name: "ScoreMove table: zero savings", savings: 0, cost: 10, totals: hundred, k: 2, wantScore: 0, wantApproved: false},
		{name: "ScoreMove table: negative savings", savings: -5, cost: 10, totals: hundred, k: 2, wantScore: 0, wantApproved: false},
		{name: "should REJECT a move when EstimatedSavings excludes spot offerings for an on-demand-only NodePool (0.50 - 0.40 on-demand)",
			savings: 0.10, cost: 4, totals: PoolTotals{CostPerHour: 1, DisruptionCost: 10}, k: BalancedK, wantScore: 0.25, wantApproved: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ScoreMove(tc.savings, tc.cost, tc.totals, tc.k)
			if tc.wantScore < 0 {
				if !math.IsInf(s.Score(), 1) {
					t.Errorf("score = %v, want +Inf", s.Score())
				}
			} else if !near(s.Score(), tc.wantScore, 0.01) {
				t.Errorf("score = %.4f, want %.4f", s.Score(), tc.wantScore)
			}
			if s.Approved() != tc.wantApproved {
				t.Errorf("approved = %v, want %v (%s)", s.Approved(), tc.wantApproved, s)
			}
			if tc.wantSavingsFrac != 0 && !near(s.SavingsFraction, tc.wantSavingsFrac, 0.001) {
				t.Errorf("savings fraction = %.4f, want %.4f", s.SavingsFraction, tc.wantSavingsFrac)
			}
			if tc.wantDisruptionFrac != 0 && !near(s.DisruptionFraction, tc.wantDisruptionFrac, 0.001) {
				t.Errorf("disruption fraction = %.4f, want %.4f", s.DisruptionFraction, tc.wantDisruptionFrac)
			}
		})
	}
}

// Karpenter: balanced_test.go "scale invariance: should produce the same
// score regardless of pool size" and "cross-NodePool scoring: should
// produce identical scores for proportionally equivalent moves".
func TestScoreMoveIsScaleInvariant(t *testing.T) {
	ten := ScoreMove(7.26, 4, rfcTotals, BalancedK)
	hundred := ScoreMove(7.26, 4, PoolTotals{CostPerHour: 580.80, DisruptionCost: 900}, BalancedK)
	if !near(ten.Score(), hundred.Score(), 0.01) {
		t.Errorf("10-node pool scores %.3f, 100-node pool %.3f", ten.Score(), hundred.Score())
	}
	od := ScoreMove(4.84, 4, PoolTotals{CostPerHour: 48.40, DisruptionCost: 90}, BalancedK)
	spot := ScoreMove(1.45, 4, PoolTotals{CostPerHour: 14.50, DisruptionCost: 90}, BalancedK)
	if !near(od.Score(), spot.Score(), 0.01) || !od.Approved() || !spot.Approved() {
		t.Errorf("on-demand %s and spot %s should score alike and pass", od, spot)
	}
}

func pod(annotations map[string]string, priority *int32) *corev1.Pod {
	p := testPod("p", "100m", "128Mi")
	p.Annotations = annotations
	p.Spec.Priority = priority
	return p
}

// Karpenter: pkg/utils/disruption EvictionCost and
// ComputeRescheduleDisruptionCost, and balanced_scoring_test.go
// "Candidate.SavingsRatio: with 3 pods: disruption = 1.0 + 3.0 = 4.0".
func TestRescheduleDisruptionCost(t *testing.T) {
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		want float64
	}{
		{"an empty node costs the per-node base", nil, 1},
		{"three plain pods cost one each", []*corev1.Pod{pod(nil, nil), pod(nil, nil), pod(nil, nil)}, 4},
		{"karpenter.sh/disruption-cost adds n/2^27", []*corev1.Pod{pod(map[string]string{"karpenter.sh/disruption-cost": "134217728"}, nil)}, 1 + 2},
		{"disruption-cost wins over pod-deletion-cost", []*corev1.Pod{pod(map[string]string{"karpenter.sh/disruption-cost": "0", "controller.kubernetes.io/pod-deletion-cost": "134217728"}, nil)}, 1 + 1},
		{"pod-deletion-cost is read when disruption-cost is absent", []*corev1.Pod{pod(map[string]string{"controller.kubernetes.io/pod-deletion-cost": "134217728"}, nil)}, 1 + 2},
		{"priority adds p/2^25", []*corev1.Pod{pod(nil, int32p(33554432))}, 1 + 2},
		{"a pod's cost is clamped at 10", []*corev1.Pod{pod(nil, int32p(2000000000))}, 1 + 10},
		{"a negative pod cost counts as zero", []*corev1.Pod{pod(map[string]string{"karpenter.sh/disruption-cost": "-2147483647"}, nil)}, 1},
		{"an unreadable annotation is ignored", []*corev1.Pod{pod(map[string]string{"karpenter.sh/disruption-cost": "lots"}, nil)}, 1 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RescheduleDisruptionCost(tc.pods); !near(got, tc.want, 1e-6) {
				t.Errorf("RescheduleDisruptionCost = %v, want %v", got, tc.want)
			}
		})
	}
}

// Karpenter: balanced_scoring_test.go "computeNodePoolTotals" (totals
// from all nodes; zero-priced candidates still add disruption) and
// balanced_adversarial_test.go "should not allow NaN price to poison
// NodePool totals".
func TestPoolTotalsOf(t *testing.T) {
	var members []PoolMember
	for range 5 {
		members = append(members, PoolMember{Pool: "a", PricePerHour: 4.84, DisruptionCost: 2})
	}
	members = append(members, PoolMember{Pool: "b", PricePerHour: 4.84, DisruptionCost: 2},
		PoolMember{Pool: "b", PricePerHour: 0, DisruptionCost: 2}, PoolMember{Pool: "b", PricePerHour: math.NaN(), DisruptionCost: 2})
	got := PoolTotalsOf(members)
	if a := got["a"]; !near(a.CostPerHour, 24.2, 0.01) || !near(a.DisruptionCost, 10, 0.01) {
		t.Errorf("pool a totals = %+v, want $24.20/h and disruption 10", a)
	}
	b := got["b"]
	if math.IsNaN(b.CostPerHour) || !near(b.CostPerHour, 4.84, 0.01) || !near(b.DisruptionCost, 6, 0.01) {
		t.Errorf("pool b totals = %+v, want $4.84/h (no NaN) and disruption 6", b)
	}
	if s := ScoreMove(4.84, 2, b, BalancedK); math.IsNaN(s.Score()) {
		t.Errorf("score from pool b's totals is NaN")
	}
}

func balancedCand(name, pool string, price float64, pods int) Candidate {
	c := cand(name, price, float64(1+pods))
	c.Pool = pool
	c.RescheduleDisruptionCost = float64(1 + pods)
	return c
}

// TestConsolidateBalanced runs whole consolidations with Balanced on,
// following Karpenter's balanced_scoring_test.go EvaluateBalancedMove and
// balanced_adversarial_test.go cases through our own search.
func TestConsolidateBalanced(t *testing.T) {
	// Four m.xlarge ($0.20/h) nodes with 3 pods each and one idle
	// m.xlarge: removing the idle one saves $0.20/h, 20% of the pool's
	// $1.00/h, for a disruption of 1 of the pool's 17: score 3.40.
	spare := func() *Snapshot {
		s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
		for _, n := range []string{"n1", "n2", "n3", "n4"} {
			s.Nodes = append(s.Nodes, existingNode(n, "zone-a", 4, 16, pods(3, n, "1", "1Gi"), ofType("m.xlarge")))
		}
		s.Nodes = append(s.Nodes, existingNode("idle", "zone-a", 4, 16, nil, ofType("m.xlarge")))
		return s
	}
	// Six m.2xlarge ($0.40/h): five full (8 × 1-CPU pods each), one with
	// 4 × 900m pods that only an m.xlarge ($0.20/h) can carry once it
	// goes: a replace that saves $0.20/h, 8.3% of the pool's $2.40/h, for
	// disruption 5 of the pool's 50 (10%): score 0.83.
	halfEmpty := func() *Snapshot {
		s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
		for _, n := range []string{"f1", "f2", "f3", "f4", "f5"} {
			s.Nodes = append(s.Nodes, existingNode(n, "zone-a", 8, 32, pods(8, n, "1", "3Gi"), ofType("m.2xlarge")))
		}
		s.Nodes = append(s.Nodes, existingNode("half", "zone-a", 8, 32, pods(4, "half", "900m", "3Gi"), ofType("m.2xlarge")))
		return s
	}
	halfCands := func(pool string) []Candidate {
		var cs []Candidate
		for _, n := range []string{"f1", "f2", "f3", "f4", "f5"} {
			cs = append(cs, balancedCand(n, pool, 0.40, 8))
		}
		return append(cs, balancedCand("half", pool, 0.40, 4))
	}
	halfTotals := PoolTotals{CostPerHour: 2.40, DisruptionCost: 5*9 + 5}
	for _, tc := range []struct {
		name       string
		snap       func() *Snapshot
		candidates []Candidate
		balanced   *BalancedOptions
		// wantRemove is empty for no action; wantReason is a substring of
		// the action's reason or of the first kept reason.
		wantRemove []string
		wantReason string
	}{
		{name: "a spare node's delete is approved (Karpenter: should approve a spare capacity delete)",
			snap:       spare,
			candidates: []Candidate{balancedCand("idle", "default", 0.20, 0)},
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": {CostPerHour: 1.0, DisruptionCost: 17}}},
			wantRemove: []string{"idle"}, wantReason: "score 3.40 >= threshold 0.50"},
		{name: "a replace worth its disruption is taken (Karpenter: should approve an oversized node consolidation)",
			snap: halfEmpty, candidates: halfCands("default"),
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": halfTotals}},
			wantRemove: []string{"half"}, wantReason: "score 0.83 >= threshold 0.50"},
		{name: "the same replace is declined when its pods cost more to move (Karpenter: should reject a marginal move)",
			snap: halfEmpty,
			candidates: func() []Candidate {
				// Only half is a candidate here: the full nodes would offer
				// other moves, scored on their own.
				c := balancedCand("half", "default", 0.40, 4)
				c.RescheduleDisruptionCost = 12 // priority or disruption-cost annotations on its pods
				return []Candidate{c}
			}(),
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": {CostPerHour: 2.40, DisruptionCost: 5*9 + 12}}},
			wantReason: "Balanced: the move is not worth its disruption: score 0.40 < threshold 0.50"},
		{name: "without Balanced the marginal replace is taken (WhenEmptyOrUnderutilized)",
			snap: halfEmpty,
			candidates: func() []Candidate {
				c := balancedCand("half", "default", 0.40, 4)
				c.RescheduleDisruptionCost = 12
				return []Candidate{c}
			}(),
			wantRemove: []string{"half"}},
		{name: "a pool missing from the totals is not scored (Karpenter: should skip non-Balanced pools and approve unconditionally)",
			snap: halfEmpty,
			candidates: func() []Candidate {
				c := balancedCand("half", "other", 0.40, 4)
				c.RescheduleDisruptionCost = 12
				return []Candidate{c}
			}(),
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": halfTotals}},
			wantRemove: []string{"half"}},
		{name: "a candidate whose outright delete cannot pass is not simulated (Karpenter: CanPassThreshold)",
			snap: halfEmpty,
			candidates: []Candidate{func() Candidate {
				c := balancedCand("half", "default", 0.40, 4)
				c.RescheduleDisruptionCost = 40
				return c
			}()},
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": {CostPerHour: 2.40, DisruptionCost: 80}}},
			wantReason: "even deleting it outright is not worth the disruption: score 0.33"},
		{name: "a single-node pool's delete scores 1 (Karpenter: should approve single-node pool DELETE with expected scoring)",
			snap: func() *Snapshot {
				s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
				s.Nodes = []*Node{existingNode("only", "zone-a", 4, 16, nil, ofType("m.xlarge"))}
				return s
			},
			candidates: []Candidate{balancedCand("only", "default", 0.20, 0)},
			balanced:   &BalancedOptions{Totals: map[string]PoolTotals{"default": {CostPerHour: 0.20, DisruptionCost: 1}}},
			wantRemove: []string{"only"}, wantReason: "score 1.00 >= threshold 0.50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, kept, err := ConsolidateWithReasons(tc.snap(), tc.candidates, ConsolidationOptions{Balanced: tc.balanced})
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.wantRemove) == 0 {
				if a != nil {
					t.Fatalf("want no action, got remove %v: %s", a.Remove, a.Reason)
				}
				found := false
				for _, k := range kept {
					found = found || strings.Contains(k.Reason, tc.wantReason)
				}
				if tc.wantReason != "" && !found {
					t.Errorf("no kept reason contains %q: %+v", tc.wantReason, kept)
				}
				return
			}
			if a == nil {
				t.Fatalf("want remove %v, got no action: %+v", tc.wantRemove, kept)
			}
			if strings.Join(a.Remove, ",") != strings.Join(tc.wantRemove, ",") {
				t.Errorf("remove = %v, want %v (%s)", a.Remove, tc.wantRemove, a.Reason)
			}
			if !strings.Contains(a.Reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", a.Reason, tc.wantReason)
			}
			if tc.balanced != nil && tc.balanced.Totals[tc.candidates[0].Pool] != (PoolTotals{}) && len(a.Scores) == 0 {
				t.Errorf("a Balanced move carries no scores")
			}
		})
	}
}

// Karpenter: balanced_scoring_test.go "should attribute savings
// proportionally in cross-NodePool scenarios" and "AllPoolsMustApprove:
// should reject when any Balanced pool rejects".
func TestConsolidateBalancedAcrossPools(t *testing.T) {
	s := &Snapshot{Pools: []*Pool{testPool("a", mLadder()), testPool("b", mLadder())}}
	s.Nodes = []*Node{
		existingNode("big", "zone-a", 16, 64, nil, ofType("m.4xlarge")),
		existingNode("a1", "zone-a", 4, 16, pods(1, "a1", "1", "1Gi"), ofType("m.xlarge")),
		existingNode("b1", "zone-a", 4, 16, pods(1, "b1", "1", "1Gi"), ofType("m.xlarge")),
	}
	cands := []Candidate{balancedCand("a1", "a", 0.20, 1), balancedCand("b1", "b", 0.20, 1)}
	// Both pools: each removed node saves its own $0.20 for disruption 2.
	ok := &BalancedOptions{Totals: map[string]PoolTotals{"a": {CostPerHour: 0.40, DisruptionCost: 4}, "b": {CostPerHour: 0.40, DisruptionCost: 4}}}
	a, _, err := ConsolidateWithReasons(s, cands, ConsolidationOptions{Balanced: ok})
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || len(a.Remove) != 2 || len(a.Scores) != 2 {
		t.Fatalf("want both removed with a score per pool, got %+v", a)
	}
	for _, sc := range a.Scores {
		if !near(sc.Savings, 0.20, 1e-9) {
			t.Errorf("pool %s gets savings $%.3f/h, want its proportional $0.200/h", sc.Pool, sc.Savings)
		}
	}
	// Pool b's totals make its half of the move cost most of its
	// disruption for little of its cost: the two-node move is declined,
	// and the single-node search takes pool a's node alone.
	bRejects := &BalancedOptions{Totals: map[string]PoolTotals{"a": {CostPerHour: 0.40, DisruptionCost: 4}, "b": {CostPerHour: 4.0, DisruptionCost: 2.2}}}
	a, _, err = ConsolidateWithReasons(s, cands, ConsolidationOptions{Balanced: bRejects})
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || strings.Join(a.Remove, ",") != "a1" {
		t.Fatalf("want only a1 removed when pool b rejects, got %+v", a)
	}
}

func int32p(v int32) *int32 { return &v }
