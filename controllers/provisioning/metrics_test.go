package provisioning

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

func TestMetricsPodsBoundDuration(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "metrics-test", Name: "bound"}
	forgetClusterMetrics(key)
	t.Cleanup(func() { forgetClusterMetrics(key) })

	pod := func(uid string, created time.Duration, node string, scheduledAt time.Duration) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), CreationTimestamp: metav1.NewTime(t0.Add(created))}}
		p.Spec.NodeName = node
		if node != "" {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(scheduledAt))}}
		}
		return p
	}
	// a and b were seen pending; a is bound now, 40 s after its creation,
	// b still waits; c was bound without Joinery ever seeing it pending.
	seen := map[types.UID]bool{"a": true, "b": true}
	pods := []*corev1.Pod{pod("a", 0, "n1", 40*time.Second), pod("b", 10*time.Second, "", 0), pod("c", 0, "n1", time.Second)}
	pending := []*corev1.Pod{pods[1]}
	now := t0.Add(time.Minute)

	observePods(key, seen, pods, pending, now)
	observePods(key, seen, pods, pending, now.Add(time.Second)) // a pass later: a is not counted twice

	const want = `
# HELP joinery_pods_bound_duration_seconds Time from a pod's creation until it was bound to a node, for pods Joinery saw unschedulable, by cluster.
# TYPE joinery_pods_bound_duration_seconds histogram
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="1"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="2"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="5"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="10"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="15"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="20"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="30"} 0
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="45"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="60"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="90"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="120"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="180"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="240"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="300"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="450"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="600"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="900"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="1200"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="1800"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="3600"} 1
joinery_pods_bound_duration_seconds_bucket{cluster="bound",namespace="metrics-test",le="+Inf"} 1
joinery_pods_bound_duration_seconds_sum{cluster="bound",namespace="metrics-test"} 40
joinery_pods_bound_duration_seconds_count{cluster="bound",namespace="metrics-test"} 1
`
	if err := testutil.CollectAndCompare(boundDuration, strings.NewReader(want), "joinery_pods_bound_duration_seconds"); err != nil {
		t.Error(err)
	}
	if seen["a"] || !seen["b"] {
		t.Errorf("seen = %v, want only b: a bound pod is forgotten, a pending one kept", seen)
	}
	// b, created 10 s after t0, is the oldest pending pod: 51 s old a pass later.
	if got := testutil.ToFloat64(pendingMaxAge.WithLabelValues(key.Namespace, key.Name)); got != 51 {
		t.Errorf("joinery_pending_pods_max_age_seconds = %v, want 51", got)
	}

	observePods(key, map[types.UID]bool{}, nil, nil, now)
	if got := testutil.ToFloat64(pendingMaxAge.WithLabelValues(key.Namespace, key.Name)); got != 0 {
		t.Errorf("with nothing pending, joinery_pending_pods_max_age_seconds = %v, want 0", got)
	}
}

func TestMetricsPlanAndForgottenCluster(t *testing.T) {
	key := types.NamespacedName{Namespace: "metrics-test", Name: "plan"}
	other := types.NamespacedName{Namespace: "metrics-test", Name: "other"}
	for _, k := range []types.NamespacedName{key, other} {
		forgetClusterMetrics(k)
		t.Cleanup(func() { forgetClusterMetrics(k) })
	}
	plan := &solver.Plan{NewNodes: make([]*solver.NewNode, 3), Unschedulable: make([]solver.Unschedulable, 2)}
	observePlan(key, 40, plan, 20*time.Millisecond)
	observePlan(other, 1, &solver.Plan{}, time.Millisecond)

	if got := testutil.ToFloat64(pendingPods.WithLabelValues(key.Namespace, key.Name)); got != 40 {
		t.Errorf("joinery_pending_pods = %v, want 40", got)
	}
	if got := testutil.ToFloat64(unschedulablePods.WithLabelValues(key.Namespace, key.Name)); got != 2 {
		t.Errorf("joinery_provisioner_unschedulable_pods = %v, want 2", got)
	}
	for name, h := range map[string]*prometheus.HistogramVec{
		"joinery_provisioner_scheduling_duration_seconds": solveDuration,
		"joinery_provisioner_scheduling_pods":             solvePods,
		"joinery_provisioner_scheduling_new_machines":     solveNewMachines,
	} {
		if n := testutil.CollectAndCount(h, name); n != 2 {
			t.Errorf("%s has %d series, want one per cluster planned for (2)", name, n)
		}
	}

	observeNothingPending(key)
	if got := testutil.ToFloat64(unschedulablePods.WithLabelValues(key.Namespace, key.Name)); got != 0 {
		t.Errorf("with nothing pending, joinery_provisioner_unschedulable_pods = %v, want 0", got)
	}

	// A cluster no pool serves any more leaves no series behind; others stay.
	forgetClusterMetrics(key)
	for name, c := range map[string]prometheus.Collector{
		"joinery_provisioner_scheduling_duration_seconds": solveDuration,
		"joinery_pending_pods":                            pendingPods,
		"joinery_provisioner_unschedulable_pods":          unschedulablePods,
	} {
		if n := testutil.CollectAndCount(c, name); n != 1 {
			t.Errorf("after forgetting cluster plan, %s has %d series, want 1 (cluster other)", name, n)
		}
	}
}

func TestMetricsUnavailableOfferingsGauge(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "joinery_unavailable_offerings", Help: "test"}, []string{"capacity_type"})
	size := func(capacityType string) float64 { return testutil.ToFloat64(g.WithLabelValues(capacityType)) }
	u := newUnavailableOfferings(3*time.Minute, g)
	if size("spot") != 0 || size("on-demand") != 0 {
		t.Fatalf("a new cache reads spot=%v on-demand=%v, want 0 and 0", size("spot"), size("on-demand"))
	}

	u.MarkUnavailable(solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot"}, t0)
	u.MarkUnavailable(solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1b", CapacityType: "spot"}, t0.Add(time.Minute))
	u.MarkUnavailable(solver.OfferingKey{InstanceType: "c5.large", Zone: "us-east-1a", CapacityType: "on-demand"}, t0.Add(time.Minute))
	u.MarkUnavailable(solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot"}, t0.Add(time.Minute)) // refused again
	if size("spot") != 2 || size("on-demand") != 1 {
		t.Errorf("after three refused offerings, spot=%v on-demand=%v, want 2 and 1", size("spot"), size("on-demand"))
	}

	// The first refusal would expire at t0+3m, but it was refused again
	// at t0+1m: every entry lives until t0+4m.
	if got := len(u.At(t0.Add(3 * time.Minute))); got != 3 || size("spot") != 2 {
		t.Errorf("before any expiry: %d unavailable, spot gauge %v; want 3 and 2", got, size("spot"))
	}
	if got := len(u.At(t0.Add(4 * time.Minute))); got != 0 || size("spot") != 0 || size("on-demand") != 0 {
		t.Errorf("once every entry expired: %d unavailable, spot=%v on-demand=%v; want all 0", got, size("spot"), size("on-demand"))
	}

	// A write forgets what expired as well, without waiting for a read.
	u.MarkUnavailable(solver.OfferingKey{InstanceType: "r5.large", Zone: "us-east-1a", CapacityType: "spot"}, t0.Add(10*time.Minute))
	u.MarkUnavailable(solver.OfferingKey{InstanceType: "r5.xlarge", Zone: "us-east-1a", CapacityType: "spot"}, t0.Add(20*time.Minute))
	if size("spot") != 1 {
		t.Errorf("a mark after the first entry expired: spot=%v, want 1", size("spot"))
	}
}

func TestMetricsMachineReasons(t *testing.T) {
	machine := func(name string) *clusterv1.Machine {
		return &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics-test", Name: name, Labels: map[string]string{
			clusterv1.ClusterNameLabel: "reasons", v1alpha1.LabelNodePool: "general", v1alpha1.LabelCapacityType: "spot",
		}}}
	}
	count := func(metric, reason string) float64 {
		t.Helper()
		families, err := crmetrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != metric {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["namespace"] == "metrics-test" && labels["cluster"] == "reasons" && labels["nodepool"] == "general" &&
					labels["capacity_type"] == "spot" && labels["reason"] == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	before := map[string]float64{
		"provisioning": count("joinery_machines_created_total", "provisioning"),
		"replacement":  count("joinery_machines_created_total", "replacement"),
		"ice":          count("joinery_machines_deleted_total", "insufficient_capacity"),
		"timeout":      count("joinery_machines_deleted_total", "registration_timeout"),
	}
	countCreated(machine("a"), false)
	countCreated(machine("b"), true)
	countDeleted(machine("a"), "InsufficientCapacity")
	countDeleted(machine("b"), "RegistrationTimeout")
	for name, got := range map[string]float64{
		"provisioning": count("joinery_machines_created_total", "provisioning"),
		"replacement":  count("joinery_machines_created_total", "replacement"),
		"ice":          count("joinery_machines_deleted_total", "insufficient_capacity"),
		"timeout":      count("joinery_machines_deleted_total", "registration_timeout"),
	} {
		if got != before[name]+1 {
			t.Errorf("%s: counter went from %v to %v, want one more", name, before[name], got)
		}
	}
}
