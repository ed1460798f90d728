package disruption

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/joinery-dev/joinery/controllers/provisioning"
)

func workloadScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A PDB list that fails must block every candidate: before, it was read
// as "no PDBs" and the nodes were disrupted past budgets nobody checked.
func TestFailedPDBListBlocks(t *testing.T) {
	failing := fake.NewClientBuilder().WithScheme(workloadScheme(t)).WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("the server is currently unable to handle the request")
		},
	}).Build()
	r := &round{Controller: &Controller{Recorder: record.NewFakeRecorder(10)}, ctx: context.Background(),
		st: &provisioning.ClusterState{Live: failing}}
	c := candidate()
	c.Pods = []*corev1.Pod{appPod("web-1", nil)}
	if got := r.unblocked([]*Candidate{c}); len(got) != 0 {
		t.Fatalf("a candidate passed while the PDBs could not be listed")
	}
	if why := r.kept[c.Machine.Name]; !strings.Contains(why, "PodDisruptionBudgets cannot be listed") {
		t.Errorf("kept for %q, want the failed list named", why)
	}
}

// A crash between tainting a node and deleting (or annotating) its
// Machine left the taint for good; the next pass must remove it, and only
// from nodes whose Machine is not on its way out.
func TestStaleDisruptedTaintsAreRemoved(t *testing.T) {
	tainted := func(name string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "gpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: TaintDisrupted, Effect: corev1.TaintEffectNoSchedule},
		}}}
	}
	machine := func(name, node string) clusterv1.Machine {
		m := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		m.Status.NodeRef = clusterv1.MachineNodeReference{Name: node}
		return m
	}
	stale, deleting, replacing := tainted("stale"), tainted("deleting"), tainted("replacing")
	workload := fake.NewClientBuilder().WithScheme(workloadScheme(t)).WithObjects(stale, deleting, replacing).Build()
	mDeleting := machine("m-deleting", "deleting")
	mDeleting.DeletionTimestamp = &metav1.Time{Time: t0}
	mReplacing := machine("m-replacing", "replacing")
	mReplacing.Annotations = map[string]string{AnnotationReplacedBy: "m-new"}
	r := &round{Controller: &Controller{Recorder: record.NewFakeRecorder(10)}, ctx: context.Background(), log: logr.Discard(),
		st: &provisioning.ClusterState{
			Live: workload, Workload: workload,
			Machines: []clusterv1.Machine{machine("m-stale", "stale"), mDeleting, mReplacing},
			Nodes:    map[string]*corev1.Node{"stale": stale, "deleting": deleting, "replacing": replacing},
		}}
	r.removeStaleTaints()
	for name, want := range map[string]bool{"stale": false, "deleting": true, "replacing": true} {
		var n corev1.Node
		if err := workload.Get(context.Background(), client.ObjectKey{Name: name}, &n); err != nil {
			t.Fatal(err)
		}
		if got := hasTaint(&n, TaintDisrupted); got != want {
			t.Errorf("node %s: disrupted taint %v, want %v", name, got, want)
		}
		if !hasTaint(&n, "gpu") {
			t.Errorf("node %s lost its other taint", name)
		}
	}
}

// consolidateAfter counts from the last pod departure too: a node whose
// only pod just left is not "unchanged for 30s" because that pod arrived
// long ago.
func TestConsolidateAfterCountsDepartures(t *testing.T) {
	c := candidate()
	old := appPod("web-1", nil)
	old.UID, old.CreationTimestamp = "u1", metav1.Time{Time: t0}
	stay := appPod("web-2", nil)
	stay.UID, stay.CreationTimestamp = "u2", metav1.Time{Time: t0}
	node := c.Node.Name
	at := t0.Add(time.Hour)

	seen := departures(nil).observe(map[string][]*corev1.Pod{node: {old, stay}}, []string{node}, at)
	if got := seen[node].lastChange; !got.Equal(at) {
		t.Errorf("a node seen first counts as changed now: lastGone %s, want %s", got, at)
	}
	// Nothing changes for an hour: the record keeps the first sight.
	seen = seen.observe(map[string][]*corev1.Pod{node: {old, stay}}, []string{node}, at.Add(time.Hour))
	if got := seen[node].lastChange; !got.Equal(at) {
		t.Errorf("no departure moved lastGone to %s", got)
	}
	// web-1 is deleted between two passes.
	left := at.Add(2 * time.Hour)
	seen = seen.observe(map[string][]*corev1.Pod{node: {stay}}, []string{node}, left)
	if got := seen[node].lastChange; !got.Equal(left) {
		t.Fatalf("departure not recorded: lastGone %s, want %s", got, left)
	}
	c.Pods = []*corev1.Pod{stay}
	c.LastPodChange = lastPodChange(c.Node, c.Pods, seen[node].lastChange, left)
	if ok, why := Consolidatable(c, left.Add(10*time.Second)); ok || !strings.Contains(why, "arrived or left") {
		t.Errorf("consolidatable 10s after a pod left, with consolidateAfter 30s (%q)", why)
	}
	if ok, why := Consolidatable(c, left.Add(time.Minute)); !ok {
		t.Errorf("not consolidatable a minute after the departure: %s", why)
	}
	// A terminating pod counts from its deletion timestamp.
	terminating := appPod("web-3", nil)
	terminating.CreationTimestamp = metav1.Time{Time: t0}
	terminating.DeletionTimestamp = &metav1.Time{Time: left.Add(5 * time.Minute)}
	if got := lastPodChange(c.Node, []*corev1.Pod{stay, terminating}, time.Time{}, left.Add(time.Hour)); !got.Equal(terminating.DeletionTimestamp.Time) {
		t.Errorf("lastPodChange %s, want the deletion timestamp", got)
	}
}

// Clock skew: with the apiserver 10 minutes ahead, a pod created "now"
// carries a timestamp 10 minutes in the future; with it 10 minutes behind,
// the pod looks 10 minutes old the moment it lands. Neither may make
// consolidateAfter (30s) pass early or never.
func TestConsolidateAfterToleratesClockSkew(t *testing.T) {
	c := candidate()
	node := c.Node.Name
	now := t0.Add(5 * time.Hour)
	first := appPod("web-1", nil)
	first.UID, first.CreationTimestamp = "u1", metav1.Time{Time: t0}
	seen := departures(nil).observe(map[string][]*corev1.Pod{node: {first}}, []string{node}, now.Add(-time.Hour))

	for _, tc := range []struct {
		name string
		skew time.Duration // apiserver clock minus manager clock
	}{{"apiserver ahead", 10 * time.Minute}, {"apiserver behind", -10 * time.Minute}} {
		arrived := appPod("web-2", nil)
		arrived.UID, arrived.CreationTimestamp = "u2", metav1.Time{Time: now.Add(tc.skew)}
		pods := []*corev1.Pod{first, arrived}
		s := seen.observe(map[string][]*corev1.Pod{node: pods}, []string{node}, now)
		c.Pods = pods
		c.LastPodChange = lastPodChange(c.Node, pods, s[node].lastChange, now)
		if ok, _ := Consolidatable(c, now.Add(10*time.Second)); ok {
			t.Errorf("%s: consolidatable 10s after a pod arrived", tc.name)
		}
		later := now.Add(time.Minute)
		c.LastPodChange = lastPodChange(c.Node, pods, s.observe(map[string][]*corev1.Pod{node: pods}, []string{node}, later)[node].lastChange, later)
		if ok, why := Consolidatable(c, later); !ok {
			t.Errorf("%s: not consolidatable a minute after the arrival: %s", tc.name, why)
		}
	}
}
