package cloudsim

import (
	"testing"

	"github.com/blang/semver/v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	"sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/cloudinit"
	kubeadmtypes "sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/types"
)

// The kubelet simulation reads what CAPI's kubeadm bootstrap provider
// writes: a cloud-init with the kubeadm JoinConfiguration.
func TestParseJoinReadsLabelsAndTaintsFromKubeadmCloudInit(t *testing.T) {
	join := &bootstrapv1.JoinConfiguration{}
	join.Discovery.BootstrapToken.APIServerEndpoint = "10.0.0.1:6443"
	join.NodeRegistration.KubeletExtraArgs = []bootstrapv1.Arg{{Name: "node-labels", Value: ptr.To("joinery.dev/nodepool=general,workload-class=web")}}
	join.NodeRegistration.Taints = ptr.To([]corev1.Taint{{Key: "node.cluster.x-k8s.io/uninitialized", Effect: corev1.TaintEffectNoSchedule}})
	yaml, err := kubeadmtypes.MarshalJoinConfigurationForVersion(join, semver.MustParse("1.36.3"))
	if err != nil {
		t.Fatal(err)
	}
	userData, err := cloudinit.NewNode(&cloudinit.NodeInput{JoinConfiguration: yaml, BaseUserData: cloudinit.BaseUserData{KubeadmCommand: "kubeadm join"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseJoin(userData)
	if err != nil {
		t.Fatalf("%v\n%s", err, userData)
	}
	if got.args["node-labels"] != "joinery.dev/nodepool=general,workload-class=web" {
		t.Errorf("node-labels = %q, want joinery.dev/nodepool=general,workload-class=web\n%s", got.args["node-labels"], userData)
	}
	if got.apiServerEndpoint != "10.0.0.1:6443" {
		t.Errorf("apiServerEndpoint = %q, want 10.0.0.1:6443", got.apiServerEndpoint)
	}
	if len(got.taints) != 1 || got.taints[0].Key != "node.cluster.x-k8s.io/uninitialized" {
		t.Errorf("taints = %v, want the uninitialized taint", got.taints)
	}
}
