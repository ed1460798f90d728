package provisioning

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

func testPool() *v1alpha1.NodePool {
	return &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "general", Namespace: "team-a"},
		Spec: v1alpha1.NodePoolSpec{Template: v1alpha1.NodeClaimTemplate{
			ObjectMeta: v1alpha1.TemplateMetadata{Labels: map[string]v1alpha1.LabelValue{"team": "web"}},
			Spec: v1alpha1.NodeClaimSpec{
				Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
					{Key: "tier", Operator: v1alpha1.OpIn, Values: []string{"frontend"}},
					{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{"spot", "on-demand"}},
				},
				Taints:        []v1alpha1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}},
				StartupTaints: []v1alpha1.Taint{{Key: "cni-not-ready", Effect: corev1.TaintEffectNoSchedule}},
			},
		}},
	}
}

func testDecision() Decision {
	return Decision{NodePool: "general", Offering: Offering{InstanceType: "m5.large", Zone: "us-east-1b", ZoneID: "use1-az2", CapacityType: "spot", PricePerHour: 0.04}}
}

func TestNodeLabelsCarryPoolOfferingAndSingleValuedRequirements(t *testing.T) {
	labels := NodeLabels(testPool(), testDecision(), map[string]string{"karpenter.k8s.aws/instance-family": "m5"})
	want := map[string]string{
		"team": "web", "tier": "frontend", "karpenter.k8s.aws/instance-family": "m5",
		v1alpha1.LabelInstanceType: "m5.large", v1alpha1.LabelZone: "us-east-1b", v1alpha1.LabelZoneID: "use1-az2",
		v1alpha1.LabelCapacityType: "spot", v1alpha1.LabelNodePool: "general", v1alpha1.LabelKarpenterNodePool: "general",
	}
	if len(labels) != len(want) {
		t.Errorf("labels = %v, want %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	if taints := NodeTaints(testPool()); len(taints) != 2 || taints[0].Key != "dedicated" || taints[1].Key != "cni-not-ready" {
		t.Errorf("taints = %v, want the pool's taint and startup taint", taints)
	}
}

func TestInFlightNodeStandsForTheDecidedOffering(t *testing.T) {
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "general-abc", Namespace: "team-a"}}
	lt := &solverinput.LaunchableType{
		Name:        "m5.large",
		Labels:      map[string]string{v1alpha1.LabelArch: "amd64"},
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1930m")},
	}
	n := InFlightNode(m, testPool(), testDecision(), lt, "us-east-1")
	if n.Name != m.Name || n.Labels[v1alpha1.LabelHostname] != m.Name || n.Labels[v1alpha1.LabelRegion] != "us-east-1" || n.Labels[v1alpha1.LabelArch] != "amd64" {
		t.Errorf("labels = %v", n.Labels)
	}
	if got := n.Status.Allocatable[corev1.ResourceCPU]; got.String() != "1930m" {
		t.Errorf("allocatable cpu = %s, want the type's allocatable", got.String())
	}
	if len(n.Spec.Taints) != 2 {
		t.Errorf("taints = %v, want taints and startup taints (the solver drops startup taints of in-flight nodes)", n.Spec.Taints)
	}
}

func TestMissingNodeMetadataAddsButNeverOverridesCloudLabels(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-5", Labels: map[string]string{
			v1alpha1.LabelZone: "us-east-1b", v1alpha1.LabelInstanceType: "m5.large", "team": "old", v1alpha1.LabelHostname: "ip-10-0-1-5",
		}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}}},
	}
	want := NodeLabels(testPool(), testDecision(), nil)
	want[v1alpha1.LabelZone] = "us-east-1c" // a cloud label disagreeing is the cloud's to set
	want[v1alpha1.LabelHostname] = "general-abc"
	labels, taints := MissingNodeMetadata(node, want, testPool())
	if labels["team"] != "web" || labels[v1alpha1.LabelNodePool] != "general" || labels[v1alpha1.LabelCapacityType] != "spot" {
		t.Errorf("missing labels = %v", labels)
	}
	if _, ok := labels[v1alpha1.LabelZone]; ok {
		t.Errorf("overrode the node's zone: %v", labels)
	}
	if _, ok := labels[v1alpha1.LabelHostname]; ok {
		t.Errorf("set the hostname label: %v", labels)
	}
	if len(taints) != 0 {
		t.Errorf("taints = %v, want none (the node has the pool's taint; startup taints are never restored)", taints)
	}
	node.Spec.Taints = nil
	if _, taints = MissingNodeMetadata(node, want, testPool()); len(taints) != 1 || taints[0].Key != "dedicated" {
		t.Errorf("taints = %v, want the pool's taint", taints)
	}
}

func TestServes(t *testing.T) {
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "c1", Namespace: "team-a", Labels: map[string]string{"env": "prod"}}}
	byName := testPool()
	byName.Spec.ClusterName = "c1"
	bySelector := testPool()
	bySelector.Spec.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	otherSelector := testPool()
	otherSelector.Spec.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}
	otherNamespace := bySelector.DeepCopy()
	otherNamespace.Namespace = "team-b"
	for name, tc := range map[string]struct {
		pool *v1alpha1.NodePool
		want bool
	}{
		"by name": {byName, true}, "by selector": {bySelector, true}, "selector not matching": {otherSelector, false},
		"other namespace": {otherNamespace, false}, "neither": {testPool(), false},
	} {
		if got := Serves(tc.pool, cluster); got != tc.want {
			t.Errorf("%s: Serves = %v, want %v", name, got, tc.want)
		}
	}
}

func TestReportsNotifyOnChangeOnly(t *testing.T) {
	r := NewReports()
	var notified []types.NamespacedName
	r.OnChange(func(p types.NamespacedName) { notified = append(notified, p) })
	pool := types.NamespacedName{Namespace: "team-a", Name: "general"}
	r.Set(pool, "c1", ClusterReport{Reachable: true})
	r.Set(pool, "c1", ClusterReport{Reachable: true})
	r.Set(pool, "c1", ClusterReport{Reachable: true, LimitReached: true, Message: "limits reached"})
	if len(notified) != 2 {
		t.Errorf("notified %d times, want 2 (a first report and a change)", len(notified))
	}
	r.ForgetCluster(types.NamespacedName{Namespace: "team-a", Name: "c1"})
	if got := r.Get(pool); len(got) != 0 || len(notified) != 3 {
		t.Errorf("after ForgetCluster: reports %v, %d notifications", got, len(notified))
	}
}

func TestReadDecisionRoundTrip(t *testing.T) {
	l := launchSpec()
	m, err := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDecision(m)
	if err != nil {
		t.Fatal(err)
	}
	if d.Offering != l.Decision.Offering || d.PodCount != 2 || len(d.Pods) != 2 {
		t.Errorf("read back %+v, want %+v", d, l.Decision)
	}
	delete(m.Annotations, AnnotationDecision)
	if _, err := ReadDecision(m); err == nil {
		t.Error("a Machine without a decision reads without error")
	}
}

// A Node's heartbeat wakes no pass; what a pass reads of a Node does.
func TestNodeChangedIgnoresHeartbeats(t *testing.T) {
	base := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"a": "1"}, ResourceVersion: "1"},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-1"},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}},
		},
	}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Node)
		want   bool
	}{
		{"heartbeat", func(n *corev1.Node) {
			n.ResourceVersion = "2"
			n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now().Add(time.Minute))
		}, false},
		{"label", func(n *corev1.Node) { n.Labels["b"] = "2" }, true},
		{"taint", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}} }, true},
		{"cordon", func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		{"not ready", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }, true},
		{"allocatable", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("110") }, true},
		{"deleting", func(n *corev1.Node) { now := metav1.Now(); n.DeletionTimestamp = &now }, true},
	} {
		after := base.DeepCopy()
		tc.mutate(after)
		if got := nodeChanged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: after}); got != tc.want {
			t.Errorf("%s: a pass is woken: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !nodeChanged.Create(event.CreateEvent{Object: base}) || !nodeChanged.Delete(event.DeleteEvent{Object: base}) {
		t.Error("a Node's creation or deletion does not wake a pass")
	}
}
