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

// KubeletConfig is the part of a node's kubelet configuration that changes
// its allocatable resources, with Karpenter's EC2NodeClass field meanings.
// Nil or empty fields keep the EKS AMI defaults.
type KubeletConfig struct {
	// MaxPods replaces the ENI-limited pod count.
	MaxPods *int32
	// PodsPerCore caps pods at PodsPerCore * vCPUs (when > 0).
	PodsPerCore *int32
	// SystemReserved and KubeReserved map resource names (cpu, memory,
	// ephemeral-storage, pid) to quantities. A KubeReserved entry replaces
	// the computed default for that resource; the others stay.
	SystemReserved map[string]string
	KubeReserved   map[string]string
	// EvictionHard maps memory.available and nodefs.available to a
	// quantity ("500Mi") or a percentage of capacity ("5%"); an entry
	// replaces the default (100Mi, 10%).
	EvictionHard map[string]string
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
// kubelet configuration. DefaultNodeOptions are Karpenter's defaults.
type NodeOptions struct {
	// VMMemoryOverheadPercent is the share of EC2's memory figure the
	// hypervisor and firmware keep (Karpenter's --vm-memory-overhead-percent).
	VMMemoryOverheadPercent float64
	// RootVolumeSize is the root EBS volume, the node's ephemeral storage.
	RootVolumeSize resource.Quantity
	// InstanceStoreRAID0 makes the instance-store NVMe the ephemeral
	// storage, as Karpenter's instanceStorePolicy: RAID0 does.
	InstanceStoreRAID0 bool
	// ReservedENIs are ENIs kept from the VPC CNI (Karpenter's
	// --reserved-enis); they lower the ENI-limited pod count.
	ReservedENIs int
}

// DefaultNodeOptions returns Karpenter's defaults: 7.5% VM memory overhead,
// the 20Gi gp3 root volume Karpenter gives AL2/AL2023 nodes when the
// EC2NodeClass sets no blockDeviceMappings, no RAID0, no reserved ENIs.
func DefaultNodeOptions() NodeOptions {
	return NodeOptions{VMMemoryOverheadPercent: 0.075, RootVolumeSize: resource.MustParse("20Gi")}
}

// Allocatable returns a node's capacity and allocatable resources as
// Karpenter's AWS provider computes them for the AL2 and AL2023 EKS AMIs
// (pkg/providers/instancetype/types.go), with DefaultNodeOptions:
//
//	capacity:
//	  cpu                = vCPUs
//	  memory             = M - ceil(M * 7.5%) MiB, M = EC2 MiB (less 64 MiB of CMA on arm64)
//	  ephemeral-storage  = 20Gi root volume
//	  pods               = maxPods, else the ENI limit (default-card ENIs * (IPv4 per ENI - 1) + 2),
//	                       capped at podsPerCore * vCPUs when podsPerCore > 0
//	  nvidia.com/gpu, amd.com/gpu, habana.ai/gaudi = GPU count by manufacturer
//	  aws.amazon.com/neuron = Neuron devices; vpc.amazonaws.com/pod-eni = branch ENIs;
//	  vpc.amazonaws.com/efa = EFA interfaces (extended resources only when non-zero)
//	kube-reserved:
//	  cpu     = 6% of the first core + 1% of the second + 0.5% of cores 3-4 + 0.25% of the rest
//	  memory  = 11 MiB * ENI-limited pods + 255 MiB (the ENI limit even when maxPods is set,
//	            as Karpenter does for these AMIs)
//	  ephemeral-storage = 1Gi
//	  each kubeReserved entry replaces its computed value
//	system-reserved: kubelet systemReserved only
//	eviction threshold: memory 100Mi, ephemeral-storage 10% of capacity;
//	  evictionHard memory.available / nodefs.available replace them (percentages of capacity)
//	allocatable = capacity - kube-reserved - system-reserved - eviction threshold, floored at 0
//
// For the 15 old types whose ENI limits are unknown (MaxPodsENI == 0) the
// pod count is MaxPods if set, else 0, and kube-reserved memory uses that
// count: the solver then never places pods on them unless told how many fit.
// Entries of kc that do not parse are ignored; see KubeletConfig.Validate.
func Allocatable(it InstanceType, kc KubeletConfig) (capacity, allocatable corev1.ResourceList) {
	return AllocatableWith(it, kc, DefaultNodeOptions())
}

// AllocatableWith is Allocatable with explicit NodeOptions.
func AllocatableWith(it InstanceType, kc KubeletConfig, opts NodeOptions) (capacity, allocatable corev1.ResourceList) {
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(it.VCPU), resource.DecimalSI),
		corev1.ResourceMemory:           memoryCapacity(it, opts.VMMemoryOverheadPercent),
		corev1.ResourceEphemeralStorage: ephemeralStorage(it, opts),
		corev1.ResourcePods:             *resource.NewQuantity(podCapacity(it, kc, opts.ReservedENIs), resource.DecimalSI),
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
	extended(ResourceAWSPodENI, it.BranchENIs)
	extended(ResourceEFA, it.EFACount)

	// Kube-reserved memory is sized by the ENI limit with no reserved ENIs,
	// whatever maxPods says (Karpenter: UsesENILimitedMemoryOverhead).
	reservedPods := int64(it.MaxPodsENI)
	if it.MaxPodsENI == 0 {
		reservedPods = capacity.Pods().Value()
	}
	overhead := []corev1.ResourceList{
		kubeReserved(it.VCPU, reservedPods, kc.KubeReserved),
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
// to CMA, then the VM overhead share is taken off, rounded up to a MiB. The
// float arithmetic is Karpenter's, operation for operation, so results
// agree to the MiB.
func memoryCapacity(it InstanceType, vmOverheadPercent float64) resource.Quantity {
	mib := it.MemoryMiB
	if it.Arch == ArchARM64 {
		mib -= 64
	}
	bytes := float64(mib * 1024 * 1024)
	overheadMiB := int64(math.Ceil(bytes * vmOverheadPercent / 1024 / 1024))
	return *resource.NewQuantity((mib-overheadMiB)*1024*1024, resource.BinarySI)
}

func ephemeralStorage(it InstanceType, opts NodeOptions) resource.Quantity {
	if opts.InstanceStoreRAID0 && it.LocalNVMeGB > 0 {
		return *resource.NewQuantity(it.LocalNVMeGB*1000*1000*1000, resource.DecimalSI)
	}
	return opts.RootVolumeSize.DeepCopy()
}

// podCapacity is Karpenter's pods() for AMI families with ENI-limited pod
// density and podsPerCore support (AL2, AL2023).
func podCapacity(it InstanceType, kc KubeletConfig, reservedENIs int) int64 {
	var count int64
	switch {
	case kc.MaxPods != nil && *kc.MaxPods >= 0:
		count = int64(*kc.MaxPods)
	case reservedENIs > 0 && it.DefaultCardMaxENIs > 0 && it.IPv4PerENI > 0:
		usable := int64(it.DefaultCardMaxENIs - reservedENIs)
		if usable > 0 {
			count = usable*int64(it.IPv4PerENI-1) + 2
		}
	default:
		count = int64(it.MaxPodsENI)
	}
	if kc.PodsPerCore != nil && *kc.PodsPerCore > 0 {
		count = min(count, int64(*kc.PodsPerCore)*int64(it.VCPU))
	}
	return count
}

// kubeReserved is Karpenter's kubeReservedResources, whose CPU steps come
// from the EKS AMI and Bottlerocket (6% of the first core, 1% of the
// second, 0.5% of the next two, 0.25% of the rest; each step's millicores
// truncated as Karpenter does).
func kubeReserved(vcpus int, pods int64, overrides map[string]string) corev1.ResourceList {
	cpuMilli := int64(vcpus) * 1000
	var reservedMilli int64
	for _, step := range []struct {
		start, end int64
		share      float64
	}{
		{0, 1000, 0.06},
		{1000, 2000, 0.01},
		{2000, 4000, 0.005},
		{4000, 1 << 31, 0.0025},
	} {
		if cpuMilli < step.start {
			break
		}
		span := float64(min(cpuMilli, step.end) - step.start)
		reservedMilli += int64(span * step.share)
	}
	reserved := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(reservedMilli, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity((11*pods+255)*1024*1024, resource.BinarySI),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
	}
	for name, q := range quantities(overrides) {
		reserved[name] = q
	}
	return reserved
}

// evictionThreshold is Karpenter's evictionThreshold: 100Mi of memory and
// 10% of ephemeral storage, each replaced by an evictionHard entry.
func evictionThreshold(capacity corev1.ResourceList, evictionHard map[string]string) corev1.ResourceList {
	storage := capacity[corev1.ResourceEphemeralStorage]
	threshold := corev1.ResourceList{
		corev1.ResourceMemory:           resource.MustParse("100Mi"),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(math.Ceil(float64(storage.Value())/100*10)), resource.DecimalSI),
	}
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

// evictionSignal is Karpenter's computeEvictionSignal: a percentage is of
// capacity, rounded up to a whole unit; 100% disables the threshold (as in
// the kubelet); anything else is a quantity.
func evictionSignal(capacity resource.Quantity, value string) (resource.Quantity, error) {
	if percent, ok := strings.CutSuffix(value, "%"); ok {
		p, err := strconv.ParseFloat(percent, 64)
		if err != nil || p < 0 || p > 100 {
			return resource.Quantity{}, fmt.Errorf("%q is not a percentage; write e.g. 5%% or a quantity such as 500Mi", value)
		}
		if p == 100 {
			p = 0
		}
		return *resource.NewQuantity(int64(math.Ceil(capacity.AsApproximateFloat64()/100*p)), resource.DecimalSI), nil
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
