// Package solverinput turns what Kubernetes and the catalog say (NodePools,
// pods, nodes, the EC2 offerings of a region) into the solver's input. It
// is the seam between the API and cloud packages, which the solver must not
// know, and the solver, which the controllers and `joinery simulate` call.
package solverinput

import (
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// LaunchableType is an instance type a pool may launch, sized for the
// pool's kubelet settings, with the offerings of the cluster's zones.
type LaunchableType struct {
	Name        string
	Labels      map[string]string
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	Offerings   []cloud.Offering
	// VolumeLimits are the CSI attach limits of a new node, by driver.
	VolumeLimits map[string]int
}

// KubeletConfig is the catalog's view of a pool's kubelet settings.
func KubeletConfig(k *v1alpha1.KubeletConfiguration) cloud.KubeletConfig {
	if k == nil {
		return cloud.KubeletConfig{}
	}
	return cloud.KubeletConfig{
		MaxPods:        k.MaxPods,
		PodsPerCore:    k.PodsPerCore,
		SystemReserved: stringMap(k.SystemReserved),
		KubeReserved:   stringMap(k.KubeReserved),
		EvictionHard:   stringMap(k.EvictionHard),
	}
}

// NodeKubeletConfig is what the kubelet of a pool's nodes runs with: the
// bootstrap template's flags merged with the NodePool's kubelet settings
// (KubeletArgs), read back as the kubelet reads them. Errors name the
// NodePool and the field or flag to fix.
func NodeKubeletConfig(pool *v1alpha1.NodePool, model NodeModel) (cloud.KubeletConfig, error) {
	if err := KubeletConfig(pool.Spec.Template.Spec.Kubelet).Validate(); err != nil {
		return cloud.KubeletConfig{}, fmt.Errorf("NodePool %s/%s: spec.template.spec.%w", pool.Namespace, pool.Name, err)
	}
	args, err := KubeletArgs(model.KubeletArgs, pool.Spec.Template.Spec.Kubelet)
	if err != nil {
		return cloud.KubeletConfig{}, fmt.Errorf("NodePool %s/%s: spec.template.spec.kubelet: %w", pool.Namespace, pool.Name, err)
	}
	kc, err := KubeletConfigFromArgs(args)
	if err != nil {
		return cloud.KubeletConfig{}, fmt.Errorf("NodePool %s/%s: the bootstrap template %s's joinConfiguration.nodeRegistration.kubeletExtraArgs: %w",
			pool.Namespace, pool.Name, pool.Spec.Template.Spec.BootstrapTemplateRef.Name, err)
	}
	return kc, nil
}

// LaunchableTypes sizes every offered type for the kubelet the pool's
// nodes run (NodeKubeletConfig) and their root volume, and keeps only
// types of the AMI's architecture when the model names one. Types whose
// allocatable has no room for a pod (maxPods 0) are left out: they could
// never run anything.
//
// The result is shared between callers with the same offered slice and
// settings (launchableMemo): it must be read, never modified.
func LaunchableTypes(pool *v1alpha1.NodePool, offered []cloud.InstanceTypeOfferings, model NodeModel) ([]LaunchableType, error) {
	e, err := launchableTypes(pool, offered, model)
	if err != nil {
		return nil, err
	}
	return e.types, nil
}

// LaunchableTypesByName is LaunchableTypes by type name (shared as well:
// read it, never modify it).
func LaunchableTypesByName(pool *v1alpha1.NodePool, offered []cloud.InstanceTypeOfferings, model NodeModel) (map[string]*LaunchableType, error) {
	e, err := launchableTypes(pool, offered, model)
	if err != nil {
		return nil, err
	}
	return e.byName, nil
}

func launchableTypes(pool *v1alpha1.NodePool, offered []cloud.InstanceTypeOfferings, model NodeModel) (*launchableEntry, error) {
	kubelet, err := NodeKubeletConfig(pool, model)
	if err != nil {
		return nil, err
	}
	opts := model.nodeOptions()
	settings, err := settingsKey(kubelet, opts, model.Arch)
	if err != nil {
		return nil, err
	}
	return launchable.get(offered, settings, func() []LaunchableType {
		return sizeTypes(offered, kubelet, opts, model.Arch)
	}), nil
}

func sizeTypes(offered []cloud.InstanceTypeOfferings, kubelet cloud.KubeletConfig, opts cloud.NodeOptions, arch string) []LaunchableType {
	types := make([]LaunchableType, 0, len(offered))
	for _, o := range offered {
		if arch != "" && o.InstanceType.Arch != arch {
			continue
		}
		capacity, allocatable := cloud.AllocatableWith(o.InstanceType, kubelet, opts)
		if allocatable.Pods().IsZero() {
			continue
		}
		types = append(types, LaunchableType{
			Name:         o.InstanceType.Name,
			Labels:       o.InstanceType.Labels(),
			Capacity:     capacity,
			Allocatable:  allocatable,
			Offerings:    o.Offerings,
			VolumeLimits: volumeLimits(o.InstanceType),
		})
	}
	return types
}

func stringMap[V ~string](m map[string]V) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range maps.All(m) {
		out[k] = string(v)
	}
	return out
}

// volumeLimits are the attach limits the catalog can tell for a type: the
// EBS CSI driver's, when the catalog has what it computes them from.
func volumeLimits(it cloud.InstanceType) map[string]int {
	if l, ok := cloud.EBSVolumeLimit(it); ok {
		return map[string]int{cloud.EBSCSIDriver: l}
	}
	return nil
}
