// Package metrics is where Joinery's Prometheus metrics are registered,
// and where the ones several controllers update live: the Machines Joinery
// creates and deletes are counted once, with one set of reasons, whichever
// loop acts (provisioning, disruption, interruption).
//
// Every joinery_* metric goes through MustRegister, which registers it in
// controller-runtime's registry (served on the manager's metrics endpoint)
// and remembers it, so a test can hold docs/metrics.md and the Grafana
// dashboard to exactly the metrics that exist.
package metrics

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

var (
	mu         sync.Mutex
	registered []prometheus.Collector
)

// MustRegister registers collectors in controller-runtime's registry and
// remembers them for Registered. It panics on a duplicate, as
// prometheus.MustRegister does: a metric is defined in one place.
func MustRegister(cs ...prometheus.Collector) {
	crmetrics.Registry.MustRegister(cs...)
	mu.Lock()
	defer mu.Unlock()
	registered = append(registered, cs...)
}

// Registered returns every collector registered through MustRegister.
func Registered() []prometheus.Collector {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(registered)
}

// Reasons a Machine is created or deleted (the reason label of
// joinery_machines_created_total and joinery_machines_deleted_total).
// Disruption deletes with its method, lower-cased: expiration, drift,
// emptiness, consolidation.
const (
	ReasonProvisioning         = "provisioning"
	ReasonReplacement          = "replacement"
	ReasonInsufficientCapacity = "insufficient_capacity"
	ReasonRegistrationTimeout  = "registration_timeout"
	ReasonInterruption         = "interruption"
)

// machineLabels are the labels of both Machine counters: where the
// Machine is, what made it, and what it runs on. All are bounded by the
// fleet's configuration, never by its workload.
var machineLabels = []string{"namespace", "cluster", "nodepool", "reason", "capacity_type"}

var (
	machinesCreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_machines_created_total",
		Help: "Machines Joinery created, by namespace, cluster, NodePool, reason (provisioning, replacement) and capacity type.",
	}, machineLabels)
	machinesDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_machines_deleted_total",
		Help: "Machines Joinery deleted, by namespace, cluster, NodePool, reason (insufficient_capacity, registration_timeout, expiration, drift, emptiness, consolidation, interruption) and capacity type.",
	}, machineLabels)
)

func init() { MustRegister(machinesCreated, machinesDeleted) }

// MachineCreated counts a Machine Joinery created, from its own labels.
func MachineCreated(m metav1.Object, reason string) { count(machinesCreated, m, reason) }

// MachineDeleted counts a Machine Joinery deleted, from its own labels.
func MachineDeleted(m metav1.Object, reason string) { count(machinesDeleted, m, reason) }

func count(c *prometheus.CounterVec, m metav1.Object, reason string) {
	l := m.GetLabels()
	c.WithLabelValues(m.GetNamespace(), l[clusterv1.ClusterNameLabel], l[v1alpha1.LabelNodePool], reason, l[v1alpha1.LabelCapacityType]).Inc()
}
