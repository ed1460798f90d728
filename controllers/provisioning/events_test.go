package provisioning

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
)

func eventPod(i int) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("web-%d", i), UID: types.UID(fmt.Sprintf("uid-%d", i))}}
}

// drained is drain's Events one by one.
func drained(r *record.FakeRecorder) []string {
	s := drain(r)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Follows Karpenter's PodNominationRateLimiter (pkg/controllers/provisioning/
// scheduling/events.go: 5 per second, 10 at once), and its events suite's
// "should only create a single event when many events are created quickly"
// for the pacing: a burst's pods are told at that pace, per cluster.
func TestNominationsArePacedPerCluster(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	fakeA, fakeB := record.NewFakeRecorder(1000), record.NewFakeRecorder(1000)
	a, b := newClusterRecorder(nil, fakeA, clk), newClusterRecorder(nil, fakeB, clk)
	for i := range 50 {
		a.nominated(eventPod(i), "Pod should schedule on Machine %s", "m-1")
	}
	if got := len(drained(fakeA)); got != nominationsAtOnce {
		t.Fatalf("50 pods nominated at once: %d Events, want %d", got, nominationsAtOnce)
	}
	for i := range 50 {
		b.nominated(eventPod(i), "Pod should schedule on Machine %s", "m-2")
	}
	if got := len(drained(fakeB)); got != nominationsAtOnce {
		t.Fatalf("another cluster's pods share the first cluster's pace: %d Events, want %d", got, nominationsAtOnce)
	}
	clk.Step(time.Second)
	for i := 50; i < 100; i++ {
		a.nominated(eventPod(i), "Pod should schedule on Machine %s", "m-3")
	}
	got := drained(fakeA)
	if len(got) != nominationsPerSecond {
		t.Fatalf("a second later: %d Events, want %d", len(got), nominationsPerSecond)
	}
	if !strings.HasPrefix(got[0], "Normal Nominated Pod should schedule on Machine m-3") {
		t.Errorf("Event %q", got[0])
	}
}

// Follows Karpenter's PodFailedToScheduleEvent (DedupeValues: the pod's
// UID, DedupeTimeout 5 minutes), keyed on the message too: a new reason is
// news, and so is a failure after a decision for the pod.
func TestFailedProvisioningIsToldOncePerReason(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	fake := record.NewFakeRecorder(100)
	r := newClusterRecorder(nil, fake, clk)
	limits := "Joinery found no machine for the pod: nodepool \"capped\": pool limits reached"
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"first failure", func() { r.failedProvisioning(eventPod(1), limits) }, 1},
		{"the same on the next replan", func() { r.failedProvisioning(eventPod(1), limits) }, 0},
		{"another pod, same reason", func() { r.failedProvisioning(eventPod(2), limits) }, 1},
		{"the same pod re-created under its name", func() {
			p := eventPod(1)
			p.UID = "uid-1-again"
			r.failedProvisioning(p, limits)
		}, 1},
		{"a new reason", func() { r.failedProvisioning(eventPod(1), "Joinery found no machine for the pod: no offering fits") }, 1},
		{"the first reason again", func() { r.failedProvisioning(eventPod(1), limits) }, 1},
		{"the same once more", func() { r.failedProvisioning(eventPod(1), limits) }, 0},
		{"after a decision for the pod", func() {
			r.nominated(eventPod(1), "Pod should schedule on Machine m-1")
			drain(fake)
			r.failedProvisioning(eventPod(1), limits)
		}, 1},
		{"within five minutes", func() { clk.Step(failedToldFor - time.Second); r.failedProvisioning(eventPod(1), limits) }, 0},
		{"after five minutes", func() { clk.Step(2 * time.Second); r.failedProvisioning(eventPod(1), limits) }, 1},
	}
	for _, s := range steps {
		s.do()
		got := drained(fake)
		if len(got) != s.want {
			t.Fatalf("%s: %d Events %q, want %d", s.name, len(got), got, s.want)
		}
		for _, e := range got {
			if !strings.HasPrefix(e, "Warning FailedProvisioning ") {
				t.Errorf("%s: Event %q", s.name, e)
			}
		}
	}
}
