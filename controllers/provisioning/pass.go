package provisioning

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/internal/clusterstate"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

// pass is one reconcile of one cluster.
type pass struct {
	*Provisioner
	ctx      context.Context
	log      logr.Logger
	cluster  *clusterv1.Cluster
	pools    []*v1alpha1.NodePool
	workload *workload
	now      time.Time

	key    types.NamespacedName
	region string
	// replacing names the Machines a disruption replaces (see LaunchSpec).
	replacing []string
	byPool    map[string]*v1alpha1.NodePool
	types     map[string]map[string]*solverinput.LaunchableType // pool → type name → sized type
	models    map[string]solverinput.NodeModel                  // pool → what its templates make
	notes     map[string][]string                               // pool → what its model assumes
	// subnets are the AWSCluster's; constraints and templateIDs are each
	// pool's AWSMachineTemplate's (see LaunchConstraints, poolBlock).
	subnets     infrav1.Subnets
	constraints map[string]*LaunchConstraints
	templateIDs map[string]string
	// unbuildable are the pools whose node model cannot be built from
	// their templates (see prepare), with why: they launch nothing in the
	// cluster, and the other pools plan as usual.
	unbuildable map[string]string
	// launchProblems are the launches of this pass that failed, by pool
	// (see launchFailed).
	launchProblems map[string][]string
	// counted are the Machines the plan was made with (see createMachine).
	counted map[string]bool
	// overlays are the management cluster's NodeOverlays (see prepare).
	overlays []*v1alpha1.NodeOverlay
	// staticLimited says, by static pool, why not all its replicas could
	// be launched (see ensureStatic).
	staticLimited map[string]string
	// laps times the pass's phases (see slowPass).
	laps laps
}

// plannedWith records the Machines the pass plans with.
func (ps *pass) plannedWith(machines []clusterv1.Machine) {
	ps.counted = make(map[string]bool, len(machines))
	for i := range machines {
		ps.counted[machines[i].Name] = true
	}
}

func (ps *pass) run() (_ ctrl.Result, err error) {
	ps.key = client.ObjectKeyFromObject(ps.cluster)
	st := ps.state(ps.key)
	if wait, err := ps.awaitCreated(st); err != nil || wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	ps.laps.lap("awaitCreated")
	if result, done, err := ps.podsOnly(st); err != nil || done {
		return result, err
	}
	ps.laps.lap("podsOnly")
	changes := ps.unsettle(st)
	// The full pass reads every pod: what arrived until now is in its
	// list, and counts into the window from when it arrived.
	arrivedAt := map[types.NamespacedName]time.Time{}
	for _, a := range ps.takeArrived(st) {
		arrivedAt[a.pod] = a.at
	}
	defer func() {
		if err != nil {
			ps.unsettle(st)
		}
	}()
	offered, err := ps.prepare()
	if err != nil {
		ps.report(ps.cluster, ps.pools, true, err.Error())
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	ps.laps.lap("prepare")
	for _, np := range ps.pools {
		ps.reportNotes(np, ps.notes[np.Name])
		ps.reportUnbuildable(np, st)
	}

	view, err := clusterstate.Read(ps.ctx, sharedReads{ps.Client}, ps.workload.reader, ps.cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	ps.laps.lap("read")
	ps.counted = make(map[string]bool, len(view.Machines))
	for _, m := range view.Machines {
		ps.counted[m.Name] = true
	}
	objs := solverinput.Objects{NodePools: ps.plannablePools(), NodeModels: ps.models, Overlays: ps.overlays,
		// A Node's registration time is an apiserver's: its age is read
		// on the apiserver's clock, as a Machine's registration timeout is.
		InFlight: view.InFlightNodes(ps.APIServerNow(), ps.Options.RegistrationTimeout)}
	requeue := time.Duration(0)
	reservations := reservationUse{}
	decisions := make(map[types.UID]readDecision, len(view.Machines))
	defer func() { st.decisions = decisions }()
	st.forgetDeleted(view.Machines, ps.now)
	for i := range view.Machines {
		vm := &view.Machines[i]
		m, aws, node := vm.Machine, vm.AWSMachine, vm.Node
		if vm.Deleting() || st.deletedHere(m.UID) {
			continue
		}
		d, err := st.decision(m, decisions)
		if err != nil {
			ps.log.Error(err, "ignoring a Machine whose decision cannot be read", "machine", m.Name)
			continue
		}
		reservations.count(d, aws)
		pool := ps.byPool[d.NodePool]
		if pool == nil {
			// Its pool no longer serves this cluster (or was deleted: then
			// garbage collection removes the Machine).
			continue
		}
		capacity, wait := ps.capacity(m, aws, node)
		if wait > 0 && (requeue == 0 || wait < requeue) {
			requeue = wait
		}
		switch capacity {
		case MachineInstanceGone:
			msg := "its EC2 instance was terminated outside Joinery and CAPI (CAPA reports it terminated); deleting the Machine so CAPI cleans up, and its pods are planned again"
			if err := ps.deleteMachine(m, pool, "InstanceTerminated", msg); err != nil {
				return ctrl.Result{}, err
			}
			continue
		case MachineNodeLost:
			msg := fmt.Sprintf("its Node %s is gone while the Machine still references it, for longer than %s; deleting the Machine so its pods are planned again", m.Status.NodeRef.Name, ps.Options.NodeLostGrace)
			if err := ps.deleteMachine(m, pool, "NodeLost", msg); err != nil {
				return ctrl.Result{}, err
			}
			continue
		case MachineRegistered:
			labelled, err := ps.labelNode(node, pool, d)
			if err != nil {
				return ctrl.Result{}, err
			}
			// Planning sees the node as it is about to be, not as the
			// cache last saw it, so a node registered a moment ago
			// without its attribute labels does not cause a launch.
			view.NodeByName[node.Name] = labelled
			continue
		case MachineNodeLostGrace:
			// Not-ready capacity until the grace passes: planned as in
			// flight below, as its Node may be about to come back.
		case MachineBooting:
			gone, wait, err := ps.checkMachine(m, pool, d, aws)
			if err != nil {
				return ctrl.Result{}, err
			}
			if gone {
				continue
			}
			if wait > 0 && (requeue == 0 || wait < requeue) {
				requeue = wait
			}
		}
		// No Node yet: the Machine is capacity on its way.
		t := ps.types[pool.Name][d.Offering.InstanceType]
		if t == nil {
			continue
		}
		n := InFlightNode(m, pool, d, t, ps.region)
		objs.Nodes = append(objs.Nodes, n)
		objs.InFlight[n.Name] = true
	}

	ps.settle(st, changes, requeue)
	ps.laps.lap("machines")
	for _, n := range view.Nodes {
		objs.Nodes = append(objs.Nodes, view.NodeByName[n.Name])
	}
	machines := make([]clusterv1.Machine, 0, len(view.Machines))
	for i := range view.Machines {
		machines = append(machines, *view.Machines[i].Machine)
	}
	static, err := ps.ensureStatic(machines, objs, offered)
	if len(static) > 0 {
		st.awaiting, st.awaitingSince = static, ps.now
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	objs.Pods = view.Pods
	pending := view.Pending
	observePods(ps.key, st.seen, view.Pods, pending, ps.now)
	// CapacityBuffers' chunks are planned as pods that wait and never
	// run: a batch window opens for new ones as for new pods, and the plan
	// keeps room for them (see buffers.go).
	buffers, err := ps.readBuffers()
	if err != nil {
		return ctrl.Result{}, err
	}
	ps.laps.lap("buffers")
	headroom := virtualPods(buffers)
	if len(pending) == 0 && len(headroom) == 0 {
		observeNothingPending(ps.key)
		ps.batches.Close(ps.key.String())
		st.seen = map[types.UID]bool{}
		ps.reportPlan(nil)
		ps.writeBufferStatuses(buffers, nil)
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	if len(pending) == 0 {
		observeNothingPending(ps.key)
	}
	objs.Pods = append(append(make([]*corev1.Pod, 0, len(view.Pods)+len(headroom)), view.Pods...), headroom...)
	waiting := append(append(make([]*corev1.Pod, 0, len(pending)+len(headroom)), pending...), headroom...)

	// The new pods' window opens at the first one's arrival and idles
	// from the last one's; a pod the watch did not report (the cluster's
	// first pass, headroom) counts from now.
	var firstNew, lastNew time.Time
	for _, pod := range waiting {
		if st.seen[pod.UID] {
			continue
		}
		st.seen[pod.UID] = true
		at, ok := arrivedAt[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]
		if !ok {
			at = ps.now
		}
		if firstNew.IsZero() || at.Before(firstNew) {
			firstNew = at
		}
		if at.After(lastNew) {
			lastNew = at
		}
	}
	newPods := !firstNew.IsZero()
	windowReady, open := ps.batches.Ready(ps.key.String(), ps.now)
	switch {
	case newPods:
		ps.batches.PodPending(ps.key.String(), firstNew)
		ps.batches.PodPending(ps.key.String(), lastNew)
	case open == 0 && ps.now.Sub(st.lastPlan) >= ps.Options.Replan:
		// Nothing new, but pods still wait: plan again, at once.
		ps.batches.PodPending(ps.key.String(), ps.now.Add(-ps.Options.BatchIdle))
	case !windowReady && open == 0 && len(headroom) > 0 && capacityKey(objs) != st.capacityKey:
		// Nodes came, went or became Ready: whether the headroom fits
		// on what exists changed (the buffers' status says which).
		ps.batches.PodPending(ps.key.String(), ps.now)
	}
	ready, wait := ps.batches.Ready(ps.key.String(), ps.now)
	if !ready {
		if wait == 0 {
			wait = ps.Options.Replan - ps.now.Sub(st.lastPlan)
		}
		ps.writeBufferStatuses(buffers, nil)
		return ctrl.Result{RequeueAfter: minPositive(wait, requeue)}, nil
	}
	ps.batches.Close(ps.key.String())

	if err := ps.listPlanningObjects(&objs); err != nil {
		return ctrl.Result{}, err
	}
	ps.laps.lap("list")
	snap, err := solverinput.Snapshot(objs, offered, ps.unavailable.At(ps.now))
	if err != nil {
		ps.report(ps.cluster, ps.pools, true, err.Error())
		return ctrl.Result{RequeueAfter: ps.Options.Replan}, nil
	}
	r := ps.restriction()
	r.reservations = reservations
	r.reservationTotals = reservationTotals(offered)
	r.apply(snap)
	withholdStatic(snap, ps.pools)
	t0 := time.Now()
	plan, withoutHeadroom, err := capacitybuffer.Solve(snap, solver.Options{SkipLowerBound: true, RecordRejections: true})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("planning for %d pending pods: %w", len(pending), err)
	}
	ps.laps.lap("solve")
	observePlan(ps.key, len(pending), plan, time.Since(t0))
	onExisting := map[string]int{}
	for _, pl := range plan.Existing {
		if pl.Pod.Spec.NodeName == "" && !capacitybuffer.IsVirtual(pl.Pod) {
			onExisting[pl.NodeName]++
		}
	}
	ps.log.Info("planned", "pending", len(pending), "newMachines", len(plan.NewNodes), "unschedulable", len(plan.Unschedulable),
		"pricePerHour", plan.TotalPricePerHour, "took", time.Since(t0).String(), "pendingOnExistingNodes", onExisting,
		"headroomPods", len(headroom), "headroomOnNodes", capacitybuffer.Headroom(capacitybuffer.Placements(plan)))
	if withoutHeadroom {
		ps.log.Info("pending pods fit nowhere with the CapacityBuffers' headroom planned; planned without it, real pods first")
	}

	// Pods seen before and gone now are forgotten.
	st.seen = make(map[types.UID]bool, len(waiting))
	for _, pod := range waiting {
		st.seen[pod.UID] = true
	}
	st.lastPlan = ps.now
	st.capacityKey = capacityKey(objs)

	created, err := ps.launchPlan(plan)
	ps.laps.lap("launch")
	// Whatever was created is awaited, failures or not: planning before
	// the cache shows it would launch for the same pods again.
	if len(created) > 0 {
		st.awaiting, st.awaitingSince = append(static, created...), ps.now
	}
	if err != nil && len(ps.launchProblems) == 0 {
		// Nothing could be launched for any pool (no Kubernetes version).
		ps.batches.PodPending(ps.key.String(), ps.now)
		return ctrl.Result{}, err
	}
	if err != nil {
		// Reported per pool by launchFailed; what was not launched is
		// planned again in the next window.
		ps.batches.PodPending(ps.key.String(), ps.now)
	}
	ps.reportPlan(plan)
	if !withoutHeadroom {
		ps.writeBufferStatuses(buffers, plan)
	}
	return ctrl.Result{RequeueAfter: minPositive(ps.Options.Replan, requeue)}, nil
}

// readDecision is a Machine's decision and the annotation it was read
// from.
type readDecision struct {
	raw      string
	decision Decision
}

// decision is ReadDecision, decoded again only when the Machine's
// annotation changed since the last pass: a decision is written once, and
// decoding every Machine's on every pass was a sixth of the pass. The
// decisions read go into next, which becomes the cluster's cache, so
// Machines gone are forgotten. The Decision returned is shared with the
// cache and must not be modified.
func (st *clusterState) decision(m *clusterv1.Machine, next map[types.UID]readDecision) (Decision, error) {
	raw := m.Annotations[AnnotationDecision]
	if c, ok := st.decisions[m.UID]; ok && c.raw == raw {
		next[m.UID] = c
		return c.decision, nil
	}
	d, err := ReadDecision(m)
	if err != nil {
		return d, err
	}
	next[m.UID] = readDecision{raw: raw, decision: d}
	return d, nil
}

// podsOnly is the pass of a cluster where nothing a full pass reads has
// changed since the last one but pending pods, while a batch window is
// open: it counts new pending pods into the window and waits for the
// window, as the full pass would, without reading the cluster's Machines,
// Nodes, templates and buffers again. During a burst the pods' own events
// wake a cluster's loop once or twice per pod; reading everything each
// time was most of the manager's CPU per pending pod. done is false when
// a full pass must run: something else changed, a Machine is due to be
// looked at, no window is open, or the window is ready.
func (ps *pass) podsOnly(st *clusterState) (result ctrl.Result, done bool, err error) {
	ps.mu.Lock()
	settled := st.settled >= 0 && st.settled == st.changes
	due, recheck := false, time.Duration(0)
	if !st.recheckAt.IsZero() {
		recheck = st.recheckAt.Sub(ps.now)
		due = recheck <= 0
	}
	ps.mu.Unlock()
	if !settled || due {
		return ctrl.Result{}, false, nil
	}
	key := ps.key.String()
	if _, wait := ps.batches.Ready(key, ps.now); wait <= 0 {
		// No window open (a replan or the buffers' headroom may be due),
		// or it is ready: the full pass decides.
		return ctrl.Result{}, false, nil
	}
	// The pods the watch saw become pending since the last pass, as the
	// cache has them now: one that is no longer pending (bound, deleting)
	// is not counted, as a list would not have counted it. Pods that stop
	// being pending change no window; the pass at its close reads them
	// all (and records their times to bind, see observePods).
	for _, a := range ps.takeArrived(st) {
		pod := &corev1.Pod{}
		if err := ps.workload.reader.Get(ps.ctx, a.pod, pod, client.UnsafeDisableDeepCopy); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return ctrl.Result{}, false, fmt.Errorf("reading pod %s of cluster %s: %w", a.pod, ps.key, err)
		}
		if clusterstate.IsProvisionable(pod) && !st.seen[pod.UID] {
			st.seen[pod.UID] = true
			ps.batches.PodPending(key, a.at)
		}
	}
	ready, wait := ps.batches.Ready(key, ps.now)
	if ready {
		// The full pass finds the pods counted and plans.
		return ctrl.Result{}, false, nil
	}
	return ctrl.Result{RequeueAfter: minPositive(wait, recheck)}, true, nil
}

// unsettle starts a full pass, or records that one failed: until a full
// pass goes through the Machines again, no pass is podsOnly. It returns
// the count of changes the pass reads from.
func (ps *pass) unsettle(st *clusterState) int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st.settled = -1
	return st.changes
}

// settle records that a full pass went through every Machine having seen
// changes; requeue, when positive, is when one of them changes by itself.
func (ps *pass) settle(st *clusterState, changes int64, requeue time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st.settled = changes
	st.recheckAt = time.Time{}
	if requeue > 0 {
		st.recheckAt = ps.now.Add(requeue)
	}
}

// cacheLagLimit bounds how long a pass waits for the cache to show the
// Machines the previous pass created; beyond it the cache is broken, not
// late, and planning goes on (CAPI's own controllers would be stuck too).
const cacheLagLimit = 30 * time.Second

// awaitCreated reports how long to wait before planning while the cache
// has not shown every Machine the last pass created (0: go on).
func (ps *pass) awaitCreated(st *clusterState) (time.Duration, error) {
	for len(st.awaiting) > 0 {
		m := &clusterv1.Machine{}
		err := ps.Client.Get(ps.ctx, types.NamespacedName{Namespace: ps.cluster.Namespace, Name: st.awaiting[0]}, m)
		switch {
		case err == nil:
			st.awaiting = st.awaiting[1:]
		case !apierrors.IsNotFound(err):
			return 0, err
		case ps.now.Sub(st.awaitingSince) > cacheLagLimit:
			ps.log.Info("the cache still does not show Machines created a while ago; planning without them", "machines", st.awaiting, "since", st.awaitingSince)
			st.awaiting = nil
		default:
			// The Machine watch wakes the cluster changeWake after the
			// cache gets it; the short requeue looks sooner.
			return 100 * time.Millisecond, nil
		}
	}
	return 0, nil
}

// deletedHere says whether this process deleted the Machine and the cache
// has not shown it since (see clusterState.deleted).
func (st *clusterState) deletedHere(uid types.UID) bool {
	_, ok := st.deleted[uid]
	return ok
}

// forgetDeleted drops the Machines the cache now shows deleting or no
// longer lists, and any older than cacheLagLimit (beyond it the cache is
// broken, not late, and the Machine is read as it is shown).
func (st *clusterState) forgetDeleted(machines []clusterstate.Machine, now time.Time) {
	if len(st.deleted) == 0 {
		return
	}
	listed := make(map[types.UID]bool, len(machines))
	for i := range machines {
		if !machines[i].Deleting() {
			listed[machines[i].Machine.UID] = true
		}
	}
	for uid, at := range st.deleted {
		if !listed[uid] || now.Sub(at) > cacheLagLimit {
			delete(st.deleted, uid)
		}
	}
}

// prepare reads the cluster's region and zones and sizes every pool's
// instance types for them.
func (ps *pass) prepare() ([]cloud.InstanceTypeOfferings, error) {
	ps.key = client.ObjectKeyFromObject(ps.cluster)
	ps.byPool = map[string]*v1alpha1.NodePool{}
	for _, np := range ps.pools {
		ps.byPool[np.Name] = np
	}
	region, zones, err := ps.regionAndZones()
	if err != nil {
		return nil, err
	}
	ps.region = region
	offered, err := ps.offerings.get(region, zones)
	if err != nil {
		return nil, err
	}
	assumedZones := zoneNote(ps.Catalog.Current(), region)
	ps.types = map[string]map[string]*solverinput.LaunchableType{}
	ps.models = map[string]solverinput.NodeModel{}
	ps.notes = map[string][]string{}
	ps.unbuildable = map[string]string{}
	for _, np := range ps.pools {
		model, notes, byName, err := ps.sizePool(np, offered)
		if err != nil {
			// One pool's bad template must not stop the cluster's other
			// pools: it is blocked (see restriction) and reported (see
			// reportPlan). Its Machines already booting are still
			// capacity on the way, sized as the kubelet's defaults would
			// make them, so their pods are not launched for twice.
			ps.unbuildable[np.Name] = err.Error()
			ps.log.Error(err, "a NodePool's node model cannot be built; the pool launches nothing in this cluster, its other pools go on", "nodePool", np.Name)
			model = solverinput.NodeModel{VMMemoryOverheadPercent: ps.Options.VMMemoryOverheadPercent}
			if byName, err = solverinput.LaunchableTypesByName(np, offered, model); err != nil {
				byName = nil // not planned at all (see plannablePools)
			}
			notes = nil
		}
		if assumedZones != "" {
			notes = append(notes, assumedZones)
		}
		ps.notes[np.Name] = notes
		ps.models[np.Name] = model
		ps.types[np.Name] = byName
	}
	var overlays v1alpha1.NodeOverlayList
	if err := ps.Client.List(ps.ctx, &overlays); err != nil {
		return nil, fmt.Errorf("listing NodeOverlays: %w", err)
	}
	ps.overlays = make([]*v1alpha1.NodeOverlay, 0, len(overlays.Items))
	for i := range overlays.Items {
		ps.overlays = append(ps.overlays, &overlays.Items[i])
	}
	ps.constraints = map[string]*LaunchConstraints{}
	ps.templateIDs = map[string]string{}
	for _, np := range ps.pools {
		ref := np.Spec.Template.Spec.InfrastructureTemplateRef
		ps.templateIDs[np.Name] = PoolHash(np)
		if ref.Kind != "AWSMachineTemplate" || ref.APIGroup != infrav1.GroupVersion.Group {
			continue
		}
		// Typed, so the manager's cache serves it: every pass reads every
		// pool's template, and unstructured reads would go to the
		// apiserver each time.
		template := &infrav1.AWSMachineTemplate{}
		if err := ps.Client.Get(ps.ctx, types.NamespacedName{Namespace: ps.cluster.Namespace, Name: ref.Name}, template); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
			// The pool status reports a missing template; launches fail
			// with the same error.
			continue
		}
		ps.templateIDs[np.Name] = fmt.Sprintf("%s/%s/%d", PoolHash(np), template.UID, template.Generation)
		c := TemplateConstraints(&template.Spec.Template.Spec, ps.subnets)
		ps.constraints[np.Name] = &c
	}
	return offered, nil
}

// reportUnbuildable records a Warning Event on a pool whose node model
// cannot be built, once per distinct problem: the pool's condition
// (through reportPlan's report) says it for as long as it holds.
func (ps *pass) reportUnbuildable(np *v1alpha1.NodePool, st *clusterState) {
	msg := ps.unbuildable[np.Name]
	if st.unbuildable == nil {
		st.unbuildable = map[string]string{}
	}
	if st.unbuildable[np.Name] == msg {
		return
	}
	st.unbuildable[np.Name] = msg
	if msg == "" {
		return
	}
	ps.Recorder.Eventf(np, corev1.EventTypeWarning, "LaunchConfigurationError", "cluster %s: the pool launches nothing: %s", ps.cluster.Name, msg)
	// Shown now, not only at the end of a pass that plans: a pass with
	// nothing new to plan returns before reportPlan.
	key := client.ObjectKeyFromObject(np)
	r := ps.Reports.Get(key)[ps.cluster.Name]
	r.Reachable, r.LaunchBlocked = true, true
	r.LaunchProblem = joinProblems(r.LaunchProblem, msg)
	ps.Reports.Set(key, ps.cluster.Name, r)
}

// sizePool builds a pool's node model and sizes its instance types with
// it. An error names the pool, the template and the field to fix.
func (ps *pass) sizePool(np *v1alpha1.NodePool, offered []cloud.InstanceTypeOfferings) (solverinput.NodeModel, []string, map[string]*solverinput.LaunchableType, error) {
	model, notes, err := ps.nodeModel(np)
	if err != nil {
		return model, notes, nil, err
	}
	byName, err := solverinput.LaunchableTypesByName(np, offered, model)
	if err != nil {
		// The error names the pool and the field.
		return model, notes, nil, fmt.Errorf("%w; fix it: until then the pool's nodes cannot be sized and it launches nothing in this cluster", err)
	}
	return model, notes, byName, nil
}

// plannablePools are the pools the solver sees: all but those whose types
// cannot be sized even with the kubelet's defaults.
func (ps *pass) plannablePools() []*v1alpha1.NodePool {
	pools := make([]*v1alpha1.NodePool, 0, len(ps.pools))
	for _, np := range ps.pools {
		if ps.types[np.Name] != nil || ps.unbuildable[np.Name] == "" {
			pools = append(pools, np)
		}
	}
	return pools
}

// restriction is what this pass withholds from the solver.
func (ps *pass) restriction() *restriction {
	r := &restriction{region: ps.region, namespace: ps.cluster.Namespace, constraints: ps.constraints,
		scopes: ps.unavailable.Scopes(ps.now), blocked: map[string]bool{}, spotRisk: ps.spotRisk()}
	for _, np := range ps.pools {
		if _, blocked := ps.poolBlocked(np, ps.templateIDs[np.Name], ps.now); blocked {
			r.blocked[np.Name] = true
		}
		if ps.unbuildable[np.Name] != "" {
			r.blocked[np.Name] = true
		}
	}
	return r
}

func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// regionAndZones reads the cluster's region from its AWSCluster and its
// zones from the failure domains CAPI copied to the Cluster.
func (ps *pass) regionAndZones() (string, []string, error) {
	ref := ps.cluster.Spec.InfrastructureRef
	if ref.Kind != "AWSCluster" {
		return "", nil, fmt.Errorf("Cluster %s: spec.infrastructureRef is a %s; Joinery serves clusters whose infrastructure is an AWSCluster", ps.key, ref.Kind)
	}
	aws := &infrav1.AWSCluster{}
	if err := ps.Client.Get(ps.ctx, types.NamespacedName{Namespace: ps.cluster.Namespace, Name: ref.Name}, aws); err != nil {
		return "", nil, fmt.Errorf("reading AWSCluster %s/%s: %w", ps.cluster.Namespace, ref.Name, err)
	}
	if aws.Spec.Region == "" {
		return "", nil, fmt.Errorf("AWSCluster %s/%s has no spec.region", aws.Namespace, aws.Name)
	}
	ps.subnets = aws.Spec.NetworkSpec.Subnets
	var zones []string
	for _, fd := range ps.cluster.Status.FailureDomains {
		zones = append(zones, fd.Name)
	}
	return aws.Spec.Region, zones, nil
}

// planningLists are the kinds listPlanningObjects lists, for
// warmPlanningCaches.
func planningLists() []client.ObjectList {
	return []client.ObjectList{&appsv1.DaemonSetList{}, &corev1.PersistentVolumeClaimList{}, &corev1.PersistentVolumeList{},
		&storagev1.StorageClassList{}, &storagev1.CSINodeList{}, &corev1.NamespaceList{}}
}

func (ps *pass) listPlanningObjects(objs *solverinput.Objects) error {
	var daemonSets appsv1.DaemonSetList
	if err := ps.workload.reader.List(ps.ctx, &daemonSets); err != nil {
		return err
	}
	for i := range daemonSets.Items {
		objs.DaemonSets = append(objs.DaemonSets, &daemonSets.Items[i])
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := ps.workload.reader.List(ps.ctx, &pvcs); err != nil {
		return err
	}
	for i := range pvcs.Items {
		objs.PersistentVolumeClaims = append(objs.PersistentVolumeClaims, &pvcs.Items[i])
	}
	var pvs corev1.PersistentVolumeList
	if err := ps.workload.reader.List(ps.ctx, &pvs); err != nil {
		return err
	}
	for i := range pvs.Items {
		objs.PersistentVolumes = append(objs.PersistentVolumes, &pvs.Items[i])
	}
	// StorageClasses place unbound WaitForFirstConsumer claims and name the
	// driver of unbound claims; CSINodes carry each node's attach limits;
	// Namespaces' labels are what (anti-)affinity namespaceSelectors match.
	// Without them the solver plans as if there were no such constraint.
	var classes storagev1.StorageClassList
	if err := ps.workload.reader.List(ps.ctx, &classes); err != nil {
		return err
	}
	for i := range classes.Items {
		objs.StorageClasses = append(objs.StorageClasses, &classes.Items[i])
	}
	var csiNodes storagev1.CSINodeList
	if err := ps.workload.reader.List(ps.ctx, &csiNodes); err != nil {
		return err
	}
	for i := range csiNodes.Items {
		objs.CSINodes = append(objs.CSINodes, &csiNodes.Items[i])
	}
	var namespaces corev1.NamespaceList
	if err := ps.workload.reader.List(ps.ctx, &namespaces); err != nil {
		return err
	}
	for i := range namespaces.Items {
		objs.Namespaces = append(objs.Namespaces, &namespaces.Items[i])
	}
	return nil
}

func (ps *pass) awsMachine(m *clusterv1.Machine) (*infrav1.AWSMachine, error) {
	return clusterstate.ReadAWSMachine(ps.ctx, ps.Client, m)
}

// MachineCapacity is what a Machine is as capacity for planning. The
// provisioning pass and the disruption controller's view (State) both
// take it from (*pass).capacity, so they agree on what is in flight.
type MachineCapacity int

const (
	// MachineBooting has no Node yet: in-flight capacity.
	MachineBooting MachineCapacity = iota
	// MachineRegistered has its Node.
	MachineRegistered
	// MachineNodeLostGrace lost its Node (nodeRef set, Node gone) while
	// CAPA still sees its instance: not-ready capacity for
	// --node-lost-grace, in case the Node comes back or the cache lags.
	MachineNodeLostGrace
	// MachineNodeLost lost its Node for longer than the grace: no capacity.
	MachineNodeLost
	// MachineInstanceGone's instance was terminated out of band: no
	// capacity, and never will be (CAPA does not launch again for it).
	MachineInstanceGone
)

// capacity classifies a Machine (not being deleted) with its AWSMachine
// (nil if none) and its registered Node (nil if none). wait, when
// positive, is when the answer changes by itself.
func (ps *pass) capacity(m *clusterv1.Machine, aws *infrav1.AWSMachine, node *corev1.Node) (MachineCapacity, time.Duration) {
	st := ps.state(ps.key)
	if InstanceGone(aws) {
		ps.forgetNodeLost(st, m)
		return MachineInstanceGone, 0
	}
	if node != nil || !m.Status.NodeRef.IsDefined() {
		ps.forgetNodeLost(st, m)
		if node != nil {
			return MachineRegistered, 0
		}
		return MachineBooting, 0
	}
	ps.mu.Lock()
	if st.nodeLost == nil {
		st.nodeLost = map[types.UID]time.Time{}
	}
	since, ok := st.nodeLost[m.UID]
	if !ok {
		since = ps.now
		st.nodeLost[m.UID] = since
	}
	ps.mu.Unlock()
	if left := ps.Options.NodeLostGrace - ps.now.Sub(since); left > 0 {
		return MachineNodeLostGrace, left
	}
	return MachineNodeLost, 0
}

func (ps *pass) forgetNodeLost(st *clusterState, m *clusterv1.Machine) {
	ps.mu.Lock()
	delete(st.nodeLost, m.UID)
	ps.mu.Unlock()
}

// checkMachine handles a booting Machine: deletes it when the cloud
// refused its launch or its node never registered, and recreates the
// infrastructure and bootstrap objects a crash may have left uncreated.
// gone says the Machine was deleted; wait, when it is positive, is when to
// look at it again.
func (ps *pass) checkMachine(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision, aws *infrav1.AWSMachine) (gone bool, wait time.Duration, err error) {
	// A Machine whose objects cannot be made is reported and left to the
	// registration timeout: failing the pass would stop every other
	// Machine and pool of the cluster for this one.
	if aws == nil {
		if err := ps.ensureMachineObjects(m, pool, d); err != nil {
			ps.launchFailed(pool, m, err)
		}
	} else {
		if message, failed := launchFailure(aws); failed {
			gone, err := ps.launchRefused(m, pool, d, message)
			if gone || err != nil {
				return gone, 0, err
			}
		}
		if err := ps.ensureBootstrap(m, pool, d); err != nil {
			ps.launchFailed(pool, m, err)
		}
	}
	// The apiserver set creationTimestamp: read the age on its clock.
	age := ps.APIServerNow().Sub(m.CreationTimestamp.Time)
	if age >= ps.Options.RegistrationTimeout {
		msg := fmt.Sprintf("no Node registered within %s of the Machine's creation; deleting it so its pods are planned again", ps.Options.RegistrationTimeout)
		return true, 0, ps.deleteMachine(m, pool, "RegistrationTimeout", msg)
	}
	return false, ps.Options.RegistrationTimeout - age, nil
}

// launchRefused acts on a launch CAPA reports refused: a capacity refusal
// makes its scope unavailable for the TTL, a configuration error stops
// the pool's launches until its templates change or the backoff passes;
// either way the Machine is deleted and its pods planned again. A
// transient error leaves the Machine to CAPA's retries.
func (ps *pass) launchRefused(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision, message string) (bool, error) {
	e := ClassifyLaunchError(EC2ErrorCode(message), message)
	o := d.Offering
	switch e.Class {
	case LaunchErrorTransient:
		ps.log.V(1).Info("CAPA retries a launch", "machine", m.Name, "code", e.Code)
		return false, nil
	case LaunchErrorConfiguration:
		fix := "fix the templates"
		if e.Field != "" {
			fix = "fix " + e.Field
		}
		until := ps.now.Add(ps.Options.LaunchErrorBackoff)
		msg := fmt.Sprintf("the launch of %s %s in %s was refused for the pool's configuration, not for capacity (%s); %s. The pool launches nothing in cluster %s until its templates change or %s passes (until %s): %s",
			o.CapacityType, o.InstanceType, o.Zone, codeOrCAPA(e.Code), fix, ps.cluster.Name, ps.Options.LaunchErrorBackoff, until.UTC().Format(time.RFC3339), message)
		ps.blockPool(pool, ps.templateIDs[pool.Name], until, msg)
		ps.podsFailed(d, fmt.Sprintf("NodePool %s cannot launch: %s (%s); %s", pool.Name, codeOrCAPA(e.Code), shorten(message, 300), fix))
		return true, ps.deleteMachine(m, pool, e.EventReason(), msg)
	}
	reservation := o.ReservationID // a reserved offering's own
	if c := ps.constraints[pool.Name]; c != nil && reservation == "" {
		reservation = c.Reservation
	}
	scope := ScopeOf(e, d, client.ObjectKeyFromObject(pool), ps.region, reservation)
	ps.unavailable.MarkScope(scope, ps.now)
	if e.Class == LaunchErrorUnknown {
		ps.log.Info("EC2 refused a launch with an error code Joinery does not know; treating it as no capacity for the offering", "machine", m.Name, "code", e.Code, "message", message)
	}
	msg := fmt.Sprintf("EC2 refused %s %s in %s (%s); %s is avoided for %s and the pods are planned again with the fallbacks: %s",
		o.CapacityType, o.InstanceType, o.Zone, codeOrCAPA(e.Code), scope, ps.Options.UnavailableTTL, message)
	return true, ps.deleteMachine(m, pool, e.EventReason(), msg)
}

func codeOrCAPA(code string) string {
	if code == "" {
		return "refused by CAPA before calling EC2"
	}
	return "EC2 error " + code
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// podsFailed tells the pods a refused Machine was for why.
func (ps *pass) podsFailed(d Decision, why string) {
	recorder := ps.events.recorder(ps.ctx, ps.key)
	if recorder == nil {
		return
	}
	for _, name := range d.Pods {
		ns, n, ok := strings.Cut(name, "/")
		if !ok {
			continue
		}
		pod := &corev1.Pod{}
		if err := ps.workload.reader.Get(ps.ctx, types.NamespacedName{Namespace: ns, Name: n}, pod); err != nil {
			continue
		}
		recorder.failedProvisioning(pod, why)
	}
}

// deleteMachine deletes a Machine once: a Machine this process already
// deleted, read again from a cache that has not caught up, is left alone.
func (ps *pass) deleteMachine(m *clusterv1.Machine, pool *v1alpha1.NodePool, reason, msg string) error {
	st := ps.state(ps.key)
	if st.deletedHere(m.UID) {
		return nil
	}
	ps.log.Info("deleting Machine", "machine", m.Name, "reason", reason, "message", msg)
	err := ps.Client.Delete(ps.ctx, m, client.Preconditions{UID: &m.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting Machine %s/%s (%s): %w", m.Namespace, m.Name, reason, err)
	}
	if st.deleted == nil {
		st.deleted = map[types.UID]time.Time{}
	}
	st.deleted[m.UID] = ps.now
	ps.Recorder.Event(m, corev1.EventTypeWarning, reason, msg)
	ps.Recorder.Eventf(pool, corev1.EventTypeWarning, reason, "Machine %s in cluster %s: %s", m.Name, ps.cluster.Name, msg)
	countDeleted(m, reason)
	// Its pods are planned again in the next batch window.
	ps.batches.PodPending(ps.key.String(), ps.now)
	return nil
}

// labelNode gives a registered node the labels and taints of its pool
// that neither the kubelet nor CAPI's label sync set, and returns the node
// as labelled.
func (ps *pass) labelNode(node *corev1.Node, pool *v1alpha1.NodePool, d Decision) (*corev1.Node, error) {
	var typeLabels map[string]string
	if t := ps.types[pool.Name][d.Offering.InstanceType]; t != nil {
		typeLabels = t.Labels
	}
	labels, taints := MissingNodeMetadata(node, NodeLabels(pool, d, typeLabels), pool)
	if len(labels) == 0 && len(taints) == 0 {
		return node, nil
	}
	patched := node.DeepCopy()
	if patched.Labels == nil {
		patched.Labels = map[string]string{}
	}
	for k, v := range labels {
		patched.Labels[k] = v
	}
	patched.Spec.Taints = append(patched.Spec.Taints, taints...)
	if err := ps.workload.client.Patch(ps.ctx, patched.DeepCopy(), client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return patched, nil // the next event brings the node again
		}
		return nil, fmt.Errorf("labelling node %s of cluster %s: %w", node.Name, ps.cluster.Name, err)
	}
	ps.log.V(1).Info("labelled node", "node", node.Name, "labels", len(labels), "taints", len(taints))
	return patched, nil
}

// launchPlan creates a Machine (then its AWSMachine and bootstrap config)
// for every new node of the plan and tells each pod which Machine it
// waits for.
func (ps *pass) launchPlan(plan *solver.Plan) ([]string, error) {
	if len(plan.NewNodes) == 0 {
		return nil, nil
	}
	version, err := ps.kubernetesVersion()
	if err != nil {
		for _, np := range ps.pools {
			ps.Recorder.Event(np, corev1.EventTypeWarning, "NoKubernetesVersion", err.Error())
		}
		return nil, err
	}
	recorder := ps.events.recorder(ps.ctx, ps.key)
	launched := ps.launchAll(plan.NewNodes, version)
	var created []string
	var failed []error
	for i, node := range plan.NewNodes {
		pool := ps.byPool[node.Pool]
		m, d, err := launched[i].machine, launched[i].decision, launched[i].err
		if m != nil {
			created = append(created, m.Name)
		}
		if err != nil {
			// One launch failing (a template deleted, a clone refused by
			// admission) must not keep the plan's other nodes, often of
			// other pools, from launching.
			ps.launchFailed(pool, m, err)
			failed = append(failed, err)
			continue
		}
		if recorder != nil {
			for _, pod := range node.Pods {
				if capacitybuffer.IsVirtual(pod) {
					continue // never created: its buffer's status tells
				}
				if isStaticSlot(pod) {
					continue
				}
				recorder.nominated(pod, "Pod should schedule on Machine %s/%s (%s %s in %s, NodePool %s) once its node registers",
					m.Namespace, m.Name, d.Offering.CapacityType, d.Offering.InstanceType, d.Offering.Zone, pool.Name)
			}
		}
	}
	return created, errors.Join(failed...)
}

// launchParallelism bounds the launches of one plan that run at once.
const launchParallelism = 16

// launchResult is what one launch of a plan made.
type launchResult struct {
	machine  *clusterv1.Machine
	decision Decision
	err      error
}

// launchAll launches a plan's new nodes at once, as Karpenter's
// provisioner creates a plan's NodeClaims in parallel: each launch is
// three writes to the management apiserver (Machine, AWSMachine,
// bootstrap config), one after the other, and a plan of several nodes
// made them all in turn while the cluster's worker waited; on a busy
// apiserver the last Machine came seconds after the first, and the
// other clusters' passes waited for the worker. Each launch is idempotent
// on its own (its Machine's name is its decision's), so a crash leaves
// what a sequential launch would. Results are in the plan's order.
func (ps *pass) launchAll(nodes []*solver.NewNode, version string) []launchResult {
	out := make([]launchResult, len(nodes))
	// Never stopped early: a node ParallelizeUntil skipped would have no
	// result, and would read as launched. A cancelled pass makes each
	// launch fail on its own (ps.ctx), and that is reported per node.
	workqueue.ParallelizeUntil(context.Background(), launchParallelism, len(nodes), func(i int) {
		m, d, err := ps.launch(nodes[i], ps.byPool[nodes[i].Pool], version)
		out[i] = launchResult{machine: m, decision: d, err: err}
	})
	return out
}

// launch creates one node of a plan: its Machine, then the Machine's
// infrastructure and bootstrap objects. m is the Machine when it exists,
// even if its objects could not be made.
func (ps *pass) launch(node *solver.NewNode, pool *v1alpha1.NodePool, version string) (*clusterv1.Machine, Decision, error) {
	d := NewDecision(node, metav1.NewTime(ps.now))
	staticDecisionPods(&d, node)
	if c := ps.constraints[pool.Name]; c != nil {
		if !c.Allows(d.Offering.InstanceType, d.Offering.Zone, d.Offering.CapacityType, d.Offering.PricePerHour) {
			// The restriction keeps such offerings from the solver; a
			// launch against the template would be refused.
			return nil, d, fmt.Errorf("NodePool %s: %s %s in %s is not allowed by its AWSMachineTemplate (%s)", pool.Name,
				d.Offering.CapacityType, d.Offering.InstanceType, d.Offering.Zone, c.problemText())
		}
		d.SpotMaxPrice = c.MaxPriceText
	}
	// The hash of what is about to be cloned goes on the Machine, for
	// drift to compare with the templates' content later.
	hash, err := ps.PoolTemplateHash(ps.ctx, ps.cluster.Namespace, pool)
	if err != nil {
		return nil, d, err
	}
	m, isNew, err := ps.createMachine(LaunchSpec{Cluster: ps.cluster, NodePool: pool, Node: node, Version: version, Decision: d, Replacing: ps.replacing, TemplateHash: hash},
		pool.Spec.Template.Spec.InfrastructureTemplateRef, pool.Spec.Template.Spec.BootstrapTemplateRef)
	if err != nil {
		return nil, d, err
	}
	if !isNew {
		// The same decision was made before a restart; carry on with
		// the Machine that exists.
		if d, err = ReadDecision(m); err != nil {
			return m, d, err
		}
	} else {
		countCreated(m, len(ps.replacing) > 0)
		ps.Recorder.Eventf(pool, corev1.EventTypeNormal, "Launched", "Machine %s in cluster %s: %s %s in %s at %s for %d pod(s)",
			m.Name, ps.cluster.Name, d.Offering.CapacityType, d.Offering.InstanceType, d.Offering.Zone, fmtPrice(d.Offering.PricePerHour), d.PodCount)
	}
	return m, d, ps.ensureMachineObjects(m, pool, d)
}

// launchFailed reports a launch that failed for one pool, or a Machine
// whose objects could not be made: in the log, as Warning Events on the
// NodePool and the Machine, and in the pool's LaunchConfigurationValid
// condition (through its report). The pass goes on without it.
func (ps *pass) launchFailed(pool *v1alpha1.NodePool, m *clusterv1.Machine, err error) {
	what := "a launch"
	if m != nil {
		what = "Machine " + m.Name
		ps.Recorder.Eventf(m, corev1.EventTypeWarning, "LaunchFailed", "its infrastructure or bootstrap object cannot be made: %v", err)
	}
	ps.log.Error(err, "a launch failed; going on with the cluster's other Machines and pools", "nodePool", pool.Name, "machine", what)
	msg := fmt.Sprintf("%s of the pool failed: %v", what, err)
	ps.Recorder.Eventf(pool, corev1.EventTypeWarning, "LaunchFailed", "cluster %s: %s", ps.cluster.Name, msg)
	if ps.launchProblems == nil {
		ps.launchProblems = map[string][]string{}
	}
	ps.launchProblems[pool.Name] = append(ps.launchProblems[pool.Name], msg)
	// Shown now, not only at the end of a pass that plans: a pass that
	// finds nothing new to plan for returns before reportPlan.
	key := client.ObjectKeyFromObject(pool)
	r := ps.Reports.Get(key)[ps.cluster.Name]
	r.Reachable, r.LaunchFailed = true, true
	r.LaunchProblem = joinProblems(r.LaunchProblem, msg)
	ps.Reports.Set(key, ps.cluster.Name, r)
}

func joinProblems(a, b string) string {
	switch {
	case a == "":
		return b
	case strings.Contains(a, b):
		return a
	}
	return a + "; " + b
}

// maxRelaunchNames bounds the names one decision walks (see RelaunchName):
// more Machines of it being deleted at once means CAPA is not finishing
// deletions, and launching more would not help.
const maxRelaunchNames = 8

// createMachine creates the Machine of a launch, or adopts the live
// Machine of the same decision that a crash or a lost response left
// behind: the deterministic name is what makes a launch idempotent. A
// Machine being deleted under the name is the decision's earlier launch,
// refused or timed out; adopting it would count capacity that is going
// away, and cloning objects for it would hand CAPA an AWSMachine to launch
// for a Machine on its way out. The launch takes the decision's next name
// instead, as it does past a live Machine the plan already counted as
// capacity: only a Machine the plan could not see (made by a process that
// crashed, or by a create whose response was lost) is the same launch.
// isNew is false when it adopted.
func (ps *pass) createMachine(l LaunchSpec, infraRef, bootstrapRef v1alpha1.TemplateReference) (m *clusterv1.Machine, isNew bool, err error) {
	var passed []string
	for raced := false; l.Relaunch < maxRelaunchNames; l.Relaunch++ {
		m, err := BuildMachine(l, infraRef, bootstrapRef)
		if err != nil {
			return nil, false, err
		}
		err = ps.Client.Create(ps.ctx, m, client.FieldOwner(FieldOwner))
		if err == nil {
			return m, true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, false, fmt.Errorf("creating Machine %s/%s: %w", m.Namespace, m.Name, err)
		}
		existing := &clusterv1.Machine{}
		if err := ps.APIReader.Get(ps.ctx, client.ObjectKeyFromObject(m), existing); err != nil {
			if apierrors.IsNotFound(err) && !raced {
				// Deleted between the create and the read: the name is
				// free again.
				raced = true
				l.Relaunch--
				continue
			}
			return nil, false, fmt.Errorf("reading Machine %s/%s, which exists: %w", m.Namespace, m.Name, err)
		}
		raced = false
		switch {
		case !existing.DeletionTimestamp.IsZero():
			passed = append(passed, existing.Name+" (being deleted)")
		case ps.counted[existing.Name]:
			// The plan counted it as capacity (booting, or registered and
			// taken by other pods) and still needs a node for these pods:
			// this is a new decision, not a retry of that one.
			passed = append(passed, existing.Name+" (counted by this plan)")
		case !sameDecision(existing, m):
			// Not a Machine this decision made (made by hand, or by another
			// pool under a colliding name): never take it over.
			passed = append(passed, existing.Name+" (another pool's or cluster's)")
		default:
			return existing, false, nil
		}
	}
	return nil, false, fmt.Errorf("NodePool %s: no name left for a Machine for %d pod(s): %s; launching again once they are gone",
		l.NodePool.Name, len(l.Node.Pods), strings.Join(passed, ", "))
}

// sameDecision reports whether existing is the Machine want describes,
// made by an earlier attempt: same cluster, same pool, and a decision
// Joinery recorded.
func sameDecision(existing, want *clusterv1.Machine) bool {
	if existing.Labels[clusterv1.ClusterNameLabel] != want.Labels[clusterv1.ClusterNameLabel] ||
		existing.Labels[v1alpha1.LabelNodePool] != want.Labels[v1alpha1.LabelNodePool] {
		return false
	}
	d, err := ReadDecision(existing)
	return err == nil && d.NodePool == want.Labels[v1alpha1.LabelNodePool]
}

// ensureMachineObjects creates the Machine's AWSMachine and bootstrap
// config from the pool's templates and the Machine's decision, unless they
// exist. It is what a launch does after creating the Machine, and what a
// later pass does for a Machine a crash left without them.
func (ps *pass) ensureMachineObjects(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision) error {
	spec := pool.Spec.Template.Spec
	infraTemplate, infraRef, err := ps.templates.get(ps.ctx, m.Namespace, spec.InfrastructureTemplateRef)
	if err != nil {
		return fmt.Errorf("NodePool %s: spec.template.spec.infrastructureTemplateRef: %w", pool.Name, err)
	}
	infra, err := BuildInfrastructure(infraTemplate, infraRef, m, d)
	if err != nil {
		return err
	}
	if err := ps.Client.Create(ps.ctx, infra, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s %s/%s: %w", infra.GetKind(), infra.GetNamespace(), infra.GetName(), err)
	}
	return ps.ensureBootstrap(m, pool, d)
}

// ensureBootstrap creates the Machine's bootstrap config unless the
// cache (metadata only) already holds it, so a crash between the
// AWSMachine and the bootstrap config heals on the next pass.
func (ps *pass) ensureBootstrap(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision) error {
	ref := m.Spec.Bootstrap.ConfigRef
	gvk, err := ps.templates.kindVersion(ref.APIGroup, ref.Kind)
	if err != nil {
		return err
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	err = ps.Client.Get(ps.ctx, types.NamespacedName{Namespace: m.Namespace, Name: ref.Name}, obj)
	if !apierrors.IsNotFound(err) {
		return err
	}
	return ps.createBootstrap(m, pool, d)
}

func (ps *pass) createBootstrap(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision) error {
	spec := pool.Spec.Template.Spec
	bootstrapTemplate, bootstrapRef, err := ps.templates.get(ps.ctx, m.Namespace, spec.BootstrapTemplateRef)
	if err != nil {
		return fmt.Errorf("NodePool %s: spec.template.spec.bootstrapTemplateRef: %w", pool.Name, err)
	}
	// The kubelet registers the node with the pool's own labels; the
	// instance type's attribute labels (a dozen or more) would overflow
	// the 1024 bytes CAPI allows a kubelet argument, and labelNode adds
	// them once the node registers.
	bootstrap, err := BuildBootstrap(bootstrapTemplate, bootstrapRef, m, NodeLabels(pool, d, nil), NodeTaints(pool), pool.Spec.Template.Spec.Kubelet)
	if err != nil {
		return err
	}
	if err := ps.Client.Create(ps.ctx, bootstrap, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s %s/%s: %w", bootstrap.GetKind(), bootstrap.GetNamespace(), bootstrap.GetName(), err)
	}
	return nil
}

// kubernetesVersion is the version new Machines run: the topology's, or
// the control plane's spec.version (the CAPI control plane contract).
func (ps *pass) kubernetesVersion() (string, error) {
	v, _, err := ps.Provisioner.ClusterVersion(ps.ctx, ps.cluster)
	return v, err
}

// waitForCache returns once the manager's cache holds the Machines just
// created, so the next pass counts them as in-flight capacity and cannot
// launch for the same pods again.
func (ps *pass) waitForCache(names []string) error {
	if len(names) == 0 {
		return nil
	}
	return wait.PollUntilContextTimeout(ps.ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			m := &clusterv1.Machine{}
			if err := ps.Client.Get(ctx, types.NamespacedName{Namespace: ps.cluster.Namespace, Name: name}, m); err != nil {
				if apierrors.IsNotFound(err) {
					return false, nil
				}
				return false, err
			}
		}
		return true, nil
	})
}

// reportPlan tells the pool status controller what this cluster's last
// plan could not do, pool by pool.
func (ps *pass) reportPlan(plan *solver.Plan) {
	limited := map[string]int{}
	if plan != nil {
		for _, u := range plan.Unschedulable {
			if capacitybuffer.IsVirtual(u.Pod) {
				continue // reported on the buffer
			}
			for _, np := range ps.pools {
				if strings.Contains(u.Reason, fmt.Sprintf("nodepool %q: pool limits reached", np.Name)) {
					limited[np.Name]++
				}
			}
		}
		recorder := ps.events.recorder(ps.ctx, ps.key)
		if recorder != nil {
			for _, u := range plan.Unschedulable {
				if capacitybuffer.IsVirtual(u.Pod) {
					continue
				}
				recorder.failedProvisioning(u.Pod, "Joinery found no machine for the pod: "+u.Reason)
			}
		}
	}
	for _, np := range ps.pools {
		r := ClusterReport{Reachable: true}
		c := ps.constraints[np.Name]
		r.LaunchProblem = c.problemText()
		r.LaunchBlocked = c != nil && c.Blocking
		if r.LaunchBlocked {
			// The pool cannot launch at all; say so where people look
			// first, as for a limit reached.
			ps.Recorder.Eventf(np, corev1.EventTypeWarning, "LaunchConfigurationError", "cluster %s: the pool launches nothing: %s", ps.cluster.Name, r.LaunchProblem)
		}
		if msg, blocked := ps.poolBlocked(np, ps.templateIDs[np.Name], ps.now); blocked {
			r.LaunchBlocked = true
			r.LaunchProblem = strings.TrimPrefix(strings.Join([]string{r.LaunchProblem, msg}, "; "), "; ")
		}
		if msg := ps.unbuildable[np.Name]; msg != "" {
			r.LaunchBlocked = true
			r.LaunchProblem = joinProblems(r.LaunchProblem, msg)
		}
		for _, msg := range ps.launchProblems[np.Name] {
			r.LaunchFailed = true
			r.LaunchProblem = joinProblems(r.LaunchProblem, msg)
		}
		if n := limited[np.Name]; n > 0 {
			r.LimitReached = true
			r.Message = fmt.Sprintf("limits reached: %d pending pod(s) would need more than spec.limits allows", n)
			ps.Recorder.Eventf(np, corev1.EventTypeWarning, "LimitReached", "cluster %s: %s", ps.cluster.Name, r.Message)
		}
		if msg := ps.staticLimited[np.Name]; msg != "" {
			r.LimitReached = true
			r.Message = strings.TrimPrefix(r.Message+"; "+msg, "; ")
			ps.Recorder.Eventf(np, corev1.EventTypeWarning, "LimitReached", "cluster %s: %s", ps.cluster.Name, msg)
		}
		// Assumptions show in the pool's status for this cluster for as
		// long as they hold, not only in the Event that announced them.
		if notes := ps.state(ps.key).notes[np.Name]; notes != "" {
			r.Message = strings.TrimPrefix(r.Message+"; planning assumes: "+notes, "; ")
		}
		ps.Reports.Set(client.ObjectKeyFromObject(np), ps.cluster.Name, r)
	}
}
