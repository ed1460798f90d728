package provisioning

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/internal/solverinput"
)

// listRecorder is a workload reader that records the kinds listed.
type listRecorder struct {
	client.Reader
	mu    sync.Mutex
	kinds []string
}

func (r *listRecorder) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, fmt.Sprintf("%T", list))
	return nil
}

func (r *listRecorder) listed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.kinds...)
	sort.Strings(out)
	return out
}

func kindsOf(lists []client.ObjectList) []string {
	var out []string
	for _, l := range lists {
		out = append(out, fmt.Sprintf("%T", l))
	}
	sort.Strings(out)
	return out
}

// The kinds warmed ahead of the first plan are the kinds a plan lists: a
// kind added to one and not the other would be caught here.
func TestPlanningListsAreWhatAPlanLists(t *testing.T) {
	r := &listRecorder{}
	ps := &pass{ctx: context.Background(), workload: &workload{reader: r}}
	if err := ps.listPlanningObjects(&solverinput.Objects{}); err != nil {
		t.Fatal(err)
	}
	if got, want := r.listed(), kindsOf(planningLists()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("a plan lists %v, planningLists warms %v", got, want)
	}
}

// A cluster's planning informers start once per connection: again after
// the ClusterCache connected to it anew, again after the cluster was
// forgotten, never twice on one connection.
func TestPlanningCachesAreWarmedOncePerConnection(t *testing.T) {
	key := types.NamespacedName{Namespace: "fleet", Name: "c1"}
	p := &Provisioner{batches: NewBatches(time.Second, 10*time.Second), events: newWorkloadEvents(context.Background(), nil)}
	want := kindsOf(planningLists())
	waitFor := func(r *listRecorder, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(r.listed()) < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	first := &listRecorder{}
	p.warmPlanningCaches(key, first)
	p.warmPlanningCaches(key, first)
	waitFor(first, len(want))
	time.Sleep(100 * time.Millisecond) // a second warm-up would have listed by now
	if got := first.listed(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("warming twice on one connection listed %v, want each of %v once", got, want)
	}
	p.connectionChanged(context.Background(), &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
	second := &listRecorder{}
	p.warmPlanningCaches(key, second)
	waitFor(second, len(want))
	if got := second.listed(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the cluster connected anew, its reader listed %v, want %v", got, want)
	}
	p.forget(key)
	p.warmPlanningCaches(key, second)
	waitFor(second, 2*len(want))
	if got := len(second.listed()); got != 2*len(want) {
		t.Errorf("after the cluster was forgotten, %d lists in all on its reader, want %d", got, 2*len(want))
	}
}
