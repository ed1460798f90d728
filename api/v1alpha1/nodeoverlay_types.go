package v1alpha1

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeOverlay adjusts what Joinery believes about the instance types and
// offerings its requirements select: their price (what you pay is often
// not the list price: savings plans, enterprise discounts, a premium you
// put on a family) and their capacity (extended resources a node will
// advertise, e.g. smarter-devices/fuse or hugepages). It is Karpenter's
// NodeOverlay (karpenter.sh/v1alpha1) with the same field names and
// meaning; `joinery convert` converts Karpenter's.
//
// An overlay applies to every NodePool whose instance types it selects,
// in every namespace (it is cluster-scoped, as Karpenter's). When several
// overlays select the same offering, the one with the highest weight sets
// its price; capacity is merged per resource, highest weight first. Two
// overlays of the same weight that both set the price of one offering (or
// the same capacity resource of one type) conflict: the one ordered first
// (by name, later in the alphabet first, as Karpenter orders them) applies,
// the other does not, and its ValidationSucceeded condition says why.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=nodeoverlays,scope=Cluster,shortName=overlays,categories=joinery
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Weight",type="integer",JSONPath=".spec.weight"
// +kubebuilder:printcolumn:name="Price",type="string",JSONPath=".spec.price",priority=1
// +kubebuilder:printcolumn:name="Adjustment",type="string",JSONPath=".spec.priceAdjustment",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type NodeOverlay struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="!has(self.price) || !has(self.priceAdjustment)",message="spec: set either price (an absolute USD/hour) or priceAdjustment (+/-N or +/-N%), not both"
	Spec NodeOverlaySpec `json:"spec"`
	// +optional
	Status NodeOverlayStatus `json:"status,omitempty"`
}

// NodeOverlaySpec is what an overlay selects and what it changes.
type NodeOverlaySpec struct {
	// Requirements select the instance types and offerings the overlay
	// applies to, as node labels: well-known labels
	// (node.kubernetes.io/instance-type, karpenter.k8s.aws/instance-family,
	// topology.kubernetes.io/zone, karpenter.sh/capacity-type, ...), the
	// pool's name (karpenter.sh/nodepool or joinery.dev/nodepool) and
	// labels of a NodePool's spec.template.metadata.labels. No
	// requirements select every offering of every pool.
	// +kubebuilder:validation:XValidation:rule="self.all(x, x.operator != 'In' || (has(x.values) && x.values.size() != 0))",message="spec.requirements: operator In needs at least one value"
	// +kubebuilder:validation:XValidation:rule="self.all(x, x.operator != 'NotIn' || (has(x.values) && x.values.size() != 0))",message="spec.requirements: operator NotIn needs at least one value"
	// +kubebuilder:validation:XValidation:rule="self.all(x, !(x.operator in ['Exists', 'DoesNotExist']) || !has(x.values) || x.values.size() == 0)",message="spec.requirements: operators Exists and DoesNotExist take no values"
	// +kubebuilder:validation:XValidation:rule="self.all(x, !(x.operator in ['Gt', 'Lt', 'Gte', 'Lte']) || (has(x.values) && x.values.size() == 1 && x.values[0].matches('^[0-9]{1,18}$')))",message="spec.requirements: operators Gt, Lt, Gte and Lte take a single non-negative integer value"
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Requirements []NodeOverlayRequirement `json:"requirements,omitempty"`
	// PriceAdjustment changes the price of the selected offerings: a
	// signed USD amount per hour ("-0.05", "+0.1") or a signed percentage
	// ("-40%", "+10%"; at most -100%). A price never goes below 0.
	// +kubebuilder:validation:Pattern=`^(([+-]{1}(\d*\.?\d+))|(\+{1}\d*\.?\d+%)|(^(-\d{1,2}(\.\d+)?%)$)|(-100%))$`
	// +optional
	PriceAdjustment *string `json:"priceAdjustment,omitempty"`
	// Price replaces the price of the selected offerings, in USD per
	// hour (e.g. "0.042").
	// +kubebuilder:validation:Pattern=`^\d+(\.\d+)?$`
	// +optional
	Price *string `json:"price,omitempty"`
	// Capacity adds extended resources to the selected instance types'
	// capacity and allocatable (e.g. hugepages-2Mi, smarter-devices/fuse).
	// cpu, memory, ephemeral-storage and pods come from the catalog and
	// the kubelet settings and cannot be set here.
	// +kubebuilder:validation:XValidation:rule="self.all(x, !(x in ['cpu', 'memory', 'ephemeral-storage', 'pods']))",message="spec.capacity: cpu, memory, ephemeral-storage and pods cannot be overlaid; add only extended resources (e.g. hugepages-2Mi, example.com/device)"
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`
	// Weight orders overlays that select the same offering: the highest
	// applies. No weight is 0, below any weighted overlay.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	Weight *int32 `json:"weight,omitempty"`
}

// NodeOverlayRequirement is a node label requirement of an overlay. It
// differs from a NodePool's only in that it may name the pool
// (karpenter.sh/nodepool, joinery.dev/nodepool) and has no minValues.
type NodeOverlayRequirement struct {
	// Key is a node label key, e.g. karpenter.k8s.aws/instance-family.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	Key string `json:"key"`
	// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist;Gt;Lt;Gte;Lte
	Operator NodeSelectorOperator `json:"operator"`
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=atomic
	// +optional
	Values []string `json:"values,omitempty"`
}

// NodeOverlayStatus says whether the overlay applies.
type NodeOverlayStatus struct {
	// Conditions: ValidationSucceeded is False when the overlay conflicts
	// with another of the same weight on some offering (it then does not
	// apply there) and says with which, for which pool and type; Ready
	// follows it.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types and reasons of a NodeOverlay (Karpenter's).
const (
	ConditionValidationSucceeded = "ValidationSucceeded"
	// ReasonConflict: another overlay of the same weight sets the same
	// price or capacity resource of an offering this one selects.
	ReasonConflict = "Conflict"
)

// NodeOverlayList is a list of NodeOverlays.
//
// +kubebuilder:object:root=true
type NodeOverlayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeOverlay `json:"items"`
}

// OrderOverlays sorts overlays in the order they are applied: highest
// weight first, and among equal weights the name later in the alphabet
// first (Karpenter's NodeOverlayList.OrderByWeight), so the result does
// not depend on the order the apiserver listed them in.
func OrderOverlays(overlays []*NodeOverlay) {
	sort.SliceStable(overlays, func(a, b int) bool {
		wa, wb := overlays[a].weight(), overlays[b].weight()
		if wa != wb {
			return wa > wb
		}
		return overlays[a].Name > overlays[b].Name
	})
}

func (o *NodeOverlay) weight() int32 {
	if o.Spec.Weight == nil {
		return 0
	}
	return *o.Spec.Weight
}

func init() {
	SchemeBuilder.Register(&NodeOverlay{}, &NodeOverlayList{})
}
