package provisioning

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// updateCase is one update of an object and whether it wakes a pass.
type updateCase[T client.Object] struct {
	name   string
	mutate func(T)
	want   bool
}

func checkUpdates[T client.Object](t *testing.T, p predicate.Predicate, base T, cases []updateCase[T]) {
	t.Helper()
	for _, tc := range cases {
		after := base.DeepCopyObject().(T)
		tc.mutate(after)
		if got := p.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: after}); got != tc.want {
			t.Errorf("%s: a pass is woken: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !p.Create(event.CreateEvent{Object: base}) || !p.Delete(event.DeleteEvent{Object: base}) {
		t.Error("a creation or deletion does not wake a pass")
	}
}

// CAPI's status rewrites of a booting Machine wake no pass; what a pass
// reads of a Machine does (its decision, references, nodeRef, deletion).
func TestMachineChangedIgnoresStatusRewrites(t *testing.T) {
	base := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", ResourceVersion: "1",
			Labels:      map[string]string{v1alpha1.LabelNodePool: "general"},
			Annotations: map[string]string{AnnotationDecision: `{"nodePool":"general"}`}},
		Spec: clusterv1.MachineSpec{ClusterName: "c", InfrastructureRef: clusterv1.ContractVersionedObjectReference{Kind: "AWSMachine", Name: "m"}},
	}
	checkUpdates(t, machineChanged, base, []updateCase[*clusterv1.Machine]{
		{"phase and conditions", func(m *clusterv1.Machine) {
			m.ResourceVersion = "2"
			m.Status.Phase = string(clusterv1.MachinePhaseProvisioned)
			m.Status.Conditions = []metav1.Condition{{Type: clusterv1.MachineBootstrapConfigReadyCondition, Status: metav1.ConditionTrue}}
			m.Status.Addresses = clusterv1.MachineAddresses{{Type: clusterv1.MachineInternalIP, Address: "10.0.0.1"}}
		}, false},
		{"nodeRef", func(m *clusterv1.Machine) { m.Status.NodeRef = clusterv1.MachineNodeReference{Name: "ip-10-0-0-1"} }, true},
		{"provider ID", func(m *clusterv1.Machine) { m.Spec.ProviderID = "aws:///us-east-1a/i-1" }, true},
		{"decision", func(m *clusterv1.Machine) { m.Annotations[AnnotationDecision] = `{"nodePool":"other"}` }, true},
		{"label", func(m *clusterv1.Machine) { m.Labels["x"] = "y" }, true},
		{"deleting", func(m *clusterv1.Machine) { now := metav1.Now(); m.DeletionTimestamp = &now }, true},
	})
}

// An AWSMachine wakes a pass when its instance is launched, refused or
// gone; CAPA's other status writes do not.
func TestAWSMachineChangedIgnoresStatusRewrites(t *testing.T) {
	base := &infrav1.AWSMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", ResourceVersion: "1", Labels: map[string]string{v1alpha1.LabelNodePool: "general"}},
		Status: infrav1.AWSMachineStatus{Conditions: clusterv1beta1.Conditions{
			{Type: infrav1.InstanceReadyCondition, Status: corev1.ConditionFalse, Reason: "InstanceNotReady"}}},
	}
	checkUpdates(t, awsMachineChanged, base, []updateCase[*infrav1.AWSMachine]{
		{"addresses and other conditions", func(m *infrav1.AWSMachine) {
			m.ResourceVersion = "2"
			m.Status.Addresses = clusterv1beta1.MachineAddresses{{Type: clusterv1beta1.MachineInternalIP, Address: "10.0.0.1"}}
			m.Status.Conditions = append(m.Status.Conditions, clusterv1beta1.Condition{Type: infrav1.SecurityGroupsReadyCondition, Status: corev1.ConditionTrue})
		}, false},
		{"instance ID", func(m *infrav1.AWSMachine) { m.Spec.InstanceID = ptr.To("i-1") }, true},
		{"provider ID", func(m *infrav1.AWSMachine) { m.Spec.ProviderID = ptr.To("aws:///us-east-1a/i-1") }, true},
		{"instance terminated", func(m *infrav1.AWSMachine) { s := infrav1.InstanceStateTerminated; m.Status.InstanceState = &s }, true},
		{"launch refused", func(m *infrav1.AWSMachine) {
			m.Status.Conditions[0].Reason, m.Status.Conditions[0].Message = infrav1.InstanceProvisionFailedReason, "InsufficientInstanceCapacity"
		}, true},
		{"deleting", func(m *infrav1.AWSMachine) { now := metav1.Now(); m.DeletionTimestamp = &now }, true},
	})
}

// CAPI's rewrites of a Cluster's status as its Machines come and go wake
// no pass; its zones, readiness, spec, labels and pause do.
func TestClusterChangedIgnoresStatusRewrites(t *testing.T) {
	base := &clusterv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", ResourceVersion: "1", Labels: map[string]string{"env": "prod"}},
		Status: clusterv1.ClusterStatus{
			FailureDomains: []clusterv1.FailureDomain{{Name: "us-east-1a"}},
			Conditions:     []metav1.Condition{{Type: clusterv1.ClusterControlPlaneInitializedCondition, Status: metav1.ConditionTrue}},
		},
	}
	checkUpdates(t, clusterChanged, base, []updateCase[*clusterv1.Cluster]{
		{"worker counts and other conditions", func(c *clusterv1.Cluster) {
			c.ResourceVersion = "2"
			c.Status.Workers = &clusterv1.WorkersStatus{Replicas: ptr.To[int32](4)}
			c.Status.Conditions = append(c.Status.Conditions, metav1.Condition{Type: clusterv1.ClusterWorkersAvailableCondition, Status: metav1.ConditionFalse})
		}, false},
		{"a zone", func(c *clusterv1.Cluster) {
			c.Status.FailureDomains = append(c.Status.FailureDomains, clusterv1.FailureDomain{Name: "us-east-1b"})
		}, true},
		{"control plane no longer initialized", func(c *clusterv1.Cluster) { c.Status.Conditions[0].Status = metav1.ConditionFalse }, true},
		{"infrastructure provisioned", func(c *clusterv1.Cluster) { c.Status.Initialization.InfrastructureProvisioned = ptr.To(true) }, true},
		{"paused", func(c *clusterv1.Cluster) { c.Spec.Paused = ptr.To(true) }, true},
		{"paused by annotation", func(c *clusterv1.Cluster) { c.Annotations = map[string]string{clusterv1.PausedAnnotation: ""} }, true},
		{"label", func(c *clusterv1.Cluster) { c.Labels["env"] = "dev" }, true},
	})
}

// A pass reads each Machine's decision from its annotation as it is now:
// the decoded one is reused only while the annotation is the same, and a
// Machine gone is forgotten.
func TestDecisionsAreReadAgainWhenTheAnnotationChanges(t *testing.T) {
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", UID: "uid-m",
		Annotations: map[string]string{AnnotationDecision: `{"nodePool":"general","pods":["ns/a"],"podCount":1}`}}}
	st := &clusterState{}
	read := func(m *clusterv1.Machine) Decision {
		t.Helper()
		next := map[types.UID]readDecision{}
		d, err := st.decision(m, next)
		if err != nil {
			t.Fatal(err)
		}
		st.decisions = next
		return d
	}
	if d := read(m); d.NodePool != "general" || d.PodCount != 1 {
		t.Fatalf("first read: %+v", d)
	}
	if d := read(m); d.NodePool != "general" {
		t.Fatalf("second read: %+v", d)
	}
	m.Annotations[AnnotationDecision] = `{"nodePool":"spot","pods":["ns/a","ns/b"],"podCount":2}`
	if d := read(m); d.NodePool != "spot" || d.PodCount != 2 {
		t.Errorf("after the annotation changed the decision read %+v, want pool spot for 2 pods", d)
	}
	m.Annotations[AnnotationDecision] = `{not json`
	if _, err := st.decision(m, map[types.UID]readDecision{}); err == nil {
		t.Error("a broken annotation read without error: the cached decision was used")
	}
	other := m.DeepCopy()
	other.UID, other.Annotations[AnnotationDecision] = "uid-other", `{"nodePool":"general"}`
	read(other)
	if _, ok := st.decisions["uid-m"]; ok {
		t.Error("a Machine the last pass did not see is still cached")
	}
}

// A pod wakes a pass when it becomes pending for Joinery (the scheduler
// marked it Unschedulable), not when it is created before the scheduler
// tried it, nor for its later updates while it stays pending.
func TestNewlyPendingWakesAPassOncePerPendingPod(t *testing.T) {
	created := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", ResourceVersion: "1"},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	unschedulable := created.DeepCopy()
	unschedulable.ResourceVersion = "2"
	unschedulable.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"}}
	remarked := unschedulable.DeepCopy()
	remarked.ResourceVersion = "3"
	remarked.Status.Conditions[0].Message = "0/4 nodes are available"
	remarked.Status.NominatedNodeName = "n1"
	bound := unschedulable.DeepCopy()
	bound.Spec.NodeName = "n1"
	gated := created.DeepCopy()
	gated.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}

	if newlyPending.Create(event.CreateEvent{Object: created}) {
		t.Error("a pod's creation, before the scheduler tried it, wakes a pass")
	}
	if !newlyPending.Create(event.CreateEvent{Object: unschedulable}) {
		t.Error("a pending pod a new cache lists does not wake a pass")
	}
	for _, tc := range []struct {
		name          string
		before, after *corev1.Pod
		want          bool
	}{
		{"marked Unschedulable", created, unschedulable, true},
		{"ungated and marked Unschedulable", gated, unschedulable, true},
		{"re-marked while pending", unschedulable, remarked, false},
		{"bound", unschedulable, bound, false},
		{"gated", created, gated, false},
	} {
		if got := newlyPending.Update(event.UpdateEvent{ObjectOld: tc.before, ObjectNew: tc.after}); got != tc.want {
			t.Errorf("%s: a pass is woken: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !newlyPending.Delete(event.DeleteEvent{Object: unschedulable}) {
		t.Error("a pending pod's deletion does not wake a pass (the window may have nothing left to plan)")
	}
	if newlyPending.Delete(event.DeleteEvent{Object: bound}) {
		t.Error("a bound pod's deletion wakes a pass")
	}
}
