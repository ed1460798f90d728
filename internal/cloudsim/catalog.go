package cloudsim

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

func embeddedCatalog() (*cloud.Catalog, error) { return cloud.Embedded() }

// CatalogInstanceTypes describes nodes from Joinery's EC2 catalog: capacity
// and allocatable as an EKS AMI node with default kubelet settings
// (cloud.Allocatable), and the labels the kubelet and the AWS cloud
// provider set (instance type, arch, os). The catalog's instance attribute
// labels (karpenter.k8s.aws/instance-family, ...) are not set: a CAPA node
// only carries them if its bootstrap config's kubelet arguments say so.
func CatalogInstanceTypes(c *cloud.Catalog) InstanceTypes { return catalogTypes{c} }

type catalogTypes struct{ c *cloud.Catalog }

func (t catalogTypes) InstanceTypeInfo(name string) (corev1.ResourceList, corev1.ResourceList, map[string]string, bool) {
	it, ok := t.c.InstanceType(name)
	if !ok {
		return nil, nil, nil, false
	}
	capacity, allocatable := cloud.Allocatable(it, cloud.KubeletConfig{})
	all := it.Labels()
	labels := map[string]string{}
	for _, k := range []string{v1alpha1.LabelInstanceType, v1alpha1.LabelArch, v1alpha1.LabelOS} {
		if v, ok := all[k]; ok {
			labels[k] = v
		}
	}
	return capacity, allocatable, labels, true
}

// CatalogPrices prices offerings from Joinery's EC2 catalog: the on-demand
// price of the region, and for spot the lowest spot price sampled in the
// region (the catalog does not say which zone had it).
func CatalogPrices(c *cloud.Catalog, region string) PriceFunc {
	return func(instanceType, _, capacityType string) (float64, bool) {
		if capacityType == CapacityTypeSpot {
			p, ok := c.SpotPrice(region, instanceType)
			return p.MinUSDPerHour, ok
		}
		return c.OnDemandPrice(region, instanceType)
	}
}

// StaticInstanceTypes is a fixed table of instance types, for tests that
// want node shapes of their own.
type StaticInstanceTypes map[string]StaticInstanceType

// StaticInstanceType is one entry of StaticInstanceTypes.
type StaticInstanceType struct {
	Capacity, Allocatable corev1.ResourceList
	Labels                map[string]string
}

// InstanceTypeInfo implements InstanceTypes.
func (s StaticInstanceTypes) InstanceTypeInfo(name string) (corev1.ResourceList, corev1.ResourceList, map[string]string, bool) {
	it, ok := s[name]
	if !ok {
		return nil, nil, nil, false
	}
	labels := map[string]string{v1alpha1.LabelInstanceType: name}
	for k, v := range it.Labels {
		labels[k] = v
	}
	return it.Capacity.DeepCopy(), it.Allocatable.DeepCopy(), labels, true
}
