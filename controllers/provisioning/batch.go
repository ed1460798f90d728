package provisioning

import (
	"sync"
	"time"
)

// Batches decides, per workload cluster, when enough pending pods have
// gathered to plan for them: a window opens with the first pending pod and
// closes once no new pending pod arrived for Idle, or Max after it opened,
// whichever comes first. Planning per pod would launch a machine per pod
// during a scale-up; waiting for a quiet second lets one plan pack them.
type Batches struct {
	Idle, Max time.Duration

	mu      sync.Mutex
	windows map[string]*window
}

type window struct{ opened, lastPod time.Time }

// NewBatches returns batches with the given idle and maximum durations.
func NewBatches(idle, max time.Duration) *Batches {
	return &Batches{Idle: idle, Max: max, windows: map[string]*window{}}
}

// PodPending records that a pending pod was seen in cluster at now.
func (b *Batches) PodPending(cluster string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.windows[cluster]
	if w == nil {
		b.windows[cluster] = &window{opened: now, lastPod: now}
		return
	}
	if now.After(w.lastPod) {
		w.lastPod = now
	}
}

// Ready reports whether cluster's window has closed at now, and if not,
// how long to wait before asking again. A cluster with no open window is
// not ready (and wait is zero).
func (b *Batches) Ready(cluster string, now time.Time) (ready bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.windows[cluster]
	if w == nil {
		return false, 0
	}
	untilIdle := w.lastPod.Add(b.Idle).Sub(now)
	untilMax := w.opened.Add(b.Max).Sub(now)
	wait = min(untilIdle, untilMax)
	if wait <= 0 {
		return true, 0
	}
	return false, wait
}

// Close ends cluster's window; pods seen after it open a new one.
func (b *Batches) Close(cluster string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.windows, cluster)
}
