package provisioning

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/metrics"
	"github.com/joinery-dev/joinery/solver"
)

// clusterLabels locate a workload cluster: the namespace of the CAPI
// Cluster (and of the NodePools serving it) and its name.
var clusterLabels = []string{"namespace", "cluster"}

var (
	solveDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_provisioner_scheduling_duration_seconds",
		Help:    "Time the solver took for one provisioning plan, by cluster.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, clusterLabels)
	solvePods = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_provisioner_scheduling_pods",
		Help:    "Pending pods in one provisioning plan (the solver's input size), by cluster.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	}, clusterLabels)
	solveNewMachines = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_provisioner_scheduling_new_machines",
		Help:    "New machines one provisioning plan decided on, by cluster.",
		Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
	}, clusterLabels)
	pendingPods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_pending_pods",
		Help: "Pods the scheduler marked unschedulable at the last provisioning plan, by cluster.",
	}, clusterLabels)
	unschedulablePods = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_provisioner_unschedulable_pods",
		Help: "Pending pods the last provisioning plan found no machine for (their pods carry a FailedProvisioning Event saying why), by cluster.",
	}, clusterLabels)
	pendingMaxAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_pending_pods_max_age_seconds",
		Help: "Age of the oldest pod the scheduler marked unschedulable, at the last provisioning pass, by cluster (0 when none).",
	}, clusterLabels)
	boundDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "joinery_pods_bound_duration_seconds",
		Help:    "Time from a pod's creation until it was bound to a node, for pods Joinery saw unschedulable, by cluster.",
		Buckets: []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600},
	}, clusterLabels)
	unavailableOfferings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_unavailable_offerings",
		Help: "Offerings (instance type, zone, capacity type) EC2 recently refused or interrupted, which plans avoid until they expire, by capacity type.",
	}, []string{"capacity_type"})
)

func init() {
	metrics.MustRegister(solveDuration, solvePods, solveNewMachines, pendingPods, unschedulablePods, pendingMaxAge, boundDuration, unavailableOfferings)
}

func clusterValues(key types.NamespacedName) []string { return []string{key.Namespace, key.Name} }

// observePods is what a pass learns about waiting from the pods it lists.
// A pod it saw pending before and finds bound now is observed once, from
// its creation to the PodScheduled condition turning true (the binding's
// own time, so how often passes run does not matter), and forgotten from
// seen. Pods bound before any pass saw them pending, and pods deleted
// while pending, are not observed: the histogram is about pods that
// needed Joinery.
func observePods(key types.NamespacedName, seen map[types.UID]bool, pods, pending []*corev1.Pod, now time.Time) {
	values := clusterValues(key)
	for _, pod := range pods {
		if pod.Spec.NodeName == "" || !seen[pod.UID] {
			continue
		}
		delete(seen, pod.UID)
		boundAt := now
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
				boundAt = c.LastTransitionTime.Time
			}
		}
		if d := boundAt.Sub(pod.CreationTimestamp.Time); d >= 0 {
			boundDuration.WithLabelValues(values...).Observe(d.Seconds())
		}
	}
	oldest := 0.0
	for _, pod := range pending {
		oldest = max(oldest, now.Sub(pod.CreationTimestamp.Time).Seconds())
	}
	pendingMaxAge.WithLabelValues(values...).Set(oldest)
}

// observePlan records one provisioning plan's size, duration and outcome.
func observePlan(key types.NamespacedName, pending int, plan *solver.Plan, took time.Duration) {
	values := clusterValues(key)
	solveDuration.WithLabelValues(values...).Observe(took.Seconds())
	solvePods.WithLabelValues(values...).Observe(float64(pending))
	solveNewMachines.WithLabelValues(values...).Observe(float64(len(plan.NewNodes)))
	pendingPods.WithLabelValues(values...).Set(float64(pending))
	unschedulablePods.WithLabelValues(values...).Set(float64(len(plan.Unschedulable)))
}

// observeNothingPending resets a cluster's gauges when no pod waits.
func observeNothingPending(key types.NamespacedName) {
	values := clusterValues(key)
	pendingPods.WithLabelValues(values...).Set(0)
	unschedulablePods.WithLabelValues(values...).Set(0)
}

// forgetClusterMetrics deletes the series of a cluster no pool serves any
// more, so dashboards do not show it pending forever.
func forgetClusterMetrics(key types.NamespacedName) {
	labels := prometheus.Labels{"namespace": key.Namespace, "cluster": key.Name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		solveDuration, solvePods, solveNewMachines, pendingPods, unschedulablePods, pendingMaxAge, boundDuration,
	} {
		v.DeletePartialMatch(labels)
	}
}

// setUnavailableGauge exports the cache's size by capacity type; both
// capacity types always have a series, so an empty cache reads 0.
func setUnavailableGauge(g *prometheus.GaugeVec, expires map[solver.OfferingKey]time.Time) {
	counts := map[string]int{v1alpha1.CapacityTypeSpot: 0, v1alpha1.CapacityTypeOnDemand: 0}
	for key := range expires {
		counts[key.CapacityType]++
	}
	for capacityType, n := range counts {
		g.WithLabelValues(capacityType).Set(float64(n))
	}
}

// countCreated counts a Machine a launch created: for pending pods, or to
// replace Machines a disruption removes.
func countCreated(m metav1.Object, replacement bool) {
	reason := metrics.ReasonProvisioning
	if replacement {
		reason = metrics.ReasonReplacement
	}
	metrics.MachineCreated(m, reason)
}

// countDeleted counts a Machine the provisioning loop deleted, under the
// metric's name for the reason its Event gives.
func countDeleted(m metav1.Object, eventReason string) {
	reason, ok := map[string]string{
		"InsufficientCapacity": metrics.ReasonInsufficientCapacity,
		"RegistrationTimeout":  metrics.ReasonRegistrationTimeout,
		// One reason per launch-error class (capacity is
		// insufficient_capacity), and for lost Machines.
		"LaunchConfigurationError": "launch_configuration_error",
		"LaunchFailed":             "launch_failed_unknown",
		"InstanceTerminated":       "instance_terminated",
		"NodeLost":                 "node_lost",
	}[eventReason]
	if !ok {
		reason = strings.ToLower(eventReason)
	}
	metrics.MachineDeleted(m, reason)
}
