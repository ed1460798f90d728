package cloud

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Extended resources a node advertises, named as the device plugins and the
// VPC resource controller name them (and Karpenter's AWS provider copies).
const (
	ResourceNVIDIAGPU   corev1.ResourceName = "nvidia.com/gpu"
	ResourceAMDGPU      corev1.ResourceName = "amd.com/gpu"
	ResourceHabanaGaudi corev1.ResourceName = "habana.ai/gaudi"
	ResourceAWSNeuron   corev1.ResourceName = "aws.amazon.com/neuron"
	ResourceAWSPodENI   corev1.ResourceName = "vpc.amazonaws.com/pod-eni"
	ResourceEFA         corev1.ResourceName = "vpc.amazonaws.com/efa"
)

// Eviction signals Allocatable understands.
const (
	SignalMemoryAvailable = "memory.available"
	SignalNodeFSAvailable = "nodefs.available"
)

// KubeletConfig is the part of a kubeadm node's kubelet configuration that
// changes its allocatable resources. Nil fields keep the kubelet's own
// defaults: 110 pods, nothing reserved, the default hard eviction
// thresholds.
type KubeletConfig struct {
	// MaxPods replaces the kubelet's default of 110 pods (--max-pods).
	MaxPods *int32
	// PodsPerCore caps pods at PodsPerCore * vCPUs when > 0
	// (--pods-per-core).
	PodsPerCore *int32
	// SystemReserved and KubeReserved map resource names (cpu, memory,
	// ephemeral-storage, pid) to quantities (--system-reserved,
	// --kube-reserved). The kubelet reserves nothing by default.
	SystemReserved map[string]string
	KubeReserved   map[string]string
	// EvictionHard maps eviction signals to a quantity ("500Mi") or a
	// percentage of capacity ("5%"), as --eviction-hard does. Nil means the
	// kubelet's defaults (DefaultEvictionHard); a non-nil map is the whole
	// set, as the kubelet takes the flag: a signal it leaves out has no
	// threshold, and reserves nothing.
	EvictionHard map[string]string
}

// DefaultMaxPods is the kubelet's default --max-pods.
const DefaultMaxPods = 110

// DefaultEvictionHard are the kubelet's default hard eviction thresholds
// on Linux (k8s.io/kubernetes pkg/kubelet/eviction DefaultEvictionHard).
// Only memory.available and nodefs.available lower allocatable.
func DefaultEvictionHard() map[string]string {
	return map[string]string{
		SignalMemoryAvailable: "100Mi",
		SignalNodeFSAvailable: "10%",
		"nodefs.inodesFree":   "5%",
		"imagefs.available":   "15%",
		"imagefs.inodesFree":  "5%",
	}
}

// Validate reports the first entry Allocatable cannot use, naming the field
// and the fix. Allocatable ignores such entries, so validate user input
// (a NodePool's kubelet settings) before relying on its result.
func (kc KubeletConfig) Validate() error {
	if kc.MaxPods != nil && *kc.MaxPods < 0 {
		return fmt.Errorf("kubelet.maxPods is %d; use a number >= 0", *kc.MaxPods)
	}
	if kc.PodsPerCore != nil && *kc.PodsPerCore < 0 {
		return fmt.Errorf("kubelet.podsPerCore is %d; use a number >= 0", *kc.PodsPerCore)
	}
	for _, reserved := range []struct {
		field string
		m     map[string]string
	}{{"systemReserved", kc.SystemReserved}, {"kubeReserved", kc.KubeReserved}} {
		for _, k := range sortedKeys(reserved.m) {
			q, err := resource.ParseQuantity(reserved.m[k])
			if err != nil || q.Sign() < 0 {
				return fmt.Errorf("kubelet.%s[%s] is %q; use a quantity >= 0 such as 100m or 1Gi", reserved.field, k, reserved.m[k])
			}
		}
	}
	for _, k := range sortedKeys(kc.EvictionHard) {
		if k != SignalMemoryAvailable && k != SignalNodeFSAvailable {
			continue // kubelet accepts other signals; they do not change allocatable
		}
		if _, err := evictionSignal(resource.Quantity{}, kc.EvictionHard[k]); err != nil {
			return fmt.Errorf("kubelet.evictionHard[%s]: %w", k, err)
		}
	}
	return nil
}

// NodeOptions are the node-level settings behind Allocatable that are not
// kubelet configuration.
type NodeOptions struct {
	// VMMemoryOverheadPercent is the share of EC2's memory figure the
	// hypervisor, firmware and kernel keep from the kubelet's view
	// (Karpenter's --vm-memory-overhead-percent, 0.075).
	VMMemoryOverheadPercent float64
	// RootVolumeSize is the root EBS volume, the node's ephemeral storage
	// (the kubelet's nodefs): the AWSMachineTemplate's rootVolume.size, else
	// the AMI's root device size.
	RootVolumeSize resource.Quantity
}

// DefaultRootVolumeSize is the root volume planned for when neither the
// AWSMachineTemplate (rootVolume.size) nor EC2 (the AMI's root device,
// which CAPA uses when rootVolume is unset) says more: 8 GiB, the smallest
// root volume CAPA accepts (its rootVolume.size minimum) and the size
// image-builder gives CAPA's published AMIs. A bigger disk only adds room.
var DefaultRootVolumeSize = resource.MustParse("8Gi")

// DefaultVMMemoryOverheadPercent is Karpenter's default share of memory
// lost to the hypervisor and kernel; real kubelets report a little more
// than it leaves, so plans made with it fit.
const DefaultVMMemoryOverheadPercent = 0.075

// DefaultNodeOptions returns the defaults: 7.5% VM memory overhead and an
// 8 GiB root volume (DefaultRootVolumeSize).
func DefaultNodeOptions() NodeOptions {
	return NodeOptions{VMMemoryOverheadPercent: DefaultVMMemoryOverheadPercent, RootVolumeSize: DefaultRootVolumeSize.DeepCopy()}
}

// Allocatable returns a node's capacity and allocatable resources with
// DefaultNodeOptions; see AllocatableWith.
func Allocatable(it InstanceType, kc KubeletConfig) (capacity, allocatable corev1.ResourceList) {
	return AllocatableWith(it, kc, DefaultNodeOptions())
}

// AllocatableWith returns the capacity and allocatable resources the
// kubelet of a CAPA kubeadm node reports (k8s.io/kubernetes
// pkg/kubelet/cm GetNodeAllocatableReservation), for an instance type, its
// kubelet settings and node options. CAPA's nodes run whatever CNI the user
// installs, not the VPC CNI, so nothing is limited by ENIs.
//
//	capacity:
//	  cpu                = vCPUs
//	  memory             = M - ceil(M * VMMemoryOverheadPercent) MiB, M = EC2 MiB
//	                       (less 64 MiB of CMA on arm64)
//	  ephemeral-storage  = the root volume
//	  pods               = maxPods, else 110; capped at podsPerCore * vCPUs when podsPerCore > 0
//	  nvidia.com/gpu, amd.com/gpu, habana.ai/gaudi = GPU count by manufacturer
//	  aws.amazon.com/neuron = Neuron devices; vpc.amazonaws.com/efa = EFA
//	                       interfaces (extended resources only when non-zero,
//	                       as their device plugins advertise them)
//	allocatable = capacity - kubeReserved - systemReserved - hard eviction threshold,
//	  floored at 0, where the hard eviction threshold is memory.available for
//	  memory and nodefs.available for ephemeral storage (default 100Mi and
//	  10%; a percentage is of capacity, truncated to a whole unit as the
//	  kubelet does)
//
// Entries of kc that do not parse are ignored; see KubeletConfig.Validate.
func AllocatableWith(it InstanceType, kc KubeletConfig, opts NodeOptions) (capacity, allocatable corev1.ResourceList) {
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(it.VCPU), resource.DecimalSI),
		corev1.ResourceMemory:           memoryCapacity(it, opts.VMMemoryOverheadPercent),
		corev1.ResourceEphemeralStorage: opts.RootVolumeSize.DeepCopy(),
		corev1.ResourcePods:             *resource.NewQuantity(podCapacity(it, kc), resource.DecimalSI),
	}
	extended := func(name corev1.ResourceName, count int) {
		if count > 0 {
			capacity[name] = *resource.NewQuantity(int64(count), resource.DecimalSI)
		}
	}
	switch it.GPUManufacturer {
	case ManufacturerNVIDIA:
		extended(ResourceNVIDIAGPU, it.GPUCount)
	case ManufacturerAMD:
		extended(ResourceAMDGPU, it.GPUCount)
	case ManufacturerHabana:
		extended(ResourceHabanaGaudi, it.GPUCount)
	}
	if it.AcceleratorManufacturer == ManufacturerAWS {
		extended(ResourceAWSNeuron, it.AcceleratorCount)
	}
	extended(ResourceEFA, it.EFACount)

	overhead := []corev1.ResourceList{
		quantities(kc.KubeReserved),
		quantities(kc.SystemReserved),
		evictionThreshold(capacity, kc.EvictionHard),
	}
	allocatable = make(corev1.ResourceList, len(capacity))
	for name, q := range capacity {
		q = q.DeepCopy()
		for _, o := range overhead {
			if v, ok := o[name]; ok {
				q.Sub(v)
			}
		}
		if q.Sign() < 0 {
			q = *resource.NewQuantity(0, q.Format)
		}
		allocatable[name] = q
	}
	return capacity, allocatable
}

// memoryCapacity is Karpenter's memory(): Graviton (arm64) types lose 64 MiB
// to CMA, then the VM overhead share is taken off, rounded up to a MiB.
func memoryCapacity(it InstanceType, vmOverheadPercent float64) resource.Quantity {
	mib := it.MemoryMiB
	if it.Arch == ArchARM64 {
		mib -= 64
	}
	bytes := float64(mib * 1024 * 1024)
	overheadMiB := int64(math.Ceil(bytes * vmOverheadPercent / 1024 / 1024))
	return *resource.NewQuantity((mib-overheadMiB)*1024*1024, resource.BinarySI)
}

// podCapacity is the kubelet's: --max-pods (110), capped at
// --pods-per-core times the cores when that is set.
func podCapacity(it InstanceType, kc KubeletConfig) int64 {
	count := int64(DefaultMaxPods)
	if kc.MaxPods != nil && *kc.MaxPods >= 0 {
		count = int64(*kc.MaxPods)
	}
	if kc.PodsPerCore != nil && *kc.PodsPerCore > 0 {
		count = min(count, int64(*kc.PodsPerCore)*int64(it.VCPU))
	}
	return count
}

// evictionThreshold is the kubelet's hardEvictionReservation: the
// memory.available and nodefs.available thresholds of evictionHard (the
// kubelet defaults when it is nil) as memory and ephemeral storage.
func evictionThreshold(capacity corev1.ResourceList, evictionHard map[string]string) corev1.ResourceList {
	if evictionHard == nil {
		evictionHard = DefaultEvictionHard()
	}
	threshold := corev1.ResourceList{}
	for signal, name := range map[string]corev1.ResourceName{
		SignalMemoryAvailable: corev1.ResourceMemory,
		SignalNodeFSAvailable: corev1.ResourceEphemeralStorage,
	} {
		if v, ok := evictionHard[signal]; ok {
			if q, err := evictionSignal(capacity[name], v); err == nil {
				threshold[name] = q
			}
		}
	}
	return threshold
}

// evictionSignal is the kubelet's GetThresholdQuantity: a percentage is
// of capacity, truncated to a whole unit; 0% and 100% disable the threshold
// (as the kubelet's parser does); anything else is a quantity.
func evictionSignal(capacity resource.Quantity, value string) (resource.Quantity, error) {
	if percent, ok := strings.CutSuffix(value, "%"); ok {
		p, err := strconv.ParseFloat(percent, 32)
		if err != nil || p < 0 || p > 100 {
			return resource.Quantity{}, fmt.Errorf("%q is not a percentage; write e.g. 5%% or a quantity such as 500Mi", value)
		}
		if p == 100 {
			p = 0
		}
		// float32, as the kubelet keeps percentages, so results agree to the byte.
		share := float32(p) / 100
		return *resource.NewQuantity(int64(float64(capacity.Value())*float64(share)), resource.BinarySI), nil
	}
	q, err := resource.ParseQuantity(value)
	if err != nil || q.Sign() < 0 {
		return resource.Quantity{}, fmt.Errorf("%q is not a quantity; write e.g. 500Mi or a percentage such as 5%%", value)
	}
	return q, nil
}

// quantities parses a resource map, skipping entries Validate rejects.
func quantities(m map[string]string) corev1.ResourceList {
	list := make(corev1.ResourceList, len(m))
	for k, v := range m {
		if q, err := resource.ParseQuantity(v); err == nil && q.Sign() >= 0 {
			list[corev1.ResourceName(k)] = q
		}
	}
	return list
}
