// Package clusterstate is Joinery's one view of a workload cluster: its
// Joinery Machines (from the management cluster) each with its AWSMachine
// and the Node it became, its registered Nodes, and its pods bound and
// pending. Provisioning, disruption and `joinery explain` read a cluster
// through Read, so a Machine is matched to its Node in exactly one place
// (NodeOf), as Karpenter's loops all read its cluster state
// (pkg/controllers/state).
//
// A View is read from whatever readers the caller has: the manager passes
// its caches (CAPI's ClusterCache for the workload cluster), the CLI its
// direct clients. A View belongs to one caller and one pass; the objects in
// it may be the cache's own and must not be modified.
package clusterstate

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// Machine is one of Joinery's Machines with what it is made of.
type Machine struct {
	*clusterv1.Machine
	// AWSMachine is nil while it does not exist (or no longer does).
	AWSMachine *infrav1.AWSMachine
	// Node is the registered Node the Machine became (NodeOf), or nil.
	Node *corev1.Node
}

// Deleting reports whether the Machine is being deleted.
func (m Machine) Deleting() bool { return !m.DeletionTimestamp.IsZero() }

// View is one workload cluster as Joinery's loops read it.
type View struct {
	Cluster *clusterv1.Cluster
	// Machines are Joinery's Machines of the cluster (labelled with a
	// NodePool), deleting ones included, in the order listed.
	Machines []Machine
	// Nodes are the registered Nodes, in the order listed, and by name.
	Nodes      []*corev1.Node
	NodeByName map[string]*corev1.Node
	// Bound are the pods bound to a node and not finished, by node name.
	Bound map[string][]*corev1.Pod
	// Pending are the pods Joinery provisions for (IsProvisionable).
	Pending []*corev1.Pod
	// Pods are the bound (unfinished) and pending pods together: what
	// planning places and counts.
	Pods []*corev1.Pod
}

// ReadMachines reads the cluster's Joinery Machines, their AWSMachines and
// the registered Nodes, and matches each Machine to its Node; pods are not
// read (Bound, Pending and Pods stay empty).
func ReadMachines(ctx context.Context, management, workload client.Reader, cluster *clusterv1.Cluster) (*View, error) {
	v := &View{Cluster: cluster, NodeByName: map[string]*corev1.Node{}, Bound: map[string][]*corev1.Pod{}}
	var nodes corev1.NodeList
	if err := workload.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("listing the Nodes of cluster %s/%s: %w", cluster.Namespace, cluster.Name, err)
	}
	byProviderID := make(map[string]*corev1.Node, len(nodes.Items))
	v.Nodes = make([]*corev1.Node, 0, len(nodes.Items))
	for i := range nodes.Items {
		n := &nodes.Items[i]
		v.Nodes = append(v.Nodes, n)
		v.NodeByName[n.Name] = n
		if n.Spec.ProviderID != "" {
			byProviderID[n.Spec.ProviderID] = n
		}
	}
	var machines clusterv1.MachineList
	if err := management.List(ctx, &machines, client.InNamespace(cluster.Namespace),
		client.MatchingLabels{clusterv1.ClusterNameLabel: cluster.Name}, client.HasLabels{v1alpha1.LabelNodePool}); err != nil {
		return nil, fmt.Errorf("listing the Machines of cluster %s/%s: %w", cluster.Namespace, cluster.Name, err)
	}
	v.Machines = make([]Machine, 0, len(machines.Items))
	for i := range machines.Items {
		m := &machines.Items[i]
		aws, err := ReadAWSMachine(ctx, management, m)
		if err != nil {
			return nil, err
		}
		v.Machines = append(v.Machines, Machine{Machine: m, AWSMachine: aws, Node: NodeOf(m, aws, v.NodeByName, byProviderID)})
	}
	return v, nil
}

// Read is ReadMachines and the cluster's pods.
func Read(ctx context.Context, management, workload client.Reader, cluster *clusterv1.Cluster) (*View, error) {
	v, err := ReadMachines(ctx, management, workload, cluster)
	if err != nil {
		return nil, err
	}
	v.Pods, v.Pending, err = ReadPods(ctx, workload, cluster)
	if err != nil {
		return nil, err
	}
	for _, pod := range v.Pods {
		if pod.Spec.NodeName != "" {
			v.Bound[pod.Spec.NodeName] = append(v.Bound[pod.Spec.NodeName], pod)
		}
	}
	return v, nil
}

// ReadPods reads the cluster's pods as Read sorts them: pods are the
// bound (unfinished) and pending ones, pending those Joinery provisions
// for (IsProvisionable), both in the order listed.
func ReadPods(ctx context.Context, workload client.Reader, cluster *clusterv1.Cluster) (pods, pending []*corev1.Pod, err error) {
	var list corev1.PodList
	if err := workload.List(ctx, &list); err != nil {
		return nil, nil, fmt.Errorf("listing the pods of cluster %s/%s: %w", cluster.Namespace, cluster.Name, err)
	}
	for i := range list.Items {
		pod := &list.Items[i]
		switch {
		case pod.Spec.NodeName != "":
			// A finished pod holds nothing on its node.
			if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				continue
			}
			pods = append(pods, pod)
		case IsProvisionable(pod):
			pending = append(pending, pod)
			pods = append(pods, pod)
		}
	}
	return pods, pending, nil
}

// NodeOf is the registered Node a Machine became: the Node its nodeRef
// names, else the Node with its provider ID, from the Machine or, before
// CAPI copies it there, from the AWSMachine. The kubelet registers before
// CAPI sets either field on the Machine, and a Node matched by nothing
// would count twice: as itself, and as the Machine's capacity in flight.
func NodeOf(m *clusterv1.Machine, aws *infrav1.AWSMachine, byName, byProviderID map[string]*corev1.Node) *corev1.Node {
	if m.Status.NodeRef.IsDefined() {
		if n := byName[m.Status.NodeRef.Name]; n != nil {
			return n
		}
	}
	if m.Spec.ProviderID != "" {
		return byProviderID[m.Spec.ProviderID]
	}
	if aws != nil && aws.Spec.ProviderID != nil {
		return byProviderID[*aws.Spec.ProviderID]
	}
	return nil
}

// ReadAWSMachine reads a Machine's AWSMachine (nil when it does not exist).
func ReadAWSMachine(ctx context.Context, management client.Reader, m *clusterv1.Machine) (*infrav1.AWSMachine, error) {
	if m.Spec.InfrastructureRef.Name == "" {
		return nil, nil
	}
	aws := &infrav1.AWSMachine{}
	err := management.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.InfrastructureRef.Name}, aws)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading AWSMachine %s/%s of Machine %s: %w", m.Namespace, m.Spec.InfrastructureRef.Name, m.Name, err)
	}
	return aws, nil
}

// IsProvisionable reports whether a pod is one Joinery should find a
// place for: the scheduler tried and marked it Unschedulable, it is not
// bound or being deleted, and no DaemonSet owns it (Karpenter's
// utils/pod IsProvisionable).
func IsProvisionable(pod *corev1.Pod) bool {
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodPending {
		return false
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "DaemonSet" && ref.APIVersion == appsv1.SchemeGroupVersion.String() {
			return false
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// NodeInitialized reports whether a registered node is capacity pods can
// use now: Ready, and CAPI has removed the uninitialized taint the kubeadm
// bootstrap registers it with (once it synced the Machine's labels).
// Until then it is capacity in flight.
func NodeInitialized(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == clusterv1.NodeUninitializedTaint.Key {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// InFlightNodes names the registered Nodes that are capacity on its way,
// by node name: planning may place pods on them, ignoring the taints a
// booting node carries (see solver.SchedulingTaints). A Node is in flight
// only while all of these hold, as Karpenter counts only its own
// uninitialized NodeClaims (pkg/controllers/state, StateNode.Initialized):
//   - it is the Node of one of Joinery's Machines that is not being
//     deleted: a Node without a live Machine (its Machine deleted while the
//     workload cluster was unreachable, so CAPI could not delete the Node)
//     will never be initialized by anyone, and is taken as it is;
//   - it is not initialized yet (NodeInitialized);
//   - it has not stopped reporting: a Ready condition Unknown is set by the
//     node lifecycle controller when the kubelet stops posting status, so
//     the node is lost, not booting, and its unreachable taint is real;
//   - it registered less than bootBound ago (the registration timeout): a
//     node that never becomes usable is not capacity for ever.
//
// now must be read on the apiserver's clock, as Node timestamps are.
func (v *View) InFlightNodes(now time.Time, bootBound time.Duration) map[string]bool {
	out := map[string]bool{}
	for i := range v.Machines {
		vm := &v.Machines[i]
		if vm.Deleting() || vm.Node == nil {
			continue
		}
		if NodeBooting(vm.Node, now, bootBound) {
			out[vm.Node.Name] = true
		}
	}
	return out
}

// NodeBooting reports whether a Node of a live Machine is still booting:
// not initialized, still reporting, and registered less than bootBound
// before now (see InFlightNodes).
func NodeBooting(n *corev1.Node, now time.Time, bootBound time.Duration) bool {
	if NodeInitialized(n) {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionUnknown {
			return false
		}
	}
	return now.Sub(n.CreationTimestamp.Time) < bootBound
}
