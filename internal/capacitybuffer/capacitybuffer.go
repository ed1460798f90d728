// Package capacitybuffer turns CapacityBuffers (autoscaling.x-k8s.io/v1beta1,
// the API cluster-autoscaler and Karpenter share) into virtual pods: pods
// that exist only in Joinery's planning, so the provisioning loop keeps
// room for them as it does for pending pods, and consolidation keeps that
// room when it removes nodes. It is pure: the caller reads the buffers and
// what they reference; this package resolves them, computes their status
// and builds the pods. It follows Karpenter v1.15's
// controllers/capacitybuffer (resolution, replicas) and
// state/virtualpods (the pods).
package capacitybuffer

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
)

// AnnotationBuffer marks a virtual pod with its buffer's namespace/name. A
// pod carrying it was never created in any cluster: nothing may write to
// it, send it an Event or wait for it to run.
const AnnotationBuffer = "joinery.dev/capacity-buffer"

// VirtualPodPriority is the lowest pod priority: a buffer's chunks are
// worth less than any real pod (Karpenter stamps the same value).
const VirtualPodPriority int32 = math.MinInt32

// Source is what a buffer's chunks are made from, as the caller read it:
// the PodTemplate a podTemplateRef names, or the workload a scalableRef
// names with its replicas.
type Source struct {
	Template corev1.PodTemplateSpec
	// PodTemplate is set when the shape came from a PodTemplate: its name
	// and generation go to the status.
	PodTemplate           string
	PodTemplateGeneration int64
	// ScalableReplicas are the workload's spec.replicas (scalableRef).
	ScalableReplicas int32
}

// Resolved is one buffer made ready for planning.
type Resolved struct {
	Buffer *autoscalingv1beta1.CapacityBuffer
	// Ready is false when the buffer cannot be planned for; Reason and
	// Message say why (the ReadyForProvisioning condition).
	Ready           bool
	Reason, Message string
	Replicas        int32
	Source          *Source
	// Pods are the virtual pods, Replicas of them, when Ready.
	Pods []*corev1.Pod
}

// Key is the buffer's namespace/name, as virtual pods carry it.
func (r *Resolved) Key() string { return r.Buffer.Namespace + "/" + r.Buffer.Name }

// Resolve decides a buffer's replicas and builds its virtual pods from what
// its reference points to. src is nil when the reference could not be read;
// srcErr then says why (notFound: the object does not exist).
func Resolve(cb *autoscalingv1beta1.CapacityBuffer, src *Source, srcErr error, notFound bool) *Resolved {
	r := &Resolved{Buffer: cb, Source: src}
	where := fmt.Sprintf("CapacityBuffer %s/%s", cb.Namespace, cb.Name)
	strategy := autoscalingv1beta1.ActiveProvisioningStrategy
	if cb.Spec.ProvisioningStrategy != nil && *cb.Spec.ProvisioningStrategy != "" {
		strategy = *cb.Spec.ProvisioningStrategy
	}
	switch {
	case strategy != autoscalingv1beta1.ActiveProvisioningStrategy:
		r.Reason = autoscalingv1beta1.ReasonUnsupportedStrategy
		r.Message = fmt.Sprintf("%s: spec.provisioningStrategy %q is not one Joinery implements; use %q (or leave it unset)", where, strategy, autoscalingv1beta1.ActiveProvisioningStrategy)
		return r
	case cb.Spec.PodTemplateRef == nil && cb.Spec.ScalableRef == nil:
		r.Reason = autoscalingv1beta1.ReasonResolutionFailed
		r.Message = fmt.Sprintf("%s: neither spec.podTemplateRef nor spec.scalableRef is set; set one to give the buffer's chunks a shape", where)
		return r
	case src == nil:
		r.Reason = autoscalingv1beta1.ReasonResolutionFailed
		if notFound {
			r.Reason = autoscalingv1beta1.ReasonScalableRefNotFound
			if cb.Spec.PodTemplateRef != nil {
				r.Reason = autoscalingv1beta1.ReasonPodTemplateNotFound
			}
		}
		r.Message = fmt.Sprintf("%s: %v", where, srcErr)
		return r
	}
	var candidates []int32
	if cb.Spec.PodTemplateRef == nil && cb.Spec.Percentage != nil && src.ScalableReplicas > 0 {
		candidates = append(candidates, PercentageReplicas(src.ScalableReplicas, *cb.Spec.Percentage))
	}
	r.Replicas = Replicas(cb, &src.Template.Spec, candidates)
	r.Ready = true
	r.Reason = autoscalingv1beta1.ReasonResolved
	r.Message = fmt.Sprintf("pod template resolved; %d chunk(s) of headroom", r.Replicas)
	r.Pods = VirtualPods(cb, src.Template, r.Replicas)
	return r
}

// Replicas is the number of chunks, with cluster-autoscaler's (and
// Karpenter's) semantics: the larger of spec.replicas and the percentage's
// count (candidates), capped by spec.limits; limits alone give as many
// chunks as fit in them.
func Replicas(cb *autoscalingv1beta1.CapacityBuffer, spec *corev1.PodSpec, candidates []int32) int32 {
	if cb.Spec.Replicas != nil {
		candidates = append(candidates, *cb.Spec.Replicas)
	}
	desired := int32(0)
	for _, c := range candidates {
		desired = max(desired, c)
	}
	if len(cb.Spec.Limits) > 0 && spec != nil {
		if byLimits, ok := LimitReplicas(corev1.ResourceList(cb.Spec.Limits), spec); ok {
			if len(candidates) > 0 {
				return min(desired, byLimits)
			}
			return byLimits
		}
	}
	return desired
}

// LimitReplicas is how many chunks fit in limits: the smallest
// floor(limit/request) over the resources both name. ok is false when no
// resource is in both: the limits then constrain nothing.
func LimitReplicas(limits corev1.ResourceList, spec *corev1.PodSpec) (int32, bool) {
	requests := resourcehelper.PodRequests(&corev1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})
	n := int64(math.MaxInt32)
	matched := false
	for name, limit := range limits {
		request, ok := requests[name]
		if !ok || request.IsZero() {
			continue
		}
		matched = true
		n = min(n, int64(math.Floor(float64(limit.MilliValue())/float64(request.MilliValue()))))
	}
	if !matched {
		return 0, false
	}
	return int32(max(n, 0)), true //nolint:gosec // bounded by MaxInt32 above
}

// PercentageReplicas is ceil(replicas × percentage / 100), at least 1 when
// both are positive: asking for any share of a running workload gets a
// chunk.
func PercentageReplicas(replicas, percentage int32) int32 {
	n := int32(math.Ceil(float64(replicas) * float64(percentage) / 100))
	if n < 1 && percentage > 0 && replicas > 0 {
		n = 1
	}
	return n
}

// VirtualPods builds a buffer's chunks: pending pods of the template's
// shape, with stable names and UIDs (a Machine launched for them is named
// from their UIDs, so the same plan after a restart finds the same
// Machine), and without what would make planning look for objects that
// will never exist (claims of volumes).
func VirtualPods(cb *autoscalingv1beta1.CapacityBuffer, template corev1.PodTemplateSpec, replicas int32) []*corev1.Pod {
	if replicas <= 0 {
		return nil
	}
	spec := sanitize(template.Spec)
	prio := VirtualPodPriority
	spec.Priority = &prio
	spec.PriorityClassName = ""
	out := make([]*corev1.Pod, 0, replicas)
	for i := 1; i <= int(replicas); i++ {
		pod := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("capacity-buffer-%s-%d", cb.Name, i),
				Namespace:   cb.Namespace,
				UID:         types.UID(fmt.Sprintf("%s-%d", cb.UID, i)),
				Labels:      template.Labels,
				Annotations: map[string]string{AnnotationBuffer: cb.Namespace + "/" + cb.Name},
				// The buffer's own time: a virtual pod has been "pending"
				// as long as its buffer exists.
				CreationTimestamp: cb.CreationTimestamp,
			},
			Spec: spec,
			Status: corev1.PodStatus{
				Phase: corev1.PodPending,
				Conditions: []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
					Message: "capacity buffer headroom, planned by the autoscaler; never created",
				}},
			},
		}
		out = append(out, pod)
	}
	return out
}

// sanitize drops volumes backed by claims (and their mounts): a virtual
// pod's claims would never exist, and planning would wait for them.
func sanitize(spec corev1.PodSpec) corev1.PodSpec {
	spec = *spec.DeepCopy()
	spec.NodeName = ""
	dropped := map[string]bool{}
	kept := spec.Volumes[:0]
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			dropped[v.Name] = true
			continue
		}
		kept = append(kept, v)
	}
	spec.Volumes = kept
	if len(dropped) == 0 {
		return spec
	}
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range cs {
			mounts := cs[i].VolumeMounts[:0]
			for _, m := range cs[i].VolumeMounts {
				if !dropped[m.Name] {
					mounts = append(mounts, m)
				}
			}
			cs[i].VolumeMounts = mounts
		}
	}
	return spec
}

// IsVirtual reports whether pod is a buffer's chunk.
func IsVirtual(pod *corev1.Pod) bool {
	return pod != nil && pod.Annotations[AnnotationBuffer] != ""
}

// BufferOf is the namespace/name of the buffer a virtual pod belongs to
// ("" for a real pod).
func BufferOf(pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	return pod.Annotations[AnnotationBuffer]
}

// Placement counts where a plan put one buffer's chunks.
type Placement struct {
	// Existing are chunks on nodes that exist or machines already booting;
	// New are chunks that needed a new machine; Unplaced fit nowhere.
	Existing, New, Unplaced int
	// Reasons are why chunks fit nowhere (the first per distinct reason).
	Reasons []string
	// Nodes are the existing nodes holding chunks, with their counts.
	Nodes map[string]int
}

// Status computes the buffer's status from its resolution and, when a plan
// was made this time, where the plan put its chunks (nil: no plan, the
// Provisioning condition stays as it was). It returns the new status; the
// caller writes it when it differs.
func Status(r *Resolved, placed *Placement, planned bool) autoscalingv1beta1.CapacityBufferStatus {
	cb := r.Buffer
	st := *cb.Status.DeepCopy()
	strategy := autoscalingv1beta1.ActiveProvisioningStrategy
	if cb.Spec.ProvisioningStrategy != nil {
		strategy = *cb.Spec.ProvisioningStrategy
	}
	st.ProvisioningStrategy = &strategy
	set := func(condType string, status metav1.ConditionStatus, reason, message string) {
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: cb.Generation})
	}
	if !r.Ready {
		st.Replicas, st.PodTemplateRef, st.PodTemplateGeneration = nil, nil, nil
		set(autoscalingv1beta1.ReadyForProvisioningCondition, metav1.ConditionFalse, r.Reason, r.Message)
		set(autoscalingv1beta1.ProvisioningCondition, metav1.ConditionFalse, autoscalingv1beta1.ReasonNotReadyForProvisioning,
			"the buffer is not ReadyForProvisioning: "+r.Message)
		return st
	}
	replicas := r.Replicas
	st.Replicas = &replicas
	if r.Source != nil && r.Source.PodTemplate != "" {
		gen := r.Source.PodTemplateGeneration
		st.PodTemplateRef = &autoscalingv1beta1.LocalObjectRef{Name: r.Source.PodTemplate}
		st.PodTemplateGeneration = &gen
	} else {
		st.PodTemplateRef, st.PodTemplateGeneration = nil, nil
	}
	set(autoscalingv1beta1.ReadyForProvisioningCondition, metav1.ConditionTrue, r.Reason, r.Message)
	switch {
	case replicas == 0:
		set(autoscalingv1beta1.ProvisioningCondition, metav1.ConditionFalse, autoscalingv1beta1.ReasonBufferEmpty, "the buffer has zero chunks to keep room for")
	case !planned || placed == nil:
		// No plan this time: what the last one found still holds.
	case placed.New > 0 || placed.Unplaced > 0:
		msg := fmt.Sprintf("%d/%d chunk(s) need new capacity, %d fit nowhere", placed.New, replicas, placed.Unplaced)
		if len(placed.Reasons) > 0 {
			msg += ": " + placed.Reasons[0]
		}
		set(autoscalingv1beta1.ProvisioningCondition, metav1.ConditionFalse, autoscalingv1beta1.ReasonRequiresNewCapacity, msg)
	case placed.Existing >= int(replicas):
		set(autoscalingv1beta1.ProvisioningCondition, metav1.ConditionTrue, autoscalingv1beta1.ReasonFitsExistingCapacity,
			fmt.Sprintf("all %d chunk(s) fit on existing capacity (%s)", replicas, nodeList(placed.Nodes)))
	}
	return st
}
