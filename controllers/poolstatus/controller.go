// Package poolstatus keeps each NodePool's status: how many machines and
// ready nodes it has, their capacity and hourly price, the state of every
// cluster it serves, and conditions that say in words whether it can
// create machines and whether it hit its limits.
package poolstatus

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/controllers/internal/coalesce"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/shard"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

// resync refreshes status that nothing else triggers (a template deleted).
const resync = time.Minute

// wakeGap is the shortest gap between a pool's pass and the next one its
// Machines' or Clusters' changes cause: a provisioning burst rewrites each
// new Machine's status many times, and each pass lists all the pool's
// Machines and the namespace's Clusters (controllers/internal/coalesce).
const wakeGap = 2 * time.Second

// Reconciler writes NodePool status.
type Reconciler struct {
	Client client.Client
	// Catalog is asked for the current catalog on every pass.
	Catalog cloud.Source
	Reports *provisioning.Reports
	// Shard is the manager's share of the fleet: the entries of
	// status.clusters for Clusters another manager serves are that
	// manager's to write, and are kept as they are.
	Shard shard.Filter

	mapper  meta.RESTMapper
	changes chan event.TypedGenericEvent[*v1alpha1.NodePool]
	series  series
	wakes   coalesce.Wakes
}

// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools,verbs=get;list;watch
// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools/status,verbs=patch
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters;machines,verbs=get;list;watch

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.mapper = mgr.GetRESTMapper()
	r.wakes = coalesce.Wakes{Every: wakeGap}
	r.changes = make(chan event.TypedGenericEvent[*v1alpha1.NodePool], 1024)
	r.Reports.OnChange(func(pool types.NamespacedName) {
		np := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: pool.Namespace, Name: pool.Name}}
		select {
		case r.changes <- event.TypedGenericEvent[*v1alpha1.NodePool]{Object: np}:
		default: // a full channel already holds enough wake-ups
		}
	})
	joineryOnly := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[v1alpha1.LabelNodePool]
		return ok
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("poolstatus").
		For(&v1alpha1.NodePool{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&clusterv1.Machine{}, r.wakes.EnqueueRequestsFromMapFunc(poolOfMachine), builder.WithPredicates(joineryOnly)).
		Watches(&clusterv1.Cluster{}, r.wakes.EnqueueRequestsFromMapFunc(r.poolsOfCluster)).
		WatchesRawSource(source.Channel(r.changes, &handler.TypedEnqueueRequestForObject[*v1alpha1.NodePool]{})).
		Complete(r)
}

func poolOfMachine(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetLabels()[v1alpha1.LabelNodePool]}}}
}

func (r *Reconciler) poolsOfCluster(ctx context.Context, o client.Object) []reconcile.Request {
	var pools v1alpha1.NodePoolList
	if err := r.Client.List(ctx, &pools, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(pools.Items))
	for i := range pools.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pools.Items[i])})
	}
	return out
}

// Reconcile recomputes one pool's status from its Machines, the Clusters
// it serves and the provisioning loop's reports.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	r.wakes.Ran(req)
	pool := &v1alpha1.NodePool{}
	if err := r.Client.Get(ctx, req.NamespacedName, pool); err != nil {
		if apierrors.IsNotFound(err) {
			r.wakes.Forget(req)
			r.series.replace(req.NamespacedName, nil)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var machines clusterv1.MachineList
	if err := r.Client.List(ctx, &machines, client.InNamespace(pool.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: pool.Name}); err != nil {
		return ctrl.Result{}, err
	}
	var clusters clusterv1.ClusterList
	if err := r.Client.List(ctx, &clusters, client.InNamespace(pool.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	status, byCluster := r.compute(ctx, pool, machines.Items, clusters.Items)
	r.series.replace(req.NamespacedName, poolSamples(pool, byCluster))
	if equality.Semantic.DeepEqual(status, pool.Status) {
		return ctrl.Result{RequeueAfter: resync}, nil
	}
	// Optimistic: managers of other shards write their clusters' entries
	// of the same list, and a merge patch replaces the whole list.
	patch := client.MergeFromWithOptions(pool.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pool.Status = status
	if err := r.Client.Status().Patch(ctx, pool, patch, client.FieldOwner(provisioning.FieldOwner)); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: resync}, nil
}

// compute returns the pool's status and, for its metrics, what its
// machines add up to in each cluster it serves or has machines in.
func (r *Reconciler) compute(ctx context.Context, pool *v1alpha1.NodePool, machines []clusterv1.Machine, clusters []clusterv1.Cluster) (v1alpha1.NodePoolStatus, map[string]*usage) {
	status := v1alpha1.NodePoolStatus{ObservedGeneration: pool.Generation, Conditions: slices.Clone(pool.Status.Conditions)}
	kubelet := solverinput.KubeletConfig(pool.Spec.Template.Spec.Kubelet)
	catalog := r.Catalog.Current()
	resources := corev1.ResourceList{}
	price := 0.0
	perCluster := map[string]int32{}
	byCluster := map[string]*usage{}
	for i := range machines {
		m := &machines[i]
		if !metav1.IsControlledBy(m, pool) && !ownedBy(m, pool) {
			continue
		}
		status.Machines++
		perCluster[m.Spec.ClusterName]++
		u := usageOf(byCluster, m.Spec.ClusterName)
		u.machines++
		if m.Status.NodeRef.IsDefined() && conditions.IsTrue(m, clusterv1.MachineNodeReadyCondition) {
			status.Nodes++
		}
		if p, err := strconv.ParseFloat(m.Annotations[provisioning.AnnotationPricePerHour], 64); err == nil {
			price += p
			u.price += p
		}
		if it, ok := catalog.InstanceType(m.Labels[v1alpha1.LabelInstanceType]); ok {
			capacity, _ := cloud.Allocatable(it, kubelet)
			for name, q := range capacity {
				sum := resources[name]
				sum.Add(q)
				resources[name] = sum
			}
			u.add(capacity)
		}
	}
	if len(resources) > 0 {
		status.Resources = resources
	}
	status.PricePerHour = fmt.Sprintf("%.4f", price)

	reports := r.Reports.Get(client.ObjectKeyFromObject(pool))
	previous := map[string]v1alpha1.ClusterStatus{}
	for _, cs := range pool.Status.Clusters {
		previous[cs.Name] = cs
	}
	for i := range clusters {
		c := &clusters[i]
		if !provisioning.Serves(pool, c) {
			continue
		}
		usageOf(byCluster, c.Name)
		if !r.Shard.Serves(c) {
			// Another manager's cluster: its entry is that manager's,
			// written from its own reports.
			if cs, ok := previous[c.Name]; ok {
				cs.Machines = perCluster[c.Name]
				status.Clusters = append(status.Clusters, cs)
			}
			continue
		}
		cs := v1alpha1.ClusterStatus{Name: c.Name, Machines: perCluster[c.Name]}
		if rep, ok := reports[c.Name]; ok {
			cs.Reachable, cs.Message = rep.Reachable, rep.Message
			cs.LimitReached = rep.LimitReached
			if rep.LaunchProblem != "" {
				cs.LaunchProblem = truncate(rep.LaunchProblem, 4096)
				cs.LaunchBlocked, cs.LaunchFailed = rep.LaunchBlocked, rep.LaunchFailed
			}
		} else {
			cs.Message = "not planned for yet"
		}
		status.Clusters = append(status.Clusters, cs)
	}
	// The conditions sum up every cluster's entry, this manager's and
	// other shards', so each manager writes the same conditions.
	var limited, launchProblems []string
	launchBlocked, launchFailed := false, false
	for _, cs := range status.Clusters {
		if cs.LimitReached {
			limited = append(limited, cs.Name+": "+cs.Message)
		}
		if cs.LaunchProblem != "" {
			launchProblems = append(launchProblems, "cluster "+cs.Name+": "+cs.LaunchProblem)
			launchBlocked = launchBlocked || cs.LaunchBlocked
			launchFailed = launchFailed || cs.LaunchFailed
		}
	}
	sort.Slice(status.Clusters, func(i, j int) bool { return status.Clusters[i].Name < status.Clusters[j].Name })
	status.Replicas = staticReplicas(pool, machines, clusters)

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "TemplatesFound",
		Message: "the infrastructure and bootstrap templates exist; the pool can create machines", ObservedGeneration: pool.Generation}
	if problems := r.missingTemplates(ctx, pool); len(problems) > 0 {
		ready.Status, ready.Reason = metav1.ConditionFalse, "TemplateNotFound"
		ready.Message = strings.Join(problems, "; ")
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	limit := metav1.Condition{Type: v1alpha1.ConditionLimitReached, Status: metav1.ConditionFalse, Reason: "WithinLimits",
		Message: "every planned machine fits within spec.limits", ObservedGeneration: pool.Generation}
	if len(limited) > 0 {
		sort.Strings(limited)
		limit.Status, limit.Reason = metav1.ConditionTrue, "LimitReached"
		limit.Message = strings.Join(limited, "; ") + " (raise spec.limits or free capacity)"
	}
	meta.SetStatusCondition(&status.Conditions, limit)
	launch := metav1.Condition{Type: provisioning.ConditionLaunchConfigurationValid, Status: metav1.ConditionTrue, Reason: "TemplatesLaunchable",
		Message: "nothing in the pool's templates fights the offerings it decides", ObservedGeneration: pool.Generation}
	if len(launchProblems) > 0 {
		sort.Strings(launchProblems)
		launch.Reason = "TemplateConstrainsLaunches"
		launch.Message = strings.Join(launchProblems, "; ")
		switch {
		case launchBlocked:
			launch.Status, launch.Reason = metav1.ConditionFalse, "LaunchConfigurationError"
		case launchFailed:
			launch.Status, launch.Reason = metav1.ConditionFalse, "LaunchFailed"
		}
	}
	meta.SetStatusCondition(&status.Conditions, launch)
	return status, byCluster
}

// truncate keeps s within the API's length bound (launchProblem), on a
// rune boundary.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func ownedBy(m *clusterv1.Machine, pool *v1alpha1.NodePool) bool {
	for _, ref := range m.OwnerReferences {
		if ref.UID == pool.UID {
			return true
		}
	}
	return false
}

// missingTemplates names the pool's templates that cannot be read, and
// what to do.
func (r *Reconciler) missingTemplates(ctx context.Context, pool *v1alpha1.NodePool) []string {
	var problems []string
	for field, ref := range map[string]v1alpha1.TemplateReference{
		"spec.template.spec.infrastructureTemplateRef": pool.Spec.Template.Spec.InfrastructureTemplateRef,
		"spec.template.spec.bootstrapTemplateRef":      pool.Spec.Template.Spec.BootstrapTemplateRef,
	} {
		mapping, err := r.mapper.RESTMapping(schema.GroupKind{Group: ref.APIGroup, Kind: ref.Kind})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: the management cluster serves no %s in API group %s; install its provider or fix the reference", field, ref.Kind, ref.APIGroup))
			continue
		}
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(mapping.GroupVersionKind)
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: pool.Namespace, Name: ref.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				problems = append(problems, fmt.Sprintf("%s: %s %s/%s does not exist; create it or fix the name", field, ref.Kind, pool.Namespace, ref.Name))
			} else {
				problems = append(problems, fmt.Sprintf("%s: reading %s %s/%s: %v", field, ref.Kind, pool.Namespace, ref.Name, err))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// staticReplicas is a static pool's status.replicas: its Machines that
// count towards spec.replicas (provisioning.StaticMachines) in the served
// cluster with the fewest, so that it reaches spec.replicas only once
// every cluster has them, which is what `kubectl scale` and `kubectl wait`
// compare with. A dynamic pool has none.
func staticReplicas(pool *v1alpha1.NodePool, machines []clusterv1.Machine, clusters []clusterv1.Cluster) int32 {
	if !pool.Static() {
		return 0
	}
	var owned []clusterv1.Machine
	for i := range machines {
		if metav1.IsControlledBy(&machines[i], pool) || ownedBy(&machines[i], pool) {
			owned = append(owned, machines[i])
		}
	}
	fewest, served := int32(0), false
	for i := range clusters {
		c := &clusters[i]
		if !provisioning.Serves(pool, c) {
			continue
		}
		var inCluster []clusterv1.Machine
		for _, m := range owned {
			if m.Spec.ClusterName == c.Name {
				inCluster = append(inCluster, m)
			}
		}
		n := int32(len(provisioning.StaticMachines(pool.Name, inCluster)))
		if !served || n < fewest {
			fewest, served = n, true
		}
	}
	return fewest
}
