package provisioning

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

func pod(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

func launchSpec() LaunchSpec {
	m5 := &solver.InstanceType{Name: "m5.large"}
	c5 := &solver.InstanceType{Name: "c5.xlarge"}
	node := &solver.NewNode{
		Name: "general-1", Pool: "general", InstanceType: m5,
		Offering:  solver.Offering{Zone: "us-east-1b", ZoneID: "use1-az2", CapacityType: "spot", PricePerHour: 0.035},
		Fallbacks: []solver.Fallback{{InstanceType: c5, Offering: solver.Offering{Zone: "us-east-1b", CapacityType: "spot", PricePerHour: 0.05}}},
		Rejected: []solver.Rejection{{Reason: "refused by the cloud recently (insufficient capacity)", Count: 4,
			Offerings: []solver.Fallback{{InstanceType: &solver.InstanceType{Name: "t3.large"}, Offering: solver.Offering{Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.025}}}}},
		Pods: []*corev1.Pod{pod("shop", "web-1", "uid-1"), pod("shop", "web-2", "uid-2")},
	}
	grace := metav1.Duration{Duration: 48 * time.Hour}
	return LaunchSpec{
		Cluster:  &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "workload-1", Namespace: "team-a"}},
		NodePool: &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general", Namespace: "team-a", UID: "pool-uid"}, Spec: v1alpha1.NodePoolSpec{Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{TerminationGracePeriod: &grace}}}},
		Node:     node,
		Version:  "v1.36.3",
		Decision: NewDecision(node, metav1.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)),
	}
}

var (
	awsTemplateRef     = v1alpha1.TemplateReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "AWSMachineTemplate", Name: "workers"}
	kubeadmTemplateRef = v1alpha1.TemplateReference{APIGroup: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfigTemplate", Name: "workers"}
)

func TestMachineNameIsTheDecisionsIdentity(t *testing.T) {
	a := MachineName("c1", "general", []*corev1.Pod{pod("ns", "a", "1"), pod("ns", "b", "2")})
	if b := MachineName("c1", "general", []*corev1.Pod{pod("ns", "b", "2"), pod("ns", "a", "1")}); a != b {
		t.Errorf("same pods in another order give %q and %q", a, b)
	}
	for _, other := range []string{
		MachineName("c2", "general", []*corev1.Pod{pod("ns", "a", "1"), pod("ns", "b", "2")}),
		MachineName("c1", "gpu", []*corev1.Pod{pod("ns", "a", "1"), pod("ns", "b", "2")}),
		MachineName("c1", "general", []*corev1.Pod{pod("ns", "a", "1")}),
	} {
		if other == a {
			t.Errorf("a different decision got the same name %q", a)
		}
	}
	if !strings.HasPrefix(a, "general-") {
		t.Errorf("name %q does not start with the pool", a)
	}
	long := MachineName("c1", strings.Repeat("p", 80), nil)
	if len(long) > 63 {
		t.Errorf("name %q is longer than a DNS label", long)
	}
}

func TestBuildMachineRecordsTheDecision(t *testing.T) {
	l := launchSpec()
	m, err := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	if err != nil {
		t.Fatal(err)
	}
	if m.Namespace != "team-a" || m.Spec.ClusterName != "workload-1" || m.Spec.Version != "v1.36.3" || m.Spec.FailureDomain != "us-east-1b" {
		t.Errorf("machine spec: %+v", m.Spec)
	}
	if m.Spec.InfrastructureRef.Kind != "AWSMachine" || m.Spec.InfrastructureRef.Name != m.Name || m.Spec.Bootstrap.ConfigRef.Kind != "KubeadmConfig" || m.Spec.Bootstrap.ConfigRef.Name != m.Name {
		t.Errorf("refs must name the Machine's own clones: %+v %+v", m.Spec.InfrastructureRef, m.Spec.Bootstrap.ConfigRef)
	}
	if got := *m.Spec.Deletion.NodeDrainTimeoutSeconds; got != 48*3600 {
		t.Errorf("terminationGracePeriod 48h became nodeDrainTimeoutSeconds %d", got)
	}
	if m.Labels[clusterv1.ClusterNameLabel] != "workload-1" || m.Labels[v1alpha1.LabelNodePool] != "general" || m.Labels[v1alpha1.LabelCapacityType] != "spot" {
		t.Errorf("labels: %v", m.Labels)
	}
	if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Kind != "NodePool" || m.OwnerReferences[0].UID != "pool-uid" || !ptr.Deref(m.OwnerReferences[0].Controller, false) {
		t.Errorf("owner: %+v", m.OwnerReferences)
	}
	var d Decision
	if err := json.Unmarshal([]byte(m.Annotations[AnnotationDecision]), &d); err != nil {
		t.Fatal(err)
	}
	if d.Offering.InstanceType != "m5.large" || d.Offering.PricePerHour != 0.035 || len(d.Fallbacks) != 1 || d.Fallbacks[0].InstanceType != "c5.xlarge" || d.PodCount != 2 || d.Pods[0] != "shop/web-1" {
		t.Errorf("decision: %+v", d)
	}
	if len(d.Rejected) != 1 || d.Rejected[0].Count != 4 || d.Rejected[0].Offerings[0].InstanceType != "t3.large" || d.Rejected[0].Offerings[0].Zone != "us-east-1a" {
		t.Errorf("rejected: %+v", d.Rejected)
	}
}

func awsMachineTemplate(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachineTemplate",
		"metadata": map[string]any{"name": "workers", "namespace": "team-a"},
		"spec":     map[string]any{"template": map[string]any{"spec": spec}},
	}}
}

func TestBuildInfrastructureSetsTheChosenOffering(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	m.UID = "machine-uid"
	ref := TemplateObjectReference("team-a", awsTemplateRef, "v1beta2")
	for _, tc := range []struct {
		rule         string
		capacityType string
		template     map[string]any
		wantSpot     bool
	}{
		{"spot decision adds spot market options", "spot", map[string]any{"instanceType": "t3.large", "iamInstanceProfile": "nodes"}, true},
		{"on-demand decision drops the template's spot options", "on-demand", map[string]any{"instanceType": "t3.large", "spotMarketOptions": map[string]any{"maxPrice": "0.1"}, "marketType": "Spot"}, false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			d := l.Decision
			d.Offering.CapacityType = tc.capacityType
			obj, err := BuildInfrastructure(awsMachineTemplate(tc.template), ref, m, d)
			if err != nil {
				t.Fatal(err)
			}
			if obj.GetKind() != "AWSMachine" || obj.GetName() != m.Name || obj.GetNamespace() != "team-a" {
				t.Errorf("clone: %s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
			}
			if got, _, _ := unstructured.NestedString(obj.Object, "spec", "instanceType"); got != "m5.large" {
				t.Errorf("instanceType %q", got)
			}
			_, hasSpot, _ := unstructured.NestedMap(obj.Object, "spec", "spotMarketOptions")
			_, hasMarketType, _ := unstructured.NestedString(obj.Object, "spec", "marketType")
			if hasSpot != tc.wantSpot || hasMarketType {
				t.Errorf("spotMarketOptions present %v (want %v), marketType present %v", hasSpot, tc.wantSpot, hasMarketType)
			}
			owners := obj.GetOwnerReferences()
			if len(owners) != 1 || owners[0].Kind != "Machine" || owners[0].UID != "machine-uid" || owners[0].Controller == nil || !*owners[0].Controller {
				t.Errorf("the Machine must own its infrastructure: %+v", owners)
			}
			if obj.GetLabels()[clusterv1.ClusterNameLabel] != "workload-1" {
				t.Errorf("labels: %v", obj.GetLabels())
			}
		})
	}
}

func TestBuildInfrastructureRejectsOtherProviders(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	tmpl := awsMachineTemplate(map[string]any{})
	tmpl.SetKind("DockerMachineTemplate")
	_, err := BuildInfrastructure(tmpl, TemplateObjectReference("team-a", awsTemplateRef, "v1beta1"), m, l.Decision)
	if err == nil || !strings.Contains(err.Error(), "DockerMachine") {
		t.Errorf("want an error naming DockerMachine, got %v", err)
	}
}

func TestBuildBootstrapCarriesLabelsAndTaintsToTheKubelet(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	tmpl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate",
		"metadata": map[string]any{"name": "workers"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"joinConfiguration": map[string]any{"nodeRegistration": map[string]any{
			"kubeletExtraArgs": []any{map[string]any{"name": "node-labels", "value": "team=payments"}, map[string]any{"name": "max-pods", "value": "58"}},
		}}}}},
	}}
	labels := map[string]string{
		"karpenter.sh/capacity-type": "spot", "joinery.dev/nodepool": "general", "workload-class": "general",
		"kubernetes.io/hostname": "general-1", "topology.kubernetes.io/zone": "us-east-1b", "node.kubernetes.io/instance-type": "m5.large",
		"node-restriction.kubernetes.io/secret": "x", "node.kubernetes.io/role": "worker",
	}
	taints := []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	obj, err := BuildBootstrap(tmpl, TemplateObjectReference("team-a", kubeadmTemplateRef, "v1beta2"), m, labels, taints, nil)
	if err != nil {
		t.Fatal(err)
	}
	args, _, _ := unstructured.NestedSlice(obj.Object, "spec", "joinConfiguration", "nodeRegistration", "kubeletExtraArgs")
	if got, want := argValue(args, "node-labels"), "joinery.dev/nodepool=general,karpenter.sh/capacity-type=spot,node.kubernetes.io/role=worker,team=payments,workload-class=general"; got != want {
		t.Errorf("node-labels\n got %s\nwant %s", got, want)
	}
	if argValue(args, "max-pods") != "58" {
		t.Errorf("the template's other kubelet args were lost: %v", args)
	}
	gotTaints, _, _ := unstructured.NestedSlice(obj.Object, "spec", "joinConfiguration", "nodeRegistration", "taints")
	if len(gotTaints) != 1 || gotTaints[0].(map[string]any)["key"] != "gpu" || gotTaints[0].(map[string]any)["effect"] != "NoSchedule" {
		t.Errorf("taints: %v", gotTaints)
	}
	if obj.GetKind() != "KubeadmConfig" || obj.GetName() != m.Name {
		t.Errorf("clone: %s %s", obj.GetKind(), obj.GetName())
	}
}

// The NodePool's kubelet block reaches the node: merged into the template's
// kubelet flags (the NodePool wins), each flag once, and exactly the flags
// planning sized the node with.
func TestBuildBootstrapPassesTheNodePoolsKubeletSettings(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	tmpl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate",
		"metadata": map[string]any{"name": "workers"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"joinConfiguration": map[string]any{"nodeRegistration": map[string]any{
			"kubeletExtraArgs": []any{
				map[string]any{"name": "max-pods", "value": "58"},
				map[string]any{"name": "kube-reserved", "value": "cpu=100m"},
				map[string]any{"name": "cloud-provider", "value": "external"},
			},
		}}}}},
	}}
	kubelet := &v1alpha1.KubeletConfiguration{
		MaxPods:      ptr.To[int32](30),
		KubeReserved: map[string]v1alpha1.ReservedQuantity{"memory": "1Gi"},
		EvictionHard: map[string]v1alpha1.EvictionThreshold{"memory.available": "300Mi"},
	}
	obj, err := BuildBootstrap(tmpl, TemplateObjectReference("team-a", kubeadmTemplateRef, "v1beta2"), m, nil, nil, kubelet)
	if err != nil {
		t.Fatal(err)
	}
	args, _, _ := unstructured.NestedSlice(obj.Object, "spec", "joinConfiguration", "nodeRegistration", "kubeletExtraArgs")
	var names []string
	for _, a := range args {
		names = append(names, a.(map[string]any)["name"].(string))
	}
	if got, want := strings.Join(names, ","), "max-pods,kube-reserved,cloud-provider,eviction-hard,node-labels"; got != want {
		t.Errorf("kubelet flags %s, want %s (each once, the template's first)", got, want)
	}
	for name, want := range map[string]string{
		"max-pods":       "30",
		"kube-reserved":  "cpu=100m,memory=1Gi",
		"cloud-provider": "external",
		"eviction-hard":  "imagefs.available<15%,imagefs.inodesFree<5%,memory.available<300Mi,nodefs.available<10%,nodefs.inodesFree<5%",
	} {
		if got := argValue(args, name); got != want {
			t.Errorf("--%s=%q, want %q", name, got, want)
		}
	}
	planned, err := solverinput.KubeletConfigFromArgs(kubeletArgsOf(args))
	if err != nil || *planned.MaxPods != 30 || planned.KubeReserved["memory"] != "1Gi" || planned.EvictionHard["memory.available"] != "300Mi" {
		t.Errorf("the flags written do not read back as the settings planned with: %+v, %v", planned, err)
	}
}
