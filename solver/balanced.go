package solver

// Balanced consolidation follows Karpenter v1.15
// (pkg/controllers/disruption/balanced.go, types.go ScoreResult,
// pkg/utils/disruption/disruption.go): a move is worth taking only when
// the share of the pool's cost it saves is at least 1/k of the share of
// the pool's disruption it causes. Both shares are normalised by the
// whole pool (every node of it, not only the candidates), so the same
// move scores the same in a pool of 10 or of 100 nodes.

import (
	"fmt"
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// BalancedK is Karpenter's k for the Balanced policy: a move passes when
// its score is at least 1/k = 0.5.
const BalancedK = 2

// PerNodeBaseDisruptionCost floors a node's disruption cost, so that even
// an empty node costs something to disrupt (Karpenter's constant).
const PerNodeBaseDisruptionCost = 1.0

// Annotations read for a pod's eviction cost, as Karpenter reads them.
const (
	annotationDisruptionCost  = "karpenter.sh/disruption-cost"
	annotationPodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
)

// EvictionCost is what evicting one pod costs, Karpenter's EvictionCost
// with its PodDeletionCostManagement gate off (Joinery does not write
// pod-deletion-cost, so a value there is the user's): 1, plus
// karpenter.sh/disruption-cost (or else pod-deletion-cost) / 2^27, plus
// priority / 2^25, clamped to [-10, 10]. A value that does not parse is
// ignored, as Karpenter ignores it.
func EvictionCost(p *corev1.Pod) float64 {
	cost := 1.0
	if s, ok := p.Annotations[annotationDisruptionCost]; ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			cost += float64(n) / math.Pow(2, 27)
		}
	} else if s, ok := p.Annotations[annotationPodDeletionCost]; ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			cost += float64(n) / math.Pow(2, 27)
		}
	}
	if p.Spec.Priority != nil {
		cost += float64(*p.Spec.Priority) / math.Pow(2, 25)
	}
	return min(max(cost, -10), 10)
}

// RescheduleDisruptionCost is a node's disruption cost for Balanced
// scoring: PerNodeBaseDisruptionCost plus each pod's eviction cost, a
// negative one counting as zero so that no pod makes a node cheaper to
// disrupt than an empty one.
func RescheduleDisruptionCost(pods []*corev1.Pod) float64 {
	cost := PerNodeBaseDisruptionCost
	for _, p := range pods {
		cost += max(0, EvictionCost(p))
	}
	return cost
}

// PoolTotals are what a pool's moves are normalised by: the price of all
// its nodes and the disruption cost of all of them.
type PoolTotals struct {
	CostPerHour    float64
	DisruptionCost float64
}

// PoolMember is one node of a pool, candidate or not, for PoolTotalsOf.
type PoolMember struct {
	Pool           string
	PricePerHour   float64
	DisruptionCost float64
}

// PoolTotalsOf sums members by pool (Karpenter's computeNodePoolTotals). A
// price that is not a finite number counts as zero: one bad price must not
// turn every score of its pool into NaN, which would reject every move
// for as long as it lasts.
func PoolTotalsOf(members []PoolMember) map[string]PoolTotals {
	out := map[string]PoolTotals{}
	for _, m := range members {
		t := out[m.Pool]
		if !math.IsNaN(m.PricePerHour) && !math.IsInf(m.PricePerHour, 0) {
			t.CostPerHour += m.PricePerHour
		}
		if !math.IsNaN(m.DisruptionCost) {
			t.DisruptionCost += m.DisruptionCost
		}
		out[m.Pool] = t
	}
	return out
}

// BalancedScore is one pool's verdict on a move.
type BalancedScore struct {
	Pool string
	// Savings is the pool's share of what the move saves ($/h) and
	// DisruptionCost the disruption it causes in the pool.
	Savings        float64
	DisruptionCost float64
	Totals         PoolTotals
	// SavingsFraction = Savings / Totals.CostPerHour and
	// DisruptionFraction = DisruptionCost / Totals.DisruptionCost.
	SavingsFraction    float64
	DisruptionFraction float64
	K                  int
}

// ScoreMove scores a move for one pool (Karpenter's ScoreMove). Totals of
// zero leave nothing to normalise by: the fractions stay zero and the
// move is rejected.
func ScoreMove(savings, disruptionCost float64, totals PoolTotals, k int) BalancedScore {
	s := BalancedScore{Savings: savings, DisruptionCost: disruptionCost, Totals: totals, K: k}
	if totals.CostPerHour <= 0 || totals.DisruptionCost <= 0 {
		return s
	}
	s.SavingsFraction = savings / totals.CostPerHour
	s.DisruptionFraction = disruptionCost / totals.DisruptionCost
	return s
}

// Score is SavingsFraction / DisruptionFraction: 0 when nothing is saved,
// +Inf when something is saved for no disruption.
func (s BalancedScore) Score() float64 {
	if s.SavingsFraction <= 0 || math.IsNaN(s.SavingsFraction) {
		return 0
	}
	if s.DisruptionFraction == 0 {
		return math.Inf(1)
	}
	return s.SavingsFraction / s.DisruptionFraction
}

// Threshold is 1/k.
func (s BalancedScore) Threshold() float64 {
	if s.K <= 0 {
		return math.Inf(1)
	}
	return 1 / float64(s.K)
}

// Approved reports whether the move is worth its disruption.
func (s BalancedScore) Approved() bool { return s.Score() >= s.Threshold() }

// String reads like "score 0.31 < threshold 0.50 (k=2): saves $0.100/h,
// 4.2% of the pool's $2.400/h, for disruption 9.0, 13.6% of the pool's
// 66.0" and is what Events, logs and joinery explain show.
func (s BalancedScore) String() string {
	cmp := ">="
	if !s.Approved() {
		cmp = "<"
	}
	return fmt.Sprintf("score %.2f %s threshold %.2f (k=%d): saves $%.3f/h, %.1f%% of the pool's $%.3f/h, for disruption %.1f, %.1f%% of the pool's %.1f",
		s.Score(), cmp, s.Threshold(), s.K, s.Savings, 100*s.SavingsFraction, s.Totals.CostPerHour,
		s.DisruptionCost, 100*s.DisruptionFraction, s.Totals.DisruptionCost)
}

// BalancedOptions turn on Balanced scoring in Consolidate for the pools
// listed in Totals; candidates of other pools are not scored.
type BalancedOptions struct {
	// Totals by pool name, over every node of the pool.
	Totals map[string]PoolTotals
	// K is zero for BalancedK.
	K int
}

func (b *BalancedOptions) k() int {
	if b.K <= 0 {
		return BalancedK
	}
	return b.K
}

// scoreMove scores a move for each Balanced pool among the removed nodes
// (Karpenter's EvaluateBalancedMove): with several pools, each gets the
// net savings in proportion to its share of the removed nodes' price. The
// move passes only if every Balanced pool approves; scores is nil when no
// pool is Balanced.
func (b *BalancedOptions) scoreMove(set []*nodeCandidate, savings float64) (scores []BalancedScore, approved bool) {
	if b == nil {
		return nil, true
	}
	type acc struct{ price, disruption float64 }
	byPool := map[string]*acc{}
	var order []string
	source := 0.0
	for _, nc := range set {
		source += nc.PricePerHour
		a := byPool[nc.Pool]
		if a == nil {
			a = &acc{}
			byPool[nc.Pool] = a
			order = append(order, nc.Pool)
		}
		a.price += nc.PricePerHour
		a.disruption += nc.RescheduleDisruptionCost
	}
	approved = true
	for _, pool := range order {
		totals, ok := b.Totals[pool]
		if !ok {
			continue
		}
		share := savings
		if len(byPool) > 1 && source > 0 {
			share = savings * byPool[pool].price / source
		}
		s := ScoreMove(share, byPool[pool].disruption, totals, b.k())
		s.Pool = pool
		scores = append(scores, s)
		approved = approved && s.Approved()
	}
	return scores, approved
}

// canPass reports whether deleting the candidate outright, the best any
// move of it alone can do, would pass (Karpenter's CanPassThreshold): if
// not, no replacement will, and its simulation is skipped.
func (b *BalancedOptions) canPass(nc *nodeCandidate) (BalancedScore, bool) {
	if b == nil {
		return BalancedScore{}, true
	}
	totals, ok := b.Totals[nc.Pool]
	if !ok || totals.CostPerHour <= 0 {
		return BalancedScore{}, true
	}
	s := ScoreMove(nc.PricePerHour, nc.RescheduleDisruptionCost, totals, b.k())
	s.Pool = nc.Pool
	return s, s.Approved()
}

// savingsRatio is a candidate's price per unit of disruption, Karpenter's
// Balanced sort key (higher first).
func (nc *nodeCandidate) savingsRatio() float64 {
	return nc.PricePerHour / nc.RescheduleDisruptionCost
}
