package provisioning

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

// CapacityBuffers live in the workload clusters, as they do for
// cluster-autoscaler and Karpenter. Each pass reads them through CAPI's
// ClusterCache with the pods and nodes, resolves them into virtual pods
// (internal/capacitybuffer) that are planned with the pending pods, and
// writes what it found to their status. A cluster without the CRD simply
// has no buffers.

// readBuffers lists the cluster's CapacityBuffers and resolves each; nil
// when the cluster does not have the CRD.
func (ps *pass) readBuffers() ([]*capacitybuffer.Resolved, error) {
	var list autoscalingv1beta1.CapacityBufferList
	if err := ps.workload.reader.List(ps.ctx, &list); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing CapacityBuffers: %w", err)
	}
	if err := ps.watchBuffers(); err != nil {
		return nil, err
	}
	out := make([]*capacitybuffer.Resolved, 0, len(list.Items))
	for i := range list.Items {
		// The list shares the cache's objects (sharedLists): copy before
		// anything may change it.
		cb := list.Items[i].DeepCopy()
		if !cb.DeletionTimestamp.IsZero() {
			continue
		}
		src, err := ps.bufferSource(cb)
		notFound := apierrors.IsNotFound(err)
		if err != nil && !notFound && !isUserError(err) {
			return nil, fmt.Errorf("reading what CapacityBuffer %s/%s references: %w", cb.Namespace, cb.Name, err)
		}
		out = append(out, capacitybuffer.Resolve(cb, src, err, notFound))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// watchBuffers makes a buffer's change start a pass, once the cluster is
// known to have the CRD (a watch on a kind the apiserver does not serve
// would fail).
func (ps *pass) watchBuffers() error {
	if ps.ClusterCache == nil {
		// A pass over a client of its own (the package's apiserver
		// tests): nothing to start passes.
		return nil
	}
	key := ps.key
	err := ps.ClusterCache.Watch(ps.ctx, key, clustercache.NewWatcher(clustercache.WatcherOptions{
		Name: "provisioning-capacitybuffers", Watcher: ps.controller, Kind: &autoscalingv1beta1.CapacityBuffer{},
		EventHandler: handler.EnqueueRequestsFromMapFunc(ps.changing(func(_ context.Context, _ client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: key}}
		})),
	}))
	return err
}

// userError is a reference the shared API allows but no autoscaler can
// resolve (an unsupported kind or group): reported on the buffer.
type userError struct{ msg string }

func (e userError) Error() string { return e.msg }

func isUserError(err error) bool {
	_, ok := err.(userError)
	return ok
}

// bufferSource reads the PodTemplate or workload a buffer references.
func (ps *pass) bufferSource(cb *autoscalingv1beta1.CapacityBuffer) (*capacitybuffer.Source, error) {
	switch {
	case cb.Spec.PodTemplateRef != nil:
		pt := &corev1.PodTemplate{}
		if err := ps.workload.reader.Get(ps.ctx, types.NamespacedName{Namespace: cb.Namespace, Name: cb.Spec.PodTemplateRef.Name}, pt); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, apierrors.NewNotFound(corev1.Resource("podtemplates"),
					fmt.Sprintf("%s (spec.podTemplateRef.name): create the PodTemplate in namespace %s or point the buffer at one that exists", cb.Spec.PodTemplateRef.Name, cb.Namespace))
			}
			return nil, err
		}
		return &capacitybuffer.Source{Template: pt.Template, PodTemplate: pt.Name, PodTemplateGeneration: pt.Generation}, nil
	case cb.Spec.ScalableRef != nil:
		ref := cb.Spec.ScalableRef
		if ref.APIGroup != "" && ref.APIGroup != appsv1.GroupName {
			return nil, userError{fmt.Sprintf("spec.scalableRef.apiGroup %q is not supported: reference a Deployment, StatefulSet or ReplicaSet (group apps), or use spec.podTemplateRef", ref.APIGroup)}
		}
		key := types.NamespacedName{Namespace: cb.Namespace, Name: ref.Name}
		var obj client.Object
		var template func() (corev1.PodTemplateSpec, *int32)
		switch ref.Kind {
		case autoscalingv1beta1.KindDeployment:
			d := &appsv1.Deployment{}
			obj, template = d, func() (corev1.PodTemplateSpec, *int32) { return d.Spec.Template, d.Spec.Replicas }
		case autoscalingv1beta1.KindStatefulSet:
			s := &appsv1.StatefulSet{}
			obj, template = s, func() (corev1.PodTemplateSpec, *int32) { return s.Spec.Template, s.Spec.Replicas }
		case autoscalingv1beta1.KindReplicaSet:
			r := &appsv1.ReplicaSet{}
			obj, template = r, func() (corev1.PodTemplateSpec, *int32) { return r.Spec.Template, r.Spec.Replicas }
		default:
			return nil, userError{fmt.Sprintf("spec.scalableRef.kind %q is not supported: use Deployment, StatefulSet or ReplicaSet, or spec.podTemplateRef", ref.Kind)}
		}
		if err := ps.workload.reader.Get(ps.ctx, key, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, apierrors.NewNotFound(appsv1.Resource(ref.Kind),
					fmt.Sprintf("%s (spec.scalableRef.name): no %s of that name in namespace %s", ref.Name, ref.Kind, cb.Namespace))
			}
			return nil, err
		}
		t, replicas := template()
		n := int32(1)
		if replicas != nil {
			n = *replicas
		}
		return &capacitybuffer.Source{Template: *t.DeepCopy(), ScalableReplicas: n}, nil
	}
	return nil, nil
}

// virtualPods are the ready buffers' chunks.
func virtualPods(buffers []*capacitybuffer.Resolved) []*corev1.Pod {
	var out []*corev1.Pod
	for _, b := range buffers {
		out = append(out, b.Pods...)
	}
	return out
}

// writeBufferStatuses writes each buffer's status when it changed; with a
// plan, the Provisioning condition says whether its chunks fit on what
// exists. Events on the buffer say when a plan launches for it.
func (ps *pass) writeBufferStatuses(buffers []*capacitybuffer.Resolved, plan *solver.Plan) {
	var placements map[string]*capacitybuffer.Placement
	if plan != nil {
		placements = capacitybuffer.Placements(plan)
	}
	recorder := ps.events.recorder(ps.ctx, ps.key)
	for _, b := range buffers {
		placed := placements[b.Key()]
		if plan != nil && placed == nil {
			placed = &capacitybuffer.Placement{}
		}
		status := capacitybuffer.Status(b, placed, plan != nil)
		if equality.Semantic.DeepEqual(status, b.Buffer.Status) {
			continue
		}
		before := b.Buffer.DeepCopy()
		b.Buffer.Status = status
		if err := ps.workload.client.Status().Patch(ps.ctx, b.Buffer, client.MergeFrom(before)); err != nil {
			if !apierrors.IsNotFound(err) {
				ps.log.Error(err, "writing a CapacityBuffer's status", "capacityBuffer", b.Key())
			}
			continue
		}
		ps.log.V(1).Info("wrote a CapacityBuffer's status", "capacityBuffer", b.Key(), "replicas", b.Replicas, "ready", b.Ready)
		if recorder == nil {
			continue
		}
		ref := b.Buffer.DeepCopy()
		ref.APIVersion, ref.Kind = autoscalingv1beta1.GroupVersion.String(), "CapacityBuffer"
		switch {
		case !b.Ready:
			recorder.recorder.Event(ref, corev1.EventTypeWarning, b.Reason, b.Message)
		case placed != nil && placed.New > 0:
			recorder.recorder.Eventf(ref, corev1.EventTypeNormal, "LaunchingHeadroom", "%d chunk(s) need new capacity; Joinery launches machines for them", placed.New)
		case placed != nil && placed.Unplaced > 0 && len(placed.Reasons) > 0:
			recorder.recorder.Eventf(ref, corev1.EventTypeWarning, "FailedProvisioning", "%d chunk(s) fit nowhere: %s", placed.Unplaced, placed.Reasons[0])
		}
	}
}

// capacityKey identifies the capacity a plan sees: each node (and Machine
// booting) by name and whether it is still in flight.
func capacityKey(objs solverinput.Objects) string {
	names := make([]string, 0, len(objs.Nodes))
	for _, n := range objs.Nodes {
		names = append(names, fmt.Sprintf("%s/%t", n.Name, objs.InFlight[n.Name]))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
