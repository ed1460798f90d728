package scenario

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
)

// The checks below are the apiserver's, for the fields a planning run
// reads: an object the apiserver would refuse never reaches the solver,
// where a negative request or an unknown operator would quietly mean
// something else. They use only k8s.io/apimachinery (not
// k8s.io/kubernetes' internal validation), so where the apiserver's rule
// is long, the part that matters to planning is what is checked.

func validateObject(obj any) field.ErrorList {
	switch o := obj.(type) {
	case *corev1.Pod:
		errs := validateMeta(&o.ObjectMeta, true)
		return append(errs, validatePodSpec(&o.Spec, field.NewPath("spec"))...)
	case *corev1.Node:
		errs := validateMeta(&o.ObjectMeta, false)
		errs = append(errs, validateTaints(o.Spec.Taints, field.NewPath("spec", "taints"))...)
		errs = append(errs, validateQuantities(o.Status.Capacity, field.NewPath("status", "capacity"))...)
		return append(errs, validateQuantities(o.Status.Allocatable, field.NewPath("status", "allocatable"))...)
	case *appsv1.DaemonSet:
		errs := validateMeta(&o.ObjectMeta, true)
		sel := field.NewPath("spec", "selector")
		if o.Spec.Selector == nil || (len(o.Spec.Selector.MatchLabels) == 0 && len(o.Spec.Selector.MatchExpressions) == 0) {
			errs = append(errs, field.Required(sel, "a DaemonSet needs a non-empty selector"))
		} else {
			errs = append(errs, metav1validation.ValidateLabelSelector(o.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, sel)...)
			if s, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err == nil && !s.Matches(labels.Set(o.Spec.Template.Labels)) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "template", "metadata", "labels"), o.Spec.Template.Labels, "`selector` does not match template `labels`"))
			}
		}
		errs = append(errs, metav1validation.ValidateLabels(o.Spec.Template.Labels, field.NewPath("spec", "template", "metadata", "labels"))...)
		return append(errs, validatePodSpec(&o.Spec.Template.Spec, field.NewPath("spec", "template", "spec"))...)
	case *corev1.PodTemplate:
		errs := validateMeta(&o.ObjectMeta, true)
		return append(errs, validatePodSpec(&o.Template.Spec, field.NewPath("template", "spec"))...)
	case *autoscalingv1beta1.CapacityBuffer:
		// The CRD's own rules, and what a planning run can resolve.
		errs := validateMeta(&o.ObjectMeta, true)
		spec := field.NewPath("spec")
		switch s := o.Spec; {
		case s.PodTemplateRef != nil && s.ScalableRef != nil:
			errs = append(errs, field.Invalid(spec, "podTemplateRef and scalableRef", "You must define either PodTemplateRef or ScalableRef, but not both"))
		case s.ScalableRef != nil:
			errs = append(errs, field.NotSupported(spec.Child("scalableRef"), s.ScalableRef.Kind+"/"+s.ScalableRef.Name,
				[]string{"spec.podTemplateRef (a planning run has no workloads to scale from)"}))
		case s.PodTemplateRef == nil:
			errs = append(errs, field.Required(spec.Child("podTemplateRef"), "a buffer needs the PodTemplate its chunks are shaped like"))
		case s.Replicas == nil && len(s.Limits) == 0:
			errs = append(errs, field.Required(spec.Child("replicas"), "If podTemplateRef is set, replicas or limits must also be set"))
		}
		if o.Spec.Replicas != nil && *o.Spec.Replicas < 0 {
			errs = append(errs, field.Invalid(spec.Child("replicas"), *o.Spec.Replicas, "must be at least 0"))
		}
		return append(errs, validateQuantities(corev1.ResourceList(o.Spec.Limits), spec.Child("limits"))...)
	case *corev1.PersistentVolume:
		errs := validateMeta(&o.ObjectMeta, false)
		errs = append(errs, validateQuantities(o.Spec.Capacity, field.NewPath("spec", "capacity"))...)
		if o.Spec.NodeAffinity != nil && o.Spec.NodeAffinity.Required != nil {
			errs = append(errs, validateNodeSelector(o.Spec.NodeAffinity.Required, field.NewPath("spec", "nodeAffinity", "required"))...)
		}
		return errs
	case *corev1.PersistentVolumeClaim:
		errs := validateMeta(&o.ObjectMeta, true)
		errs = append(errs, validateQuantities(o.Spec.Resources.Requests, field.NewPath("spec", "resources", "requests"))...)
		return append(errs, validateQuantities(o.Spec.Resources.Limits, field.NewPath("spec", "resources", "limits"))...)
	}
	return nil
}

// validateMeta: name, namespace, labels and annotations (keys, values and
// the 256 KiB total), as the apiserver checks every object's metadata.
func validateMeta(meta *metav1.ObjectMeta, namespaced bool) field.ErrorList {
	return apimachineryvalidation.ValidateObjectMeta(meta, namespaced, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
}

func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), "a pod needs at least one container"))
	}
	for i := range spec.InitContainers {
		errs = append(errs, validateContainer(&spec.InitContainers[i], path.Child("initContainers").Index(i))...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i], path.Child("containers").Index(i))...)
	}
	if spec.NodeName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(spec.NodeName) {
			errs = append(errs, field.Invalid(path.Child("nodeName"), spec.NodeName, msg))
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	errs = append(errs, validateQuantities(spec.Overhead, path.Child("overhead"))...)
	if a := spec.Affinity; a != nil {
		ap := path.Child("affinity")
		if na := a.NodeAffinity; na != nil {
			if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				errs = append(errs, validateNodeSelector(na.RequiredDuringSchedulingIgnoredDuringExecution, ap.Child("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))...)
			}
			for i, t := range na.PreferredDuringSchedulingIgnoredDuringExecution {
				tp := ap.Child("nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution").Index(i)
				if t.Weight < 1 || t.Weight > 100 {
					errs = append(errs, field.Invalid(tp.Child("weight"), t.Weight, "must be in the range 1-100"))
				}
				errs = append(errs, validateNodeSelectorTerm(t.Preference, tp.Child("preference"))...)
			}
		}
		if pa := a.PodAffinity; pa != nil {
			errs = append(errs, validatePodAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, ap.Child("podAffinity"))...)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			errs = append(errs, validatePodAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, ap.Child("podAntiAffinity"))...)
		}
	}
	for i, c := range spec.TopologySpreadConstraints {
		cp := path.Child("topologySpreadConstraints").Index(i)
		if c.MaxSkew < 1 {
			errs = append(errs, field.Invalid(cp.Child("maxSkew"), c.MaxSkew, "must be greater than zero"))
		}
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(cp.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(c.TopologyKey, cp.Child("topologyKey"))...)
		}
		if c.WhenUnsatisfiable != corev1.DoNotSchedule && c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			errs = append(errs, field.NotSupported(cp.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, []string{string(corev1.DoNotSchedule), string(corev1.ScheduleAnyway)}))
		}
		if c.MinDomains != nil && *c.MinDomains < 1 {
			errs = append(errs, field.Invalid(cp.Child("minDomains"), *c.MinDomains, "must be greater than zero"))
		}
		if c.LabelSelector != nil {
			errs = append(errs, metav1validation.ValidateLabelSelector(c.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, cp.Child("labelSelector"))...)
		}
	}
	return errs
}

var standardContainerResources = sets.New("cpu", "memory", "ephemeral-storage")

func validateContainer(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(path.Child("name"), c.Name, msg))
		}
	}
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", c.Resources.Requests}, {"limits", c.Resources.Limits}} {
		rp := path.Child("resources", part.name)
		for name := range part.list {
			n := string(name)
			switch {
			case standardContainerResources.Has(n) || strings.HasPrefix(n, corev1.ResourceHugePagesPrefix):
			case strings.Contains(n, "/"):
				for _, msg := range validation.IsQualifiedName(n) {
					errs = append(errs, field.Invalid(rp.Key(n), n, msg))
				}
			default:
				errs = append(errs, field.Invalid(rp.Key(n), n, "must be a standard resource for containers (cpu, memory, ephemeral-storage, hugepages-<size>) or an extended resource with a domain, e.g. nvidia.com/gpu"))
			}
		}
		errs = append(errs, validateQuantities(part.list, rp)...)
	}
	for name, req := range c.Resources.Requests {
		if limit, ok := c.Resources.Limits[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child("resources", "requests").Key(string(name)), req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
	}
	return errs
}

// validateQuantities: no negative quantity, as the apiserver requires of
// requests, limits, capacity and allocatable.
func validateQuantities(list corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range list {
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(path.Key(string(name)), q.String(), "must be greater than or equal to 0"))
		}
	}
	return errs
}

func validateTolerations(tolerations []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		tp := path.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		} else if t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(tp.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(tp.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(tp.Child("value"), t.Value, msg))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(tp.Child("value"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(tp.Child("operator"), t.Operator, []string{string(corev1.TolerationOpEqual), string(corev1.TolerationOpExists)}))
		}
		if t.Effect != "" {
			errs = append(errs, validateTaintEffect(t.Effect, tp.Child("effect"))...)
		}
	}
	return errs
}

func validateTaints(taints []corev1.Taint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range taints {
		tp := path.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(tp.Child("value"), t.Value, msg))
		}
		if t.Effect == "" {
			errs = append(errs, field.Required(tp.Child("effect"), "a taint needs an effect"))
		} else {
			errs = append(errs, validateTaintEffect(t.Effect, tp.Child("effect"))...)
		}
	}
	return errs
}

func validateTaintEffect(effect corev1.TaintEffect, path *field.Path) field.ErrorList {
	switch effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return nil
	}
	return field.ErrorList{field.NotSupported(path, effect, []string{string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)})}
}

func validateNodeSelector(sel *corev1.NodeSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(sel.NodeSelectorTerms) == 0 {
		errs = append(errs, field.Required(path.Child("nodeSelectorTerms"), "must have at least one node selector term"))
	}
	for i, t := range sel.NodeSelectorTerms {
		errs = append(errs, validateNodeSelectorTerm(t, path.Child("nodeSelectorTerms").Index(i))...)
	}
	return errs
}

func validateNodeSelectorTerm(term corev1.NodeSelectorTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range term.MatchExpressions {
		rp := path.Child("matchExpressions").Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(r.Key, rp.Child("key"))...)
		switch r.Operator {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
			if len(r.Values) == 0 {
				errs = append(errs, field.Required(rp.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
			if len(r.Values) > 0 {
				errs = append(errs, field.Forbidden(rp.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			if len(r.Values) != 1 {
				errs = append(errs, field.Required(rp.Child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"))
			} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
				errs = append(errs, field.Invalid(rp.Child("values").Index(0), r.Values[0], "must be an integer that fits int64 when `operator` is 'Lt' or 'Gt'"))
			}
		default:
			errs = append(errs, field.NotSupported(rp.Child("operator"), r.Operator, []string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}))
		}
		for j, v := range r.Values {
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(rp.Child("values").Index(j), v, msg))
			}
		}
	}
	for i, r := range term.MatchFields {
		rp := path.Child("matchFields").Index(i)
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(rp.Child("key"), r.Key, []string{"metadata.name"}))
		}
		if (r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn) || len(r.Values) != 1 {
			errs = append(errs, field.Invalid(rp, r.Operator, "matchFields take operator In or NotIn with exactly one value"))
		}
	}
	return errs
}

func validatePodAffinity(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	term := func(t corev1.PodAffinityTerm, tp *field.Path) {
		if t.LabelSelector != nil {
			errs = append(errs, metav1validation.ValidateLabelSelector(t.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, tp.Child("labelSelector"))...)
		}
		if t.NamespaceSelector != nil {
			errs = append(errs, metav1validation.ValidateLabelSelector(t.NamespaceSelector, metav1validation.LabelSelectorValidationOptions{}, tp.Child("namespaceSelector"))...)
		}
		if t.TopologyKey == "" {
			errs = append(errs, field.Required(tp.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(t.TopologyKey, tp.Child("topologyKey"))...)
		}
	}
	for i, t := range required {
		term(t, path.Child("requiredDuringSchedulingIgnoredDuringExecution").Index(i))
	}
	for i, t := range preferred {
		tp := path.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if t.Weight < 1 || t.Weight > 100 {
			errs = append(errs, field.Invalid(tp.Child("weight"), t.Weight, "must be in the range 1-100"))
		}
		term(t.PodAffinityTerm, tp.Child("podAffinityTerm"))
	}
	return errs
}
