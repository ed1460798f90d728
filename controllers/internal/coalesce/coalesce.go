// Package coalesce wakes a controller's key on watched changes at most
// once per period. During a provisioning burst CAPI and CAPA rewrite each
// new Machine's status many times; a loop that rebuilds a whole cluster's
// state on each rewrite spends the manager's CPU finding, over and over,
// that provisioning is at work. Karpenter's disruption only polls (every
// 10 s); Joinery's loops keep their watches, so a change after a quiet
// period still wakes its key at once, and the changes that follow within
// the period wake it once, when the period since the last round is over.
package coalesce

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Wakes remembers, for each key, until when changes are held back.
type Wakes struct {
	// Every is the shortest gap between a key's round and the next one a
	// watched change causes; zero wakes the key at once on every change.
	Every time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu   sync.Mutex
	held map[reconcile.Request]hold
}

// hold is until when a key's changes wait, and for how long they were
// held (the bound on any wait, see delay).
type hold struct {
	until time.Time
	span  time.Duration
}

// Ran records that req's round starts now. A round the key's own requeue
// started counts too: it read everything a change would make it read.
func (w *Wakes) Ran(req reconcile.Request) {
	w.Hold(req, w.Every)
}

// Hold holds req's changes back for d from now: a round that found only
// something to wait for (provisioning at work) and requeued itself after
// d has nothing to read in a change before then.
func (w *Wakes) Hold(req reconcile.Request, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held == nil {
		w.held = map[reconcile.Request]hold{}
	}
	w.held[req] = hold{until: w.now().Add(d), span: d}
}

// Forget drops a key whose object is gone.
func (w *Wakes) Forget(req reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.held, req)
}

// delay is how long after now a change may wake req.
func (w *Wakes) delay(req reconcile.Request) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.held[req]
	if !ok || h.span <= 0 {
		return 0
	}
	// Bounded by the span held: a clock set back (a test's, or one
	// stepped by NTP) must not hold a key back longer than that.
	return min(h.span, max(0, h.until.Sub(w.now())))
}

func (w *Wakes) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

func (w *Wakes) wake(q workqueue.TypedRateLimitingInterface[reconcile.Request], reqs []reconcile.Request, seen map[reconcile.Request]bool) {
	for _, req := range reqs {
		if seen[req] {
			continue
		}
		seen[req] = true
		// The workqueue keeps the earlier of two wake-ups of one key, so
		// a delayed wake never postpones a requeue already due sooner,
		// and many changes within the period leave one wake.
		if d := w.delay(req); d > 0 {
			q.AddAfter(req, d)
		} else {
			q.Add(req)
		}
	}
}

// EnqueueRequestsFromMapFunc is handler.EnqueueRequestsFromMapFunc whose
// requests wake their keys as Wakes allows.
func (w *Wakes) EnqueueRequestsFromMapFunc(fn handler.MapFunc) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			w.wake(q, fn(ctx, e.Object), map[reconcile.Request]bool{})
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			seen := map[reconcile.Request]bool{}
			w.wake(q, fn(ctx, e.ObjectOld), seen)
			w.wake(q, fn(ctx, e.ObjectNew), seen)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			w.wake(q, fn(ctx, e.Object), map[reconcile.Request]bool{})
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			w.wake(q, fn(ctx, e.Object), map[reconcile.Request]bool{})
		},
	}
}

// EnqueueRequestForObject wakes the object's own key as Wakes allows.
func (w *Wakes) EnqueueRequestForObject() handler.EventHandler {
	return w.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
	})
}
