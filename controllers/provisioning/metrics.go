package provisioning

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	machinesCreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_machines_created_total",
		Help: "Machines Joinery created, by NodePool and capacity type.",
	}, []string{"nodepool", "capacity_type"})
	machinesDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_machines_deleted_total",
		Help: "Machines Joinery deleted while provisioning, by NodePool and reason (InsufficientCapacity, RegistrationTimeout).",
	}, []string{"nodepool", "reason"})
	solveDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_provisioner_scheduling_duration_seconds",
		Help:    "Time the solver took for one provisioning plan, by cluster.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"cluster"})
	pendingPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_pending_pods",
		Help: "Pods the scheduler marked unschedulable at the last provisioning plan, by cluster.",
	}, []string{"cluster"})
)

func init() {
	metrics.Registry.MustRegister(machinesCreated, machinesDeleted, solveDuration, pendingPods)
}
