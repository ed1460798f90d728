package poolstatus

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

const (
	usageHeader = `
# HELP joinery_nodepool_usage Capacity of a NodePool's machines in one cluster, the quantity spec.limits caps, by namespace, NodePool, cluster and resource type (cpu in cores, memory and ephemeral-storage in bytes, pods, nvidia.com/gpu, ...).
# TYPE joinery_nodepool_usage gauge
`
	limitHeader = `
# HELP joinery_nodepool_limit A NodePool's spec.limits, which apply in each cluster it serves, by namespace, NodePool and resource type (including pricePerHour, in USD).
# TYPE joinery_nodepool_limit gauge
`
	priceHeader = `
# HELP joinery_nodepool_price_per_hour What a NodePool's machines in one cluster cost, in USD per hour, at the prices their launch decisions recorded, by namespace, NodePool and cluster.
# TYPE joinery_nodepool_price_per_hour gauge
`
	machinesHeader = `
# HELP joinery_nodepool_machines A NodePool's Machines in one cluster, registered or not, by namespace, NodePool and cluster.
# TYPE joinery_nodepool_machines gauge
`
)

func TestPoolMetrics(t *testing.T) {
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "gpu"}}
	pool.Spec.Limits = corev1.ResourceList{
		corev1.ResourceCPU:         resource.MustParse("100"),
		"nvidia.com/gpu":           resource.MustParse("8"),
		v1alpha1.LimitPricePerHour: resource.MustParse("12.5"),
	}
	key := types.NamespacedName{Namespace: pool.Namespace, Name: pool.Name}
	var s series
	t.Cleanup(func() { s.replace(key, nil) })

	// w1 runs two g5.xlarge (4 vCPU, 16 GiB, 1 GPU each); w2 is served
	// but has no machine yet.
	w1 := &usage{machines: 2, price: 2.012, resources: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"), "nvidia.com/gpu": resource.MustParse("2"),
	}}
	s.replace(key, poolSamples(pool, map[string]*usage{"w1": w1, "w2": {resources: corev1.ResourceList{}}}))

	compare := func(header, series, name string) {
		t.Helper()
		gauge := map[string]*prometheus.GaugeVec{
			"joinery_nodepool_limit": poolLimit, "joinery_nodepool_usage": poolUsage,
			"joinery_nodepool_price_per_hour": poolPrice, "joinery_nodepool_machines": poolMachines,
		}[name]
		if err := testutil.CollectAndCompare(gauge, strings.NewReader(header+series), name); err != nil {
			t.Error(err)
		}
	}
	compare(limitHeader, `
joinery_nodepool_limit{namespace="team-a",nodepool="gpu",resource_type="cpu"} 100
joinery_nodepool_limit{namespace="team-a",nodepool="gpu",resource_type="nvidia.com/gpu"} 8
joinery_nodepool_limit{namespace="team-a",nodepool="gpu",resource_type="pricePerHour"} 12.5
`, "joinery_nodepool_limit")
	compare(usageHeader, `
joinery_nodepool_usage{cluster="w1",namespace="team-a",nodepool="gpu",resource_type="cpu"} 8
joinery_nodepool_usage{cluster="w1",namespace="team-a",nodepool="gpu",resource_type="memory"} 3.4359738368e+10
joinery_nodepool_usage{cluster="w1",namespace="team-a",nodepool="gpu",resource_type="nvidia.com/gpu"} 2
joinery_nodepool_usage{cluster="w2",namespace="team-a",nodepool="gpu",resource_type="cpu"} 0
joinery_nodepool_usage{cluster="w2",namespace="team-a",nodepool="gpu",resource_type="memory"} 0
joinery_nodepool_usage{cluster="w2",namespace="team-a",nodepool="gpu",resource_type="nvidia.com/gpu"} 0
`, "joinery_nodepool_usage")
	compare(priceHeader, `
joinery_nodepool_price_per_hour{cluster="w1",namespace="team-a",nodepool="gpu"} 2.012
joinery_nodepool_price_per_hour{cluster="w2",namespace="team-a",nodepool="gpu"} 0
`, "joinery_nodepool_price_per_hour")
	compare(machinesHeader, `
joinery_nodepool_machines{cluster="w1",namespace="team-a",nodepool="gpu"} 2
joinery_nodepool_machines{cluster="w2",namespace="team-a",nodepool="gpu"} 0
`, "joinery_nodepool_machines")

	// The pool stops serving w2 and drops its GPU and price limits: their
	// series go, the rest keep their values.
	delete(pool.Spec.Limits, "nvidia.com/gpu")
	delete(pool.Spec.Limits, v1alpha1.LimitPricePerHour)
	w1.resources = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi")}
	s.replace(key, poolSamples(pool, map[string]*usage{"w1": w1}))
	compare(limitHeader, `
joinery_nodepool_limit{namespace="team-a",nodepool="gpu",resource_type="cpu"} 100
`, "joinery_nodepool_limit")
	compare(usageHeader, `
joinery_nodepool_usage{cluster="w1",namespace="team-a",nodepool="gpu",resource_type="cpu"} 8
joinery_nodepool_usage{cluster="w1",namespace="team-a",nodepool="gpu",resource_type="memory"} 3.4359738368e+10
`, "joinery_nodepool_usage")
	compare(machinesHeader, `
joinery_nodepool_machines{cluster="w1",namespace="team-a",nodepool="gpu"} 2
`, "joinery_nodepool_machines")

	// Another namespace's pool of the same name is a series of its own, and
	// deleting one pool leaves the other's.
	other := types.NamespacedName{Namespace: "team-b", Name: "gpu"}
	t.Cleanup(func() { s.replace(other, nil) })
	otherPool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: other.Namespace, Name: other.Name}}
	s.replace(other, poolSamples(otherPool, map[string]*usage{"w1": {machines: 1, price: 0.5, resources: corev1.ResourceList{}}}))
	s.replace(key, nil)
	compare(machinesHeader, `
joinery_nodepool_machines{cluster="w1",namespace="team-b",nodepool="gpu"} 1
`, "joinery_nodepool_machines")
	compare(priceHeader, `
joinery_nodepool_price_per_hour{cluster="w1",namespace="team-b",nodepool="gpu"} 0.5
`, "joinery_nodepool_price_per_hour")
	compare(usageHeader, `
joinery_nodepool_usage{cluster="w1",namespace="team-b",nodepool="gpu",resource_type="cpu"} 0
joinery_nodepool_usage{cluster="w1",namespace="team-b",nodepool="gpu",resource_type="memory"} 0
`, "joinery_nodepool_usage")
	if n := testutil.CollectAndCount(poolLimit, "joinery_nodepool_limit"); n != 0 {
		t.Errorf("after the pool with limits was deleted, joinery_nodepool_limit has %d series, want 0", n)
	}
}
