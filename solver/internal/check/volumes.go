package check

import (
	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
)

// checkVolumes: on every node, the distinct claims its pods attach through
// a CSI driver stay within the driver's limit: an existing node's CSINode
// count (else its instance type's), a new node's type's, and every
// fallback type's, since the cloud may launch any of them.
func (c *checker) checkVolumes(n *node) {
	attached := map[string]map[string]bool{}
	for _, p := range n.pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			claim := c.claim(p.Namespace, v.PersistentVolumeClaim.ClaimName)
			if claim == nil {
				continue
			}
			d := c.driver(claim)
			if d == "" {
				continue
			}
			if attached[d] == nil {
				attached[d] = map[string]bool{}
			}
			attached[d][p.Namespace+"/"+claim.Name] = true
		}
	}
	if len(attached) == 0 {
		return
	}
	check := func(what string, limits func(driver string) (int, bool)) {
		for d, claims := range attached {
			if l, ok := limits(d); ok && len(claims) > l {
				c.fail("%s: %d volumes of %s attached, limit %d", what, len(claims), d, l)
			}
		}
	}
	if !n.isNew {
		check("node "+n.name, func(d string) (int, bool) {
			for _, cn := range c.s.CSINodes {
				if cn.Name != n.name {
					continue
				}
				for _, drv := range cn.Spec.Drivers {
					if drv.Name == d {
						if drv.Allocatable != nil && drv.Allocatable.Count != nil {
							return int(*drv.Allocatable.Count), true
						}
						return 0, false
					}
				}
			}
			for _, p := range c.s.Pools {
				for _, it := range p.InstanceTypes {
					if it.Name == n.node.Labels[v1alpha1.LabelInstanceType] {
						l, ok := it.VolumeLimits[d]
						return l, ok
					}
				}
			}
			return 0, false
		})
		return
	}
	types := []*solver.InstanceType{n.nn.InstanceType}
	for _, fb := range n.nn.Fallbacks {
		types = append(types, fb.InstanceType)
	}
	for _, it := range types {
		check("node "+n.name+" as "+it.Name, func(d string) (int, bool) {
			l, ok := it.VolumeLimits[d]
			return l, ok
		})
	}
}

func (c *checker) claim(namespace, name string) *corev1.PersistentVolumeClaim {
	for _, pvc := range c.s.PersistentVolumeClaims {
		if pvc.Namespace == namespace && pvc.Name == name {
			return pvc
		}
	}
	return nil
}

// driver is the CSI driver attaching a claim's volume: the bound PV's (an
// in-tree EBS volume is the EBS CSI driver's), else the class's
// provisioner (kubernetes.io/aws-ebs likewise).
func (c *checker) driver(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.VolumeName != "" {
		for _, pv := range c.s.PersistentVolumes {
			if pv.Name != pvc.Spec.VolumeName {
				continue
			}
			if pv.Spec.CSI != nil {
				return pv.Spec.CSI.Driver
			}
			if pv.Spec.AWSElasticBlockStore != nil {
				return "ebs.csi.aws.com"
			}
		}
		return ""
	}
	if pvc.Spec.StorageClassName == nil {
		return ""
	}
	for _, sc := range c.s.StorageClasses {
		if sc.Name == *pvc.Spec.StorageClassName {
			if sc.Provisioner == "kubernetes.io/aws-ebs" {
				return "ebs.csi.aws.com"
			}
			return sc.Provisioner
		}
	}
	return ""
}
