package cloud

import (
	"regexp"
	"strconv"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// Architectures as the kubernetes.io/arch label spells them.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
)

// GPU and accelerator manufacturers as the catalog (and Karpenter's labels)
// spell them.
const (
	ManufacturerNVIDIA = "nvidia"
	ManufacturerAMD    = "amd"
	ManufacturerHabana = "habana"
	ManufacturerAWS    = "aws"
)

// Attribute names an InstanceType attribute whose zero value is also a real
// value (0 accelerators, not bare metal), so "unknown" needs a bit of its own.
// Attributes where zero cannot be real use the zero value itself for
// unknown: Arch "", Generation 0, MaxPodsENI 0, NetworkBandwidthMbps 0, ...
type Attribute uint8

const (
	AttrAcceleratorCount Attribute = 1 << iota
	AttrBranchENIs
	AttrBareMetal
	AttrEFACount
)

// InstanceType is one EC2 instance type as the catalog knows it. Sizes are
// EC2's: MemoryMiB is what DescribeInstanceTypes reports, before any
// hypervisor overhead (Allocatable takes that off).
type InstanceType struct {
	Name   string // m5.large
	Family string // m5
	Size   string // large
	// Generation is the number after the family's letters (5 for m5);
	// 0 when the name has none (mac-m4.metal).
	Generation int
	// Category is Karpenter's instance-category: the family's opening letters
	// ("m", "c", "g", "inf", "trn"), derived from Name exactly as Karpenter's
	// AWS provider does, so `instance-category In [c, m, r]` means the same
	// here. It is not stored in the CSV.
	Category string
	// Class is the broad AWS class from the CSV's category column: general,
	// compute, memory, storage, accelerated or hpc.
	Class string
	// Arch is amd64 or arm64; "" when no source had it (2 rows: mac-m4.metal,
	// mac-m4pro.metal). Such types get no arch label and are never offered.
	Arch string

	VCPU      int
	MemoryMiB int64

	// GPUs, as EC2's GpuInfo describes them. GPUMemoryMiB is one GPU's.
	GPUCount        int
	GPUManufacturer string // nvidia, amd, habana
	GPUName         string // a10g, t4, h100 (lower case, hyphens)
	GPUMemoryMiB    int64

	// AWS Neuron devices (Inferentia, Trainium) and other inference
	// accelerators (qualcomm-ai100).
	AcceleratorCount        int
	AcceleratorManufacturer string
	AcceleratorName         string

	CPUManufacturer string // intel, amd, aws; "" when unknown
	// LocalNVMeGB is the total instance-store NVMe in GB; 0 when none (or unknown).
	LocalNVMeGB int64

	// ENI limits. MaxENIs counts all network cards; pod IPs come only from
	// the default card, hence MaxPodsENI = DefaultCardMaxENIs*(IPv4PerENI-1)+2.
	// 0 means unknown (15 old types).
	MaxENIs            int
	DefaultCardMaxENIs int
	IPv4PerENI         int
	MaxPodsENI         int
	// BranchENIs is the trunk branch ENI count (security groups per pod);
	// it is Karpenter's vpc.amazonaws.com/pod-eni capacity.
	BranchENIs int
	EFACount   int

	// NetworkBandwidthMbps is the baseline bandwidth; 0 when AWS gives only
	// "Up to ..." figures.
	NetworkBandwidthMbps int64
	Hypervisor           string // nitro, xen; "" for bare metal or unknown
	BareMetal            bool

	// Unknown marks the Attributes whose value no source had.
	Unknown Attribute
}

// Known reports whether the catalog had a value for a.
func (it InstanceType) Known(a Attribute) bool { return it.Unknown&a == 0 }

// karpenterNameScheme is the regular expression Karpenter's AWS provider
// (pkg/providers/instancetype/types.go, instanceTypeScheme) splits a name
// with: letters, an optional "-Ntb" (u-6tb1), then the generation digits.
var karpenterNameScheme = regexp.MustCompile(`(^[a-z]+)(\-[0-9]+tb)?([0-9]+).*\.`)

// karpenterCategory returns Karpenter's instance-category for a type name,
// "" when the name does not fit the scheme (mac-m4.metal), as in Karpenter.
func karpenterCategory(name string) string {
	if m := karpenterNameScheme.FindStringSubmatch(name); len(m) == 4 {
		return m[1]
	}
	return ""
}

// karpenterGeneration returns the generation digits of a type name (5 for
// m5.large, 1 for u-6tb1.metal), 0 when the name does not fit the scheme.
func karpenterGeneration(name string) int {
	if m := karpenterNameScheme.FindStringSubmatch(name); len(m) == 4 {
		if g, err := strconv.Atoi(m[3]); err == nil {
			return g
		}
	}
	return 0
}

// Labels returns the node labels a node of this type carries, as Karpenter's
// AWS provider sets them: node.kubernetes.io/instance-type,
// kubernetes.io/arch (omitted when Arch is unknown), kubernetes.io/os=linux,
// and each instance attribute in v1alpha1.InstanceAttributeSuffixes under
// both karpenter.k8s.aws/ and joinery.dev/. An attribute the type lacks (no
// GPU, no local NVMe, unknown bandwidth) gets no label, as in Karpenter, so
// `Exists`/`DoesNotExist` requirements behave the same. Zone, region and
// capacity type depend on the offering: see Offering.Labels.
func (it InstanceType) Labels() map[string]string {
	labels := map[string]string{
		v1alpha1.LabelInstanceType: it.Name,
		v1alpha1.LabelOS:           "linux",
	}
	if it.Arch != "" {
		labels[v1alpha1.LabelArch] = it.Arch
	}
	for suffix, value := range it.attributes() {
		labels[v1alpha1.AWSLabelPrefix+suffix] = value
		labels[v1alpha1.JoineryLabelPrefix+suffix] = value
	}
	return labels
}

// attributes returns the instance attribute label values the type has,
// keyed by suffix. Values use Karpenter's units: memory in MiB, GPU memory
// in MiB per GPU, local NVMe in GB, bandwidth in Mbps, cpu in vCPUs.
func (it InstanceType) attributes() map[string]string {
	attrs := make(map[string]string, len(v1alpha1.InstanceAttributeSuffixes))
	set := func(suffix, value string) {
		if value != "" {
			attrs[suffix] = value
		}
	}
	positive := func(n int64) string {
		if n <= 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	set(v1alpha1.SuffixInstanceFamily, it.Family)
	set(v1alpha1.SuffixInstanceCategory, it.Category)
	set(v1alpha1.SuffixInstanceGeneration, positive(int64(it.Generation)))
	set(v1alpha1.SuffixInstanceSize, it.Size)
	set(v1alpha1.SuffixInstanceCPU, positive(int64(it.VCPU)))
	set(v1alpha1.SuffixInstanceCPUManufacturer, it.CPUManufacturer)
	set(v1alpha1.SuffixInstanceMemory, positive(it.MemoryMiB))
	if it.GPUCount > 0 {
		set(v1alpha1.SuffixInstanceGPUName, it.GPUName)
		set(v1alpha1.SuffixInstanceGPUCount, positive(int64(it.GPUCount)))
		set(v1alpha1.SuffixInstanceGPUMemory, positive(it.GPUMemoryMiB))
		set(v1alpha1.SuffixInstanceGPUManufacturer, it.GPUManufacturer)
	}
	if it.AcceleratorCount > 0 {
		set(v1alpha1.SuffixInstanceAcceleratorName, it.AcceleratorName)
		set(v1alpha1.SuffixInstanceAcceleratorCount, positive(int64(it.AcceleratorCount)))
		set(v1alpha1.SuffixInstanceAcceleratorManufacturer, it.AcceleratorManufacturer)
	}
	set(v1alpha1.SuffixInstanceLocalNVMe, positive(it.LocalNVMeGB))
	set(v1alpha1.SuffixInstanceNetworkBandwidth, positive(it.NetworkBandwidthMbps))
	set(v1alpha1.SuffixInstanceHypervisor, it.Hypervisor)
	return attrs
}

// offerable reports whether the type may be offered at all: without an
// architecture no AMI can be chosen for it and no arch label set.
func (it InstanceType) offerable() bool { return it.Arch != "" }
