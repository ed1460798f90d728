package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	for _, c := range []struct {
		p    int
		want time.Duration
	}{{50, 5 * time.Second}, {90, 9 * time.Second}, {99, 10 * time.Second}, {100, 10 * time.Second}, {1, time.Second}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%d of 1..10 s = %s, want %s", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %s, want 0", got)
	}
}

// Each pod is measured against the Machine whose Node it runs on, and a
// pod whose path is not complete yet keeps the burst open.
func TestBurstTrackerFollowsEachPodToItsNodesMachine(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	b := newBurstTrackerFor("demo", 2, 1)
	b.podSeen = map[string]time.Time{"w/a": at(0), "w/b": at(1)}
	b.podRunning = map[string]time.Time{"w/a": at(10), "w/b": at(12)}
	b.podNode = map[string]string{"w/a": "w/n1", "w/b": "w/n2"}
	b.nodeMachine = map[string]string{"w/n1": "m1", "w/n2": "m2"}
	b.machineSeen = map[string]time.Time{"m1": at(2), "m2": at(4)}
	b.awsReady = map[string]time.Time{"m1": at(7)}
	b.nodeReady = map[string]time.Time{"w/n1": at(8), "w/n2": at(9)}
	if b.complete() {
		t.Fatal("complete although m2's AWSMachine was never seen Ready")
	}
	b.awsReady["m2"] = at(9)
	if !b.complete() {
		t.Fatal("not complete with every step of both pods seen")
	}
	report := b.String()
	for _, want := range []string{
		"2 pods over 1 workload cluster(s) on 2 Machines",
		// a: 2, 7, 8, 10 s; b: 3, 8, 8, 11 s.
		"Machine created:      2.0    3.0    3.0",
		"AWSMachine Ready:     7.0    8.0    8.0",
		"Node Ready:           8.0    8.0    8.0",
		"pod Running:         10.0   11.0   11.0",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}
