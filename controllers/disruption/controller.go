// Package disruption removes or replaces the Machines Joinery made when
// they are expired, drifted, empty or underused, in Karpenter's order, by
// deleting Machines (CAPI cordons and drains) after creating any
// replacement and waiting for it to be Ready. Every decision waits a
// validation delay and is checked again before it is carried out;
// budgets, PodDisruptionBudgets and do-not-disrupt annotations are
// promises it keeps.
package disruption

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/internal/coalesce"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/solver"
)

// Annotations on a Machine being replaced: what replaces it and why.
// They make a replacement survive a restart of the manager.
const (
	AnnotationReplacedBy = provisioning.AnnotationReplacedBy
	AnnotationDisruption = v1alpha1.Group + "/disruption"
	// AnnotationNotDisrupted says why the last look that found nothing to
	// do kept this Machine, and AnnotationNotDisruptedSince since when that
	// has been the reason; joinery explain shows them.
	AnnotationNotDisrupted      = v1alpha1.Group + "/not-disrupted"
	AnnotationNotDisruptedSince = v1alpha1.Group + "/not-disrupted-since"
)

// Options tune the disruption loop.
type Options struct {
	// ValidationDelay is how long a decision waits before it is checked
	// again and carried out (15 s).
	ValidationDelay time.Duration
	// Interval is how often each cluster is looked at (10 s).
	Interval time.Duration
	// SpotToSpot allows replacing spot nodes with cheaper spot nodes.
	SpotToSpot bool
	// Repair replaces unhealthy Machines (see repair.go); RepairPolicies
	// are the node conditions that make a node unhealthy when no
	// MachineHealthCheck judges its Machine.
	Repair         bool
	RepairPolicies []RepairPolicy
	// WakeGap is the shortest gap between a cluster's round and the next
	// one its Machines' or its Cluster's changes cause (2 s, at most
	// Interval); zero looks at once on every change. A round reads the
	// whole cluster, and a provisioning burst rewrites each new Machine's
	// status many times while the round finds only that provisioning is
	// at work; Karpenter's disruption only polls, every 10 s. A round that
	// found provisioning at work holds changes back for Interval, when it
	// looks again anyway.
	WakeGap time.Duration
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{ValidationDelay: 15 * time.Second, Interval: 10 * time.Second, Repair: true, RepairPolicies: DefaultRepairPolicies(), WakeGap: 2 * time.Second}
}

// Controller is the disruption controller: one key per CAPI Cluster.
type Controller struct {
	Client      client.Client
	Provisioner *provisioning.Provisioner
	Recorder    record.EventRecorder
	Options     Options
	Now         func() time.Time

	mu      sync.Mutex
	pending map[types.NamespacedName]*action
	// gone tracks pod arrivals and departures per cluster (see departures).
	gone map[types.NamespacedName]departures
	// repairNoted is, by Machine, why it was last not repaired (Events
	// are sent when it changes).
	repairNoted map[string]string
	// wakes holds changes back to one round per WakeGap and cluster.
	wakes coalesce.Wakes
}

// action is a decision waiting for its validation delay.
type action struct {
	method     string
	reason     v1alpha1.DisruptionReason
	why        string
	candidates []*Candidate
	// replacements are the new nodes the moved pods need (none for a
	// plain deletion).
	replacements []*solver.NewNode
	savings      float64
	decidedAt    time.Time
	// scores are the Balanced pools' verdicts on a consolidation.
	scores []solver.BalancedScore
}

func (a *action) describe() string {
	s := fmt.Sprintf("%s of %s: %s", a.method, names(a.candidates), a.why)
	if len(a.replacements) > 0 {
		var r []string
		for _, n := range a.replacements {
			r = append(r, fmt.Sprintf("%s %s in %s ($%.4f/h)", n.Offering.CapacityType, n.InstanceType.Name, n.Offering.Zone, n.Offering.PricePerHour))
		}
		s += "; replaced by " + strings.Join(r, ", ")
	}
	if a.savings > 0 {
		s += fmt.Sprintf("; saves $%.4f/h", a.savings)
	}
	return s
}

// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=machines,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=machines/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools,verbs=get;list;watch

// SetupWithManager registers the controller.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	if c.Now == nil {
		c.Now = time.Now
	}
	c.pending = map[types.NamespacedName]*action{}
	c.wakes = coalesce.Wakes{Every: min(c.Options.WakeGap, c.Options.Interval), Now: c.Now}
	joineryOnly := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[v1alpha1.LabelNodePool]
		return ok
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("disruption").
		Watches(&clusterv1.Cluster{}, c.wakes.EnqueueRequestForObject(), builder.WithPredicates(c.Provisioner.Shard.Clusters())).
		Watches(&clusterv1.Machine{}, c.wakes.EnqueueRequestsFromMapFunc(clusterOfMachine), builder.WithPredicates(joineryOnly)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(c)
}

func clusterOfMachine(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[clusterv1.ClusterNameLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// Reconcile looks at one cluster: carries on replacements, checks and
// carries out a decision whose delay passed, or looks for a new one.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	c.wakes.Ran(req)
	cluster := &clusterv1.Cluster{}
	if err := c.Client.Get(ctx, req.NamespacedName, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			c.wakes.Forget(req)
			c.setPending(req.NamespacedName, nil)
			c.mu.Lock()
			delete(c.gone, req.NamespacedName)
			c.mu.Unlock()
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cluster.DeletionTimestamp.IsZero() || ptr.Deref(cluster.Spec.Paused, false) {
		return ctrl.Result{}, nil
	}
	st, err := c.Provisioner.State(ctx, cluster)
	if err != nil || st == nil {
		// Not served, or not reachable: provisioning reports it.
		return ctrl.Result{RequeueAfter: c.Options.Interval}, nil
	}
	r := c.newRound(ctx, log, st, req.NamespacedName)
	now := r.now
	if err := reportBudgets(ctx, c.Client, c.Recorder, st.Pools, r.apiNow); err != nil {
		log.Error(err, "reporting the pools' disruption budgets")
	}
	r.observeDepartures()
	r.removeStaleTaints()
	if err := r.scaleDownStatic(); err != nil {
		return ctrl.Result{}, err
	}
	if done, err := r.continueReplacements(); err != nil || done {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, err
	}
	if c.Options.Repair {
		// Before the wait for pending pods: an unhealthy node may be why
		// they are pending.
		if started, err := r.repair(); err != nil || started {
			return ctrl.Result{RequeueAfter: 2 * time.Second}, err
		}
	}
	candidates := r.candidates()
	if a := c.getPending(req.NamespacedName); a != nil {
		if wait := a.decidedAt.Add(c.Options.ValidationDelay).Sub(now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		c.setPending(req.NamespacedName, nil)
		if why := r.stillValid(a, candidates); why != "" {
			r.event(a, corev1.EventTypeNormal, "DisruptionCancelled", fmt.Sprintf("%s; cancelled: %s", a.describe(), why))
			return ctrl.Result{RequeueAfter: c.Options.Interval}, nil
		}
		if err := r.execute(a); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if st.Pending > 0 || r.booting() {
		// Provisioning is at work: what is pending may need the room.
		// The Machines it makes change many times while they boot, and
		// none of it is worth a look before the next one.
		if c.Options.WakeGap > 0 {
			c.wakes.Hold(req, c.Options.Interval)
		}
		return ctrl.Result{RequeueAfter: c.Options.Interval}, nil
	}
	a, err := r.decide(candidates)
	if err != nil {
		return ctrl.Result{}, err
	}
	if a == nil {
		r.recordKept(candidates)
		return ctrl.Result{RequeueAfter: c.Options.Interval}, nil
	}
	a.decidedAt = now
	c.setPending(req.NamespacedName, a)
	log.Info("disruption decided; validating", "action", a.describe(), "after", c.Options.ValidationDelay)
	return ctrl.Result{RequeueAfter: c.Options.ValidationDelay}, nil
}

func (c *Controller) getPending(key types.NamespacedName) *action {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[key]
}

func (c *Controller) setPending(key types.NamespacedName, a *action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a == nil {
		delete(c.pending, key)
	} else {
		c.pending[key] = a
	}
}

// round is one look at one cluster.
type round struct {
	*Controller
	ctx context.Context
	log logr.Logger
	st  *provisioning.ClusterState
	// now is the manager's clock, apiNow the management apiserver's (see
	// provisioning.Provisioner.APIServerNow): budget windows read it.
	now, apiNow time.Time
	key         types.NamespacedName
	// lastGone is when each node's pods were last seen changing.
	lastGone departures

	pdbs []policyv1.PodDisruptionBudget
	// kept says, by Machine name, why a candidate stays this round.
	kept map[string]string
	// want caches wanted by pool; version and versionReady are the
	// Cluster's, read with the first.
	want         map[string]Wanted
	version      string
	versionReady bool
}

// newRound starts a round at the manager's time and the apiserver's.
// Budget schedules are written against the cluster's time: a manager
// whose clock drifted minutes would open a window that allows no
// disruption minutes late (or close one early) by its own.
func (c *Controller) newRound(ctx context.Context, log logr.Logger, st *provisioning.ClusterState, key types.NamespacedName) *round {
	return &round{Controller: c, ctx: ctx, log: log, st: st, now: c.Now(), apiNow: c.Provisioner.APIServerNow(), key: key}
}

func (r *round) keep(c *Candidate, why string) {
	if r.kept == nil {
		r.kept = map[string]string{}
	}
	if _, ok := r.kept[c.Machine.Name]; !ok {
		r.kept[c.Machine.Name] = why
	}
}

// recordKept writes on each candidate why it stays, when that changed,
// with an Unconsolidatable Event as Karpenter emits. Writing only changes
// keeps this to a few patches however often the cluster is looked at.
func (r *round) recordKept(cands []*Candidate) {
	for _, c := range cands {
		why := r.kept[c.Machine.Name]
		if why == "" || c.Machine.Annotations[AnnotationNotDisrupted] == why {
			continue
		}
		patch := client.MergeFrom(c.Machine.DeepCopy())
		m := c.Machine.DeepCopy()
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[AnnotationNotDisrupted] = why
		m.Annotations[AnnotationNotDisruptedSince] = r.now.UTC().Format(time.RFC3339)
		if err := r.Client.Patch(r.ctx, m, patch, client.FieldOwner(provisioning.FieldOwner)); err != nil {
			if !apierrors.IsNotFound(err) {
				r.log.Error(err, "recording why a Machine is kept", "machine", m.Name)
			}
			continue
		}
		r.Recorder.Event(m, corev1.EventTypeNormal, "Unconsolidatable", why)
	}
}

// observeDepartures records which pods left which node since the last
// pass over this cluster.
func (r *round) observeDepartures() {
	nodes := make([]string, 0, len(r.st.Nodes))
	for name := range r.st.Nodes {
		nodes = append(nodes, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[types.NamespacedName]departures{}
	}
	r.lastGone = r.gone[r.key].observe(r.st.Pods, nodes, r.now)
	r.gone[r.key] = r.lastGone
}

func (r *round) lastPodChange(node *corev1.Node) time.Time {
	var seen time.Time
	if e := r.lastGone[node.Name]; e != nil {
		seen = e.lastChange
	}
	return lastPodChange(node, r.st.Pods[node.Name], seen, r.now)
}

func (r *round) pool(name string) *v1alpha1.NodePool {
	for _, p := range r.st.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// booting reports a Joinery Machine of the cluster without a node yet:
// capacity on its way, which pending pods may be waiting for.
func (r *round) booting() bool {
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		// A lost Machine (instance terminated, Node gone) is no capacity
		// on its way; provisioning deletes it.
		if m.DeletionTimestamp.IsZero() && !m.Status.NodeRef.IsDefined() && !r.st.Lost[m.Name] {
			return true
		}
	}
	return false
}

// candidates are the cluster's Joinery Machines with a Ready node that
// are not being deleted or replaced.
func (r *round) candidates() []*Candidate {
	// A replacement stays out until the Machine it replaces is gone: its
	// node looks empty while the pods are still draining towards it.
	replacements := map[string]bool{}
	for i := range r.st.Machines {
		for _, name := range strings.Split(r.st.Machines[i].Annotations[AnnotationReplacedBy], ",") {
			replacements[name] = true
		}
	}
	var out []*Candidate
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		if !m.DeletionTimestamp.IsZero() || m.Annotations[AnnotationReplacedBy] != "" || !m.Status.NodeRef.IsDefined() || replacements[m.Name] {
			continue
		}
		node := r.st.Nodes[m.Status.NodeRef.Name]
		if node == nil || !conditions.IsTrue(m, clusterv1.MachineNodeReadyCondition) {
			continue
		}
		d, err := provisioning.ReadDecision(m)
		if err != nil {
			continue
		}
		pool := r.pool(d.NodePool)
		if pool == nil {
			continue
		}
		pods := MovablePods(r.st.Pods[node.Name])
		c := &Candidate{Machine: m, Node: node, Pool: pool, Decision: d, Pods: pods, LastPodChange: r.lastPodChange(node), Want: r.wanted(pool)}
		if v := m.Spec.Version; v != "" && c.Want.Version != "" && !c.Want.VersionReady && !provisioning.SameVersion(v, c.Want.Version) {
			r.keep(c, fmt.Sprintf("the Cluster moves to Kubernetes %s; its Machines follow once the control plane runs it", c.Want.Version))
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Machine.Name < out[j].Machine.Name })
	return out
}

// podDisruptionBudgets lists the workload cluster's PDBs once a round. A
// failed list is an error, never "no PDBs": callers block on it.
func (r *round) podDisruptionBudgets() ([]policyv1.PodDisruptionBudget, error) {
	if r.pdbs == nil {
		var list policyv1.PodDisruptionBudgetList
		if err := r.st.Live.List(r.ctx, &list); err != nil {
			return nil, err
		}
		r.pdbs = list.Items
		if r.pdbs == nil {
			r.pdbs = []policyv1.PodDisruptionBudget{}
		}
	}
	return r.pdbs, nil
}

// blocked says why c may not be disrupted now ("" if it may), including
// when the PDBs that could protect its pods cannot be read.
func (r *round) blocked(c *Candidate) string {
	pdbs, err := r.podDisruptionBudgets()
	if err != nil {
		return fmt.Sprintf("the workload cluster's PodDisruptionBudgets cannot be listed (%v); no node is disrupted until they can be checked", err)
	}
	return Blocked(c, pdbs)
}

// disrupting counts a pool's Machines being deleted or replaced.
func (r *round) disrupting(pool string) (disrupting, total int) {
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		if m.Labels[v1alpha1.LabelNodePool] != pool {
			continue
		}
		total++
		if !m.DeletionTimestamp.IsZero() || m.Annotations[AnnotationReplacedBy] != "" {
			disrupting++
		}
	}
	return disrupting, total
}

// allowed filters candidates by their pools' budgets for reason, keeping
// their order.
func (r *round) allowed(cands []*Candidate, reason v1alpha1.DisruptionReason) []*Candidate {
	left := map[string]int{}
	var out []*Candidate
	for _, c := range cands {
		n, ok := left[c.Pool.Name]
		if !ok {
			disrupting, total := r.disrupting(c.Pool.Name)
			var err error
			n, err = AllowedDisruptions(c.Pool.Spec.Disruption.Budgets, reason, total, disrupting, r.apiNow)
			if err != nil {
				// reportBudgets put it on the pool's condition and Events.
				r.keep(c, err.Error())
				n = 0
			}
		}
		if n > 0 {
			out = append(out, c)
			n--
		}
		left[c.Pool.Name] = n
	}
	return out
}

func (r *round) unblocked(cands []*Candidate) []*Candidate {
	var out []*Candidate
	for _, c := range cands {
		if why := r.blocked(c); why != "" {
			r.keep(c, why)
		} else {
			out = append(out, c)
		}
	}
	return out
}

// expired reports whether c outlived its pool's expireAfter, reading the
// age on the apiserver's clock: it set the creationTimestamp the age is
// counted from, and a manager clock ahead would expire Machines early.
func (r *round) expired(c *Candidate) (bool, string) {
	return Expired(c, r.Provisioner.APIServerNow())
}

// decide tries the methods in Karpenter's order and returns the first
// action found.
func (r *round) decide(all []*Candidate) (*action, error) {
	cands := r.unblocked(all)
	if len(cands) == 0 {
		return nil, nil
	}
	for _, m := range []struct {
		method string
		reason v1alpha1.DisruptionReason
		test   func(*Candidate) (bool, string)
	}{
		{MethodExpiration, v1alpha1.DisruptionReasonExpired, r.expired},
		{MethodDrift, v1alpha1.DisruptionReasonDrifted, Drifted},
	} {
		var picked []*Candidate
		var why []string
		for _, c := range cands {
			if ok, reason := m.test(c); ok {
				picked = append(picked, c)
				why = append(why, c.Machine.Name+": "+reason)
			}
		}
		picked = r.allowed(picked, m.reason)
		if len(picked) == 0 {
			continue
		}
		// One at a time: each replacement is made Ready before the next.
		picked = picked[:1]
		if picked[0].Pool.Static() {
			a, err := r.staticReplacement(picked[0], m.method, m.reason, why[0])
			if err != nil || a != nil {
				return a, err
			}
			continue
		}
		plan, err := r.simulate(picked)
		if err != nil {
			return nil, err
		}
		if plan == nil {
			// Not why[0]: it has the Machine's age in it, and a reason is
			// written only when it changes.
			r.keep(picked[0], m.method+" is due, but its pods would have nowhere to go")
			continue
		}
		return &action{method: m.method, reason: m.reason, why: why[0], candidates: picked, replacements: plan.NewNodes}, nil
	}

	// Static pools keep their replicas: never emptied or consolidated.
	cands = dynamicOnly(cands)
	var empty []*Candidate
	for _, c := range cands {
		if ok, _ := Empty(c, r.now); ok {
			empty = append(empty, c)
		}
	}
	empty, err := r.withoutHeadroom(empty)
	if err != nil {
		return nil, err
	}
	if empty = r.allowed(empty, v1alpha1.DisruptionReasonEmpty); len(empty) > 0 {
		saves := 0.0
		for _, c := range empty {
			saves += c.Decision.Offering.PricePerHour
		}
		return &action{method: MethodEmptiness, reason: v1alpha1.DisruptionReasonEmpty, why: "the nodes run no pods but DaemonSet pods", candidates: empty, savings: saves}, nil
	}

	var consolidatable []*Candidate
	for _, c := range cands {
		if ok, why := Consolidatable(c, r.now); ok {
			consolidatable = append(consolidatable, c)
		} else {
			r.keep(c, why)
		}
	}
	allowed := r.allowed(consolidatable, v1alpha1.DisruptionReasonUnderutilized)
	if len(allowed) < len(consolidatable) {
		in := map[*Candidate]bool{}
		for _, c := range allowed {
			in[c] = true
		}
		for _, c := range consolidatable {
			if !in[c] {
				r.keep(c, "the pool's disruption budgets allow no more Underutilized disruptions now")
			}
		}
	}
	if len(allowed) == 0 {
		return nil, nil
	}
	return r.consolidate(allowed)
}

// simulate plans the candidates' pods without the candidates' nodes; nil
// when some pod would have nowhere to go.
func (r *round) simulate(cands []*Candidate) (*solver.Plan, error) {
	snap, err := r.st.Snapshot(r.Provisioner.Unavailable().At(r.now))
	if err != nil {
		return nil, err
	}
	remove := make([]string, len(cands))
	for i, c := range cands {
		remove[i] = c.Node.Name
	}
	// The buffers' headroom moves with the candidates' pods, so a
	// replacement keeps room for it (Karpenter simulates its virtual pods
	// in every disruption); headroom that fits nowhere does not hold up a
	// replacement that real pods need.
	snap.Pods = append(snap.Pods, r.st.Headroom...)
	plan, err := solver.SimulateRemoval(snap, remove, solver.Options{SkipLowerBound: true})
	if err != nil {
		return nil, err
	}
	for _, u := range plan.Unschedulable {
		if !capacitybuffer.IsVirtual(u.Pod) {
			return nil, nil
		}
	}
	return plan, nil
}

func (r *round) consolidate(cands []*Candidate) (*action, error) {
	snap, err := r.st.Snapshot(r.Provisioner.Unavailable().At(r.now))
	if err != nil {
		return nil, err
	}
	byNode := map[string]*Candidate{}
	in := make([]solver.Candidate, 0, len(cands))
	for _, c := range cands {
		byNode[c.Node.Name] = c
		in = append(in, solver.Candidate{Name: c.Node.Name, PricePerHour: c.Decision.Offering.PricePerHour,
			CapacityType: c.Decision.Offering.CapacityType, DisruptionCost: DisruptionCost(c.Pods),
			Pool: c.Pool.Name, RescheduleDisruptionCost: solver.RescheduleDisruptionCost(c.Pods)})
	}
	act, kept, err := solver.ConsolidateWithReasons(snap, in, solver.ConsolidationOptions{SpotToSpot: r.Options.SpotToSpot, Reserved: r.st.Headroom, Balanced: r.balancedOptions()})
	for _, k := range kept {
		if c := byNode[k.Name]; c != nil {
			if len(k.Scores) > 0 {
				r.countBalanced(k.Scores)
				r.keep(c, "no consolidation is worth its disruption: "+k.Reason)
			} else {
				r.keep(c, "no consolidation saves money: "+k.Reason)
			}
		}
	}
	if err != nil || act == nil {
		return nil, err
	}
	a := &action{method: MethodConsolidation, reason: v1alpha1.DisruptionReasonUnderutilized, why: act.Reason, savings: act.SavingsPerHour, scores: act.Scores}
	for _, name := range act.Remove {
		a.candidates = append(a.candidates, byNode[name])
	}
	if act.Replacement != nil {
		a.replacements = []*solver.NewNode{act.Replacement}
	}
	return a, nil
}

// stillValid checks a decision again after the delay ("" if it holds).
func (r *round) stillValid(a *action, now []*Candidate) string {
	current := map[string]*Candidate{}
	for _, c := range now {
		current[c.Machine.Name] = c
	}
	var fresh []*Candidate
	for _, c := range a.candidates {
		n := current[c.Machine.Name]
		if n == nil {
			return fmt.Sprintf("Machine %s is no longer a candidate", c.Machine.Name)
		}
		if why := r.blocked(n); why != "" {
			return why
		}
		fresh = append(fresh, n)
	}
	if len(r.allowed(fresh, a.reason)) < len(fresh) {
		return "the pool's disruption budget no longer allows it"
	}
	switch a.method {
	case MethodEmptiness:
		for _, c := range fresh {
			if ok, _ := Empty(c, r.now); !ok {
				return fmt.Sprintf("node %s is no longer empty", c.Node.Name)
			}
		}
	case MethodConsolidation:
		// The same search, on just these candidates, must still find
		// this removal profitable.
		again, err := r.consolidate(fresh)
		if err != nil || again == nil || len(again.candidates) != len(fresh) {
			return "moving the pods no longer saves money"
		}
		a.replacements, a.savings, a.why, a.scores = again.replacements, again.savings, again.why, again.scores
	case MethodExpiration, MethodDrift:
		if fresh[0].Pool.Static() {
			// The replacement stays the one decided: a node of the pool.
			break
		}
		plan, err := r.simulate(fresh)
		if err != nil || plan == nil {
			return "the pods would no longer fit elsewhere"
		}
		a.replacements = plan.NewNodes
	default:
		plan, err := r.simulate(fresh)
		if err != nil || plan == nil {
			return "the pods would no longer fit elsewhere"
		}
		a.replacements = plan.NewNodes
	}
	a.candidates = fresh
	return ""
}

// execute taints the nodes so nothing new lands on them, checks their
// pods once more (closing the race with a do-not-disrupt pod that arrived
// after the decision), then deletes the Machines, or first launches their
// replacements and records them on the Machines.
func (r *round) execute(a *action) error {
	for _, c := range a.candidates {
		if err := r.taint(c.Node, true); err != nil {
			return err
		}
	}
	for _, c := range a.candidates {
		var pods corev1.PodList
		if err := r.st.Live.List(r.ctx, &pods, client.MatchingFields{"spec.nodeName": c.Node.Name}); err != nil {
			return r.untaintAll(a, err)
		}
		live := make([]*corev1.Pod, 0, len(pods.Items))
		for i := range pods.Items {
			live = append(live, &pods.Items[i])
		}
		recheck := *c
		recheck.Pods = MovablePods(live)
		if why := r.blocked(&recheck); why != "" {
			r.event(a, corev1.EventTypeNormal, "DisruptionCancelled", fmt.Sprintf("%s; cancelled: %s", a.describe(), why))
			return r.untaintAll(a, nil)
		}
	}
	r.countBalanced(a.scores)
	if len(a.replacements) > 0 {
		replacing := make([]string, len(a.candidates))
		for i, c := range a.candidates {
			replacing[i] = c.Machine.Name
		}
		names, err := r.Provisioner.Launch(r.ctx, r.st, a.replacements, replacing)
		if err != nil {
			return r.untaintAll(a, err)
		}
		for _, c := range a.candidates {
			patch := client.MergeFrom(c.Machine.DeepCopy())
			if c.Machine.Annotations == nil {
				c.Machine.Annotations = map[string]string{}
			}
			c.Machine.Annotations[AnnotationReplacedBy] = strings.Join(names, ",")
			c.Machine.Annotations[AnnotationDisruption] = a.describe()
			if err := r.Client.Patch(r.ctx, c.Machine, patch, client.FieldOwner(provisioning.FieldOwner)); err != nil {
				// The nodes not marked replaced stay tainted otherwise.
				return r.untaintAll(a, err)
			}
		}
		r.event(a, corev1.EventTypeNormal, "Replacing", a.describe()+"; the Machines are deleted once the replacements are Ready")
		return nil
	}
	for _, c := range a.candidates {
		if err := r.delete(c.Machine, c.Pool, a.method, a.describe()); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleTaints takes TaintDisrupted off nodes whose Machine is
// neither being deleted nor being replaced. Nodes are tainted and their
// Machines deleted or annotated within one pass, so at the start of a pass
// such a taint was left by a crash, a failed write or an abandoned action;
// left alone it would keep pods off a healthy node for good.
func (r *round) removeStaleTaints() {
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		if !m.DeletionTimestamp.IsZero() || m.Annotations[AnnotationReplacedBy] != "" || !m.Status.NodeRef.IsDefined() {
			continue
		}
		node := r.st.Nodes[m.Status.NodeRef.Name]
		if node == nil || !hasTaint(node, TaintDisrupted) {
			continue
		}
		if err := r.taint(node, false); err != nil {
			r.log.Error(err, "removing a stale disruption taint", "node", node.Name, "machine", m.Name)
			continue
		}
		r.log.Info("removed a stale disruption taint: its Machine is neither deleting nor being replaced", "node", node.Name, "machine", m.Name)
		r.Recorder.Eventf(m, corev1.EventTypeNormal, "StaleTaintRemoved", "node %s had taint %s but the Machine is neither deleting nor being replaced; removed it", node.Name, TaintDisrupted)
	}
}

func hasTaint(node *corev1.Node, key string) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func (r *round) untaintAll(a *action, cause error) error {
	for _, c := range a.candidates {
		if err := r.taint(c.Node, false); err != nil && cause == nil {
			cause = err
		}
	}
	return cause
}

// taint adds or removes TaintDisrupted on a node.
func (r *round) taint(node *corev1.Node, on bool) error {
	fresh := &corev1.Node{}
	if err := r.st.Live.Get(r.ctx, client.ObjectKeyFromObject(node), fresh); err != nil {
		return client.IgnoreNotFound(err)
	}
	has := false
	var kept []corev1.Taint
	for _, t := range fresh.Spec.Taints {
		if t.Key == TaintDisrupted {
			has = true
			continue
		}
		kept = append(kept, t)
	}
	if has == on {
		return nil
	}
	patch := client.MergeFromWithOptions(fresh.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if on {
		kept = append(kept, corev1.Taint{Key: TaintDisrupted, Effect: corev1.TaintEffectNoSchedule})
	}
	fresh.Spec.Taints = kept
	return r.st.Workload.Patch(r.ctx, fresh, patch)
}

// continueReplacements deletes Machines whose replacements are Ready,
// and gives up on replacements that failed (their Machines are gone):
// the old Machine is untainted and kept, to be decided on again.
func (r *round) continueReplacements() (busy bool, err error) {
	byName := map[string]*clusterv1.Machine{}
	for i := range r.st.Machines {
		byName[r.st.Machines[i].Name] = &r.st.Machines[i]
	}
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		replacedBy := m.Annotations[AnnotationReplacedBy]
		if replacedBy == "" || !m.DeletionTimestamp.IsZero() {
			continue
		}
		busy = true
		ready, failed := true, false
		for _, name := range strings.Split(replacedBy, ",") {
			rm := byName[name]
			switch {
			case rm == nil || !rm.DeletionTimestamp.IsZero():
				failed = true
			case !conditions.IsTrue(rm, clusterv1.MachineNodeReadyCondition):
				ready = false
			}
		}
		pool := r.pool(m.Labels[v1alpha1.LabelNodePool])
		switch {
		case failed:
			patch := client.MergeFrom(m.DeepCopy())
			delete(m.Annotations, AnnotationReplacedBy)
			delete(m.Annotations, AnnotationDisruption)
			if err := r.Client.Patch(r.ctx, m, patch, client.FieldOwner(provisioning.FieldOwner)); err != nil {
				return busy, err
			}
			if m.Status.NodeRef.IsDefined() {
				if node := r.st.Nodes[m.Status.NodeRef.Name]; node != nil {
					if err := r.taint(node, false); err != nil {
						return busy, err
					}
				}
			}
			if pool != nil {
				r.Recorder.Eventf(m, corev1.EventTypeWarning, "ReplacementFailed", "replacement Machine(s) %s are gone; keeping this Machine", replacedBy)
			}
		case ready && pool != nil:
			if err := r.delete(m, pool, "", m.Annotations[AnnotationDisruption]); err != nil {
				return busy, err
			}
		}
	}
	return busy, nil
}

func (r *round) delete(m *clusterv1.Machine, pool *v1alpha1.NodePool, method, why string) error {
	// Written before the delete so a crash in between leaves the reason
	// (CAPI's MachineSet does the same); a Machine a MachineHealthCheck
	// did not mark is left alone.
	if err := r.ownerRemediated(m, RemediationMachineDeletingReason, "Machine is deleting"); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("marking Machine %s/%s remediated: %w", m.Namespace, m.Name, err)
	}
	err := r.Client.Delete(r.ctx, m, client.Preconditions{UID: &m.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting Machine %s/%s: %w", m.Namespace, m.Name, err)
	}
	if method == "" {
		method, _, _ = strings.Cut(why, " of ")
	}
	r.log.Info("disrupting", "machine", m.Name, "method", method, "why", why)
	r.Recorder.Eventf(m, corev1.EventTypeNormal, "Disrupting", "%s", why)
	r.Recorder.Eventf(pool, corev1.EventTypeNormal, "Disrupting", "Machine %s in cluster %s: %s", m.Name, m.Spec.ClusterName, why)
	countDisrupted(m, pool, method)
	return nil
}

func (r *round) event(a *action, eventType, reason, msg string) {
	seen := map[string]bool{}
	for _, c := range a.candidates {
		r.Recorder.Event(c.Machine, eventType, reason, msg)
		if !seen[c.Pool.Name] {
			seen[c.Pool.Name] = true
			r.Recorder.Event(c.Pool, eventType, reason, msg)
		}
	}
}
