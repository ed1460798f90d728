// Command balanced-compare scores the same consolidation moves with
// Karpenter v1.15's Balanced scoring (pkg/controllers/disruption
// ScoreMove, k = BalancedK) and Joinery's (solver.ScoreMove) and prints
// both side by side; it exits 1 if they disagree on a score or a verdict.
//
//	cd bench && GOTOOLCHAIN=auto go run -mod=mod ./cmd/balanced-compare
package main

import (
	"fmt"
	"math"
	"os"

	karpv1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/controllers/disruption"

	"github.com/joinery-dev/joinery/solver"
)

// move is one candidate move: what it saves ($/h), the disruption it
// causes, and its pool's totals. The first ones are the RFC pool of
// Karpenter's balanced_test.go; the last two are the e2e spec's.
type move struct {
	name                     string
	savings, disruption      float64
	poolCost, poolDisruption float64
}

var moves = []move{
	{"oversized m7i.2xlarge -> m7i.large (3 pods)", 7.26, 4, 58.08, 90},
	{"spare m7i.xlarge delete (4 pods)", 4.84, 5, 58.08, 90},
	{"marginal m7i.xlarge -> m7i.large (8 pods)", 2.42, 9, 58.08, 90},
	{"well-packed node, no savings (10 pods)", 0, 11, 58.08, 90},
	{"replace in a uniform pool (8 pods)", 2.42, 9, 48.40, 90},
	{"delete a node of 31 pods' cost", 4.84, 32, 58.08, 117},
	{"delete an empty-cost node (+Inf)", 4.84, 0, 58.08, 90},
	{"on-demand-only replace, $0.10 of $1 (3 pods)", 0.10, 4, 1, 10},
	{"e2e: 1 of 3 m5.xlarge, 2 pods at disruption-cost max", 0.192, 21, 0.576, 29},
	{"e2e: the same node, 2 ordinary pods", 0.192, 3, 0.576, 11},
}

func main() {
	fmt.Printf("| move | savings $/h | disruption | pool $/h | pool disruption | Karpenter score | Joinery score | Karpenter | Joinery |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	differ := false
	for _, m := range moves {
		k := disruption.ScoreMove(m.savings, m.disruption, disruption.NodePoolTotals{TotalCost: m.poolCost, TotalDisruptionCost: m.poolDisruption}, karpv1.BalancedK)
		j := solver.ScoreMove(m.savings, m.disruption, solver.PoolTotals{CostPerHour: m.poolCost, DisruptionCost: m.poolDisruption}, solver.BalancedK)
		same := k.Approved() == j.Approved() && (k.Score() == j.Score() || math.Abs(k.Score()-j.Score()) < 1e-12)
		differ = differ || !same
		fmt.Printf("| %s | %.2f | %.0f | %.2f | %.0f | %.3f | %.3f | %s | %s |\n", m.name, m.savings, m.disruption, m.poolCost, m.poolDisruption,
			k.Score(), j.Score(), verdict(k.Approved()), verdict(j.Approved()))
	}
	if differ {
		fmt.Fprintln(os.Stderr, "Karpenter and Joinery disagree")
		os.Exit(1)
	}
}

func verdict(ok bool) string {
	if ok {
		return "approve"
	}
	return "reject"
}
