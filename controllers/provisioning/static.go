package provisioning

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/metrics"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

// Static pools (spec.replicas) keep a fixed number of Machines per served
// cluster, as Karpenter's static NodePools do (pkg/controllers/static):
// this loop launches the missing ones, the disruption loop removes the
// surplus and replaces drifted, expired and unhealthy ones one at a time.

// AnnotationReplacedBy, on a Machine being replaced, names the Machines
// replacing it (written by the disruption loop once they are launched).
// AnnotationReplaces, on a replacement, names the Machines it replaces; it
// is written when the replacement is created, so it is there from the
// first moment any loop can see the replacement.
const (
	AnnotationReplacedBy = v1alpha1.Group + "/replaced-by"
	AnnotationReplaces   = v1alpha1.Group + "/replaces"
)

// annotationStaticSlot marks the stand-in pod a static node is planned
// for: its name is the slot, and it never exists in any cluster.
const annotationStaticSlot = v1alpha1.Group + "/static-slot"

// staticNamespace is the stand-in pods' namespace; their anti-affinity
// is scoped to it.
const staticNamespace = "joinery-static"

// StaticMachines are a static pool's Machines that count towards its
// replicas in one cluster: those not being deleted, except a replacement
// while a Machine it replaces is still there (that one counts in its
// place). Counting the replacement rather than the old Machine would be
// as right but for the moment between its creation and the replaced-by
// annotation on the old Machine, when both would count and a scale-down
// would take the replacement for surplus.
func StaticMachines(pool string, machines []clusterv1.Machine) []*clusterv1.Machine {
	live := map[string]bool{}
	for i := range machines {
		if machines[i].DeletionTimestamp.IsZero() {
			live[machines[i].Name] = true
		}
	}
	var out []*clusterv1.Machine
	for i := range machines {
		m := &machines[i]
		if m.Labels[v1alpha1.LabelNodePool] != pool || !m.DeletionTimestamp.IsZero() {
			continue
		}
		replacing := false
		for _, old := range strings.Split(m.Annotations[AnnotationReplaces], ",") {
			replacing = replacing || (old != "" && live[old])
		}
		if !replacing {
			out = append(out, m)
		}
	}
	return out
}

// staticSlotPod stands in for the one node slot i of a static pool
// needs: it requests nothing, tolerates every taint and repels the other
// stand-ins from its node, so that planning n of them yields n new nodes
// of the pool, each with its DaemonSets' overhead, the pool's cheapest
// available offering, and the pool's limits checked. Its name makes the
// Machine's name (MachineName), so a slot launched again after a crash
// finds the Machine it made.
func staticSlotPod(pool string, slot int) *corev1.Pod {
	labels := map[string]string{annotationStaticSlot: pool}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   staticNamespace,
			Name:        fmt.Sprintf("%s-slot-%d", pool, slot),
			UID:         types.UID(fmt.Sprintf("static/%s/%d", pool, slot)),
			Labels:      labels,
			Annotations: map[string]string{annotationStaticSlot: strconv.Itoa(slot)},
		},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{v1alpha1.LabelNodePool: pool},
			Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					TopologyKey:   corev1.LabelHostname,
				}},
			}},
			Containers: []corev1.Container{{Name: "slot"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

// isStaticSlot reports a stand-in pod, which has no object to send Events
// to and is no pod a decision was made for.
func isStaticSlot(p *corev1.Pod) bool {
	_, ok := p.Annotations[annotationStaticSlot]
	return ok && p.Namespace == staticNamespace
}

// withholdStatic keeps static pools from launching for pending pods: their
// offerings are unavailable to the solver. Their existing nodes still take
// pods.
func withholdStatic(snap *solver.Snapshot, pools []*v1alpha1.NodePool) {
	static := map[string]bool{}
	for _, np := range pools {
		if np.Static() {
			static[np.Name] = true
		}
	}
	if len(static) == 0 {
		return
	}
	for _, p := range snap.Pools {
		if !static[p.Name] {
			continue
		}
		for _, it := range p.InstanceTypes {
			for i := range it.Offerings {
				it.Offerings[i].Available = false
			}
		}
	}
}

// freeSlots returns the n lowest slots of a pool that no live Machine's
// name holds. A slot's names are fixed (RelaunchName over its stand-in),
// so which slots are free is the same before and after a restart.
func freeSlots(cluster *clusterv1.Cluster, pool *v1alpha1.NodePool, machines []clusterv1.Machine, n int) []int {
	live := map[string]bool{}
	for i := range machines {
		if machines[i].Labels[v1alpha1.LabelNodePool] == pool.Name {
			live[machines[i].Name] = true
		}
	}
	var out []int
	for slot := 0; len(out) < n && slot < n+len(machines)+maxRelaunchNames; slot++ {
		held := false
		node := &solver.NewNode{Pods: []*corev1.Pod{staticSlotPod(pool.Name, slot)}}
		for k := 0; k < maxRelaunchNames && !held; k++ {
			held = live[RelaunchName(LaunchSpec{Cluster: cluster, NodePool: pool, Node: node, Relaunch: k})]
		}
		if !held {
			out = append(out, slot)
		}
	}
	return out
}

// StaticPlan plans the new nodes for the given slots of a static pool:
// nodes of that pool only, none of them filled with other pods. Slots the
// pool's limits leave no room for are in plan.Unschedulable.
func StaticPlan(objs solverinput.Objects, offered []cloud.InstanceTypeOfferings, unavailable solver.UnavailableOfferings, restrict *restriction, pool *v1alpha1.NodePool, slots []int) (*solver.Plan, error) {
	// Pools' limits are counted from every node of the cluster; the
	// stand-ins must land on new nodes, so the nodes go after that.
	objs.Pods = nil
	snap, err := solverinput.Snapshot(objs, offered, unavailable)
	if err != nil {
		return nil, err
	}
	if restrict != nil {
		restrict.apply(snap)
	}
	snap.Nodes = nil
	var keep []*solver.Pool
	for _, p := range snap.Pools {
		if p.Name == pool.Name {
			keep = append(keep, p)
		}
	}
	snap.Pools = keep
	for _, slot := range slots {
		snap.Pods = append(snap.Pods, staticSlotPod(pool.Name, slot))
	}
	return solver.Solve(snap, solver.Options{SkipLowerBound: true, RecordRejections: true})
}

// StaticReplacement plans the one node that replaces a static pool's
// Machine (drift, expiry, repair): the same kind of node the pool launches
// for a missing replica, whatever pods the old node ran.
func (s *ClusterState) StaticReplacement(pool *v1alpha1.NodePool, unavailable solver.UnavailableOfferings) (*solver.NewNode, error) {
	slots := freeSlots(s.Cluster, pool, s.Machines, 1)
	plan, err := StaticPlan(s.Objects, s.Offered, unavailable, s.restrict, pool, slots)
	if err != nil {
		return nil, err
	}
	if len(plan.NewNodes) == 0 {
		why := "no offering of the pool is available"
		if len(plan.Unschedulable) > 0 {
			why = plan.Unschedulable[0].Reason
		}
		return nil, fmt.Errorf("NodePool %s: no replacement node can be planned: %s", pool.Name, why)
	}
	return plan.NewNodes[0], nil
}

// ensureStatic launches the Machines static pools miss in this cluster.
// It returns the Machines it created, for the pass to await.
func (ps *pass) ensureStatic(machines []clusterv1.Machine, objs solverinput.Objects, offered []cloud.InstanceTypeOfferings) ([]string, error) {
	var created []string
	for _, np := range ps.pools {
		if !np.Static() {
			continue
		}
		want := int(*np.Spec.Replicas)
		have := len(StaticMachines(np.Name, machines))
		staticReplicas.WithLabelValues(np.Namespace, ps.cluster.Name, np.Name).Set(float64(have))
		if have >= want {
			// The surplus is the disruption loop's: removing nodes is a
			// disruption, with drains and PodDisruptionBudgets.
			continue
		}
		if _, blocked := ps.poolBlocked(np, ps.templateIDs[np.Name], ps.now); blocked {
			continue
		}
		sobjs := objs
		if sobjs.DaemonSets == nil {
			if err := ps.listPlanningObjects(&sobjs); err != nil {
				return created, err
			}
		}
		slots := freeSlots(ps.cluster, np, machines, want-have)
		plan, err := StaticPlan(sobjs, offered, ps.unavailable.At(ps.now), ps.restriction(), np, slots)
		if err != nil {
			return created, fmt.Errorf("planning the %d missing Machine(s) of static NodePool %s: %w", want-have, np.Name, err)
		}
		if n := len(plan.Unschedulable); n > 0 {
			msg := fmt.Sprintf("spec.replicas is %d but only %d Machine(s) can be made: %s", want, want-n, plan.Unschedulable[0].Reason)
			if ps.staticLimited == nil {
				ps.staticLimited = map[string]string{}
			}
			ps.staticLimited[np.Name] = msg
		}
		if len(plan.NewNodes) == 0 {
			continue
		}
		version, err := ps.kubernetesVersion()
		if err != nil {
			return created, err
		}
		for _, node := range plan.NewNodes {
			m, _, err := ps.launch(node, np, version)
			if m != nil {
				created = append(created, m.Name)
			}
			if err != nil {
				ps.launchFailed(np, m, err)
				continue
			}
		}
		ps.log.Info("launched missing Machines of a static pool", "nodePool", np.Name, "replicas", want, "had", have, "launched", len(plan.NewNodes))
		ps.Recorder.Eventf(np, corev1.EventTypeNormal, "ScaledUp", "cluster %s: spec.replicas is %d and %d Machine(s) counted; launched %d",
			ps.cluster.Name, want, have, len(plan.NewNodes))
	}
	return created, nil
}

// staticDecisionPods drops the stand-ins from a decision's pods: a static
// node is made for its slot, not for pods.
func staticDecisionPods(d *Decision, node *solver.NewNode) {
	kept := d.Pods[:0]
	n := 0
	for _, p := range node.Pods {
		if isStaticSlot(p) {
			continue
		}
		n++
		if len(kept) < maxRecordedPods {
			kept = append(kept, p.Namespace+"/"+p.Name)
		}
	}
	d.Pods, d.PodCount = kept, n
}

var staticReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "joinery_nodepool_static_machines",
	Help: "Machines counted towards a static NodePool's spec.replicas in a cluster (neither deleting nor being replaced) at the last provisioning pass, by namespace, cluster and NodePool.",
}, []string{"namespace", "cluster", "nodepool"})

func init() { metrics.MustRegister(staticReplicas) }
