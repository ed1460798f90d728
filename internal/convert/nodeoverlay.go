package convert

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// ec2NodeClassLabel is the label Karpenter's AWS provider puts on its
// nodes naming their EC2NodeClass; Joinery's nodes have no such label.
const ec2NodeClassLabel = "karpenter.k8s.aws/ec2nodeclass"

// convertNodeOverlay carries a Karpenter NodeOverlay over field for field:
// Joinery's NodeOverlay has Karpenter's fields and meaning, and Joinery's
// nodes carry the label keys Karpenter's requirements name
// (karpenter.sh/nodepool, karpenter.sh/capacity-type,
// karpenter.k8s.aws/instance-*). A requirement on the EC2NodeClass becomes
// one on the NodePools of the input that use that class.
func (c *converter) convertNodeOverlay(src *NodeOverlaySource, poolsOfClass map[string][]string) Object {
	in := src.overlay
	object := "NodeOverlay " + in.Metadata.Name
	out := &v1alpha1.NodeOverlay{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodeOverlay"},
		ObjectMeta: metav1.ObjectMeta{Name: in.Metadata.Name, Labels: in.Metadata.Labels},
		Spec: v1alpha1.NodeOverlaySpec{
			PriceAdjustment: in.Spec.PriceAdjustment,
			Price:           in.Spec.Price,
			Capacity:        in.Spec.Capacity,
			Weight:          in.Spec.Weight,
		},
	}
	for i, r := range in.Spec.Requirements {
		req := v1alpha1.NodeOverlayRequirement{Key: r.Key, Operator: v1alpha1.NodeSelectorOperator(r.Operator), Values: r.Values}
		if r.Key == ec2NodeClassLabel {
			field := fmt.Sprintf("spec.requirements[%d]", i)
			if r.Operator != "In" {
				c.warn(object, field, "(%s %s) kept as is: Joinery's nodes carry no %s label, so it selects as if the label were absent; require karpenter.sh/nodepool instead", r.Key, r.Operator, ec2NodeClassLabel)
			} else {
				var pools []string
				for _, class := range r.Values {
					pools = append(pools, poolsOfClass[class]...)
				}
				if len(pools) == 0 {
					c.warn(object, field, "selects EC2NodeClasses %v, which no NodePool of the input uses: the overlay selects nothing until you require karpenter.sh/nodepool of the pools it is meant for", r.Values)
					pools = []string{"no-nodepool-uses-" + r.Values[0]}
				}
				req = v1alpha1.NodeOverlayRequirement{Key: v1alpha1.LabelKarpenterNodePool, Operator: v1alpha1.OpIn, Values: pools}
			}
		}
		out.Spec.Requirements = append(out.Spec.Requirements, req)
	}
	return Object{Comment: fmt.Sprintf("From Karpenter NodeOverlay %s (%s).", in.Metadata.Name, src.Source), Value: out}
}
