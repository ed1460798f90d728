package provisioning

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
	"sigs.k8s.io/cluster-api/util/conditions"
	v1beta1conditions "sigs.k8s.io/cluster-api/util/deprecated/v1beta1/conditions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/clusterstate"
	"github.com/joinery-dev/joinery/internal/shard"
	"github.com/joinery-dev/joinery/solver"
)

// FieldOwner names Joinery in managedFields of everything it writes.
const FieldOwner = "joinery"

// Options tune the provisioning loop; the manager's flags set them.
type Options struct {
	// BatchIdle and BatchMax bound a batch window (1 s and 10 s).
	BatchIdle, BatchMax time.Duration
	// UnavailableTTL is how long a refused offering is avoided (3 min).
	UnavailableTTL time.Duration
	// SpotRiskWeight is k in the solver's spot rule, price × (1 + k ×
	// risk) (--spot-risk-weight, 1); 0 chooses spot by price alone.
	SpotRiskWeight float64
	// InterruptionHalfLife is how fast a seen spot interruption fades
	// (--spot-interruption-half-life, 6h).
	InterruptionHalfLife time.Duration
	// RegistrationTimeout is how long a Machine may go without a Node
	// before it is deleted (15 min).
	RegistrationTimeout time.Duration
	// Replan is how often pods that stay pending are planned for again
	// when nothing else changed (30 s): capacity may have come back.
	Replan time.Duration
	// Concurrency is how many clusters are planned for at once.
	Concurrency int
	// VMMemoryOverheadPercent is the share of an instance type's memory
	// planning assumes the hypervisor and kernel keep (0.075).
	VMMemoryOverheadPercent float64
	// NodeLostGrace is how long a Machine whose Node disappeared (its
	// instance still there as far as CAPA knows) counts as not-ready
	// capacity before it is deleted (2 min).
	NodeLostGrace time.Duration
	// LaunchErrorBackoff is how long a pool whose launch failed for its
	// configuration launches nothing, unless its templates change first
	// (10 min).
	LaunchErrorBackoff time.Duration
}

// DefaultOptions are the defaults of the manager's flags.
func DefaultOptions() Options {
	return Options{
		BatchIdle: time.Second, BatchMax: 10 * time.Second, UnavailableTTL: 3 * time.Minute,
		SpotRiskWeight: 1, InterruptionHalfLife: 6 * time.Hour,
		RegistrationTimeout: 15 * time.Minute, Replan: 30 * time.Second, Concurrency: 10,
		VMMemoryOverheadPercent: cloud.DefaultVMMemoryOverheadPercent,
		NodeLostGrace:           2 * time.Minute, LaunchErrorBackoff: 10 * time.Minute,
	}
}

// Provisioner is the provisioning controller. It reconciles CAPI Clusters
// that some NodePool serves: one key per workload cluster, so one
// cluster's slow apiserver or big batch never holds up another (the
// workqueue serves keys in turn, Concurrency at a time).
type Provisioner struct {
	Client       client.Client
	APIReader    client.Reader
	ClusterCache clustercache.ClusterCache
	// Catalog is asked for the current catalog on every pass, so a
	// refreshed one (cloud/live) is used from the next pass on.
	Catalog cloud.Source
	// Images looks up the AMIs templates name (architecture, root device);
	// nil without EC2 access, then planning assumes and says so.
	Images   cloud.Images
	Recorder record.EventRecorder
	Options  Options
	// Shard is the manager's share of the fleet (--watch-filter): other
	// Clusters, and their Machines, are another manager's.
	Shard shard.Filter
	// Reports receives what each pass found per pool and cluster, for the
	// pool status controller.
	Reports *Reports
	// Now is the clock (tests set it).
	Now func() time.Time
	// APIServerClock reads the management cluster's apiserver clock
	// (apiclock): timeouts measured from the timestamps it sets are read
	// against it, whatever the skew to Now. Nil: Now.
	APIServerClock interface{ Now() time.Time }

	setUpAt     time.Time
	controller  controller.Controller
	batches     *Batches
	unavailable *UnavailableOfferings
	// interruptions are the spot interruptions seen (spotrisk.go).
	interruptions *SpotInterruptions
	templates     *templates
	events        *workloadEvents
	offerings     *offeringsCache
	modelCache    nodeModels

	// runCtx is the manager's context (SetupWithManager's): what
	// outlives one reconcile, as warming a cluster's caches does.
	runCtx context.Context

	mu       sync.Mutex
	clusters map[types.NamespacedName]*clusterState
	// warmed are the clusters whose planning informers were started on
	// their current connection (see warmPlanningCaches).
	warmed map[types.NamespacedName]bool
	// blocked are pools whose launch failed for their configuration, by
	// pool and cluster.
	blocked map[poolCluster]poolBlock
}

type poolCluster struct {
	pool    types.NamespacedName
	cluster string
}

// poolBlock stops a pool's launches in one cluster after a configuration
// error: until its templates change (template is what they were) or until
// passes.
type poolBlock struct {
	template string
	until    time.Time
	message  string
}

// clusterState is what the loop remembers of one cluster between passes;
// losing it (a restart) costs at most one batch window.
type clusterState struct {
	// seen are the pending pods already counted in a batch window.
	seen     map[types.UID]bool
	lastPlan time.Time
	// capacityKey is the nodes the last plan was made with (see
	// capacityKey): CapacityBuffers' headroom is planned again when it
	// changes.
	capacityKey string
	lastError   string
	// awaiting are Machines this process created that the cache has not
	// shown yet, and since when: a plan made before they show would not
	// count them as in-flight capacity and would launch for the same pods
	// again. Waiting for them in the next pass, not in the one that
	// created them, keeps the worker free for other clusters. A restart
	// loses nothing: a new cache lists every Machine before it syncs.
	awaiting      []string
	awaitingSince time.Time
	// deleted are Machines this process deleted, and when, until the
	// cache shows them deleting or gone: a pass right after the deletion
	// would otherwise read the Machine as the cache last saw it, count it
	// as capacity and handle it again (a second refusal Event, a second
	// unavailable mark, a second delete). Lost on a restart, when a new
	// cache shows the deletion anyway.
	deleted map[types.UID]time.Time
	// notes are the assumptions the last pass planned with, by pool
	// (see nodeModel), reported when they change.
	notes map[string]string
	// unbuildable are the pools whose node model the last pass could not
	// build, with why (see prepare), announced when it changes.
	unbuildable map[string]string
	// nodeLost are Machines whose Node disappeared, since when (guarded
	// by Provisioner.mu: the disruption controller reads it too).
	nodeLost map[types.UID]time.Time

	// changes counts the events of everything a full pass reads but
	// pending pods (Machines, AWSMachines, Nodes, pools, the Cluster,
	// overlays, CapacityBuffers; see changing); settled is the count the
	// last full pass began with, when it went through every Machine
	// without an error (-1: none did). While they are equal, a pass woken
	// by pending pods with a batch window open only counts them into the
	// window (see podsOnly): the rest would find what the last full pass
	// found. Guarded by Provisioner.mu: event handlers write changes.
	changes, settled int64
	// decisions are the decisions of the cluster's Machines the last
	// full pass read (see decision).
	decisions map[types.UID]readDecision
	// recheckAt is when the last full pass's Machines change by
	// themselves (a registration timeout, a lost node's grace): a full
	// pass is due then whatever the events. Zero: never.
	recheckAt time.Time
	// arrived are the pods the pod watch saw become pending since a pass
	// last took them (see pendingPods): what a pods-only pass reads.
	// Guarded by Provisioner.mu.
	arrived []arrival
}

// arrival is a pod the pod watch saw become pending, and when: a batch
// window idles from its pods' arrivals, not from the pass that counts
// them (which runs up to arrivalWake later).
type arrival struct {
	pod types.NamespacedName
	at  time.Time
}

// arrivalWake is how long a pod's arrival may wait for the pass that
// counts it into its window. The pods of a burst arrive a few
// milliseconds apart; waking the cluster's loop once per pod made most of
// a burst's passes (one or two per pod), each paying for a reconcile.
// Arrivals within it wake the loop once (the workqueue keeps the earliest
// of a key's delayed adds). The window's close does not move: it is
// counted from the arrivals' own times.
const arrivalWake = 250 * time.Millisecond

// changeWake is how long a change to a cluster's Machines, AWSMachines or
// Nodes may wait for the full pass that reads it. CAPI, CAPA and the
// kubelet change a booting Machine, its AWSMachine and its Node a dozen
// times in the few seconds it takes to join (references, provider ID,
// instance state, nodeRef, the Node's labels and readiness), and a burst
// boots several at once: each change started a full pass at once, most
// of a cluster's passes after a burst was planned. Changes within it wake
// the loop once. A pass that runs meanwhile (a window's close) sees the
// change at once: the event marks the cluster changed when it happens
// (see changing), only the wake waits. Karpenter's own provisioner is not
// woken by these changes at all; its disruption polls every 10 s.
const changeWake = 500 * time.Millisecond

// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=machines,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=infrastructure.cluster.x-k8s.io,resources=awsmachines,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=infrastructure.cluster.x-k8s.io,resources=awsmachinetemplates;awsclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=bootstrap.cluster.x-k8s.io,resources=kubeadmconfigs,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=bootstrap.cluster.x-k8s.io,resources=kubeadmconfigtemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=controlplane.cluster.x-k8s.io,resources=*,verbs=get;list;watch

// SetupWithManager registers the controller.
func (p *Provisioner) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Reports == nil {
		p.Reports = NewReports()
	}
	p.setUpAt = p.Now()
	p.batches = NewBatches(p.Options.BatchIdle, p.Options.BatchMax)
	p.unavailable = NewUnavailableOfferings(p.Options.UnavailableTTL)
	p.interruptions = NewSpotInterruptions(p.Options.InterruptionHalfLife)
	p.templates = &templates{client: p.Client, mapper: mgr.GetRESTMapper()}
	p.events = newWorkloadEvents(ctx, p.ClusterCache)
	p.offerings = &offeringsCache{source: p.Catalog}
	p.clusters = map[types.NamespacedName]*clusterState{}
	p.runCtx = ctx
	p.blocked = map[poolCluster]poolBlock{}

	joineryOnly := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[v1alpha1.LabelNodePool]
		return ok
	})
	c, err := ctrl.NewControllerManagedBy(mgr).
		Named("provisioning").
		For(&clusterv1.Cluster{}, builder.WithPredicates(p.Shard.Clusters(), clusterChanged, p.markClusterChanged())).
		Watches(&v1alpha1.NodePool{}, handler.EnqueueRequestsFromMapFunc(p.changing(p.clustersOfPool))).
		Watches(&v1alpha1.NodeOverlay{}, handler.EnqueueRequestsFromMapFunc(p.changing(p.clustersOfOverlay)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&clusterv1.Machine{}, p.changingSoon(clusterOfObject), builder.WithPredicates(joineryOnly, machineChanged)).
		Watches(&infrav1.AWSMachine{}, p.changingSoon(clusterOfObject), builder.WithPredicates(joineryOnly, awsMachineChanged)).
		WatchesRawSource(p.ClusterCache.GetClusterSource("provisioning", p.changing(p.connectionChanged))).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, p.Options.Concurrency)}).
		Build(p)
	if err != nil {
		return err
	}
	p.controller = c
	return p.setupOverlays(mgr)
}

// APIServerNow is the time by the management cluster's apiserver, to
// compare with the timestamps it set (creationTimestamp).
func (p *Provisioner) APIServerNow() time.Time {
	if p.APIServerClock != nil {
		return p.APIServerClock.Now()
	}
	return p.Now()
}

func clusterOfObject(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[clusterv1.ClusterNameLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

func (p *Provisioner) clustersOfPool(ctx context.Context, o client.Object) []reconcile.Request {
	pool, ok := o.(*v1alpha1.NodePool)
	if !ok {
		return nil
	}
	var clusters clusterv1.ClusterList
	if err := p.Client.List(ctx, &clusters, client.InNamespace(pool.Namespace)); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range clusters.Items {
		if Serves(pool, &clusters.Items[i]) && p.Shard.Serves(&clusters.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
		}
	}
	return out
}

// Serves reports whether pool serves cluster (same namespace, by name or
// by label selector).
func Serves(pool *v1alpha1.NodePool, cluster *clusterv1.Cluster) bool {
	if pool.Namespace != cluster.Namespace {
		return false
	}
	if pool.Spec.ClusterName != "" {
		return pool.Spec.ClusterName == cluster.Name
	}
	if pool.Spec.ClusterSelector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.ClusterSelector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(cluster.Labels))
}

func (p *Provisioner) state(key types.NamespacedName) *clusterState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.clusters[key]
	if s == nil {
		s = &clusterState{seen: map[types.UID]bool{}, deleted: map[types.UID]time.Time{}, settled: -1}
		p.clusters[key] = s
	}
	return s
}

// changing wraps a watch's map function: each cluster it wakes has
// changed in what a full pass reads, so its next pass is a full one (see
// clusterState.changes). Every watch but the pending pods' goes through
// it; a cluster no pass has seen yet has no state, and its first pass is
// full anyway.
func (p *Provisioner) changing(f handler.MapFunc) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := f(ctx, o)
		p.markChanged(reqs...)
		return reqs
	}
}

// changingSoon is the event handler of the watches whose objects change
// many times over a Machine's boot (Machines, AWSMachines, Nodes): like
// changing, it marks each cluster the event maps to changed at once, and
// wakes its loop changeWake later, so that the changes within it make
// one full pass (the workqueue keeps the earliest of a key's delayed
// adds). An update wakes the clusters of the object before and after it,
// as EnqueueRequestsFromMapFunc does.
func (p *Provisioner) changingSoon(f handler.MapFunc) handler.EventHandler {
	mark := p.changing(f)
	wake := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, r := range mark(ctx, o) {
				q.AddAfter(r, changeWake)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake(ctx, q, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake(ctx, q, e.Object)
		},
	}
}

// connectionChanged maps the ClusterCache's event for a cluster it
// connected to or lost to the cluster, whose informers on the new
// connection have to be started again (see warmPlanningCaches).
func (p *Provisioner) connectionChanged(_ context.Context, o client.Object) []reconcile.Request {
	key := client.ObjectKeyFromObject(o)
	p.mu.Lock()
	delete(p.warmed, key)
	p.mu.Unlock()
	return []reconcile.Request{{NamespacedName: key}}
}

func (p *Provisioner) markChanged(reqs ...reconcile.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range reqs {
		if s := p.clusters[r.NamespacedName]; s != nil {
			s.changes++
		}
	}
}

// markClusterChanged is the predicate form of changing, for the Cluster
// itself; it lets every event through.
func (p *Provisioner) markClusterChanged() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		p.markChanged(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		return true
	})
}

// pendingPods wakes a cluster's loop for the pod events newlyPending
// passes, and tells it which pod became pending (arrived): a pass woken by
// pending pods alone reads those pods, not every pod of the cluster. Each
// list of the cache copies every pod, so a burst of n pods made n lists
// of up to n pods. A pending pod's deletion makes the next pass full: the
// window may have nothing left to plan, which only a full pass can tell.
func (p *Provisioner) pendingPods(key types.NamespacedName) handler.EventHandler {
	req := reconcile.Request{NamespacedName: key}
	arrived := func(o client.Object) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s := p.clusters[key]; s != nil {
			s.arrived = append(s.arrived, arrival{pod: client.ObjectKeyFromObject(o), at: p.Now()})
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			arrived(e.Object)
			q.AddAfter(req, arrivalWake)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			arrived(e.ObjectNew)
			q.AddAfter(req, arrivalWake)
		},
		DeleteFunc: func(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			p.markChanged(req)
			q.Add(req)
		},
		GenericFunc: func(_ context.Context, _ event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			p.markChanged(req)
			q.Add(req)
		},
	}
}

// takeArrived returns the pods that arrived since the last call, and
// forgets them.
func (p *Provisioner) takeArrived(st *clusterState) []arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := st.arrived
	st.arrived = nil
	return out
}

func (p *Provisioner) forget(key types.NamespacedName) {
	p.mu.Lock()
	delete(p.clusters, key)
	delete(p.warmed, key)
	p.mu.Unlock()
	p.batches.Close(key.String())
	p.events.forget(key)
	forgetClusterMetrics(key)
}

// Reconcile makes one pass over one workload cluster: repair and clean
// up its Machines, label its new Nodes, and, once a batch window closed,
// plan for its pending pods and launch the plan's machines.
func (p *Provisioner) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	cluster := &clusterv1.Cluster{}
	if err := p.Client.Get(ctx, req.NamespacedName, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			p.forget(req.NamespacedName)
			p.Reports.ForgetCluster(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !p.Shard.Serves(cluster) {
		// Another manager's (its watch-filter label), reached through a
		// Machine event or a relabelled Cluster: forget what this
		// manager knew, and leave it alone.
		p.forget(req.NamespacedName)
		p.Reports.ForgetCluster(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if !cluster.DeletionTimestamp.IsZero() || ptr.Deref(cluster.Spec.Paused, false) || cluster.Annotations[clusterv1.PausedAnnotation] != "" {
		return ctrl.Result{}, nil
	}
	pools, err := p.poolsFor(ctx, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(pools) == 0 {
		p.forget(req.NamespacedName)
		p.Reports.ForgetCluster(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if !ptr.Deref(cluster.Status.Initialization.InfrastructureProvisioned, false) || !conditions.IsTrue(cluster, clusterv1.ClusterControlPlaneInitializedCondition) {
		p.report(cluster, pools, false, "waiting for the Cluster's infrastructure to be provisioned and its control plane initialized")
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if wait := p.catalogWait(); wait > 0 {
		log.V(1).Info("waiting for the catalog's first read from EC2 before deciding")
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	started := time.Now()
	w, err := p.connect(ctx, cluster)
	if err != nil {
		if errors.Is(err, clustercache.ErrClusterNotConnected) {
			msg := "workload cluster apiserver not reachable through CAPI's ClusterCache; no decision is made for it until it is"
			p.report(cluster, pools, false, msg)
			log.V(1).Info(msg)
			return ctrl.Result{RequeueAfter: 15 * time.Second}, nil
		}
		return ctrl.Result{}, err
	}

	pass := &pass{Provisioner: p, ctx: ctx, log: log, cluster: cluster, pools: pools, workload: w, now: p.Now()}
	pass.laps.start(started)
	pass.laps.lap("connect")
	result, err := pass.run()
	if took := time.Since(started); took > slowPass {
		log.Info("slow pass", "took", took.Round(time.Millisecond).String(), "phases", pass.laps.String())
	}
	if err != nil {
		p.state(req.NamespacedName).lastError = err.Error()
		return ctrl.Result{}, err
	}
	return result, nil
}

func (p *Provisioner) poolsFor(ctx context.Context, cluster *clusterv1.Cluster) ([]*v1alpha1.NodePool, error) {
	var list v1alpha1.NodePoolList
	if err := p.Client.List(ctx, &list, client.InNamespace(cluster.Namespace)); err != nil {
		return nil, err
	}
	var out []*v1alpha1.NodePool
	for i := range list.Items {
		np := &list.Items[i]
		if np.DeletionTimestamp.IsZero() && Serves(np, cluster) {
			out = append(out, np)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *Provisioner) report(cluster *clusterv1.Cluster, pools []*v1alpha1.NodePool, reachable bool, message string) {
	for _, np := range pools {
		p.Reports.Set(client.ObjectKeyFromObject(np), cluster.Name, ClusterReport{Reachable: reachable, Message: message})
	}
}

// workload is the read side of one workload cluster: CAPI's ClusterCache
// keeps informers on its Pods and Nodes (and on what planning lists), so a
// pass reads memory, not the apiserver.
type workload struct {
	reader client.Reader
	client client.Client
}

func (p *Provisioner) connect(ctx context.Context, cluster *clusterv1.Cluster) (*workload, error) {
	key := client.ObjectKeyFromObject(cluster)
	toCluster := func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: key}}
	}
	// Bound pods count on their nodes but are read at plan time. It is
	// the one watch whose pods becoming pending do not go through
	// changing: a pass woken by them alone reads just those pods (see
	// pendingPods and podsOnly).
	if err := p.ClusterCache.Watch(ctx, key, clustercache.NewWatcher(clustercache.WatcherOptions{
		Name: "provisioning-pods", Watcher: p.controller, Kind: &corev1.Pod{},
		EventHandler: p.pendingPods(key), Predicates: []predicate.Predicate{newlyPending},
	})); err != nil {
		return nil, err
	}
	if err := p.ClusterCache.Watch(ctx, key, clustercache.NewWatcher(clustercache.WatcherOptions{
		Name: "provisioning-nodes", Watcher: p.controller, Kind: &corev1.Node{},
		EventHandler: p.changingSoon(toCluster), Predicates: []predicate.Predicate{nodeChanged},
	})); err != nil {
		return nil, err
	}
	reader, err := p.ClusterCache.GetReader(ctx, key)
	if err != nil {
		return nil, err
	}
	c, err := p.ClusterCache.GetClient(ctx, key)
	if err != nil {
		return nil, err
	}
	p.warmPlanningCaches(key, reader)
	return &workload{reader: sharedLists{reader}, client: client.WithFieldOwner(c, FieldOwner)}, nil
}

// warmPlanningCaches starts, in the background and once per connection
// to a cluster, the informers a plan lists besides Pods and Nodes
// (planningLists): the ClusterCache starts an informer at its kind's
// first list, and the first list waits for it to sync. That was at the
// cluster's first plan, when its pods had waited out their window: on a
// busy apiserver (20 clusters' bursts at once) six informers took 5-8 s
// to sync, all of it added to the first pods' wait for a Machine. A
// cluster the ClusterCache connects to again has new informers, and they
// are started again (connectionChanged).
func (p *Provisioner) warmPlanningCaches(key types.NamespacedName, reader client.Reader) {
	p.mu.Lock()
	if p.warmed == nil {
		p.warmed = map[types.NamespacedName]bool{}
	}
	if p.warmed[key] {
		p.mu.Unlock()
		return
	}
	p.warmed[key] = true
	p.mu.Unlock()
	ctx := p.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	log := ctrl.LoggerFrom(ctx).WithValues("cluster", key)
	for _, list := range planningLists() {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			// Only the informer's start matters; what the pass lists
			// later is read then.
			if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
				log.V(1).Info("starting a planning cache ahead of the first plan failed; the plan starts it", "kind", fmt.Sprintf("%T", list), "error", err.Error())
			}
		}()
	}
}

// sharedLists lists the cache's own objects instead of deep copies: a
// pass lists every Pod and Node of its cluster, and copying them was a
// quarter of the manager's CPU with pods pending in a fleet. Passes read
// what they list and copy before changing anything (labelNode patches a
// copy); a pass must never modify a listed object.
type sharedLists struct{ client.Reader }

func (s sharedLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.Reader.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...)
}

// sharedReads is sharedLists for Gets too. A pass reads its cluster's
// Machines and their AWSMachines from the manager's cache through it
// (clusterstate.Read) and only reads them: it deletes a Machine by name,
// and builds whatever it creates anew.
type sharedReads struct{ client.Reader }

func (s sharedReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.Reader.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...)
}

func (s sharedReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return s.Reader.Get(ctx, key, obj, append(opts, client.UnsafeDisableDeepCopy)...)
}

// nodeChanged passes a Node's creation and deletion, and updates that
// change what a pass reads of it: labels, taints, provider ID,
// schedulability, capacity, and readiness. The kubelet's status heartbeat
// changes none of them; on a fleet of nodes it would wake every cluster's
// loop every few seconds for nothing.
var nodeChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*corev1.Node)
		after, ok2 := e.ObjectNew.(*corev1.Node)
		if !ok1 || !ok2 {
			return true
		}
		return !maps.Equal(before.Labels, after.Labels) ||
			!equality.Semantic.DeepEqual(before.Spec, after.Spec) ||
			!equality.Semantic.DeepEqual(before.Status.Allocatable, after.Status.Allocatable) ||
			nodeReady(before) != nodeReady(after) ||
			!before.DeletionTimestamp.Equal(after.DeletionTimestamp)
	},
}

// newlyPending passes the Pod events that change what is pending: a pod
// that becomes one Joinery provisions for (clusterstate.IsProvisionable:
// the scheduler marked it Unschedulable), is created so (a new cache's
// first list), or is deleted while it was. A pod's creation comes before
// the scheduler tried it, and a pending pod's other updates (the
// scheduler's new message, a nominated node) leave it pending: each woke
// a pass that found nothing new, two or three per pod of a burst. A pod
// that stops being pending otherwise (bound, deleting) changes no window;
// the pass at the window's close reads the pods as they are then.
var newlyPending = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return provisionable(e.Object) },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return provisionable(e.ObjectNew) && !provisionable(e.ObjectOld)
	},
	DeleteFunc: func(e event.DeleteEvent) bool { return provisionable(e.Object) },
}

func provisionable(o client.Object) bool {
	pod, ok := o.(*corev1.Pod)
	return ok && clusterstate.IsProvisionable(pod)
}

// machineChanged passes a Machine's creation and deletion, and updates
// that change what a pass reads of it: labels, annotations (its
// decision), spec (provider ID, references), its nodeRef, and deletion.
// CAPI rewrites a booting Machine's status a dozen times (phase,
// conditions, addresses) without changing any of them; each woke every
// pass of the cluster for nothing.
var machineChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*clusterv1.Machine)
		after, ok2 := e.ObjectNew.(*clusterv1.Machine)
		if !ok1 || !ok2 {
			return true
		}
		return metaChanged(before, after) ||
			!equality.Semantic.DeepEqual(before.Spec, after.Spec) ||
			before.Status.NodeRef != after.Status.NodeRef
	},
}

// awsMachineChanged passes an AWSMachine's creation and deletion, and
// updates that change what a pass reads of it: labels, annotations, spec
// (instance and provider IDs), the instance's state, its InstanceReady
// condition (a refused launch, a terminated instance), and deletion.
var awsMachineChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*infrav1.AWSMachine)
		after, ok2 := e.ObjectNew.(*infrav1.AWSMachine)
		if !ok1 || !ok2 {
			return true
		}
		return metaChanged(before, after) ||
			!equality.Semantic.DeepEqual(before.Spec, after.Spec) ||
			!equality.Semantic.DeepEqual(before.Status.InstanceState, after.Status.InstanceState) ||
			!equality.Semantic.DeepEqual(v1beta1conditions.Get(before, infrav1.InstanceReadyCondition), v1beta1conditions.Get(after, infrav1.InstanceReadyCondition))
	},
}

// clusterChanged passes a Cluster's creation and deletion, and updates
// that change what a pass reads of it: labels (pools' selectors, the
// shard), annotations (paused), spec, failure domains, whether its
// infrastructure is provisioned and its control plane initialized, and
// deletion. CAPI rewrites a Cluster's status as its Machines come and go
// (worker counts, conditions), several times per Machine of a burst.
var clusterChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*clusterv1.Cluster)
		after, ok2 := e.ObjectNew.(*clusterv1.Cluster)
		if !ok1 || !ok2 {
			return true
		}
		return metaChanged(before, after) ||
			!equality.Semantic.DeepEqual(before.Spec, after.Spec) ||
			!equality.Semantic.DeepEqual(before.Status.FailureDomains, after.Status.FailureDomains) ||
			!equality.Semantic.DeepEqual(before.Status.Initialization, after.Status.Initialization) ||
			conditions.IsTrue(before, clusterv1.ClusterControlPlaneInitializedCondition) != conditions.IsTrue(after, clusterv1.ClusterControlPlaneInitializedCondition)
	},
}

// metaChanged reports whether an object's labels, annotations or
// deletion changed.
func metaChanged(before, after client.Object) bool {
	return !maps.Equal(before.GetLabels(), after.GetLabels()) ||
		!maps.Equal(before.GetAnnotations(), after.GetAnnotations()) ||
		!before.GetDeletionTimestamp().Equal(after.GetDeletionTimestamp())
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// offeringsCache keeps each region's offerings per set of zones for as
// long as the source hands out the same catalog.
type offeringsCache struct {
	source  cloud.Source
	mu      sync.Mutex
	catalog *cloud.Catalog // what byKey was computed from
	byKey   map[string][]cloud.InstanceTypeOfferings
}

func (o *offeringsCache) get(region string, zones []string) ([]cloud.InstanceTypeOfferings, error) {
	key := region + "/" + strings.Join(zones, ",")
	o.mu.Lock()
	defer o.mu.Unlock()
	if current := o.source.Current(); current != o.catalog {
		o.catalog, o.byKey = current, nil
	}
	if got, ok := o.byKey[key]; ok {
		return got, nil
	}
	var opts []cloud.OfferingOption
	if len(zones) > 0 {
		opts = append(opts, cloud.WithZones(zones...))
	}
	offered, err := o.catalog.RegionOfferings(region, opts...)
	if err != nil {
		return nil, err
	}
	if o.byKey == nil {
		o.byKey = map[string][]cloud.InstanceTypeOfferings{}
	}
	o.byKey[key] = offered
	return offered, nil
}

// unavailableKey is the offering a Machine's decision chose.
func unavailableKey(d Decision) solver.OfferingKey {
	return solver.OfferingKey{InstanceType: d.Offering.InstanceType, Zone: d.Offering.Zone, CapacityType: d.Offering.CapacityType}
}

func fmtPrice(usd float64) string { return fmt.Sprintf("$%.4f/h", usd) }

// blockPool stops the pool's launches in the pass's cluster.
func (ps *pass) blockPool(pool *v1alpha1.NodePool, template string, until time.Time, message string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.blocked[poolCluster{client.ObjectKeyFromObject(pool), ps.cluster.Name}] = poolBlock{template: template, until: until, message: message}
}

// poolBlocked returns why the pool launches nothing in the pass's cluster
// now, if it does not: a block ends when the templates change or its time
// passes.
func (ps *pass) poolBlocked(pool *v1alpha1.NodePool, template string, now time.Time) (string, bool) {
	key := poolCluster{client.ObjectKeyFromObject(pool), ps.cluster.Name}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	b, ok := ps.blocked[key]
	if !ok {
		return "", false
	}
	if b.template != template || !now.Before(b.until) {
		delete(ps.blocked, key)
		return "", false
	}
	return b.message, true
}

// firstCatalogWait bounds how long after start passes wait for a catalog
// read from EC2 (cloud/live) to finish its first read. Deciding on the
// snapshot meanwhile would plan with assumed zone names, and say so in a
// NodeModelAssumed Event, for the few seconds the read takes; an EC2 that
// does not answer must not hold provisioning up for longer.
const firstCatalogWait = 30 * time.Second

// catalogWait is how soon to look again while the catalog's first read
// is under way; 0 to decide now.
func (p *Provisioner) catalogWait() time.Duration {
	loading, ok := p.Catalog.(interface{ FirstReadDone() bool })
	if !ok || loading.FirstReadDone() || p.Now().Sub(p.setUpAt) >= firstCatalogWait {
		return 0
	}
	return 500 * time.Millisecond
}
