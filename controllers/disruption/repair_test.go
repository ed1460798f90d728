package disruption

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
)

func nodeWith(conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-5"}, Status: corev1.NodeStatus{Conditions: conds}}
}

func nodeCondition(t corev1.NodeConditionType, s corev1.ConditionStatus, since time.Duration) corev1.NodeCondition {
	return corev1.NodeCondition{Type: t, Status: s, LastTransitionTime: metav1.NewTime(t0.Add(-since))}
}

// markedByHealthCheck is a Machine a MachineHealthCheck found unhealthy;
// asked says whether it also asked the owner to remediate
// (OwnerRemediated=False), which it does only within its own unhealthy cap.
func markedByHealthCheck(m *clusterv1.Machine, asked bool) *clusterv1.Machine {
	conditions.Set(m, metav1.Condition{Type: clusterv1.MachineHealthCheckSucceededCondition, Status: metav1.ConditionFalse,
		Reason: clusterv1.MachineHealthCheckUnhealthyNodeReason, Message: "Condition Ready on Node is reporting status Unknown for more than 1s",
		LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))})
	if asked {
		conditions.Set(m, metav1.Condition{Type: clusterv1.MachineOwnerRemediatedCondition, Status: metav1.ConditionFalse,
			Reason: clusterv1.MachineOwnerRemediatedWaitingForRemediationReason})
	}
	return m
}

// The policies and their tolerations follow Karpenter's
// node/health/suite_test.go and disruption/repair_test.go.
func TestMachineHealth(t *testing.T) {
	policies := DefaultRepairPolicies()
	for _, tc := range []struct {
		name                string // Karpenter's test, where one exists
		machine             *clusterv1.Machine
		node                *corev1.Node
		unhealthy, eligible bool
		cause               string
	}{
		{name: "should not repair before the toleration duration elapses",
			machine: &clusterv1.Machine{}, node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionFalse, 29*time.Minute)),
			unhealthy: true, cause: "Ready=False"},
		{name: "should repair once Ready=False held for 30 minutes",
			machine: &clusterv1.Machine{}, node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionFalse, 30*time.Minute)),
			unhealthy: true, eligible: true, cause: "Ready=False"},
		{name: "should repair once Ready=Unknown held for 30 minutes",
			machine: &clusterv1.Machine{}, node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionUnknown, 31*time.Minute)),
			unhealthy: true, eligible: true, cause: "Ready=Unknown"},
		{name: "should not repair a node whose condition does not match any policy",
			machine: &clusterv1.Machine{}, node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionTrue, time.Hour), nodeCondition(corev1.NodeMemoryPressure, corev1.ConditionTrue, time.Hour))},
		{name: "should repair the condition with the shorter toleration first (AcceleratedHardwareReady, 10m)",
			machine: &clusterv1.Machine{}, node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionFalse, 15*time.Minute), nodeCondition("AcceleratedHardwareReady", corev1.ConditionFalse, 15*time.Minute)),
			unhealthy: true, eligible: true, cause: "AcceleratedHardwareReady=False"},
		{name: "a MachineHealthCheck's verdict is acted on at once: it has its own timeouts",
			machine: markedByHealthCheck(&clusterv1.Machine{}, true), node: nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionTrue, time.Hour)),
			unhealthy: true, eligible: true, cause: "MachineHealthCheck"},
		{name: "a MachineHealthCheck that did not ask for remediation (its own cap) is waited for",
			machine: markedByHealthCheck(&clusterv1.Machine{}, false), node: nodeWith(),
			unhealthy: true, cause: "MachineHealthCheck"},
		{name: "a Machine never registered is judged by its MachineHealthCheck alone",
			machine: markedByHealthCheck(&clusterv1.Machine{}, true), unhealthy: true, eligible: true, cause: "MachineHealthCheck"},
		{name: "a Machine never registered without a MachineHealthCheck is provisioning's (registration timeout)",
			machine: &clusterv1.Machine{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := MachineHealth(tc.machine, tc.node, policies, t0)
			if h.Unhealthy != tc.unhealthy || h.Eligible != tc.eligible || h.Cause != tc.cause {
				t.Errorf("got unhealthy=%v eligible=%v cause=%q (%s); want %v %v %q", h.Unhealthy, h.Eligible, h.Cause, h.Why, tc.unhealthy, tc.eligible, tc.cause)
			}
			if h.Unhealthy && h.Why == "" {
				t.Errorf("no words for why")
			}
		})
	}
}

// Without a MachineHealthCheck, every condition and toleration of the AWS
// provider's policies (karpenter-provider-aws CloudProvider.RepairPolicies,
// written out here rather than read from DefaultRepairPolicies) is honoured:
// held one second less than its toleration the node is unhealthy but not
// repaired, held its toleration it is repaired. The manager's default
// options carry them, with repair on.
func TestRepairPoliciesAreKarpenterAWSs(t *testing.T) {
	karpenterAWS := []struct {
		condition  corev1.NodeConditionType
		status     corev1.ConditionStatus
		toleration time.Duration
	}{
		{corev1.NodeReady, corev1.ConditionFalse, 30 * time.Minute},
		{corev1.NodeReady, corev1.ConditionUnknown, 30 * time.Minute},
		{"AcceleratedHardwareReady", corev1.ConditionFalse, 10 * time.Minute},
		{"StorageReady", corev1.ConditionFalse, 30 * time.Minute},
		{"NetworkingReady", corev1.ConditionFalse, 30 * time.Minute},
		{"KernelReady", corev1.ConditionFalse, 30 * time.Minute},
		{"ContainerRuntimeReady", corev1.ConditionFalse, 30 * time.Minute},
	}
	opts := DefaultOptions()
	if !opts.Repair {
		t.Errorf("repair is off by default; --node-repair turns it off, not on")
	}
	if len(opts.RepairPolicies) != len(karpenterAWS) {
		t.Errorf("%d default repair policies, Karpenter's AWS provider has %d", len(opts.RepairPolicies), len(karpenterAWS))
	}
	for _, p := range karpenterAWS {
		cause := fmt.Sprintf("%s=%s", p.condition, p.status)
		// The node is otherwise healthy, so only this condition decides.
		others := []corev1.NodeCondition{}
		if p.condition != corev1.NodeReady {
			others = append(others, nodeCondition(corev1.NodeReady, corev1.ConditionTrue, 2*time.Hour))
		}
		for _, tc := range []struct {
			held     time.Duration
			eligible bool
		}{{p.toleration - time.Second, false}, {p.toleration, true}, {p.toleration + time.Hour, true}} {
			node := nodeWith(append(others, nodeCondition(p.condition, p.status, tc.held))...)
			h := MachineHealth(&clusterv1.Machine{}, node, opts.RepairPolicies, t0)
			if !h.Unhealthy || h.Eligible != tc.eligible || h.Cause != cause {
				t.Errorf("%s held %s: unhealthy=%v eligible=%v cause=%q; want unhealthy, eligible=%v, cause %q", cause, tc.held, h.Unhealthy, h.Eligible, h.Cause, tc.eligible, cause)
			}
			if !strings.Contains(h.Why, "tolerated for "+p.toleration.String()) {
				t.Errorf("%s: why %q does not name the toleration %s", cause, h.Why, p.toleration)
			}
		}
	}
	// A condition with the healthy status is no verdict, however long held.
	for _, p := range karpenterAWS {
		node := nodeWith(nodeCondition(p.condition, corev1.ConditionTrue, 24*time.Hour))
		if h := MachineHealth(&clusterv1.Machine{}, node, opts.RepairPolicies, t0); h.Unhealthy {
			t.Errorf("%s=True for a day judged unhealthy: %s", p.condition, h.Why)
		}
	}
}

// Karpenter: disruption/repair_test.go "should stop repairing a NodePool
// when more than 20% of its nodes are unhealthy" and "should round the
// repair circuit-breaker threshold up for small NodePools".
func TestRepairTripped(t *testing.T) {
	for _, tc := range []struct {
		unhealthy, total int
		tripped          bool
	}{
		{1, 5, false}, {2, 5, true}, {2, 10, false}, {3, 10, true},
		{1, 1, false}, {1, 2, false}, {2, 2, true}, {1, 3, false}, {2, 3, true}, {0, 0, false},
	} {
		if got := RepairTripped(tc.unhealthy, tc.total); got != tc.tripped {
			t.Errorf("%d of %d unhealthy: tripped=%v, want %v", tc.unhealthy, tc.total, got, tc.tripped)
		}
	}
}

// repairFixture is a cluster with a pool of healthy registered Machines
// and Machines a MachineHealthCheck marked before their node registered
// (which repair deletes without a replacement, as nothing runs there).
type repairFixture struct {
	round    *round
	client   client.Client
	recorder *record.FakeRecorder
	sick     []string
}

func newRepairFixture(t *testing.T, healthy, sick int, budgets []v1alpha1.Budget) *repairFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clusterv1.AddToScheme, v1alpha1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	pool := candidate().Pool
	pool.Namespace = "default"
	pool.Spec.Disruption.Budgets = budgets
	st := &provisioning.ClusterState{Pools: []*v1alpha1.NodePool{pool}, Nodes: map[string]*corev1.Node{}, Pods: map[string][]*corev1.Pod{}}
	var objs []client.Object
	f := &repairFixture{}
	for i := 0; i < healthy+sick; i++ {
		m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("general-%d", i), UID: types.UID(fmt.Sprint("uid-", i)),
			Labels: map[string]string{v1alpha1.LabelNodePool: pool.Name}}, Spec: clusterv1.MachineSpec{ClusterName: "workload-1"}}
		if i < healthy {
			node := nodeWith(nodeCondition(corev1.NodeReady, corev1.ConditionTrue, time.Hour))
			node.Name = fmt.Sprintf("node-%d", i)
			st.Nodes[node.Name] = node
			m.Status.NodeRef = clusterv1.MachineNodeReference{Name: node.Name}
		} else {
			markedByHealthCheck(m, true)
			f.sick = append(f.sick, m.Name)
		}
		objs = append(objs, m.DeepCopy())
		st.Machines = append(st.Machines, *m)
	}
	f.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&clusterv1.Machine{}).Build()
	// The patch helper compares against what it read: the state's copies
	// carry the fake client's resource versions.
	for i := range st.Machines {
		if err := f.client.Get(context.Background(), client.ObjectKeyFromObject(&st.Machines[i]), &st.Machines[i]); err != nil {
			t.Fatal(err)
		}
	}
	f.recorder = record.NewFakeRecorder(100)
	f.round = &round{Controller: &Controller{Client: f.client, Recorder: f.recorder, Options: DefaultOptions()},
		ctx: context.Background(), log: logr.Discard(), st: st, now: t0}
	return f
}

func (f *repairFixture) machine(t *testing.T, name string) *clusterv1.Machine {
	t.Helper()
	m := &clusterv1.Machine{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatal(err)
	}
	return m
}

func (f *repairFixture) events() string {
	var out []string
	for len(f.recorder.Events) > 0 {
		out = append(out, <-f.recorder.Events)
	}
	return strings.Join(out, "\n")
}

// CAPI's contract for a remediating owner (machineset_controller.go):
// OwnerRemediated=False with reason MachineDeleting is written before the
// delete, so a crash in between leaves the reason.
func TestRepairDeletesAMarkedMachineAndReportsItRemediated(t *testing.T) {
	f := newRepairFixture(t, 4, 1, []v1alpha1.Budget{{Nodes: "100%"}})
	started, err := f.round.repair()
	if err != nil || !started {
		t.Fatalf("repair started=%v err=%v", started, err)
	}
	if m := f.machine(t, f.sick[0]); m != nil {
		t.Fatalf("Machine %s not deleted (deletionTimestamp %v)", m.Name, m.DeletionTimestamp)
	}
	if ev := f.events(); !strings.Contains(ev, "Disrupting Repair of "+f.sick[0]) {
		t.Errorf("events %q: want a Disrupting event naming the repair", ev)
	}
}

// Karpenter: disruption/repair_test.go "should not repair when the
// disruption budget is zero".
func TestRepairWaitsForTheUnhealthyBudget(t *testing.T) {
	f := newRepairFixture(t, 4, 1, []v1alpha1.Budget{{Nodes: "0", Reasons: []v1alpha1.DisruptionReason{v1alpha1.DisruptionReasonUnhealthy}}, {Nodes: "100%"}})
	started, err := f.round.repair()
	if err != nil || started {
		t.Fatalf("repair started=%v err=%v; want nothing started", started, err)
	}
	m := f.machine(t, f.sick[0])
	if m == nil || !m.DeletionTimestamp.IsZero() {
		t.Fatalf("Machine deleted despite a budget of 0 for reason Unhealthy")
	}
	c := conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition)
	if c == nil || c.Reason != RemediationDeferredReason || !strings.Contains(c.Message, "disruption budgets") {
		t.Errorf("OwnerRemediated %+v: want %s naming the budgets", c, RemediationDeferredReason)
	}
	if ev := f.events(); !strings.Contains(ev, "RepairDeferred") {
		t.Errorf("events %q: want RepairDeferred", ev)
	}
	// Said once: the next round writes and sends nothing new.
	if _, err := f.round.repair(); err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); ev != "" {
		t.Errorf("the same reason was reported again: %q", ev)
	}
}

// Karpenter: disruption/repair_test.go "should stop repairing a NodePool
// when more than 20% of its nodes are unhealthy".
func TestRepairStopsPastTwentyPercentUnhealthy(t *testing.T) {
	f := newRepairFixture(t, 3, 2, []v1alpha1.Budget{{Nodes: "100%"}})
	started, err := f.round.repair()
	if err != nil || started {
		t.Fatalf("repair started=%v err=%v with 2 of 5 nodes unhealthy", started, err)
	}
	for _, name := range f.sick {
		m := f.machine(t, name)
		if m == nil || !m.DeletionTimestamp.IsZero() {
			t.Fatalf("Machine %s deleted with 2 of 5 nodes unhealthy", name)
		}
		c := conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition)
		if c == nil || c.Reason != RemediationDeferredReason || !strings.Contains(c.Message, "2 of the 5 nodes") {
			t.Errorf("OwnerRemediated %+v: want the cap explained", c)
		}
	}
	if ev := f.events(); !strings.Contains(ev, "RepairBlocked") || !strings.Contains(ev, "more than 20%") {
		t.Errorf("events %q: want RepairBlocked naming the 20%% cap", ev)
	}
}

// CAPI's MachineSet removes OwnerRemediated from a Machine the
// MachineHealthCheck finds healthy again, so a later failure starts anew.
func TestRepairClearsOwnerRemediatedOnRecovery(t *testing.T) {
	f := newRepairFixture(t, 4, 1, []v1alpha1.Budget{{Nodes: "100%"}})
	m := &f.round.st.Machines[4]
	conditions.Set(m, metav1.Condition{Type: clusterv1.MachineHealthCheckSucceededCondition, Status: metav1.ConditionTrue, Reason: clusterv1.MachineHealthCheckSucceededReason})
	if err := f.client.Status().Update(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := f.round.repair(); err != nil {
		t.Fatal(err)
	}
	got := f.machine(t, m.Name)
	if got == nil || !got.DeletionTimestamp.IsZero() {
		t.Fatalf("a recovered Machine was deleted")
	}
	if conditions.Has(got, clusterv1.MachineOwnerRemediatedCondition) {
		t.Errorf("OwnerRemediated still set on a recovered Machine: %+v", conditions.Get(got, clusterv1.MachineOwnerRemediatedCondition))
	}
}
