package coalesce

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// queue records how each key was woken.
type queue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	now   []reconcile.Request
	after map[reconcile.Request]time.Duration
}

func (q *queue) Add(r reconcile.Request) { q.now = append(q.now, r) }
func (q *queue) AddAfter(r reconcile.Request, d time.Duration) {
	if q.after == nil {
		q.after = map[reconcile.Request]time.Duration{}
	}
	q.after[r] = d
}

func clusterOf(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetLabels()[clusterv1.ClusterNameLabel]}}}
}

func machine(name, cluster string) *clusterv1.Machine {
	return &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{clusterv1.ClusterNameLabel: cluster}}}
}

// Wakes follows the rule its package states: a change after a quiet period
// wakes at once; changes within Every of the key's last round wake it
// when Every has passed since that round, never sooner and never twice.
func TestWakes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	w := &Wakes{Every: 2 * time.Second, Now: func() time.Time { return now }}
	h := w.EnqueueRequestsFromMapFunc(clusterOf)
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}
	ctx := context.Background()

	t.Run("a key never looked at wakes at once", func(t *testing.T) {
		q := &queue{}
		h.Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if len(q.now) != 1 || q.now[0] != a || len(q.after) != 0 {
			t.Fatalf("woken at once %v, later %v; want a at once", q.now, q.after)
		}
	})
	t.Run("a change within the period wakes once the period since the round is over", func(t *testing.T) {
		w.Ran(a)
		now = t0.Add(500 * time.Millisecond)
		q := &queue{}
		h.Update(ctx, event.UpdateEvent{ObjectOld: machine("m1", "a"), ObjectNew: machine("m1", "a")}, q)
		if len(q.now) != 0 || q.after[a] != 1500*time.Millisecond {
			t.Fatalf("woken at once %v, later %v; want a after 1.5s", q.now, q.after)
		}
	})
	t.Run("another key is not held back by this one's round", func(t *testing.T) {
		q := &queue{}
		h.Delete(ctx, event.DeleteEvent{Object: machine("m2", "b")}, q)
		if len(q.now) != 1 || q.now[0] != b {
			t.Fatalf("woken at once %v, later %v; want b at once", q.now, q.after)
		}
	})
	t.Run("a change once the period passed wakes at once", func(t *testing.T) {
		now = t0.Add(2 * time.Second)
		q := &queue{}
		h.Generic(ctx, event.GenericEvent{Object: machine("m1", "a")}, q)
		if len(q.now) != 1 || len(q.after) != 0 {
			t.Fatalf("woken at once %v, later %v; want a at once", q.now, q.after)
		}
	})
	t.Run("a forgotten key wakes at once", func(t *testing.T) {
		w.Ran(a)
		w.Forget(a)
		q := &queue{}
		h.Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if len(q.now) != 1 || len(q.after) != 0 {
			t.Fatalf("woken at once %v, later %v; want a at once", q.now, q.after)
		}
	})
	t.Run("an update moving an object between keys wakes each once", func(t *testing.T) {
		q := &queue{}
		h.Update(ctx, event.UpdateEvent{ObjectOld: machine("m1", "a"), ObjectNew: machine("m1", "b")}, q)
		if len(q.now) != 2 {
			t.Fatalf("woken at once %v; want a and b", q.now)
		}
	})
	t.Run("a clock set back holds a key back one period at most", func(t *testing.T) {
		now = t0.Add(10 * time.Second)
		w.Ran(a)
		now = t0
		q := &queue{}
		h.Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if q.after[a] != 2*time.Second {
			t.Fatalf("woken later %v; want a after 2s", q.after)
		}
	})
	t.Run("a key held for longer waits until the hold is over", func(t *testing.T) {
		now = t0
		w.Hold(a, 10*time.Second)
		now = t0.Add(3 * time.Second)
		q := &queue{}
		h.Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if len(q.now) != 0 || q.after[a] != 7*time.Second {
			t.Fatalf("woken at once %v, later %v; want a after 7s", q.now, q.after)
		}
		w.Ran(a)
		q = &queue{}
		h.Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if q.after[a] != 2*time.Second {
			t.Fatalf("after a new round: woken later %v; want a after 2s (the round's own gap)", q.after)
		}
	})
	t.Run("no period wakes at once however recent the round", func(t *testing.T) {
		w0 := &Wakes{Now: func() time.Time { return now }}
		w0.Ran(a)
		q := &queue{}
		w0.EnqueueRequestsFromMapFunc(clusterOf).Create(ctx, event.CreateEvent{Object: machine("m1", "a")}, q)
		if len(q.now) != 1 || len(q.after) != 0 {
			t.Fatalf("woken at once %v, later %v; want a at once", q.now, q.after)
		}
	})
}
