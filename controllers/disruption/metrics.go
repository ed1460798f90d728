package disruption

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var disruptedMachines = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "joinery_disruption_machines_disrupted_total",
	Help: "Machines Joinery deleted to disrupt them, by NodePool, method (Expiration, Drift, Emptiness, Consolidation) and budget reason (Expired, Drifted, Empty, Underutilized).",
}, []string{"nodepool", "method", "reason"})

// reasonOf is the budget reason of a method.
func reasonOf(method string) string {
	switch method {
	case MethodExpiration:
		return "Expired"
	case MethodDrift:
		return "Drifted"
	case MethodEmptiness:
		return "Empty"
	}
	return "Underutilized"
}

func init() { metrics.Registry.MustRegister(disruptedMachines) }
