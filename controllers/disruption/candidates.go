package disruption

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/solver"
)

// Annotations that keep a node and its pods where they are, as in
// Karpenter (its key works too, so workloads need no change).
const (
	AnnotationDoNotDisrupt          = v1alpha1.Group + "/do-not-disrupt"
	AnnotationKarpenterDoNotDisrupt = "karpenter.sh/do-not-disrupt"
	// TaintDisrupted keeps new pods off a node from the moment Joinery
	// decides to remove it; pods that arrived before the taint are checked
	// again after it is set.
	TaintDisrupted = v1alpha1.Group + "/disrupted"
)

// Method names, in the order they are tried.
const (
	MethodExpiration    = "Expiration"
	MethodDrift         = "Drift"
	MethodEmptiness     = "Emptiness"
	MethodConsolidation = "Consolidation"
)

// Candidate is a Machine whose registered node may be disrupted.
type Candidate struct {
	Machine  *clusterv1.Machine
	Node     *corev1.Node
	Pool     *v1alpha1.NodePool
	Decision provisioning.Decision
	// Pods are the node's pods that would have to move (DaemonSet and
	// mirror pods stay with the node and are not counted).
	Pods []*corev1.Pod
	// LastPodChange is when a pod last arrived on or left the node, as
	// far as the pods' own timestamps tell.
	LastPodChange time.Time
	// Want is what the Machine should be now if it were made again; a
	// field left empty is not judged.
	Want Wanted
}

// Wanted is what drift compares a Machine with besides its pool.
type Wanted struct {
	// Version is the Cluster's Kubernetes version; VersionReady is false
	// while its control plane is still upgrading to it.
	Version      string
	VersionReady bool
	// TemplateHash is provisioning.TemplateHash of the pool's templates
	// now (under provisioning.TemplateHashVersion).
	TemplateHash string
}

// Blocked says why a candidate may not be disrupted now ("" if it may).
func Blocked(c *Candidate, pdbs []policyv1.PodDisruptionBudget) string {
	if doNotDisrupt(c.Node.Annotations) {
		return fmt.Sprintf("node %s is annotated do-not-disrupt", c.Node.Name)
	}
	for _, p := range c.Pods {
		if doNotDisrupt(p.Annotations) {
			return fmt.Sprintf("pod %s/%s is annotated do-not-disrupt", p.Namespace, p.Name)
		}
	}
	if reason := pdbBlocks(c.Pods, pdbs); reason != "" {
		return reason
	}
	return ""
}

func doNotDisrupt(annotations map[string]string) bool {
	return annotations[AnnotationDoNotDisrupt] == "true" || annotations[AnnotationKarpenterDoNotDisrupt] == "true"
}

// pdbBlocks reports a PodDisruptionBudget that allows no eviction now of
// a pod on the node: CAPI's drain respects it, so a disruption started now
// would not finish (Karpenter does not start those either). A budget that
// allows some evictions lets the drain go on at its pace. In policy/v1 an
// empty selector ({}) selects every pod of the PDB's namespace and only a
// missing one selects none; a selector that cannot be read blocks, since
// the eviction API would refuse to evict through it.
func pdbBlocks(pods []*corev1.Pod, pdbs []policyv1.PodDisruptionBudget) string {
	for i := range pdbs {
		pdb := &pdbs[i]
		if pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			return fmt.Sprintf("PodDisruptionBudget %s/%s has a selector that cannot be read (%v)", pdb.Namespace, pdb.Name, err)
		}
		evicting := 0
		for _, p := range pods {
			if p.Namespace == pdb.Namespace && sel.Matches(labels.Set(p.Labels)) {
				evicting++
			}
		}
		if evicting > 0 && pdb.Status.DisruptionsAllowed == 0 {
			return fmt.Sprintf("PodDisruptionBudget %s/%s allows no disruption now and %d of its pods are on the node", pdb.Namespace, pdb.Name, evicting)
		}
	}
	return ""
}

// MovablePods are the pods that would have to go somewhere else.
func MovablePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		if owner := metav1.GetControllerOf(p); owner != nil && owner.Kind == "DaemonSet" {
			continue
		}
		out = append(out, p)
	}
	return out
}

// lastPodChange is the latest pod arrival or departure on the node: when
// the tracker (departures) last saw the node's pods change, by the
// manager's clock, and the node's and its pods' creation and deletion
// timestamps, by the apiserver's. An apiserver time after now only says
// its clock is ahead of the manager's and is skipped, or a pod would hold
// its node for as long as the skew; with the apiserver's clock behind, a
// pod looks older than it is, and the tracker's own sighting (manager
// clock on both ends) is what holds consolidateAfter.
func lastPodChange(node *corev1.Node, pods []*corev1.Pod, seenChange, now time.Time) time.Time {
	var last time.Time
	consider := func(t time.Time) {
		if t.After(last) && !t.After(now) {
			last = t
		}
	}
	consider(node.CreationTimestamp.Time)
	for _, p := range pods {
		consider(p.CreationTimestamp.Time)
		if p.DeletionTimestamp != nil {
			consider(p.DeletionTimestamp.Time)
		}
	}
	if seenChange.After(last) {
		last = seenChange
	}
	return last
}

// departures remembers, per node of one cluster, the pods seen in the last
// pass and when that set last changed. A pod deleted between two passes
// leaves no object to read a time from, so this is where its departure is
// recorded; arrivals are recorded too, so that both ends of
// consolidateAfter are read from the manager's clock whatever the skew to
// the apiserver's. A node seen for the first time (after a restart) counts
// as changed now: what left while the manager was down is unknown, so
// consolidation waits consolidateAfter rather than assume nothing did.
type departures map[string]*nodePods

type nodePods struct {
	uids       map[string]bool
	lastChange time.Time
}

// observe updates the record from the pods bound to each node now.
func (d departures) observe(pods map[string][]*corev1.Pod, nodes []string, now time.Time) departures {
	next := departures{}
	for _, node := range nodes {
		cur := map[string]bool{}
		for _, p := range pods[node] {
			cur[string(p.UID)+"/"+p.Namespace+"/"+p.Name] = true
		}
		prev := d[node]
		entry := &nodePods{uids: cur, lastChange: now}
		if prev != nil && sameKeys(prev.uids, cur) {
			entry.lastChange = prev.lastChange
		}
		next[node] = entry
	}
	return next
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// Expired reports whether the Machine outlived the pool's expireAfter.
func Expired(c *Candidate, now time.Time) (bool, string) {
	d, ok, err := parseDurationOrNever(c.Pool.Spec.Template.Spec.ExpireAfter)
	if err != nil || !ok {
		return false, ""
	}
	age := now.Sub(c.Machine.CreationTimestamp.Time)
	if age < d {
		return false, ""
	}
	return true, fmt.Sprintf("Machine is %s old; the pool's expireAfter is %s", age.Round(time.Second), d)
}

// Drifted reports whether the Machine no longer matches its pool or its
// Cluster: the pool's template (labels, taints, kubelet, template
// references) hashes differently from when the Machine was made, the
// content of those templates does, the Cluster's Kubernetes version
// moved, or its node's labels no longer satisfy the pool's requirements.
func Drifted(c *Candidate) (bool, string) {
	if recorded := c.Machine.Annotations[provisioning.AnnotationPoolHash]; recorded != "" && recorded != provisioning.PoolHash(c.Pool) {
		return true, "the NodePool's template (labels, taints, kubelet, infrastructure or bootstrap template) changed since the Machine was made"
	}
	if v := c.Machine.Spec.Version; v != "" && c.Want.Version != "" && c.Want.VersionReady && !provisioning.SameVersion(v, c.Want.Version) {
		return true, fmt.Sprintf("the Machine runs Kubernetes %s and the Cluster's control plane is at %s", v, c.Want.Version)
	}
	if drifted, why := templateDrifted(c); drifted {
		return true, why
	}
	// Only labels the node has are judged: the instance attribute labels
	// arrive a moment after registration (the provisioning loop adds
	// them), and a label not there yet is not a label that changed.
	reqs := make(solver.Requirements, 0, len(c.Pool.Spec.Template.Spec.Requirements))
	for _, r := range c.Pool.Spec.Template.Spec.Requirements {
		if _, has := c.Node.Labels[r.Key]; !has {
			continue
		}
		reqs = append(reqs, solver.Requirement{Key: r.Key, Operator: solver.Operator(r.Operator), Values: r.Values})
	}
	if r, bad := reqs.FirstMismatch(labelMap(c.Node.Labels)); bad {
		return true, fmt.Sprintf("the node's labels no longer satisfy the NodePool's requirement %s", r.String())
	}
	return false, ""
}

// templateDrifted compares the template content hash stamped on the
// Machine with the templates' now. A Machine stamped under another hash
// version is not judged (see provisioning.TemplateHashVersion).
func templateDrifted(c *Candidate) (bool, string) {
	recorded := c.Machine.Annotations[provisioning.AnnotationTemplateHash]
	if recorded == "" || c.Want.TemplateHash == "" || c.Machine.Annotations[provisioning.AnnotationTemplateHashVersion] != provisioning.TemplateHashVersion {
		return false, ""
	}
	if recorded == c.Want.TemplateHash {
		return false, ""
	}
	spec := c.Pool.Spec.Template.Spec
	return true, fmt.Sprintf("the content of the pool's %s %s or %s %s changed since the Machine was made (template hash %s, now %s)",
		spec.InfrastructureTemplateRef.Kind, spec.InfrastructureTemplateRef.Name, spec.BootstrapTemplateRef.Kind, spec.BootstrapTemplateRef.Name,
		recorded, c.Want.TemplateHash)
}

type labelMap map[string]string

func (l labelMap) Label(key string) (string, bool) { v, ok := l[key]; return v, ok }

// Empty reports whether the node has had nothing to move for the pool's
// consolidateAfter.
func Empty(c *Candidate, now time.Time) (bool, string) {
	if len(c.Pods) > 0 {
		return false, ""
	}
	after, ok, err := parseDurationOrNever(c.Pool.Spec.Disruption.ConsolidateAfter)
	if err != nil || !ok {
		return false, ""
	}
	if since := now.Sub(c.LastPodChange); since < after {
		return false, ""
	}
	return true, "the node runs no pods but DaemonSet pods"
}

// Consolidatable reports whether the pool lets a non-empty node be
// consolidated now, and why not when it does not.
func Consolidatable(c *Candidate, now time.Time) (bool, string) {
	if c.Pool.Spec.Disruption.ConsolidationPolicy == v1alpha1.ConsolidationPolicyWhenEmpty {
		return false, fmt.Sprintf("the pool's consolidationPolicy is WhenEmpty and the node runs %d pods", len(c.Pods))
	}
	after, ok, err := parseDurationOrNever(c.Pool.Spec.Disruption.ConsolidateAfter)
	if err != nil {
		return false, fmt.Sprintf("NodePool %s: spec.disruption.consolidateAfter %q is not a duration: %v", c.Pool.Name, c.Pool.Spec.Disruption.ConsolidateAfter, err)
	}
	if !ok {
		return false, "the pool's consolidateAfter is Never"
	}
	if now.Sub(c.LastPodChange) < after {
		// No elapsed time in the text: it is recorded only when it changes.
		return false, fmt.Sprintf("a pod arrived or left within the pool's consolidateAfter (%s)", after)
	}
	return true, ""
}

// parseDurationOrNever reads "720h", "30s" or "Never" (ok false).
func parseDurationOrNever(s string) (time.Duration, bool, error) {
	if s == "" || s == "Never" {
		return 0, false, nil
	}
	d, err := time.ParseDuration(s)
	return d, err == nil, err
}

// DisruptionCost orders consolidation candidates, cheapest to disrupt
// first: fewer pods, and pods with a lower deletion cost (Karpenter's
// order, without the lifetime factor).
func DisruptionCost(pods []*corev1.Pod) float64 {
	cost := 1.0
	for _, p := range pods {
		cost += 1
		if v, ok := p.Annotations["controller.kubernetes.io/pod-deletion-cost"]; ok {
			var n float64
			if _, err := fmt.Sscanf(v, "%g", &n); err == nil {
				cost += n / (1 << 27)
			}
		}
	}
	return cost
}

func names(cs []*Candidate) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Machine.Name
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// wanted is what drift compares c's Machines with, read once a round:
// the Cluster's version and the pool's template hash. What cannot be read
// is left empty (not judged) and logged: a template gone is reported by
// provisioning, and a Machine is never replaced on a guess.
func (r *round) wanted(pool *v1alpha1.NodePool) Wanted {
	if r.want == nil {
		r.want = map[string]Wanted{}
		v, ready, err := r.Provisioner.ClusterVersion(r.ctx, r.st.Cluster)
		if err != nil {
			r.log.V(1).Info("not judging Kubernetes version drift", "reason", err.Error())
		}
		r.version, r.versionReady = v, ready
	}
	if w, ok := r.want[pool.Name]; ok {
		return w
	}
	w := Wanted{Version: r.version, VersionReady: r.versionReady}
	hash, err := r.Provisioner.PoolTemplateHash(r.ctx, r.st.Cluster.Namespace, pool)
	if err != nil {
		r.log.V(1).Info("not judging template content drift", "nodePool", pool.Name, "reason", err.Error())
	}
	w.TemplateHash = hash
	r.want[pool.Name] = w
	return w
}
