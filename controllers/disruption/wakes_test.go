package disruption

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/internal/coalesce"
)

type wakeQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	now   int
	after time.Duration
}

func (q *wakeQueue) Add(reconcile.Request)                         { q.now++ }
func (q *wakeQueue) AddAfter(_ reconcile.Request, d time.Duration) { q.after = d }

// A round over a cluster holds back the Machine changes that follow it
// for WakeGap (a provisioning burst rewrites each new Machine's status
// many times), whether it found work or, as here, a paused Cluster; a
// deleted Cluster's key is forgotten, so a Cluster made again under its
// name is looked at on its first change.
func TestRoundsHoldBackMachineChangesForWakeGap(t *testing.T) {
	if got := DefaultOptions().WakeGap; got != 2*time.Second {
		t.Fatalf("default WakeGap %s, want 2s", got)
	}
	s := runtime.NewScheme()
	if err := clusterv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: clusterv1.ClusterSpec{Paused: ptr.To(true)}}
	cl := fake.NewClientBuilder().WithScheme(s).WithObjects(cluster).Build()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Controller{Client: cl, Now: func() time.Time { return now }}
	c.wakes = coalesce.Wakes{Every: DefaultOptions().WakeGap, Now: c.Now}
	h := c.wakes.EnqueueRequestsFromMapFunc(clusterOfMachine)
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m", Labels: map[string]string{
		clusterv1.ClusterNameLabel: "a", v1alpha1.LabelNodePool: "pool"}}}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	ctx := context.Background()

	q := &wakeQueue{}
	h.Create(ctx, event.CreateEvent{Object: m}, q)
	if q.now != 1 {
		t.Fatalf("a cluster never looked at was not woken at once")
	}
	if _, err := c.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	now = now.Add(500 * time.Millisecond)
	q = &wakeQueue{}
	h.Update(ctx, event.UpdateEvent{ObjectOld: m, ObjectNew: m}, q)
	if q.now != 0 || q.after != 1500*time.Millisecond {
		t.Fatalf("a status rewrite 0.5 s after a round: woken at once %d time(s), later after %s; want once after 1.5s", q.now, q.after)
	}
	if err := cl.Delete(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	q = &wakeQueue{}
	h.Create(ctx, event.CreateEvent{Object: m}, q)
	if q.now != 1 {
		t.Fatalf("a deleted Cluster's key still held back its changes")
	}
}
