package disruption

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/metrics"
	"github.com/joinery-dev/joinery/solver"
)

// The scoring itself is solver's (solver/balanced.go); this file only
// tells it which pools are Balanced and what each of them costs in all.

var (
	balancedMoves = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_disruption_balanced_moves_total",
		Help: "Consolidation moves of Balanced NodePools that were scored, by namespace, cluster, NodePool and decision (approved, rejected): Karpenter's karpenter_voluntary_disruption_consolidation_moves_total.",
	}, []string{"namespace", "cluster", "nodepool", "decision"})
	balancedScores = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_disruption_balanced_score",
		Help:    "Scores of the Balanced consolidation moves taken (savings fraction over disruption fraction; 0.5 passes at k = 2), by NodePool.",
		Buckets: []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8},
	}, []string{"nodepool"})
)

func init() { metrics.MustRegister(balancedMoves, balancedScores) }

// balancedOptions are the totals of the cluster's Balanced pools over
// every node they have here, candidate or not (Karpenter: "non-candidate
// nodes still contribute to the denominators"); nil when no pool of the
// cluster is Balanced. A pool serving several clusters is scored per
// cluster, as each cluster is disrupted on its own.
func (r *round) balancedOptions() *solver.BalancedOptions {
	balanced := map[string]bool{}
	for _, p := range r.st.Pools {
		if p.Spec.Disruption.ConsolidationPolicy == v1alpha1.ConsolidationPolicyBalanced {
			balanced[p.Name] = true
		}
	}
	if len(balanced) == 0 {
		return nil
	}
	var members []solver.PoolMember
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		pool := m.Labels[v1alpha1.LabelNodePool]
		if !balanced[pool] || !m.DeletionTimestamp.IsZero() {
			continue
		}
		d, err := provisioning.ReadDecision(m)
		if err != nil {
			continue
		}
		cost := solver.PerNodeBaseDisruptionCost
		if m.Status.NodeRef.IsDefined() {
			cost = solver.RescheduleDisruptionCost(MovablePods(r.st.Pods[m.Status.NodeRef.Name]))
		}
		members = append(members, solver.PoolMember{Pool: pool, PricePerHour: d.Offering.PricePerHour, DisruptionCost: cost})
	}
	totals := solver.PoolTotalsOf(members)
	for pool := range balanced {
		if _, ok := totals[pool]; !ok {
			totals[pool] = solver.PoolTotals{}
		}
	}
	return &solver.BalancedOptions{Totals: totals}
}

// countBalanced counts a scored move and its scores.
func (r *round) countBalanced(scores []solver.BalancedScore) {
	for _, s := range scores {
		decision := "approved"
		if !s.Approved() {
			decision = "rejected"
		}
		balancedMoves.WithLabelValues(r.key.Namespace, r.key.Name, s.Pool, decision).Inc()
		if s.Approved() {
			balancedScores.WithLabelValues(s.Pool).Observe(s.Score())
		}
	}
}
