package main

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/controllers/provisioning"
)

// The fleet-details line's median is what "worst cluster p99 ≤ 2× the
// median" is read against: the middle cluster for an odd count, the mean
// of the middle two for an even one, and the burst's p99 with one cluster.
func TestMedianClusterP99(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    result
		want float64
	}{
		{"odd count takes the middle cluster", result{PerClusterP99: map[string]float64{"a": 5, "b": 1, "c": 2}}, 2},
		{"even count takes the mean of the middle two", result{PerClusterP99: map[string]float64{"a": 4, "b": 1, "c": 2, "d": 9}}, 3},
		{"no per-cluster numbers fall back to the burst's p99", result{PendingToMachineP99: 1.5}, 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.medianClusterP99(); got != tc.want {
				t.Errorf("median = %v, want %v", got, tc.want)
			}
		})
	}
	r := result{PerClusterP99: map[string]float64{"a": 1, "b": 2, "c": 6}}
	if got := ratio(r.worstClusterP99(), r.medianClusterP99()); got != 3 {
		t.Errorf("worst/median = %v, want 3", got)
	}
}

func decidedMachine(t *testing.T, name string, pods ...string) *clusterv1.Machine {
	t.Helper()
	raw, err := json.Marshal(provisioning.Decision{NodePool: "bench", Pods: pods, PodCount: len(pods)})
	if err != nil {
		t.Fatal(err)
	}
	return &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{provisioning.AnnotationDecision: string(raw)}},
		Spec:       clusterv1.MachineSpec{ClusterName: "workload-1"},
	}
}

// A Machine counts for the burst when a pod it names still waits: a
// consolidation's replacement, named for pods already running, is not a
// Machine any pod of the burst waited for.
func TestReplacementsForBoundPodsAreNotTheBurstsMachines(t *testing.T) {
	obs := &observations{pending: map[string]time.Time{}, machined: map[string]machineSighting{}, bound: map[string]bool{}, podCount: map[string]int{}}
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	obs.seeBound("workload-1/default/web-1")
	obs.seeBound("workload-1/default/web-2")
	obs.seeMachine(decidedMachine(t, "replacement", "default/web-1", "default/web-2"), t0.Add(200*time.Second))
	if len(obs.machined) != 0 || len(obs.podCount) != 0 || !obs.lastMachine.IsZero() {
		t.Fatalf("a replacement for bound pods counted: machined %v, Machines %v, last at %v", obs.machined, obs.podCount, obs.lastMachine)
	}
	obs.seeMachine(decidedMachine(t, "launched", "default/web-1", "default/web-3"), t0.Add(5*time.Second))
	if got := obs.machined["workload-1/default/web-3"]; got.name != "launched" || !got.at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("the pending pod's Machine: %+v", got)
	}
	if _, ok := obs.podCount["launched"]; !ok || !obs.lastMachine.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("a Machine a pending pod waited for is not counted: %v, last at %v", obs.podCount, obs.lastMachine)
	}
}
