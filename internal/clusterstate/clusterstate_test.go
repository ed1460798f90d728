package clusterstate

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

func pod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

func unschedulable(p *corev1.Pod) *corev1.Pod {
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	return p
}

func TestIsProvisionable(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"unschedulable", unschedulable(pod("ns", "a", "1")), true},
		{"not yet tried by the scheduler", func() *corev1.Pod { p := pod("ns", "a", "1"); p.Status.Phase = corev1.PodPending; return p }(), false},
		{"scheduling gated", func() *corev1.Pod {
			p := unschedulable(pod("ns", "a", "1"))
			p.Status.Conditions[0].Reason = corev1.PodReasonSchedulingGated
			return p
		}(), false},
		{"bound", func() *corev1.Pod { p := unschedulable(pod("ns", "a", "1")); p.Spec.NodeName = "n1"; return p }(), false},
		{"being deleted", func() *corev1.Pod { p := unschedulable(pod("ns", "a", "1")); p.DeletionTimestamp = &now; return p }(), false},
		{"a DaemonSet's", func() *corev1.Pod {
			p := unschedulable(pod("ns", "a", "1"))
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Controller: ptr.To(true)}}
			return p
		}(), false},
		{"a ReplicaSet's", func() *corev1.Pod {
			p := unschedulable(pod("ns", "a", "1"))
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", Controller: ptr.To(true)}}
			return p
		}(), true},
	} {
		if got := IsProvisionable(tc.pod); got != tc.want {
			t.Errorf("%s: IsProvisionable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNodeInitialized(t *testing.T) {
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		name string
		node corev1.Node
		want bool
	}{
		{"ready, untainted", corev1.Node{Status: corev1.NodeStatus{Conditions: ready}}, true},
		{"not ready", corev1.Node{}, false},
		{"ready but CAPI has not synced its labels", corev1.Node{
			Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: clusterv1.NodeUninitializedTaint.Key, Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Conditions: ready}}, false},
	} {
		if got := NodeInitialized(&tc.node); got != tc.want {
			t.Errorf("%s: NodeInitialized = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A Machine is matched to its Node by nodeRef, else by provider ID from
// the Machine, else from the AWSMachine: the kubelet registers before CAPI
// copies the provider ID to the Machine (the bug that counted such a node
// twice, issue #7).
func TestNodeOfMatchesEveryWayAMachineMeetsItsNode(t *testing.T) {
	byName := map[string]*corev1.Node{}
	byProviderID := map[string]*corev1.Node{}
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-1"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-2"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-2"}},
	} {
		byName[n.Name], byProviderID[n.Spec.ProviderID] = n, n
	}
	machine := func(nodeRef, providerID string) *clusterv1.Machine {
		m := &clusterv1.Machine{}
		m.Status.NodeRef = clusterv1.MachineNodeReference{Name: nodeRef}
		m.Spec.ProviderID = providerID
		return m
	}
	aws := func(providerID string) *infrav1.AWSMachine {
		return &infrav1.AWSMachine{Spec: infrav1.AWSMachineSpec{ProviderID: ptr.To(providerID)}}
	}
	for _, tc := range []struct {
		name string
		m    *clusterv1.Machine
		aws  *infrav1.AWSMachine
		want string
	}{
		{"nodeRef", machine("ip-10-0-0-1", ""), nil, "ip-10-0-0-1"},
		{"provider ID on the Machine", machine("", "aws:///us-east-1a/i-2"), nil, "ip-10-0-0-2"},
		{"provider ID on the AWSMachine only", machine("", ""), aws("aws:///us-east-1a/i-2"), "ip-10-0-0-2"},
		{"nodeRef to a deleted Node, provider ID of a live one", machine("gone", "aws:///us-east-1a/i-1"), nil, "ip-10-0-0-1"},
		{"nodeRef to a deleted Node only", machine("gone", ""), nil, ""},
		{"an instance whose Node has not registered", machine("", "aws:///us-east-1a/i-9"), aws("aws:///us-east-1a/i-9"), ""},
		{"no instance yet", machine("", ""), &infrav1.AWSMachine{}, ""},
	} {
		got := ""
		if n := NodeOf(tc.m, tc.aws, byName, byProviderID); n != nil {
			got = n.Name
		}
		if got != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Read gives every loop the same cluster: Joinery's Machines of this
// cluster only (deleting ones too) with their AWSMachine and Node, bound
// pods without finished ones, and only provisionable pods as pending.
func TestReadViewsTheClusterOnce(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, clusterv1.AddToScheme, infrav1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "c1"}}
	machine := func(name, cluster string, joinery bool, mutate func(*clusterv1.Machine)) *clusterv1.Machine {
		m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: name, Labels: map[string]string{clusterv1.ClusterNameLabel: cluster}}}
		if joinery {
			m.Labels[v1alpha1.LabelNodePool] = "general"
		}
		m.Spec.ClusterName = cluster
		m.Spec.InfrastructureRef = clusterv1.ContractVersionedObjectReference{Kind: "AWSMachine", APIGroup: infrav1.GroupVersion.Group, Name: name}
		if mutate != nil {
			mutate(m)
		}
		return m
	}
	now := metav1.Now()
	management := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		machine("registered", "c1", true, nil),
		machine("booting", "c1", true, nil),
		machine("deleting", "c1", true, func(m *clusterv1.Machine) {
			m.DeletionTimestamp = &now
			m.Finalizers = []string{"machine.cluster.x-k8s.io"}
		}),
		machine("other-cluster", "c2", true, nil),
		machine("not-joinery", "c1", false, nil),
		&infrav1.AWSMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "registered"}, Spec: infrav1.AWSMachineSpec{ProviderID: ptr.To("aws:///us-east-1a/i-1")}},
	).Build()
	ready := func(p *corev1.Pod, node string, phase corev1.PodPhase) *corev1.Pod {
		p.Spec.NodeName, p.Status.Phase = node, phase
		return p
	}
	daemon := unschedulable(pod("kube-system", "ds-pod", "5"))
	daemon.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Controller: ptr.To(true)}}
	workload := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-1"}},
		ready(pod("default", "running", "1"), "ip-10-0-0-1", corev1.PodRunning),
		ready(pod("default", "done", "2"), "ip-10-0-0-1", corev1.PodSucceeded),
		unschedulable(pod("default", "waiting", "3")),
		func() *corev1.Pod { p := pod("default", "untried", "4"); p.Status.Phase = corev1.PodPending; return p }(),
		daemon,
	).Build()

	v, err := Read(context.Background(), management, workload, cluster)
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]string{}
	for _, m := range v.Machines {
		state := "no node"
		if m.Node != nil {
			state = "node " + m.Node.Name
		}
		if m.Deleting() {
			state += ", deleting"
		}
		if m.AWSMachine == nil {
			state += ", no AWSMachine"
		}
		machines[m.Name] = state
	}
	want := map[string]string{"registered": "node ip-10-0-0-1", "booting": "no node, no AWSMachine", "deleting": "no node, deleting, no AWSMachine"}
	if len(machines) != len(want) {
		t.Errorf("machines %v, want %v", machines, want)
	}
	for name, state := range want {
		if machines[name] != state {
			t.Errorf("Machine %s: %q, want %q", name, machines[name], state)
		}
	}
	names := func(pods []*corev1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(v.Bound["ip-10-0-0-1"]); len(got) != 1 || got[0] != "running" {
		t.Errorf("bound pods %v, want [running] (a finished pod holds nothing)", got)
	}
	if got := names(v.Pending); len(got) != 1 || got[0] != "waiting" {
		t.Errorf("pending pods %v, want [waiting]", got)
	}
	if got := names(v.Pods); len(got) != 2 {
		t.Errorf("pods %v, want running and waiting", got)
	}
	if len(v.Nodes) != 1 || v.NodeByName["ip-10-0-0-1"] == nil {
		t.Errorf("nodes %v", v.NodeByName)
	}
}

// Only a Node of a live Machine of ours that is still booting is capacity
// on its way (InFlightNodes); the soak found pods pending 500 s behind
// Nodes whose Machines were gone (issue #20).
func TestInFlightNodes(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	bound := 15 * time.Minute
	uninitialized := []corev1.Taint{{Key: clusterv1.NodeUninitializedTaint.Key, Effect: clusterv1.NodeUninitializedTaint.Effect}}
	node := func(age time.Duration, ready corev1.ConditionStatus, taints []corev1.Taint) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(now.Add(-age))}, Spec: corev1.NodeSpec{Taints: taints}}
		if ready != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		}
		return n
	}
	live := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	deleting := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "m", DeletionTimestamp: &metav1.Time{Time: now}, Finalizers: []string{"f"}}}
	for _, tc := range []struct {
		name    string
		machine *clusterv1.Machine
		node    *corev1.Node
		want    bool
	}{
		{"just registered, CAPI's taint still on", live, node(time.Minute, corev1.ConditionTrue, uninitialized), true},
		{"registered, kubelet not ready yet", live, node(time.Minute, corev1.ConditionFalse, nil), true},
		{"registered, no Ready condition posted yet", live, node(time.Minute, "", nil), true},
		{"ready and initialized: capacity that is here", live, node(time.Minute, corev1.ConditionTrue, nil), false},
		{"stopped reporting (Ready Unknown): lost, not booting", live, node(time.Minute, corev1.ConditionUnknown, uninitialized), false},
		{"not ready for longer than the bound", live, node(bound, corev1.ConditionFalse, uninitialized), false},
		{"its Machine is being deleted", deleting, node(time.Minute, corev1.ConditionFalse, uninitialized), false},
		{"no Machine of ours", nil, node(time.Minute, corev1.ConditionFalse, uninitialized), false},
	} {
		v := &View{Nodes: []*corev1.Node{tc.node}, NodeByName: map[string]*corev1.Node{"n": tc.node}}
		if tc.machine != nil {
			v.Machines = []Machine{{Machine: tc.machine, Node: tc.node}}
		}
		if got := v.InFlightNodes(now, bound)["n"]; got != tc.want {
			t.Errorf("%s: in flight = %v, want %v", tc.name, got, tc.want)
		}
	}
}
