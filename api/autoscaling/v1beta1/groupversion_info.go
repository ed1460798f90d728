// Package v1beta1 holds the CapacityBuffer API (autoscaling.x-k8s.io/v1beta1)
// that cluster-autoscaler and Karpenter share: the same group, version,
// fields and status, so a buffer written for either works with Joinery
// unchanged. It lives in the workload clusters, next to the pods whose
// headroom it asks for; Joinery reads it there through CAPI's ClusterCache.
//
// Upstream: k8s.io/autoscaler/cluster-autoscaler/apis/capacitybuffer
// (vendored by Karpenter v1.15 as pkg/apis/autoscaling/v1beta1). Keep the
// fields in step with it.
// +kubebuilder:object:generate=true
// +groupName=autoscaling.x-k8s.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// Group is the API group cluster-autoscaler and Karpenter share.
const Group = "autoscaling.x-k8s.io"

var (
	// GroupVersion is the group and version of every object in this package.
	GroupVersion = schema.GroupVersion{Group: Group, Version: "v1beta1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&CapacityBuffer{}, &CapacityBufferList{})
}
