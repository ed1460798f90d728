package soak

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// What the checker reads of Joinery's objects: the contract a user sees
// (labels, annotations and taints Joinery documents), not its code.
const (
	annotationDecision    = "joinery.dev/decision"
	annotationReplacedBy  = "joinery.dev/replaced-by"
	taintDisrupted        = "joinery.dev/disrupted"
	annotationDoNotDisrup = "karpenter.sh/do-not-disrupt"
)

// orphanGrace is how long an AWSMachine, KubeadmConfig or instance may
// lack its Machine (or AWSMachine) before it is an orphan: CAPI and CAPA
// delete them a few reconciles after their owner.
const orphanGrace = 90 * time.Second

// checker watches the clusters and the ledger and records every breach.
type checker struct {
	tb      *testbed.Testbed
	c       client.Client
	opts    Options
	hist    *history
	faulted *faultLog
	rs      *replicas

	mu             sync.Mutex
	breaches       []string
	pdb, budget    int
	dnd, duplicate int
	pendingTooLong int
	orphans        map[string]bool      // kind/name
	orphanSince    map[string]time.Time // kind/name -> first seen without owner
	disrupting     map[string]bool      // Machine names seen disrupting
	pendingSince   map[string]time.Time // pod key -> first seen unschedulable
	pendingBlamed  map[string]bool
	maxPending     time.Duration
	served         map[string]bool // pod UIDs seen ready
	heapMax        float64
	holder         string
	leaderChanges  int
	evictionsSeen  map[string]bool // pod UID
	nodeStores     map[string]cache.Store
	fleet, fresh   float64
}

func newChecker(ctx context.Context, tb *testbed.Testbed, opts Options, hist *history, faulted *faultLog, rs *replicas) (*checker, error) {
	c, err := client.New(tb.Management.Config, client.Options{Scheme: tb.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	k := &checker{tb: tb, c: c, opts: opts, hist: hist, faulted: faulted, rs: rs,
		orphans: map[string]bool{}, orphanSince: map[string]time.Time{}, disrupting: map[string]bool{},
		pendingSince: map[string]time.Time{}, pendingBlamed: map[string]bool{}, served: map[string]bool{},
		evictionsSeen: map[string]bool{}, nodeStores: map[string]cache.Store{}}
	for _, w := range tb.Workloads {
		if err := k.watchWorkload(ctx, w); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// breach records a broken invariant with what happened just before.
func (k *checker) breach(counter *int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	k.hist.Printf("BREACH %s", msg)
	k.mu.Lock()
	defer k.mu.Unlock()
	if counter != nil {
		*counter++
	}
	k.breaches = append(k.breaches, msg+"\n  just before:\n"+indent(k.hist.before()))
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// watchWorkload follows a workload cluster's pods (evictions, pending
// times, readiness) and nodes (disruption taints).
func (k *checker) watchWorkload(ctx context.Context, w *testbed.Workload) error {
	cs, err := w.Clientset()
	if err != nil {
		return err
	}
	pods := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", "default", fields.Everything())
	_, podInformer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: pods, ObjectType: &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { k.seePod(w.Name, obj, false) },
			UpdateFunc: func(_, obj any) { k.seePod(w.Name, obj, false) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				k.seePod(w.Name, obj, true)
			},
		},
	})
	nodes := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	nodeStore, nodeInformer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: nodes, ObjectType: &corev1.Node{},
		Handler: cache.ResourceEventHandlerFuncs{},
	})
	k.nodeStores[w.Name] = nodeStore
	go podInformer.Run(ctx.Done())
	go nodeInformer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced, nodeInformer.HasSynced) {
		return errors.New("the checker's watches of " + w.Name + " did not sync")
	}
	return nil
}

// disruptionTarget is the reason Kubernetes gave for disrupting a pod
// (the DisruptionTarget condition), "" when none.
func disruptionTarget(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return c.Reason
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (k *checker) seePod(cluster string, obj any, deleted bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Labels["soak"] != "true" {
		return
	}
	key := cluster + "/" + p.Name
	now := time.Now()
	app := p.Labels["app"]
	covered := false
	for _, a := range apps {
		if a.name == app && a.pdbMinAvail != nil {
			covered = true
		}
	}
	reason := disruptionTarget(p)
	node := p.Spec.NodeName
	fault := k.faulted.node(node)

	k.mu.Lock()
	if podReady(p) {
		k.served[string(p.UID)] = true
	}
	if p.Spec.NodeName == "" && !deleted {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				if _, seen := k.pendingSince[key]; !seen {
					k.pendingSince[key] = now
				}
			}
		}
	} else if since, ok := k.pendingSince[key]; ok {
		k.maxPending = max(k.maxPending, now.Sub(since))
		delete(k.pendingSince, key)
	}
	firstEviction := reason != "" && !k.evictionsSeen[string(p.UID)]
	if firstEviction {
		k.evictionsSeen[string(p.UID)] = true
	}
	k.mu.Unlock()

	if !firstEviction {
		return
	}
	k.hist.Printf("cluster %s: pod %s on node %s disrupted: %s", cluster, p.Name, node, reason)
	if fault != "" {
		return
	}
	if p.Annotations[annotationDoNotDisrup] == "true" {
		k.breach(&k.dnd, "do-not-disrupt: pod %s/%s on node %s was disrupted (%s) though no fault touched its node", cluster, p.Name, node, reason)
	}
	// The eviction API checks the budget itself; a pod removed any other
	// way (its node deleted under it, a taint) bypassed its budget.
	if covered && reason != "EvictionByEvictionAPI" && reason != "PreemptionByScheduler" {
		k.breach(&k.pdb, "PodDisruptionBudget: pod %s/%s of %s on node %s was removed by %s, not through the eviction API, though no fault touched its node", cluster, p.Name, app, node, reason)
	}
}

// run checks the management objects, the ledger, the Lease and the
// managers' heaps until ctx ends.
func (k *checker) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k.checkMachines(ctx, false)
		k.checkLeader(ctx)
		if n%5 == 0 {
			k.checkPending()
			k.scrapeHeaps()
		}
	}
}

func (k *checker) checkLeader(ctx context.Context) {
	h := k.rs.holder(ctx, k.c)
	k.mu.Lock()
	defer k.mu.Unlock()
	if h != "" && h != k.holder {
		if k.holder != "" {
			k.leaderChanges++
		}
		k.holder = h
		k.hist.Printf("leader is %s", h)
	}
}

func (k *checker) checkPending() {
	now := time.Now()
	k.mu.Lock()
	var late []string
	for key, since := range k.pendingSince {
		if now.Sub(since) > k.opts.PendingBound && !k.pendingBlamed[key] {
			k.pendingBlamed[key] = true
			late = append(late, fmt.Sprintf("%s (%s)", key, now.Sub(since).Round(time.Second)))
		}
	}
	k.mu.Unlock()
	sort.Strings(late)
	for _, l := range late {
		k.breach(&k.pendingTooLong, "pending: pod %s has been unschedulable longer than %s while the pools can serve it", l, k.opts.PendingBound)
	}
}

// checkMachines looks for orphans, duplicate launches and disruptions past
// a budget. final uses no grace for orphans still there after the quiet
// period (they had it already).
func (k *checker) checkMachines(ctx context.Context, final bool) {
	var machines clusterv1.MachineList
	var awsMachines infrav1.AWSMachineList
	var configs bootstrapv1.KubeadmConfigList
	ns := client.InNamespace(k.tb.Namespace)
	if k.c.List(ctx, &machines, ns) != nil || k.c.List(ctx, &awsMachines, ns) != nil || k.c.List(ctx, &configs, ns) != nil {
		return
	}
	now := time.Now()
	byName := map[string]*clusterv1.Machine{}
	for i := range machines.Items {
		byName[machines.Items[i].Name] = &machines.Items[i]
	}
	awsByName := map[string]bool{}
	for _, a := range awsMachines.Items {
		awsByName[a.Name] = true
	}
	owned := func(kind, name string, hasOwner bool) {
		id := kind + "/" + name
		k.mu.Lock()
		if hasOwner {
			delete(k.orphanSince, id)
			k.mu.Unlock()
			return
		}
		since, seen := k.orphanSince[id]
		if !seen {
			k.orphanSince[id] = now
			since = now
		}
		already := k.orphans[id]
		if now.Sub(since) > orphanGrace && !already {
			k.orphans[id] = true
		}
		k.mu.Unlock()
		if now.Sub(since) > orphanGrace && !already {
			k.breach(nil, "orphan: %s %s has had no owner for %s", kind, name, now.Sub(since).Round(time.Second))
		}
	}
	for _, a := range awsMachines.Items {
		owned("AWSMachine", a.Name, byName[a.Name] != nil || a.DeletionTimestamp != nil)
	}
	for _, c := range configs.Items {
		owned("KubeadmConfig", c.Name, byName[c.Name] != nil || c.DeletionTimestamp != nil)
	}
	live := map[string][]string{} // AWSMachine -> its instances not terminated
	for _, i := range k.tb.Cloud.Instances() {
		if i.State == cloudsim.StateTerminated || i.State == "shutting-down" {
			continue
		}
		live[i.AWSMachine.Name] = append(live[i.AWSMachine.Name], i.ID)
		owned("instance", i.ID, awsByName[i.AWSMachine.Name])
	}
	for name, ids := range live {
		if len(ids) > 1 {
			id := "instances/" + name
			k.mu.Lock()
			seen := k.orphans[id]
			k.orphans[id] = true
			k.mu.Unlock()
			if !seen {
				k.breach(&k.duplicate, "duplicate: AWSMachine %s has %d live instances %v", name, len(ids), ids)
			}
		}
	}
	decisions := map[string]string{}
	for _, m := range machines.Items {
		d := m.Annotations[annotationDecision]
		if d == "" || m.DeletionTimestamp != nil || !strings.Contains(d, `"pods":["`) {
			continue
		}
		if other, ok := decisions[d]; ok {
			id := "decision/" + other + "/" + m.Name
			k.mu.Lock()
			seen := k.orphans[id]
			k.orphans[id] = true
			k.mu.Unlock()
			if !seen {
				k.breach(&k.duplicate, "duplicate: Machines %s and %s carry the same decision %s", other, m.Name, d)
			}
			continue
		}
		decisions[d] = m.Name
	}
	if !final {
		k.checkBudgets(machines.Items, now)
	}
}

// checkBudgets finds Machines that started being disrupted by Joinery
// (their node tainted joinery.dev/disrupted, then the Machine deleted or
// marked replaced) and compares, per pool and cluster, how many are
// disrupting with what the pool's budgets allowed at that moment.
func (k *checker) checkBudgets(machines []clusterv1.Machine, now time.Time) {
	type group struct{ pool, cluster string }
	disrupting := map[group][]string{}
	var started []*clusterv1.Machine
	for i := range machines {
		m := &machines[i]
		pool := m.Labels[v1alpha1.LabelNodePool]
		if pool == "" || !m.Status.NodeRef.IsDefined() {
			continue
		}
		store := k.nodeStores[m.Spec.ClusterName]
		if store == nil {
			continue
		}
		obj, ok, _ := store.GetByKey(m.Status.NodeRef.Name)
		if !ok {
			continue
		}
		node := obj.(*corev1.Node)
		if k.faulted.node(node.Name) != "" || !hasTaint(node, taintDisrupted) {
			continue
		}
		if m.DeletionTimestamp == nil && m.Annotations[annotationReplacedBy] == "" {
			continue
		}
		g := group{pool, m.Spec.ClusterName}
		disrupting[g] = append(disrupting[g], m.Name)
		k.mu.Lock()
		if !k.disrupting[m.Name] {
			k.disrupting[m.Name] = true
			started = append(started, m)
		}
		k.mu.Unlock()
	}
	for _, m := range started {
		g := group{m.Labels[v1alpha1.LabelNodePool], m.Spec.ClusterName}
		why := "deleted"
		if m.Annotations[annotationReplacedBy] != "" {
			why = "replaced by " + m.Annotations[annotationReplacedBy]
		}
		k.hist.Printf("cluster %s: Joinery disrupts Machine %s of pool %s (%s); disrupting now: %v", g.cluster, m.Name, g.pool, why, disrupting[g])
		// The decision was taken up to a poll (1 s) and a write before
		// this sighting: the budget of that moment counts too.
		allowed := max(budgetAllows(g.pool, now), budgetAllows(g.pool, now.Add(-3*time.Second)))
		if len(disrupting[g]) > allowed {
			k.breach(&k.budget, "budget: %d Machines of pool %s in cluster %s disrupting at once %v; its budgets allow %d now",
				len(disrupting[g]), g.pool, g.cluster, disrupting[g], allowed)
		}
	}
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func (k *checker) scrapeHeaps() {
	for _, r := range k.rs.procs {
		if !r.proc.Running() {
			continue
		}
		b, err := testbed.HeapAllocBytes("http://" + r.metricsAddr + "/metrics")
		if err != nil {
			continue
		}
		mb := b / (1 << 20)
		k.mu.Lock()
		k.heapMax = max(k.heapMax, mb)
		k.mu.Unlock()
	}
}

// final runs the end-of-soak checks: orphans after the quiet period,
// pods still pending, and the fleet's cost against a fresh plan.
func (k *checker) final(ctx context.Context) {
	k.checkMachines(ctx, true)
	k.checkPending()
	k.scrapeHeaps()
	fleet, fresh, err := k.costs(ctx)
	if err != nil {
		k.hist.Printf("cost check: %v", err)
		return
	}
	k.mu.Lock()
	k.fleet, k.fresh = fleet, fresh
	k.mu.Unlock()
	k.hist.Printf("cost: fleet $%.4f/h, a fresh plan of its pods $%.4f/h", fleet, fresh)
	if k.opts.MaxHeapMB > 0 && k.heapMax > k.opts.MaxHeapMB {
		k.breach(nil, "heap: a manager replica's heap reached %.1f MB; the bound is %.0f MB", k.heapMax, k.opts.MaxHeapMB)
	}
}

func (k *checker) fill(r *Result) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r.LeaderChanges = k.leaderChanges
	r.PodsServed = len(k.served)
	maxPending := k.maxPending
	for _, since := range k.pendingSince {
		maxPending = max(maxPending, time.Since(since))
	}
	r.MaxPendingS = maxPending.Seconds()
	r.PDBViolations, r.BudgetViolation, r.DNDViolations, r.Duplicates, r.PendingTooLong = k.pdb, k.budget, k.dnd, k.duplicate, k.pendingTooLong
	for id := range k.orphans {
		if !strings.HasPrefix(id, "instances/") && !strings.HasPrefix(id, "decision/") {
			r.Orphans++
		}
	}
	r.HeapMaxMB = k.heapMax
	r.FleetPerHour, r.FreshPerHour = k.fleet, k.fresh
	if k.fresh > 0 {
		r.CostRatio = k.fleet / k.fresh
	}
	r.Breaches = append(r.Breaches, k.breaches...)
}
