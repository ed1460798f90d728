package poolstatus

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/metrics"
)

// Limits apply per served cluster, so usage, price and machines are per
// cluster too; sum over cluster for a pool's total.
var (
	poolUsage = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_nodepool_usage",
		Help: "Capacity of a NodePool's machines in one cluster, the quantity spec.limits caps, by namespace, NodePool, cluster and resource type (cpu in cores, memory and ephemeral-storage in bytes, pods, nvidia.com/gpu, ...).",
	}, []string{"namespace", "nodepool", "cluster", "resource_type"})
	poolLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_nodepool_limit",
		Help: "A NodePool's spec.limits, which apply in each cluster it serves, by namespace, NodePool and resource type (including pricePerHour, in USD).",
	}, []string{"namespace", "nodepool", "resource_type"})
	poolPrice = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_nodepool_price_per_hour",
		Help: "What a NodePool's machines in one cluster cost, in USD per hour, at the prices their launch decisions recorded, by namespace, NodePool and cluster.",
	}, []string{"namespace", "nodepool", "cluster"})
	poolMachines = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_nodepool_machines",
		Help: "A NodePool's Machines in one cluster, registered or not, by namespace, NodePool and cluster.",
	}, []string{"namespace", "nodepool", "cluster"})
)

func init() { metrics.MustRegister(poolUsage, poolLimit, poolPrice, poolMachines) }

// usage is what a pool's machines in one cluster add up to.
type usage struct {
	machines  int
	price     float64
	resources corev1.ResourceList
}

func (u *usage) add(capacity corev1.ResourceList) {
	for name, q := range capacity {
		sum := u.resources[name]
		sum.Add(q)
		u.resources[name] = sum
	}
}

// usageOf returns the cluster's entry, adding an empty one.
func usageOf(byCluster map[string]*usage, cluster string) *usage {
	u := byCluster[cluster]
	if u == nil {
		u = &usage{resources: corev1.ResourceList{}}
		byCluster[cluster] = u
	}
	return u
}

// sample is one series of a pool and its value.
type sample struct {
	gauge  *prometheus.GaugeVec
	labels []string
	value  float64
}

// poolSamples are a pool's series: its limits, and per cluster (served
// or still running its machines) machines, price and usage. Every cluster
// shows cpu, memory and each limited resource, at 0 when it has no
// machines, so a usage/limit ratio exists before the first launch.
func poolSamples(pool *v1alpha1.NodePool, byCluster map[string]*usage) []sample {
	var out []sample
	always := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
	for name, q := range pool.Spec.Limits {
		out = append(out, sample{poolLimit, []string{pool.Namespace, pool.Name, string(name)}, q.AsApproximateFloat64()})
		if name != v1alpha1.LimitPricePerHour {
			always = append(always, name)
		}
	}
	for cluster, u := range byCluster {
		out = append(out,
			sample{poolMachines, []string{pool.Namespace, pool.Name, cluster}, float64(u.machines)},
			sample{poolPrice, []string{pool.Namespace, pool.Name, cluster}, u.price})
		names := map[corev1.ResourceName]bool{}
		for _, name := range always {
			names[name] = true
		}
		for name := range u.resources {
			names[name] = true
		}
		for name := range names {
			q := u.resources[name]
			out = append(out, sample{poolUsage, []string{pool.Namespace, pool.Name, cluster, string(name)}, q.AsApproximateFloat64()})
		}
	}
	return out
}

// series remembers the samples last written for each pool, so the series
// that disappear (a cluster no longer served, a limit removed, the pool
// deleted) are deleted rather than left at their last value.
type series struct {
	mu   sync.Mutex
	last map[types.NamespacedName][]sample
}

// replace makes samples the pool's series; nil deletes them all.
func (s *series) replace(pool types.NamespacedName, samples []sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[seriesKey]bool, len(samples))
	for _, n := range samples {
		keep[keyOf(n)] = true
		n.gauge.WithLabelValues(n.labels...).Set(n.value)
	}
	for _, old := range s.last[pool] {
		if !keep[keyOf(old)] {
			old.gauge.DeleteLabelValues(old.labels...)
		}
	}
	if s.last == nil {
		s.last = map[types.NamespacedName][]sample{}
	}
	if len(samples) == 0 {
		delete(s.last, pool)
	} else {
		s.last[pool] = samples
	}
}

// seriesKey identifies a series: its metric and label values.
type seriesKey struct {
	gauge  *prometheus.GaugeVec
	labels string
}

func keyOf(s sample) seriesKey { return seriesKey{s.gauge, strings.Join(s.labels, "\x00")} }
