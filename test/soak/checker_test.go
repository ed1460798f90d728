package soak

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// The checker's verdicts on hand-made observations: each invariant must
// be able to fail, and must not blame Joinery for what a fault did.

func newTestChecker(t *testing.T) *checker {
	t.Helper()
	hist, err := newHistory(filepath.Join(t.TempDir(), "history.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hist.Close() })
	return &checker{opts: Short(1), hist: hist, faulted: newFaultLog(),
		orphans: map[string]bool{}, orphanSince: map[string]time.Time{}, disrupting: map[string]bool{},
		pendingSince: map[string]time.Time{}, pendingBlamed: map[string]bool{}, served: map[string]bool{},
		evictionsSeen: map[string]bool{}, nodeStores: map[string]cache.Store{}}
}

func soakPod(app, node, disruption string, annotations map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: app + "-1", UID: types.UID("uid-" + app), Labels: map[string]string{"app": app, "soak": "true"}, Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: node},
	}
	if disruption != "" {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: disruption})
	}
	return p
}

func TestCheckerPodDisruptions(t *testing.T) {
	dnd := map[string]string{annotationDoNotDisrup: "true"}
	cases := []struct {
		name        string
		pod         *corev1.Pod
		faultedNode bool
		wantPDB     int
		wantDND     int
	}{
		{name: "a budgeted pod evicted through the eviction API", pod: soakPod("web", "n1", "EvictionByEvictionAPI", nil)},
		{name: "a budgeted pod removed with its node (pod GC)", pod: soakPod("web", "n1", "DeletionByPodGC", nil), wantPDB: 1},
		{name: "a budgeted pod removed with its node, the node terminated by a fault", pod: soakPod("web", "n1", "DeletionByPodGC", nil), faultedNode: true},
		{name: "a pod without a budget removed with its node", pod: soakPod("spot", "n1", "DeletionByPodGC", nil)},
		{name: "a do-not-disrupt pod evicted", pod: soakPod("pinned", "n1", "EvictionByEvictionAPI", dnd), wantDND: 1},
		{name: "a do-not-disrupt pod evicted from an interrupted spot node", pod: soakPod("pinned", "n1", "EvictionByEvictionAPI", dnd), faultedNode: true},
		{name: "a do-not-disrupt pod scaled away (no DisruptionTarget)", pod: soakPod("pinned", "n1", "", dnd)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newTestChecker(t)
			if tc.faultedNode {
				k.faulted.addNode("n1", "spot interruption")
			}
			k.seePod("workload-1", tc.pod, false)
			k.seePod("workload-1", tc.pod, true) // the same disruption seen twice counts once
			if k.pdb != tc.wantPDB || k.dnd != tc.wantDND {
				t.Errorf("pdb violations %d, dnd violations %d; want %d, %d (breaches %v)", k.pdb, k.dnd, tc.wantPDB, tc.wantDND, k.breaches)
			}
			if len(k.breaches) != tc.wantPDB+tc.wantDND {
				t.Errorf("%d breaches recorded, want %d", len(k.breaches), tc.wantPDB+tc.wantDND)
			}
		})
	}
}

func TestCheckerBudgets(t *testing.T) {
	// A minute that is in no budget window of pool general.
	open := time.Date(2026, 12, 5, 12, 3, 30, 0, time.UTC)
	window := time.Date(2026, 12, 5, 12, 5, 30, 0, time.UTC)
	machine := func(name, pool, node string, deleting bool, replacedBy string) clusterv1.Machine {
		m := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNodePool: pool}, Annotations: map[string]string{}}}
		m.Spec.ClusterName = "workload-1"
		m.Status.NodeRef = clusterv1.MachineNodeReference{Name: node}
		if deleting {
			m.DeletionTimestamp = &metav1.Time{Time: open}
		}
		if replacedBy != "" {
			m.Annotations[annotationReplacedBy] = replacedBy
		}
		return m
	}
	node := func(name string, tainted bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if tainted {
			n.Spec.Taints = []corev1.Taint{{Key: taintDisrupted, Effect: corev1.TaintEffectNoSchedule}}
		}
		return n
	}
	cases := []struct {
		name     string
		at       time.Time
		machines []clusterv1.Machine
		nodes    []*corev1.Node
		faulted  []string
		want     int
	}{
		{name: "one of general disrupting, budget 1", at: open,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, "")},
			nodes:    []*corev1.Node{node("n1", true)}},
		{name: "two of general disrupting, budget 1", at: open,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, ""), machine("g2", poolGeneral, "n2", false, "g3")},
			nodes:    []*corev1.Node{node("n1", true), node("n2", true)}, want: 2},
		{name: "one of general disrupting in its no-disruption window", at: window,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, "")},
			nodes:    []*corev1.Node{node("n1", true)}, want: 1},
		{name: "a Machine deleted without Joinery's taint is no disruption of Joinery's", at: window,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, "")},
			nodes:    []*corev1.Node{node("n1", false)}},
		{name: "a tainted node whose Machine is neither deleting nor replaced (a stale taint)", at: open,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, ""), machine("g2", poolGeneral, "n2", false, "")},
			nodes:    []*corev1.Node{node("n1", true), node("n2", true)}},
		{name: "two of batch disrupting, budget 2", at: window,
			machines: []clusterv1.Machine{machine("b1", poolBatch, "n1", true, ""), machine("b2", poolBatch, "n2", true, "")},
			nodes:    []*corev1.Node{node("n1", true), node("n2", true)}},
		{name: "two of general, one on a node a fault took", at: open,
			machines: []clusterv1.Machine{machine("g1", poolGeneral, "n1", true, ""), machine("g2", poolGeneral, "n2", true, "")},
			nodes:    []*corev1.Node{node("n1", true), node("n2", true)}, faulted: []string{"n2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newTestChecker(t)
			store := cache.NewStore(cache.MetaNamespaceKeyFunc)
			for _, n := range tc.nodes {
				_ = store.Add(n)
			}
			k.nodeStores["workload-1"] = store
			for _, n := range tc.faulted {
				k.faulted.addNode(n, "terminated out of band")
			}
			k.checkBudgets(tc.machines, tc.at)
			if k.budget != tc.want {
				t.Errorf("budget violations %d, want %d: %s", k.budget, tc.want, strings.Join(k.breaches, "\n"))
			}
			// Seen again, the same disruptions are not counted again.
			k.checkBudgets(tc.machines, tc.at)
			if k.budget != tc.want {
				t.Errorf("after a second look: budget violations %d, want %d", k.budget, tc.want)
			}
		})
	}
}

func TestBudgetAllowsReadsTheWindow(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), 0},
		{time.Date(2026, 12, 5, 12, 0, 59, 0, time.UTC), 0},
		{time.Date(2026, 12, 5, 12, 1, 0, 0, time.UTC), generalBudget},
		{time.Date(2026, 12, 5, 12, 4, 59, 0, time.UTC), generalBudget},
		{time.Date(2026, 12, 5, 12, 55, 10, 0, time.UTC), 0},
	} {
		if got := budgetAllows(poolGeneral, tc.at); got != tc.want {
			t.Errorf("budgetAllows(general, %s) = %d, want %d", tc.at.Format(time.TimeOnly), got, tc.want)
		}
	}
}
