package testbed

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// WorkerMachine describes a standalone worker Machine, made by hand the
// way a person (or Joinery) makes one: a KubeadmConfig, an AWSMachine and
// the Machine referencing both.
type WorkerMachine struct {
	// Cluster is the CAPI Cluster's name; Name the Machine's (also used
	// for its KubeadmConfig and AWSMachine).
	Cluster string
	Name    string
	// InstanceType and Zone (the Machine's failure domain) choose the
	// offering; Spot sets spotMarketOptions on the AWSMachine.
	InstanceType string
	Zone         string
	Spot         bool
	// NodeLabels and Taints become kubelet --node-labels and registration
	// taints in the kubeadm join configuration.
	NodeLabels map[string]string
	Taints     []corev1.Taint
	// NodeDrainTimeoutSeconds bounds CAPI's drain (0: no bound).
	NodeDrainTimeoutSeconds int32
}

// WorkerObjects returns the KubeadmConfig, AWSMachine and Machine of a
// worker, ready to create in that order.
func (tb *Testbed) WorkerObjects(w WorkerMachine) (*bootstrapv1.KubeadmConfig, *infrav1.AWSMachine, *clusterv1.Machine) {
	labels := map[string]string{clusterv1.ClusterNameLabel: w.Cluster}
	config := &bootstrapv1.KubeadmConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: w.Name, Labels: labels},
	}
	if len(w.NodeLabels) > 0 {
		pairs := make([]string, 0, len(w.NodeLabels))
		for k, v := range w.NodeLabels {
			pairs = append(pairs, k+"="+v)
		}
		sort.Strings(pairs)
		config.Spec.JoinConfiguration.NodeRegistration.KubeletExtraArgs = []bootstrapv1.Arg{{Name: "node-labels", Value: ptr.To(strings.Join(pairs, ","))}}
	}
	if len(w.Taints) > 0 {
		config.Spec.JoinConfiguration.NodeRegistration.Taints = ptr.To(w.Taints)
	}
	awsMachine := &infrav1.AWSMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: w.Name, Labels: labels},
		Spec:       WorkerMachineSpec(),
	}
	awsMachine.Spec.InstanceType = w.InstanceType
	if w.Spot {
		awsMachine.Spec.SpotMarketOptions = &infrav1.SpotMarketOptions{}
	}
	machine := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: w.Name, Labels: labels},
		Spec: clusterv1.MachineSpec{
			ClusterName:   w.Cluster,
			Version:       tb.KubernetesVersion,
			FailureDomain: w.Zone,
			Bootstrap: clusterv1.Bootstrap{ConfigRef: clusterv1.ContractVersionedObjectReference{
				APIGroup: bootstrapv1.GroupVersion.Group, Kind: "KubeadmConfig", Name: w.Name,
			}},
			InfrastructureRef: clusterv1.ContractVersionedObjectReference{
				APIGroup: infrav1.GroupVersion.Group, Kind: "AWSMachine", Name: w.Name,
			},
		},
	}
	if w.NodeDrainTimeoutSeconds > 0 {
		machine.Spec.Deletion.NodeDrainTimeoutSeconds = ptr.To(w.NodeDrainTimeoutSeconds)
	}
	return config, awsMachine, machine
}

// CreateWorkerMachine creates a worker's KubeadmConfig, AWSMachine and
// Machine; CAPI makes the Machine their owner.
func (tb *Testbed) CreateWorkerMachine(ctx context.Context, w WorkerMachine) (*clusterv1.Machine, error) {
	if tb.Workload(w.Cluster) == nil {
		return nil, fmt.Errorf("worker Machine %s: the testbed has no workload cluster %q", w.Name, w.Cluster)
	}
	config, awsMachine, machine := tb.WorkerObjects(w)
	if err := tb.Client.Create(ctx, config); err != nil {
		return nil, fmt.Errorf("creating KubeadmConfig %s/%s: %w", config.Namespace, config.Name, err)
	}
	if err := tb.Client.Create(ctx, awsMachine); err != nil {
		return nil, fmt.Errorf("creating AWSMachine %s/%s: %w", awsMachine.Namespace, awsMachine.Name, err)
	}
	if err := tb.Client.Create(ctx, machine); err != nil {
		return nil, fmt.Errorf("creating Machine %s/%s: %w", machine.Namespace, machine.Name, err)
	}
	return machine, nil
}
