package provisioning

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

// ReadDecision returns the decision recorded on a Machine Joinery created.
func ReadDecision(m *clusterv1.Machine) (Decision, error) {
	var d Decision
	raw, ok := m.Annotations[AnnotationDecision]
	if !ok {
		return d, fmt.Errorf("Machine %s/%s has no %s annotation", m.Namespace, m.Name, AnnotationDecision)
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return d, fmt.Errorf("Machine %s/%s: annotation %s: %w", m.Namespace, m.Name, AnnotationDecision, err)
	}
	return d, nil
}

// NodeLabels are the labels a node of the pool launched for decision d
// carries: the pool's template labels, the values its requirements fix to
// a single value, the offering's instance type, zone and capacity type,
// and the pool's name (as Joinery and as Karpenter name it, so workloads
// written for Karpenter select the same nodes). Instance attribute labels
// come from the type.
func NodeLabels(pool *v1alpha1.NodePool, d Decision, typeLabels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range typeLabels {
		out[k] = v
	}
	for _, r := range pool.Spec.Template.Spec.Requirements {
		if r.Operator == v1alpha1.OpIn && len(r.Values) == 1 {
			out[r.Key] = r.Values[0]
		}
	}
	for k, v := range pool.Spec.Template.ObjectMeta.Labels {
		out[k] = string(v)
	}
	out[v1alpha1.LabelInstanceType] = d.Offering.InstanceType
	out[v1alpha1.LabelZone] = d.Offering.Zone
	if d.Offering.ZoneID != "" {
		out[v1alpha1.LabelZoneID] = d.Offering.ZoneID
	}
	out[v1alpha1.LabelCapacityType] = d.Offering.CapacityType
	if d.Offering.ReservationID != "" {
		out[v1alpha1.LabelCapacityReservationID] = d.Offering.ReservationID
		if d.Offering.ReservationType != "" {
			out[v1alpha1.LabelCapacityReservationType] = d.Offering.ReservationType
		}
	}
	out[v1alpha1.LabelNodePool] = pool.Name
	out[v1alpha1.LabelKarpenterNodePool] = pool.Name
	return out
}

// NodeTaints are the taints a node of the pool registers with: its taints
// and its startup taints (which something else removes once it is ready).
func NodeTaints(pool *v1alpha1.NodePool) []corev1.Taint {
	spec := pool.Spec.Template.Spec
	out := make([]corev1.Taint, 0, len(spec.Taints)+len(spec.StartupTaints))
	for _, t := range spec.Taints {
		out = append(out, t.ToCore())
	}
	for _, t := range spec.StartupTaints {
		out = append(out, t.ToCore())
	}
	return out
}

// InFlightNode stands for a Machine whose Node has not registered yet: a
// node of the decided offering, with the pool's labels and taints and the
// type's allocatable for the pool's kubelet, so pods the Machine was made
// for fit there and do not cause a second launch while it boots.
func InFlightNode(m *clusterv1.Machine, pool *v1alpha1.NodePool, d Decision, t *solverinput.LaunchableType, region string) *corev1.Node {
	labels := NodeLabels(pool, d, t.Labels)
	labels[v1alpha1.LabelHostname] = m.Name
	if region != "" {
		labels[v1alpha1.LabelRegion] = region
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: NodeTaints(pool)},
		Status:     corev1.NodeStatus{Capacity: t.Capacity.DeepCopy(), Allocatable: t.Allocatable.DeepCopy()}, // t is shared (solverinput.LaunchableTypes)
	}
}

// MissingNodeMetadata returns the labels and taints of the pool a
// registered node lacks. CAPI syncs only node-role, node-restriction and
// node.cluster.x-k8s.io labels from a Machine, and the kubelet may not set
// labels in the kubernetes.io domains itself; Joinery sets the rest.
// Startup taints are not restored: something removed them on purpose.
func MissingNodeMetadata(node *corev1.Node, want map[string]string, pool *v1alpha1.NodePool) (labels map[string]string, taints []corev1.Taint) {
	for k, v := range want {
		if k == v1alpha1.LabelHostname {
			continue
		}
		if have, ok := node.Labels[k]; !ok || (have != v && !setByCloud(k)) {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[k] = v
		}
	}
	for _, t := range pool.Spec.Template.Spec.Taints {
		core := t.ToCore()
		found := false
		for _, have := range node.Spec.Taints {
			if have.MatchTaint(&core) {
				found = true
				break
			}
		}
		if !found {
			taints = append(taints, core)
		}
	}
	return labels, taints
}

// setByCloud labels belong to the kubelet and cloud provider; Joinery adds
// them when missing but never overrides them.
func setByCloud(key string) bool {
	switch key {
	case v1alpha1.LabelInstanceType, v1alpha1.LabelZone, v1alpha1.LabelRegion, v1alpha1.LabelZoneID, v1alpha1.LabelArch, v1alpha1.LabelOS:
		return true
	}
	return false
}
