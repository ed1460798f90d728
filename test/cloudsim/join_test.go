package cloudsim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/blang/semver/v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	"sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/cloudinit"
	kubeadmtypes "sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// An instance launched with CABPK's gzipped cloud-init registers its Node
// in the workload cluster its join names; out-of-band termination removes it.
func TestKubeletJoinsTheClusterItsUserDataNamesAndLeavesOnTermination(t *testing.T) {
	c, err := New(Options{BootDelay: 50 * time.Millisecond, JoinDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	workload := fake.NewClientBuilder().Build()
	c.mu.Lock()
	c.clusters["10.0.0.1:6443"] = &workloadCluster{cluster: types.NamespacedName{Namespace: "team-a", Name: "c1"}, endpoint: "10.0.0.1:6443", client: workload}
	c.mu.Unlock()

	in := capaRunInput("", "m5.large", DefaultImageAMD64)
	in.NetworkInterfaces = nil
	in.UserData = aws.String(joinUserData(t, "10.0.0.1:6443", true))
	id := runInstance(t, c, in)

	var inst Instance
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if inst, _ = c.Instance(id); inst.NodeName != "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if inst.NodeName == "" {
		t.Fatal("the node never joined")
	}
	node := &corev1.Node{}
	if err := workload.Get(context.Background(), client.ObjectKey{Name: inst.NodeName}, node); err != nil {
		t.Fatal(err)
	}
	if node.Labels["joinery.dev/nodepool"] != "general" || node.Status.Capacity.Pods().Value() != 58 || node.Spec.ProviderID != "aws:///"+inst.Zone+"/"+id {
		t.Errorf("node labels %v pods %v providerID %s", node.Labels, node.Status.Capacity.Pods(), node.Spec.ProviderID)
	}
	if inst.Cluster != (types.NamespacedName{Namespace: "team-a", Name: "c1"}) || inst.AWSMachine != (types.NamespacedName{Namespace: "team-a", Name: "pool-a-xyz12"}) {
		t.Errorf("ledger cluster %v awsMachine %v", inst.Cluster, inst.AWSMachine)
	}
	if err := c.TerminateInstance(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := workload.Get(context.Background(), client.ObjectKey{Name: inst.NodeName}, node); err == nil {
		t.Error("the Node of the terminated instance is still there")
	}
	if got, _ := c.Instance(id); got.State != StateTerminated || got.TerminationReason != "terminated out of band" {
		t.Errorf("state %s reason %q", got.State, got.TerminationReason)
	}
}

// joinUserData is CABPK's cloud-init for a worker joining endpoint,
// base64-encoded as CAPA sends it, gzipped or not.
func joinUserData(t *testing.T, endpoint string, gzipped bool) string {
	t.Helper()
	joinCfg := &bootstrapv1.JoinConfiguration{}
	joinCfg.Discovery.BootstrapToken.APIServerEndpoint = endpoint
	joinCfg.NodeRegistration.KubeletExtraArgs = []bootstrapv1.Arg{{Name: "node-labels", Value: ptr.To("joinery.dev/nodepool=general")}, {Name: "max-pods", Value: ptr.To("58")}}
	y, err := kubeadmtypes.MarshalJoinConfigurationForVersion(joinCfg, semver.MustParse("1.34.0"))
	if err != nil {
		t.Fatal(err)
	}
	userData, err := cloudinit.NewNode(&cloudinit.NodeInput{JoinConfiguration: y, BaseUserData: cloudinit.BaseUserData{KubeadmCommand: "kubeadm join"}})
	if err != nil {
		t.Fatal(err)
	}
	if gzipped {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, _ = w.Write(userData)
		_ = w.Close()
		userData = gz.Bytes()
	}
	return base64.StdEncoding.EncodeToString(userData)
}

// A spot interruption ends in termination at the warning's end; EC2 then
// reports the instance terminated with the spot termination reason.
func TestSpotInterruptionTerminatesAfterTheWarning(t *testing.T) {
	c, err := New(Options{BootDelay: 10 * time.Millisecond, JoinDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	in := capaRunInput("", "m5.large", DefaultImageAMD64)
	in.NetworkInterfaces = nil
	in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot}
	id := runInstance(t, c, in)
	if _, err := c.InterruptSpotInstanceAfter(context.Background(), id, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	got := describe(t, ec2Client(c.EC2Endpoint()), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if got[0].State.Name != ec2types.InstanceStateNameTerminated || aws.ToString(got[0].StateReason.Code) != "Server.SpotInstanceTermination" ||
		got[0].InstanceLifecycle != ec2types.InstanceLifecycleTypeSpot || aws.ToString(got[0].SpotInstanceRequestId) == "" {
		t.Errorf("after the interruption: %s %v lifecycle %s", got[0].State.Name, got[0].StateReason, got[0].InstanceLifecycle)
	}
}

// SlowBoot keeps matching instances pending; NeverJoin keeps their node away.
func TestSlowBootAndNeverJoin(t *testing.T) {
	c, err := New(Options{BootDelay: 10 * time.Millisecond, JoinDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	workload := fake.NewClientBuilder().Build()
	c.mu.Lock()
	c.clusters["10.0.0.1:6443"] = &workloadCluster{cluster: types.NamespacedName{Namespace: "team-a", Name: "c1"}, endpoint: "10.0.0.1:6443", client: workload}
	c.mu.Unlock()
	c.SlowBoot(Offering{InstanceType: "m5.large"}, time.Hour)
	c.NeverJoin(Offering{InstanceType: "m5.xlarge"}, true)
	var ids []string
	for _, it := range []string{"m5.large", "m5.xlarge", "m5.2xlarge"} {
		in := capaRunInput("", it, DefaultImageAMD64)
		in.NetworkInterfaces = nil
		in.UserData = aws.String(joinUserData(t, "10.0.0.1:6443", false))
		ids = append(ids, runInstance(t, c, in))
	}
	slowID, neverID, normalID := ids[0], ids[1], ids[2]
	time.Sleep(300 * time.Millisecond)
	if i, _ := c.Instance(normalID); i.State != StateRunning || i.NodeName == "" {
		t.Errorf("unaffected m5.2xlarge: %s node %q, want running with a node", i.State, i.NodeName)
	}
	if i, _ := c.Instance(slowID); i.State != StatePending {
		t.Errorf("slow boot: %s, want pending", i.State)
	}
	if i, _ := c.Instance(neverID); i.State != StateRunning || i.NodeName != "" {
		t.Errorf("never join: %s node %q, want running without a node", i.State, i.NodeName)
	}
}
