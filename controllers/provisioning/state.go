package provisioning

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/clusterstate"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

// AnnotationPoolHash records, on a Machine, the hash of its pool's
// template when it was made; a different hash now means the Machine
// drifted.
const AnnotationPoolHash = v1alpha1.Group + "/nodepool-hash"

// PoolHash hashes what a Machine takes from its pool at creation and
// cannot change afterwards: the template's labels and annotations, taints,
// startup taints, kubelet settings and template references. Requirements
// are checked against the node's labels instead, and limits, weight,
// disruption settings and expireAfter do not make a machine different.
func PoolHash(np *v1alpha1.NodePool) string {
	spec := np.Spec.Template.Spec
	b, _ := json.Marshal(struct {
		Metadata       v1alpha1.TemplateMetadata
		Taints         []v1alpha1.Taint
		StartupTaints  []v1alpha1.Taint
		Kubelet        *v1alpha1.KubeletConfiguration
		Infrastructure v1alpha1.TemplateReference
		Bootstrap      v1alpha1.TemplateReference
	}{np.Spec.Template.ObjectMeta, spec.Taints, spec.StartupTaints, spec.Kubelet, spec.InfrastructureTemplateRef, spec.BootstrapTemplateRef})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ClusterState is one workload cluster as the disruption controller needs
// it: what the provisioning loop plans with, without pending pods.
type ClusterState struct {
	Cluster *clusterv1.Cluster
	Pools   []*v1alpha1.NodePool
	// Objects hold the cluster's nodes (Machines still booting as
	// in-flight nodes), bound pods, DaemonSets and volumes.
	Objects solverinput.Objects
	Offered []cloud.InstanceTypeOfferings
	// Machines are Joinery's Machines of the cluster, deleting or not.
	Machines []clusterv1.Machine
	// Lost names Machines that are no capacity and never will be (their
	// instance terminated out of band, or their Node gone past the
	// grace): the provisioning loop deletes them.
	Lost map[string]bool
	// Nodes are the registered nodes by name; Pods the bound pods by node.
	Nodes map[string]*corev1.Node
	Pods  map[string][]*corev1.Pod
	// Pending counts pods the scheduler marked unschedulable.
	Pending int
	// Headroom are the CapacityBuffers' virtual pods: room disruption must
	// keep (see internal/capacitybuffer).
	Headroom []*corev1.Pod
	// Workload writes to the workload cluster; Live reads it uncached.
	Workload client.Client
	Live     client.Reader

	// restrict withholds what the provisioning loop withholds: template
	// constraints, scoped refusals, blocked pools.
	restrict *restriction
}

// Snapshot is the solver's input for the state: nothing pending.
func (s *ClusterState) Snapshot(unavailable solver.UnavailableOfferings) (*solver.Snapshot, error) {
	snap, err := solverinput.Snapshot(s.Objects, s.Offered, unavailable)
	if err != nil {
		return nil, err
	}
	if s.restrict != nil {
		s.restrict.apply(snap)
	}
	withholdStatic(snap, s.Pools)
	return snap, nil
}

// Unavailable returns the offerings EC2 refused recently.
func (p *Provisioner) Unavailable() *UnavailableOfferings { return p.unavailable }

// State reads a cluster's state for planning disruptions. It changes
// nothing, and is nil for a cluster no pool serves or another manager's
// shard holds.
func (p *Provisioner) State(ctx context.Context, cluster *clusterv1.Cluster) (*ClusterState, error) {
	if !p.Shard.Serves(cluster) {
		return nil, nil
	}
	pools, err := p.poolsFor(ctx, cluster)
	if err != nil || len(pools) == 0 {
		return nil, err
	}
	w, err := p.connect(ctx, cluster)
	if err != nil {
		return nil, err
	}
	ps := &pass{Provisioner: p, ctx: ctx, log: ctrl.LoggerFrom(ctx), cluster: cluster, pools: pools, workload: w, now: p.Now()}
	offered, err := ps.prepare()
	if err != nil {
		return nil, err
	}
	live, err := p.ClusterCache.GetUncachedClient(ctx, ps.key)
	if err != nil {
		return nil, err
	}
	st := &ClusterState{Cluster: cluster, Pools: pools, Offered: offered,
		Workload: w.client, Live: live, Objects: solverinput.Objects{NodePools: ps.plannablePools(), NodeModels: ps.models, Overlays: ps.overlays},
		Lost: map[string]bool{}, restrict: ps.restriction()}
	view, err := clusterstate.Read(ctx, p.Client, w.reader, cluster)
	if err != nil {
		return nil, err
	}
	st.Objects.InFlight = view.InFlightNodes(ps.now, ps.Options.RegistrationTimeout)
	st.Machines = make([]clusterv1.Machine, 0, len(view.Machines))
	st.Nodes, st.Pods, st.Pending = view.NodeByName, view.Bound, len(view.Pending)
	for _, n := range view.Nodes {
		st.Objects.Nodes = append(st.Objects.Nodes, n)
	}
	for i := range view.Machines {
		vm := &view.Machines[i]
		st.Machines = append(st.Machines, *vm.Machine)
		if vm.Deleting() {
			continue
		}
		m := vm.Machine
		switch capacity, _ := ps.capacity(m, vm.AWSMachine, vm.Node); capacity {
		case MachineRegistered:
			continue
		case MachineInstanceGone, MachineNodeLost:
			st.Lost[m.Name] = true
			continue
		}
		d, err := ReadDecision(m)
		if err != nil {
			continue
		}
		pool := ps.byPool[d.NodePool]
		if pool == nil {
			continue
		}
		if t := ps.types[pool.Name][d.Offering.InstanceType]; t != nil {
			n := InFlightNode(m, pool, d, t, ps.region)
			st.Objects.Nodes = append(st.Objects.Nodes, n)
			st.Objects.InFlight[n.Name] = true
		}
	}
	// Planning a disruption places bound pods only.
	for _, pod := range view.Pods {
		if pod.Spec.NodeName != "" {
			st.Objects.Pods = append(st.Objects.Pods, pod)
		}
	}
	if err := ps.listPlanningObjects(&st.Objects); err != nil {
		return nil, err
	}
	buffers, err := ps.readBuffers()
	if err != nil {
		return nil, err
	}
	st.Headroom = virtualPods(buffers)
	return st, nil
}

// Launch creates Machines for new nodes of a plan made from a
// ClusterState: replacements the disruption controller starts before it
// removes the Machines named by replacing. It returns their names once the
// cache holds them.
func (p *Provisioner) Launch(ctx context.Context, st *ClusterState, nodes []*solver.NewNode, replacing []string) ([]string, error) {
	w, err := p.connect(ctx, st.Cluster)
	if err != nil {
		return nil, err
	}
	ps := &pass{Provisioner: p, ctx: ctx, log: ctrl.LoggerFrom(ctx), cluster: st.Cluster, pools: st.Pools, workload: w, now: p.Now(), replacing: replacing}
	if _, err := ps.prepare(); err != nil {
		return nil, err
	}
	ps.plannedWith(st.Machines)
	created, err := ps.launchPlan(&solver.Plan{NewNodes: nodes})
	if err != nil {
		return created, fmt.Errorf("launching replacements: %w", err)
	}
	return created, ps.waitForCache(created)
}
