package provisioning

import (
	"testing"
	"time"

	"github.com/joinery-dev/joinery/solver"
)

func TestBatchWindows(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		rule      string
		pods      []time.Duration // when pending pods were seen
		ask       time.Duration
		wantReady bool
		wantWait  time.Duration
	}{
		{"no pending pod, nothing to plan", nil, 5 * time.Second, false, 0},
		{"a lone pod waits one idle second", []time.Duration{0}, 500 * time.Millisecond, false, 500 * time.Millisecond},
		{"a quiet second closes the window", []time.Duration{0}, time.Second, true, 0},
		{"each new pod restarts the idle second", []time.Duration{0, 800 * time.Millisecond}, 1500 * time.Millisecond, false, 300 * time.Millisecond},
		{"a steady stream is cut at the maximum", []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second, 9900 * time.Millisecond}, 9950 * time.Millisecond, false, 50 * time.Millisecond},
		{"the maximum closes the window however busy", []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second, 9900 * time.Millisecond}, 10 * time.Second, true, 0},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			b := NewBatches(time.Second, 10*time.Second)
			for _, p := range tc.pods {
				b.PodPending("c1", at(p))
			}
			ready, wait := b.Ready("c1", at(tc.ask))
			if ready != tc.wantReady || wait != tc.wantWait {
				t.Errorf("Ready = %v, wait %v; want %v, %v", ready, wait, tc.wantReady, tc.wantWait)
			}
		})
	}
}

func TestBatchWindowsAreCloseablePerCluster(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	b := NewBatches(time.Second, 10*time.Second)
	b.PodPending("c1", t0)
	b.PodPending("c2", t0)
	b.Close("c1")
	if ready, _ := b.Ready("c1", t0.Add(2*time.Second)); ready {
		t.Error("a closed window is still ready")
	}
	if ready, _ := b.Ready("c2", t0.Add(2*time.Second)); !ready {
		t.Error("closing c1 closed c2")
	}
	b.PodPending("c1", t0.Add(3*time.Second))
	if ready, wait := b.Ready("c1", t0.Add(3500*time.Millisecond)); ready || wait != 500*time.Millisecond {
		t.Errorf("a pod after Close must open a fresh window: ready %v wait %v", ready, wait)
	}
}

func TestUnavailableOfferingsExpire(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	u := NewUnavailableOfferings(3 * time.Minute)
	key := solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot"}
	u.MarkUnavailable(key, t0)
	if got := u.At(t0.Add(2 * time.Minute)); !got.Has("m5.large", "us-east-1a", "spot") || got.Has("m5.large", "us-east-1b", "spot") {
		t.Errorf("within the TTL: %v", got)
	}
	if got := u.At(t0.Add(3 * time.Minute)); len(got) != 0 {
		t.Errorf("after the TTL the offering is still unavailable: %v", got)
	}
	u.MarkUnavailable(key, t0.Add(4*time.Minute))
	if got := u.At(t0.Add(5 * time.Minute)); !got.Has("m5.large", "us-east-1a", "spot") {
		t.Error("a new refusal must mark the offering again")
	}
}
