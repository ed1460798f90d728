package disruption

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/metrics"
)

var disruptedMachines = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "joinery_disruption_machines_disrupted_total",
	Help: "Machines Joinery deleted to disrupt them, by namespace, cluster, NodePool, method (Expiration, Drift, Emptiness, Consolidation, Repair, StaticScaleDown) and budget reason (Expired, Drifted, Empty, Underutilized, Unhealthy; ScaledDown for a static pool's surplus, which no budget paces).",
}, []string{"namespace", "cluster", "nodepool", "method", "reason"})

// reasonOf is the budget reason of a method.
func reasonOf(method string) string {
	switch method {
	case MethodExpiration:
		return "Expired"
	case MethodDrift:
		return "Drifted"
	case MethodEmptiness:
		return "Empty"
	case MethodRepair:
		return "Unhealthy"
	case MethodStaticScaleDown:
		return "ScaledDown"
	}
	return "Underutilized"
}

// countDisrupted counts a Machine deleted by a method, both as a
// disruption and among all the Machines Joinery deleted.
func countDisrupted(m *clusterv1.Machine, pool *v1alpha1.NodePool, method string) {
	disruptedMachines.WithLabelValues(m.Namespace, m.Spec.ClusterName, pool.Name, method, reasonOf(method)).Inc()
	metrics.MachineDeleted(m, strings.ToLower(method))
}

var repairs = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "joinery_disruption_repairs_total",
	Help: "Repairs of unhealthy Machines Joinery started, by namespace, cluster, NodePool and cause (MachineHealthCheck, or the node condition that held past its toleration, e.g. Ready=False).",
}, []string{"namespace", "cluster", "nodepool", "cause"})

// countRepair counts a repair started (its Machine is replaced or deleted).
func countRepair(m *clusterv1.Machine, pool *v1alpha1.NodePool, cause string) {
	repairs.WithLabelValues(m.Namespace, m.Spec.ClusterName, pool.Name, cause).Inc()
}

func init() { metrics.MustRegister(disruptedMachines, repairs) }
