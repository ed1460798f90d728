package v1alpha1

// Well-known label keys. Requirement keys and node labels use the same names
// as Karpenter v1 (and its AWS provider) where the concept is the same, so a
// Karpenter NodePool's requirements mean the same thing here. Every
// karpenter.k8s.aws/instance-* key also exists under joinery.dev/instance-*.
const (
	Group = "joinery.dev"

	// LabelNodePool names the NodePool that created a node.
	LabelNodePool = Group + "/nodepool"
	// LabelCluster names the CAPI Cluster a Joinery Machine belongs to.
	LabelCluster = Group + "/cluster"

	LabelInstanceType = "node.kubernetes.io/instance-type"
	LabelZone         = "topology.kubernetes.io/zone"
	LabelRegion       = "topology.kubernetes.io/region"
	LabelArch         = "kubernetes.io/arch"
	LabelOS           = "kubernetes.io/os"
	LabelHostname     = "kubernetes.io/hostname"

	// LabelCapacityType is "spot", "on-demand" or "reserved" (capacity
	// reservations), as in Karpenter.
	LabelCapacityType    = "karpenter.sh/capacity-type"
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
	CapacityTypeReserved = "reserved"
	// LabelKarpenterNodePool is set too, so tooling written for Karpenter
	// (dashboards, affinities) keeps working on Joinery nodes.
	LabelKarpenterNodePool = "karpenter.sh/nodepool"

	// LabelCapacityReservationID is the capacity reservation a reserved
	// node was launched into, and LabelCapacityReservationType whether it
	// is an on-demand capacity reservation ("default") or a capacity block
	// ("capacity-block"): Karpenter's AWS provider's keys and values.
	LabelCapacityReservationID     = "karpenter.k8s.aws/capacity-reservation-id"
	LabelCapacityReservationType   = "karpenter.k8s.aws/capacity-reservation-type"
	CapacityReservationTypeDefault = "default"
	CapacityReservationTypeBlock   = "capacity-block"

	// Zone ID (use1-az1) of the node's zone, as Karpenter's AWS provider labels it.
	LabelZoneID = "topology.k8s.aws/zone-id"

	AWSLabelPrefix     = "karpenter.k8s.aws/"
	JoineryLabelPrefix = Group + "/"
)

// Deprecated and provider-specific keys that mean a well-known one. A pod
// requirement on the key is read as one on its value (Karpenter's
// NormalizedLabels plus the EBS CSI driver's zone key, as its AWS provider
// does), and nodes carry the deprecated beta labels the kubelet sets.
const (
	LabelBetaArch            = "beta.kubernetes.io/arch"
	LabelBetaOS              = "beta.kubernetes.io/os"
	LabelBetaInstanceType    = "beta.kubernetes.io/instance-type"
	LabelFailureDomainZone   = "failure-domain.beta.kubernetes.io/zone"
	LabelFailureDomainRegion = "failure-domain.beta.kubernetes.io/region"
	LabelEBSCSIZone          = "topology.ebs.csi.aws.com/zone"
)

// NormalizedLabels maps each alias key to the well-known key it means.
var NormalizedLabels = map[string]string{
	LabelBetaArch:            LabelArch,
	LabelBetaOS:              LabelOS,
	LabelBetaInstanceType:    LabelInstanceType,
	LabelFailureDomainZone:   LabelZone,
	LabelFailureDomainRegion: LabelRegion,
	LabelEBSCSIZone:          LabelZone,
}

// Instance attribute label suffixes. Each exists as AWSLabelPrefix+suffix
// (karpenter.k8s.aws/instance-family) and JoineryLabelPrefix+suffix
// (joinery.dev/instance-family).
const (
	SuffixInstanceFamily           = "instance-family"
	SuffixInstanceCategory         = "instance-category"
	SuffixInstanceGeneration       = "instance-generation"
	SuffixInstanceSize             = "instance-size"
	SuffixInstanceCPU              = "instance-cpu"
	SuffixInstanceCPUManufacturer  = "instance-cpu-manufacturer"
	SuffixInstanceMemory           = "instance-memory" // MiB
	SuffixInstanceGPUName          = "instance-gpu-name"
	SuffixInstanceGPUCount         = "instance-gpu-count"
	SuffixInstanceGPUMemory        = "instance-gpu-memory" // MiB of one GPU
	SuffixInstanceGPUManufacturer  = "instance-gpu-manufacturer"
	SuffixInstanceAcceleratorName  = "instance-accelerator-name"
	SuffixInstanceAcceleratorCount = "instance-accelerator-count"
	// SuffixInstanceAcceleratorManufacturer is "aws" for Inferentia and Trainium, as in Karpenter.
	SuffixInstanceAcceleratorManufacturer = "instance-accelerator-manufacturer"
	SuffixInstanceLocalNVMe               = "instance-local-nvme"        // GB
	SuffixInstanceNetworkBandwidth        = "instance-network-bandwidth" // Mbps
	SuffixInstanceHypervisor              = "instance-hypervisor"
)

// InstanceAttributeSuffixes lists every instance attribute, in documentation order.
var InstanceAttributeSuffixes = []string{
	SuffixInstanceFamily, SuffixInstanceCategory, SuffixInstanceGeneration, SuffixInstanceSize,
	SuffixInstanceCPU, SuffixInstanceCPUManufacturer, SuffixInstanceMemory,
	SuffixInstanceGPUName, SuffixInstanceGPUCount, SuffixInstanceGPUMemory, SuffixInstanceGPUManufacturer,
	SuffixInstanceAcceleratorName, SuffixInstanceAcceleratorCount, SuffixInstanceAcceleratorManufacturer,
	SuffixInstanceLocalNVMe, SuffixInstanceNetworkBandwidth, SuffixInstanceHypervisor,
}

// IntegerValuedSuffixes are the attributes whose values are integers, so
// requirements on them may use Gt, Lt, Gte and Lte.
var IntegerValuedSuffixes = []string{
	SuffixInstanceGeneration, SuffixInstanceCPU, SuffixInstanceMemory, SuffixInstanceGPUCount,
	SuffixInstanceGPUMemory, SuffixInstanceAcceleratorCount, SuffixInstanceLocalNVMe,
	SuffixInstanceNetworkBandwidth,
}
