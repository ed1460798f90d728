package solver

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Resources are dense vectors indexed by a per-solve resourceIndex, so the hot
// path compares int64s instead of walking ResourceList maps of Quantities.
// CPU is in millicores, everything else in its base unit.
type resVec []int64

const (
	resCPU = iota
	resMemory
	resPods
	resEphemeral
	numFixedResources
)

// defaultPodsAllocatable is used when an instance type or node does not list
// "pods" (kubelet's default max-pods).
const defaultPodsAllocatable = 110

type resourceIndex struct {
	names []corev1.ResourceName
	index map[corev1.ResourceName]int
	// vols resolves pods' claims to CSI drivers; drivers are the volume
	// resources (see volumes.go) among names.
	vols    *volumeResolver
	drivers []volumeDriver
}

func newResourceIndex() *resourceIndex {
	ri := &resourceIndex{index: map[corev1.ResourceName]int{}}
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
		ri.index[n] = len(ri.names)
		ri.names = append(ri.names, n)
	}
	return ri
}

// observe registers the resource names of a list; extended resources get
// indexes in sorted order so vectors are deterministic.
func (ri *resourceIndex) observe(lists ...corev1.ResourceList) {
	var added []corev1.ResourceName
	for _, l := range lists {
		for n := range l {
			if _, ok := ri.index[n]; !ok && !containsName(added, n) {
				added = append(added, n)
			}
		}
	}
	sort.Slice(added, func(i, j int) bool { return added[i] < added[j] })
	for _, n := range added {
		ri.index[n] = len(ri.names)
		ri.names = append(ri.names, n)
	}
}

func containsName(list []corev1.ResourceName, n corev1.ResourceName) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

func (ri *resourceIndex) size() int { return len(ri.names) }

func quantityValue(idx int, q resource.Quantity) int64 {
	if idx == resCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// vec converts a ResourceList; names not in the index are ignored (observe first).
func (ri *resourceIndex) vec(l corev1.ResourceList) resVec {
	v := make(resVec, ri.size())
	for n, q := range l {
		if i, ok := ri.index[n]; ok {
			v[i] = quantityValue(i, q)
		}
	}
	return v
}

// allocatableVec is vec for a node's or type's allocatable: a missing pods
// entry means kubelet's default rather than zero.
func (ri *resourceIndex) allocatableVec(l corev1.ResourceList) resVec {
	v := ri.vec(l)
	if _, ok := l[corev1.ResourcePods]; !ok {
		v[resPods] = defaultPodsAllocatable
	}
	return v
}

func (ri *resourceIndex) list(v resVec) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i, x := range v {
		if x == 0 {
			continue
		}
		if i == resCPU {
			out[ri.names[i]] = *resource.NewMilliQuantity(x, resource.DecimalSI)
		} else if i == resMemory || i == resEphemeral {
			out[ri.names[i]] = *resource.NewQuantity(x, resource.BinarySI)
		} else {
			out[ri.names[i]] = *resource.NewQuantity(x, resource.DecimalSI)
		}
	}
	return out
}

func (v resVec) add(o resVec) {
	for i := range o {
		v[i] += o[i]
	}
}

func (v resVec) addScaled(o resVec, k int64) {
	for i := range o {
		v[i] += o[i] * k
	}
}

func (v resVec) sub(o resVec) {
	for i := range o {
		v[i] -= o[i]
	}
}

func (v resVec) maxWith(o resVec) {
	for i := range o {
		if o[i] > v[i] {
			v[i] = o[i]
		}
	}
}

func (v resVec) minWith(o resVec) {
	for i := range o {
		if o[i] < v[i] {
			v[i] = o[i]
		}
	}
}

func (v resVec) clone() resVec { return append(resVec(nil), v...) }

// fitsAdd reports whether used+req fits in alloc.
func fitsAdd(alloc, used, req resVec) bool {
	for i := range req {
		if req[i] > 0 && used[i]+req[i] > alloc[i] {
			return false
		}
	}
	return true
}

// fitCount is how many more pods of req fit in alloc beside used.
func fitCount(alloc, used, req resVec) int {
	best := int64(1 << 40)
	for i := range req {
		if req[i] <= 0 {
			continue
		}
		free := alloc[i] - used[i]
		if free < req[i] {
			return 0
		}
		if n := free / req[i]; n < best {
			best = n
		}
	}
	return int(best)
}

// podRequests computes a pod's effective requests the way the scheduler does:
// max(sum(containers)+sidecars, max(init container + sidecars started before
// it)) + overhead, plus one "pods". A container that sets only limits is
// treated as requesting its limits (what API defaulting does).
func (ri *resourceIndex) podRequests(pod *corev1.Pod) resVec {
	n := ri.size()
	reqs := make(resVec, n)
	for i := range pod.Spec.Containers {
		ri.addContainer(reqs, &pod.Spec.Containers[i].Resources)
	}
	sidecars := make(resVec, n)
	initMax := make(resVec, n)
	tmp := make(resVec, n)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		for j := range tmp {
			tmp[j] = 0
		}
		ri.addContainer(tmp, &c.Resources)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			reqs.add(tmp)
			sidecars.add(tmp)
			initMax.maxWith(sidecars)
		} else {
			tmp.add(sidecars)
			initMax.maxWith(tmp)
		}
	}
	reqs.maxWith(initMax)
	if pod.Spec.Resources != nil && len(pod.Spec.Resources.Requests) > 0 {
		// Pod-level resources replace the container sum for the resources they set.
		for name, q := range pod.Spec.Resources.Requests {
			if i, ok := ri.index[name]; ok {
				reqs[i] = quantityValue(i, q)
			}
		}
	}
	for name, q := range pod.Spec.Overhead {
		if i, ok := ri.index[name]; ok {
			reqs[i] += quantityValue(i, q)
		}
	}
	reqs[resPods] = 1
	return reqs
}

func (ri *resourceIndex) addContainer(v resVec, r *corev1.ResourceRequirements) {
	for name, q := range r.Requests {
		if i, ok := ri.index[name]; ok {
			v[i] += quantityValue(i, q)
		}
	}
	for name, q := range r.Limits {
		if _, set := r.Requests[name]; set {
			continue
		}
		if i, ok := ri.index[name]; ok {
			v[i] += quantityValue(i, q)
		}
	}
}

// observePod registers every resource name a pod mentions.
func (ri *resourceIndex) observePod(pod *corev1.Pod) {
	for i := range pod.Spec.Containers {
		ri.observe(pod.Spec.Containers[i].Resources.Requests, pod.Spec.Containers[i].Resources.Limits)
	}
	for i := range pod.Spec.InitContainers {
		ri.observe(pod.Spec.InitContainers[i].Resources.Requests, pod.Spec.InitContainers[i].Resources.Limits)
	}
	ri.observe(pod.Spec.Overhead)
	if pod.Spec.Resources != nil {
		ri.observe(pod.Spec.Resources.Requests)
	}
}
