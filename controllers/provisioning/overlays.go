package provisioning

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/overlay"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

// +kubebuilder:rbac:groups=joinery.dev,resources=nodeoverlays,verbs=get;list;watch
// +kubebuilder:rbac:groups=joinery.dev,resources=nodeoverlays/status,verbs=get;update;patch

// overlayRecheck is how often overlays are checked again without an event:
// the catalog (and so which offerings two overlays both select) changes on
// its own.
const overlayRecheck = 5 * time.Minute

// allOverlays is the one key the overlay status controller reconciles:
// whether an overlay conflicts depends on every other overlay, so each
// reconcile judges them all, as Karpenter's nodeoverlay controller does.
var allOverlays = reconcile.Request{NamespacedName: types.NamespacedName{Name: "all-nodeoverlays"}}

// setupOverlays registers the NodeOverlay status controller and makes an
// overlay change re-plan every cluster this manager serves.
func (p *Provisioner) setupOverlays(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeoverlay").
		For(&v1alpha1.NodeOverlay{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.NodePool{}, handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
			return []reconcile.Request{allOverlays}
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(reconcile.Func(p.reconcileOverlays))
}

// clustersOfOverlay re-plans every served cluster when an overlay changes:
// it may change which offering is cheapest anywhere.
func (p *Provisioner) clustersOfOverlay(ctx context.Context, _ client.Object) []reconcile.Request {
	var clusters clusterv1.ClusterList
	if err := p.Client.List(ctx, &clusters); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range clusters.Items {
		if p.Shard.Serves(&clusters.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&clusters.Items[i])})
		}
	}
	return out
}

// reconcileOverlays applies every overlay to the pools of every cluster a
// NodePool serves, with the offerings of the cluster's region and zones,
// exactly as planning does (solverinput.Pools), and reports on each
// overlay whether it was left out for a conflict. Every manager of a
// sharded fleet judges every cluster, so they all write the same status.
func (p *Provisioner) reconcileOverlays(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	var list v1alpha1.NodeOverlayList
	if err := p.Client.List(ctx, &list); err != nil {
		return ctrl.Result{}, err
	}
	if len(list.Items) == 0 {
		return ctrl.Result{}, nil
	}
	overlays := make([]*v1alpha1.NodeOverlay, 0, len(list.Items))
	for i := range list.Items {
		overlays = append(overlays, &list.Items[i])
	}
	_, invalid := overlay.Compile(overlays)
	conflicts, err := p.overlayConflicts(ctx, overlays)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, o := range overlays {
		want := metav1.Condition{Type: v1alpha1.ConditionValidationSucceeded, Status: metav1.ConditionTrue, Reason: "Applied",
			Message: "applies without conflict to the offerings of every cluster its NodePools serve", ObservedGeneration: o.Generation}
		switch {
		case invalid[o.Name] != nil:
			want.Status, want.Reason, want.Message = metav1.ConditionFalse, "RuntimeValidation", invalid[o.Name].Error()
		case conflicts[o.Name] != "":
			want.Status, want.Reason, want.Message = metav1.ConditionFalse, v1alpha1.ReasonConflict, conflicts[o.Name]
		}
		ready := want
		ready.Type = v1alpha1.ConditionReady
		stored := o.DeepCopy()
		meta.SetStatusCondition(&o.Status.Conditions, want)
		meta.SetStatusCondition(&o.Status.Conditions, ready)
		if equality.Semantic.DeepEqual(stored.Status, o.Status) {
			continue
		}
		if err := p.Client.Status().Patch(ctx, o, client.MergeFromWithOptions(stored, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				// Changed or gone meanwhile: judge them all again.
				return ctrl.Result{Requeue: true}, nil
			}
			return ctrl.Result{}, err
		}
		if want.Status == metav1.ConditionFalse {
			p.Recorder.Event(o, corev1.EventTypeWarning, want.Reason, want.Message)
			log.Info("NodeOverlay not applied", "nodeoverlay", o.Name, "reason", want.Reason, "message", want.Message)
		}
	}
	return ctrl.Result{RequeueAfter: overlayRecheck}, nil
}

// overlayConflicts returns, by overlay name, why it is left out for a
// conflict (the first found, clusters in name order).
func (p *Provisioner) overlayConflicts(ctx context.Context, overlays []*v1alpha1.NodeOverlay) (map[string]string, error) {
	var clusters clusterv1.ClusterList
	if err := p.Client.List(ctx, &clusters); err != nil {
		return nil, err
	}
	sort.Slice(clusters.Items, func(i, j int) bool {
		return client.ObjectKeyFromObject(&clusters.Items[i]).String() < client.ObjectKeyFromObject(&clusters.Items[j]).String()
	})
	out := map[string]string{}
	for i := range clusters.Items {
		cluster := &clusters.Items[i]
		pools, err := p.poolsFor(ctx, cluster)
		if err != nil {
			return nil, err
		}
		if len(pools) == 0 {
			continue
		}
		ps := &pass{Provisioner: p, ctx: ctx, log: ctrl.LoggerFrom(ctx), cluster: cluster, pools: pools, now: p.Now()}
		offered, err := ps.prepare()
		if err != nil {
			// The pool status says why the cluster cannot be planned for;
			// its overlays are judged when it can.
			continue
		}
		_, conflicts, err := solverinput.Pools(solverinput.Objects{NodePools: pools, NodeModels: ps.models, Overlays: overlays}, offered)
		if err != nil {
			continue
		}
		for _, c := range conflicts {
			if out[c.Overlay] == "" {
				out[c.Overlay] = fmt.Sprintf("cluster %s: %s", ps.key, c.String())
			}
		}
	}
	return out, nil
}
