package solver

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// CSI attach limits are counted as one extended resource per driver: a
// pod requests as many units as it has distinct claims on the driver, a
// node offers its limit. Packing, feasibility, explanations and the lower
// bound then treat attach limits like cpu, at no cost to pods without
// claims (no driver, no resource).
//
// The name is the one the kubelet used for the same count before CSINode
// carried it, so "no instance type has room for requests
// attachable-volumes-csi-ebs.csi.aws.com=30" reads as what it is.
const volumeResourcePrefix = "attachable-volumes-csi-"

// VolumeResource is the resource that counts a CSI driver's attachments.
func VolumeResource(driver string) corev1.ResourceName {
	return corev1.ResourceName(volumeResourcePrefix + driver)
}

// unlimitedVolumes stands for "no known limit" (Karpenter: a driver an
// instance type or CSINode declares no limit for takes any number). Far
// below int64 overflow when added to usage.
const unlimitedVolumes = int64(1) << 40

// In-tree provisioners and volume sources mean their CSI driver (CSI
// migration); Karpenter translates them the same way. Joinery runs on AWS,
// so EBS is the one that matters.
const ebsCSIDriver = "ebs.csi.aws.com"

var inTreeProvisioners = map[string]string{"kubernetes.io/aws-ebs": ebsCSIDriver}

// volumeResolver finds the CSI driver behind a pod's claims and the attach
// limits of existing nodes.
type volumeResolver struct {
	pvcs map[string]*corev1.PersistentVolumeClaim
	pvs  map[string]*corev1.PersistentVolume
	scs  map[string]*storagev1.StorageClass
	// csiNodes: node name -> driver -> allocatable count, for the drivers a
	// CSINode publishes (a driver without a count takes any number).
	csiNodes map[string]map[string]*int32
	// typeLimits: instance type name -> driver -> limit, the fallback for a
	// node whose CSINode does not (yet) publish the driver.
	typeLimits map[string]map[string]int
	drivers    []string
}

func newVolumeResolver(snap *Snapshot) *volumeResolver {
	v := &volumeResolver{
		pvcs: make(map[string]*corev1.PersistentVolumeClaim, len(snap.PersistentVolumeClaims)),
		pvs:  make(map[string]*corev1.PersistentVolume, len(snap.PersistentVolumes)),
		scs:  make(map[string]*storagev1.StorageClass, len(snap.StorageClasses)),
	}
	for _, pvc := range snap.PersistentVolumeClaims {
		if pvc != nil {
			v.pvcs[pvc.Namespace+"/"+pvc.Name] = pvc
		}
	}
	for _, pv := range snap.PersistentVolumes {
		if pv != nil {
			v.pvs[pv.Name] = pv
		}
	}
	for _, sc := range snap.StorageClasses {
		if sc != nil {
			v.scs[sc.Name] = sc
		}
	}
	for _, cn := range snap.CSINodes {
		if cn == nil {
			continue
		}
		if v.csiNodes == nil {
			v.csiNodes = map[string]map[string]*int32{}
		}
		m := map[string]*int32{}
		for _, d := range cn.Spec.Drivers {
			var count *int32
			if d.Allocatable != nil {
				count = d.Allocatable.Count
			}
			m[d.Name] = count
		}
		v.csiNodes[cn.Name] = m
	}
	for _, p := range snap.Pools {
		if p == nil {
			continue
		}
		for _, it := range p.InstanceTypes {
			if it == nil || len(it.VolumeLimits) == 0 {
				continue
			}
			if v.typeLimits == nil {
				v.typeLimits = map[string]map[string]int{}
			}
			v.typeLimits[it.Name] = it.VolumeLimits
		}
	}
	return v
}

// driverOf is the CSI driver that attaches a claim's volume, "" when none
// does (not CSI, no class, unknown objects): such volumes count against no
// limit, as in Karpenter's volumeusage.
func (v *volumeResolver) driverOf(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.VolumeName != "" {
		pv := v.pvs[pvc.Spec.VolumeName]
		switch {
		case pv == nil:
			return ""
		case pv.Spec.CSI != nil:
			return pv.Spec.CSI.Driver
		case pv.Spec.AWSElasticBlockStore != nil:
			return ebsCSIDriver
		}
		return ""
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return ""
	}
	sc := v.scs[*pvc.Spec.StorageClassName]
	if sc == nil {
		return ""
	}
	if d, ok := inTreeProvisioners[sc.Provisioner]; ok {
		return d
	}
	return sc.Provisioner
}

// podClaims calls fn for each distinct claim of the pod that a CSI driver
// attaches.
func (v *volumeResolver) podClaims(pod *corev1.Pod, fn func(driver, claim string)) {
	if v == nil {
		return
	}
	var seen []string
	for i := range pod.Spec.Volumes {
		src := pod.Spec.Volumes[i].PersistentVolumeClaim
		if src == nil {
			continue
		}
		key := pod.Namespace + "/" + src.ClaimName
		if containsString(seen, key) {
			continue
		}
		seen = append(seen, key)
		pvc := v.pvcs[key]
		if pvc == nil {
			continue
		}
		if d := v.driverOf(pvc); d != "" {
			fn(d, key)
		}
	}
}

// observeDrivers registers the volume resource of every driver the pods
// attach through (also one a node's allocatable already names).
func (ri *resourceIndex) observeDrivers(pods []*corev1.Pod) {
	var names []corev1.ResourceName
	for _, p := range pods {
		if p == nil {
			continue
		}
		ri.vols.podClaims(p, func(driver, _ string) {
			if n := VolumeResource(driver); !containsName(names, n) {
				names = append(names, n)
			}
		})
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	for _, n := range names {
		i, ok := ri.index[n]
		if !ok {
			i = len(ri.names)
			ri.index[n] = i
			ri.names = append(ri.names, n)
		}
		ri.drivers = append(ri.drivers, volumeDriver{idx: i, name: string(n[len(volumeResourcePrefix):])})
	}
}

type volumeDriver struct {
	idx  int
	name string
}

// claimUse counts the pending pods that reference each claim a CSI driver
// attaches (nil when no driver is in play).
func (ri *resourceIndex) claimUse(pods []*corev1.Pod) map[string]int {
	if len(ri.drivers) == 0 {
		return nil
	}
	use := map[string]int{}
	for _, p := range pods {
		if p != nil {
			ri.vols.podClaims(p, func(_, claim string) { use[claim]++ })
		}
	}
	return use
}

// addVolumes adds a pending pod's distinct claims per driver to its
// requests. A claim several pending pods share attaches once per node
// however many of them land there (Karpenter counts each PVC once), which
// a per-pod count cannot express: such claims are left out rather than
// multiplied, so pods sharing one volume still fit together; the
// undercount is at most the shared claims on a node.
func (ri *resourceIndex) addVolumes(req resVec, pod *corev1.Pod, use map[string]int) {
	if len(ri.drivers) == 0 {
		return
	}
	ri.vols.podClaims(pod, func(driver, claim string) {
		if use[claim] > 1 {
			return
		}
		if i, ok := ri.index[VolumeResource(driver)]; ok {
			req[i]++
		}
	})
}

// setTypeVolumeLimits writes an instance type's attach limits into a new
// node's allocatable or capacity.
func (ri *resourceIndex) setTypeVolumeLimits(v resVec, limits map[string]int) {
	for _, d := range ri.drivers {
		if l, ok := limits[d.name]; ok {
			v[d.idx] = int64(l)
		} else {
			v[d.idx] = unlimitedVolumes
		}
	}
}

// nodeVolumes sets an existing node's attach limits (its CSINode's count,
// else its instance type's, else none) and counts the distinct claims its
// bound pods already attach.
func (ri *resourceIndex) nodeVolumes(n *Node, alloc, used resVec) {
	if len(ri.drivers) == 0 {
		return
	}
	published := ri.vols.csiNodes[n.Node.Name]
	fallback := ri.vols.typeLimits[n.Node.Labels[corev1.LabelInstanceTypeStable]]
	for _, d := range ri.drivers {
		alloc[d.idx] = unlimitedVolumes
		if count, ok := published[d.name]; ok {
			if count != nil {
				alloc[d.idx] = int64(*count)
			}
		} else if l, ok := fallback[d.name]; ok {
			alloc[d.idx] = int64(l)
		}
	}
	attached := map[string]bool{}
	for _, p := range n.Pods {
		if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ri.vols.podClaims(p, func(driver, claim string) {
			if i, ok := ri.index[VolumeResource(driver)]; ok && !attached[claim] {
				attached[claim] = true
				used[i]++
			}
		})
	}
}
