// Package v1alpha1 holds Joinery's API: the NodePool, a policy for the
// machines Joinery may create in the CAPI Clusters it selects, and the
// NodeOverlay, which adjusts the prices and capacity it plans with.
// +kubebuilder:object:generate=true
// +groupName=joinery.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every object in this package.
	GroupVersion = schema.GroupVersion{Group: Group, Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
