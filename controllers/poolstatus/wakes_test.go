package poolstatus

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
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

// A pool's pass, even one that failed after reading the pool, holds back
// its Machines' changes for wakeGap (a provisioning burst rewrites each
// new Machine's status many times); a deleted pool's key is forgotten.
func TestPassesHoldBackMachineChangesForWakeGap(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := clusterv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pool"}}
	cl := fake.NewClientBuilder().WithScheme(s).WithObjects(pool).WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("the server is currently unable to handle the request")
		},
	}).Build()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Reconciler{Client: cl, wakes: coalesce.Wakes{Every: wakeGap, Now: func() time.Time { return now }}}
	h := r.wakes.EnqueueRequestsFromMapFunc(poolOfMachine)
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m", Labels: map[string]string{v1alpha1.LabelNodePool: "pool"}}}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pool)}
	ctx := context.Background()

	if _, err := r.Reconcile(ctx, req); err == nil {
		t.Fatal("the failing Machine list was not reported")
	}
	now = now.Add(time.Second)
	q := &wakeQueue{}
	h.Update(ctx, event.UpdateEvent{ObjectOld: m, ObjectNew: m}, q)
	if q.now != 0 || q.after != time.Second {
		t.Fatalf("a status rewrite 1 s after a pass: woken at once %d time(s), later after %s; want once after 1s", q.now, q.after)
	}
	if err := cl.Delete(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	q = &wakeQueue{}
	h.Create(ctx, event.CreateEvent{Object: m}, q)
	if q.now != 1 {
		t.Fatalf("a deleted pool's key still held back its Machines' changes")
	}
}
