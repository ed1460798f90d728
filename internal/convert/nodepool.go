package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kjson "sigs.k8s.io/json"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// wellKnownKeys are the requirement keys Joinery plans with (see
// docs/nodepool.md); a template label with one of them constrains the
// machine, so it becomes a requirement.
var wellKnownKeys = func() map[string]bool {
	keys := map[string]bool{
		v1alpha1.LabelInstanceType: true, v1alpha1.LabelZone: true, v1alpha1.LabelZoneID: true,
		v1alpha1.LabelRegion: true, v1alpha1.LabelArch: true, v1alpha1.LabelOS: true,
		v1alpha1.LabelCapacityType: true,
	}
	for _, s := range v1alpha1.InstanceAttributeSuffixes {
		keys[v1alpha1.AWSLabelPrefix+s] = true
		keys[v1alpha1.JoineryLabelPrefix+s] = true
	}
	return keys
}()

// keysSetByJoinery cannot be required (Joinery sets them).
var keysSetByJoinery = map[string]bool{
	v1alpha1.LabelHostname: true, v1alpha1.LabelNodePool: true, v1alpha1.LabelKarpenterNodePool: true,
}

var (
	restrictedLabelDomain = regexp.MustCompile(`^([^/]*\.)?(kubernetes\.io|k8s\.io)/`)
	joineryLabelDomain    = regexp.MustCompile(`^([^/]*\.)?(karpenter\.sh|karpenter\.k8s\.aws|joinery\.dev)/`)
)

func (c *converter) convertNodePool(src *NodePoolSource) Object {
	kp := src.pool
	name := kp.Metadata.Name
	object := "NodePool " + name
	ts := kp.Spec.Template.Spec
	out := &v1alpha1.NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodePool"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.opts.Namespace},
	}
	spec := &out.Spec
	spec.ClusterName = c.opts.ClusterName
	if c.opts.ClusterSelector != nil {
		spec.ClusterSelector = c.opts.ClusterSelector.DeepCopy()
	}
	spec.Weight = kp.Spec.Weight
	if kp.Spec.Replicas != nil {
		c.warn(object, "spec.replicas", "%d has no Joinery equivalent: Joinery NodePools only grow for pending pods; keep a fixed number of nodes with a CAPI MachineDeployment of %d replicas", *kp.Spec.Replicas, *kp.Spec.Replicas)
	}

	// Limits.
	var limitTexts map[string]any
	for _, res := range sortedKeys(kp.Spec.Limits) {
		q := kp.Spec.Limits[res]
		if res == "nodes" {
			c.warn(object, "spec.limits.nodes", "%s has no Joinery equivalent: Joinery limits resources (cpu, memory, nvidia.com/gpu, ...) and pricePerHour; limit cpu instead", q)
			continue
		}
		if spec.Limits == nil {
			spec.Limits, limitTexts = corev1.ResourceList{}, map[string]any{}
		}
		spec.Limits[corev1.ResourceName(res)] = q.value.DeepCopy()
		limitTexts[res] = q.text
	}

	// Template metadata.
	tmpl := &spec.Template
	var labelRequirements []v1alpha1.NodeSelectorRequirementWithMinValues
	for _, k := range sortedKeys(kp.Spec.Template.Metadata.Labels) {
		v := kp.Spec.Template.Metadata.Labels[k]
		field := fmt.Sprintf("spec.template.metadata.labels[%s]", k)
		switch {
		case wellKnownKeys[k]:
			labelRequirements = append(labelRequirements, v1alpha1.NodeSelectorRequirementWithMinValues{Key: k, Operator: v1alpha1.OpIn, Values: []string{v}})
			c.warn(object, field, "became the requirement %s In [%s]: Joinery sets well-known labels from the machine it chooses", k, v)
		case keysSetByJoinery[k] || (restrictedLabelDomain.MatchString(k) && !strings.HasPrefix(k, "node-restriction.kubernetes.io/") && !strings.HasPrefix(k, "node.kubernetes.io/")) || joineryLabelDomain.MatchString(k):
			c.warn(object, field, "%q is in a label domain Joinery reserves and was not converted; use a label in your own domain", v)
		default:
			if tmpl.ObjectMeta.Labels == nil {
				tmpl.ObjectMeta.Labels = map[string]v1alpha1.LabelValue{}
			}
			tmpl.ObjectMeta.Labels[k] = v1alpha1.LabelValue(v)
		}
	}
	if len(kp.Spec.Template.Metadata.Annotations) > 0 {
		tmpl.ObjectMeta.Annotations = map[string]string{}
		for k, v := range kp.Spec.Template.Metadata.Annotations {
			tmpl.ObjectMeta.Annotations[k] = v
		}
	}

	// Requirements.
	for i, r := range ts.Requirements {
		if req, ok := c.convertRequirement(object, fmt.Sprintf("spec.template.spec.requirements[%d]", i), r); ok {
			tmpl.Spec.Requirements = append(tmpl.Spec.Requirements, req)
		}
	}
	tmpl.Spec.Requirements = append(tmpl.Spec.Requirements, labelRequirements...)

	tmpl.Spec.Taints = convertTaints(ts.Taints)
	tmpl.Spec.StartupTaints = convertTaints(ts.StartupTaints)
	if ts.ExpireAfter != nil {
		tmpl.Spec.ExpireAfter = c.durationOrNever(object, "spec.template.spec.expireAfter", *ts.ExpireAfter)
	}
	if ts.TerminationGracePeriod != nil {
		tmpl.Spec.TerminationGracePeriod = ts.TerminationGracePeriod.DeepCopy()
	}

	// Templates and kubelet from the EC2NodeClass.
	className := name
	classField := "spec.template.spec.nodeClassRef"
	if ref := ts.NodeClassRef; ref == nil || ref.Name == "" {
		c.warn(object, classField, "is not set; the templates are named %q after the NodePool: create AWSMachineTemplate and KubeadmConfigTemplate %s", name, name)
	} else {
		className = ref.Name
		if ref.Kind != "EC2NodeClass" || ref.Group != karpenterAWSGroup {
			c.warn(object, classField, "is %s %s (group %q), not an EC2NodeClass; the templates are named %q, but their content must be written by hand", ref.Kind, ref.Name, ref.Group, ref.Name)
		}
	}
	tmpl.Spec.InfrastructureTemplateRef = v1alpha1.TemplateReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "AWSMachineTemplate", Name: className}
	tmpl.Spec.BootstrapTemplateRef = v1alpha1.TemplateReference{APIGroup: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfigTemplate", Name: className}
	class := c.classes[className]
	if class == nil && ts.NodeClassRef != nil && ts.NodeClassRef.Kind == "EC2NodeClass" {
		c.warn(object, classField+".name", "EC2NodeClass %s is not in the input, so neither are its AWSMachineTemplate and KubeadmConfigTemplate %s nor its kubelet settings; pass it with -f too", className, className)
	}
	if class != nil {
		tmpl.Spec.Kubelet = class.kubelet.DeepCopy()
		tmpl.Spec.CapacityReservationSelectorTerms = append([]v1alpha1.CapacityReservationSelectorTerm(nil), class.reservationTerms...)
		c.checkArchitectures(object, className, class, tmpl.Spec.Requirements)
	}
	c.checkReserved(object, className, tmpl, ts.Requirements)
	if raw, ok := kp.Metadata.Annotations[kubeletCompatibilityAnnotation]; ok {
		field := "metadata.annotations[" + kubeletCompatibilityAnnotation + "]"
		var k kubeletConfiguration
		if strictErrs, err := kjson.UnmarshalStrict([]byte(raw), &k); err != nil || len(strictErrs) > 0 {
			c.warn(object, field, "is not a kubelet configuration (%v) and was not converted; move its settings to EC2NodeClass %s spec.kubelet", firstErr(err, strictErrs), className)
		} else {
			kubelet, _ := c.convertKubelet(object, field, "KubeadmConfigTemplate "+className, &k, false)
			tmpl.Spec.Kubelet = kubelet
			c.warn(object, field, "is Karpenter's v1beta1 kubelet left on the NodePool, which takes precedence over EC2NodeClass %s spec.kubelet; it became spec.template.spec.kubelet: check it", className)
		}
	}

	// Disruption.
	if d := kp.Spec.Disruption; d != nil {
		out.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicy(d.ConsolidationPolicy)
		if d.ConsolidateAfter != nil {
			out.Spec.Disruption.ConsolidateAfter = c.durationOrNever(object, "spec.disruption.consolidateAfter", *d.ConsolidateAfter)
		}
		if d.ConsolidateWhen != "" && d.ConsolidateWhen != string(v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized) {
			c.warn(object, "spec.disruption.consolidateWhen", "%q has no Joinery equivalent; Joinery consolidates by spec.disruption.consolidationPolicy (%q) alone", d.ConsolidateWhen, d.ConsolidationPolicy)
		}
		if d.DecisionRatioThreshold != nil && *d.DecisionRatioThreshold != 1 {
			c.warn(object, "spec.disruption.decisionRatioThreshold", "%v has no Joinery equivalent: Joinery consolidates whenever the pods fit on cheaper machines; remove it", *d.DecisionRatioThreshold)
		}
		for i, b := range d.Budgets {
			jb := v1alpha1.Budget{Nodes: b.Nodes, Schedule: b.Schedule}
			if b.Duration != nil {
				jb.Duration = b.Duration.DeepCopy()
			}
			for _, r := range b.Reasons {
				jb.Reasons = append(jb.Reasons, v1alpha1.DisruptionReason(r))
			}
			if b.Duration != nil && b.Duration.Duration%time.Minute != 0 {
				c.warn(object, fmt.Sprintf("spec.disruption.budgets[%d].duration", i), "%s has seconds; Joinery budgets last whole minutes, rounded up", b.Duration.Duration)
				jb.Duration.Duration = b.Duration.Duration.Truncate(time.Minute) + time.Minute
			}
			out.Spec.Disruption.Budgets = append(out.Spec.Disruption.Budgets, jb)
		}
	}

	return Object{
		Comment: fmt.Sprintf("From Karpenter NodePool %s (%s) by joinery convert.", name, src.Source),
		Value:   out,
		// The limits as the user wrote them ("2000", not "2k").
		rewrite: func(obj map[string]any) {
			if s, ok := obj["spec"].(map[string]any); ok && limitTexts != nil {
				s["limits"] = limitTexts
			}
		},
	}
}

// checkArchitectures warns when a pool whose template pins one AMI may
// launch machines of an architecture the AMI may not have.
// checkReserved says what a pool allowing reserved capacity does when its
// EC2NodeClass selects no capacity reservation: nothing is offered as
// reserved, so it launches its other capacity types, or nothing.
func (c *converter) checkReserved(object, className string, tmpl *v1alpha1.NodeClaimTemplate, reqs []requirement) {
	if len(tmpl.Spec.CapacityReservationSelectorTerms) > 0 {
		return
	}
	for i, r := range reqs {
		if r.Key != v1alpha1.LabelCapacityType || r.Operator != string(v1alpha1.OpIn) || !contains(r.Values, v1alpha1.CapacityTypeReserved) {
			continue
		}
		kept := fmt.Sprintf("\"reserved\" is kept, but EC2NodeClass %s selects no capacity reservation (spec.capacityReservationSelectorTerms): ", className)
		var others []string
		for _, v := range r.Values {
			if v != v1alpha1.CapacityTypeReserved {
				others = append(others, v)
			}
		}
		field := fmt.Sprintf("spec.template.spec.requirements[%d].values", i)
		if len(others) == 0 {
			c.warn(object, field, "%sthis pool launches nothing, its pods are reported with \"no reserved offering\"; add on-demand to fall back", kept)
		} else {
			c.warn(object, field, "%sthis pool launches %s", kept, strings.Join(others, " or "))
		}
	}
}

func (c *converter) checkArchitectures(object, className string, class *classResult, reqs []v1alpha1.NodeSelectorRequirementWithMinValues) {
	if len(class.amiIDs) == 0 {
		return
	}
	archs := []string{"amd64", "arm64"}
	for _, r := range reqs {
		if r.Key != v1alpha1.LabelArch {
			continue
		}
		switch r.Operator {
		case v1alpha1.OpIn:
			archs = intersect(archs, r.Values)
		case v1alpha1.OpNotIn:
			archs = subtract(archs, r.Values)
		}
	}
	if len(archs) > 1 {
		c.warn(object, "spec.template.spec.requirements", "allow both amd64 and arm64, but AWSMachineTemplate %s has one AMI (%s), of one architecture; add the requirement kubernetes.io/arch In [<the AMI's architecture>]", className, class.amiIDs[0])
	}
}

func (c *converter) convertRequirement(object, field string, r requirement) (v1alpha1.NodeSelectorRequirementWithMinValues, bool) {
	out := v1alpha1.NodeSelectorRequirementWithMinValues{
		Key: r.Key, Operator: v1alpha1.NodeSelectorOperator(r.Operator), Values: append([]string(nil), r.Values...), MinValues: r.MinValues,
	}
	switch {
	case keysSetByJoinery[r.Key]:
		c.warn(object, field, "on %s was not converted: Joinery sets that label itself and it cannot be required", r.Key)
		return out, false
	case strings.HasPrefix(r.Key, v1alpha1.AWSLabelPrefix) && !wellKnownKeys[r.Key]:
		c.warn(object, field, "on %s was not converted: Joinery's instance catalog has no such attribute, so it would constrain nothing; express it with node.kubernetes.io/instance-type or the karpenter.k8s.aws/instance-* keys in docs/nodepool.md", r.Key)
		return out, false
	}
	if r.MinValues != nil {
		switch {
		case r.Operator != string(v1alpha1.OpIn) && r.Operator != string(v1alpha1.OpExists):
			c.warn(object, field+".minValues", "%d was not converted: Joinery takes minValues with the operators In and Exists only", *r.MinValues)
			out.MinValues = nil
		case *r.MinValues > 50:
			c.warn(object, field+".minValues", "%d is above Joinery's maximum and became 50", *r.MinValues)
			out.MinValues = ptr.To(50)
		}
	}
	return out, true
}

func convertTaints(taints []corev1.Taint) []v1alpha1.Taint {
	var out []v1alpha1.Taint
	for _, t := range taints {
		out = append(out, v1alpha1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	return out
}

// durationOrNever normalises a Karpenter duration ("720h0m0s" -> "720h").
func (c *converter) durationOrNever(object, field, s string) string {
	if s == "Never" {
		return s
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.warn(object, field, "%q is not a duration; it was copied as it is", s)
		return s
	}
	return shortDuration(d)
}

// shortDuration writes d as hours, minutes and seconds, leaving out zero
// parts: 48h, 1h30m, 90s -> 1m30s. Sub-second parts are rounded up.
func shortDuration(d time.Duration) string {
	if d%time.Second != 0 {
		d = d.Truncate(time.Second) + time.Second
	}
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, unit := range []struct {
		size   time.Duration
		suffix string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / unit.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + unit.suffix)
			d -= n * unit.size
		}
	}
	return b.String()
}

func shortDurationString(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	return shortDuration(d)
}

func firstErr(err error, errs []error) error {
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}

func intersect(a, b []string) []string {
	var out []string
	for _, v := range a {
		if contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func subtract(a, b []string) []string {
	var out []string
	for _, v := range a {
		if !contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}
