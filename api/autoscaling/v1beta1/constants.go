package v1beta1

// Values the shared API defines (cluster-autoscaler's
// capacitybuffer/constants.go, Karpenter's v1beta1/constants.go).
const (
	// ActiveProvisioningStrategy, the default, keeps the buffer's capacity
	// provisioned as if its pods were pending. It is the only strategy
	// Karpenter and Joinery act on; a buffer with another one is reported
	// and left alone.
	ActiveProvisioningStrategy = "buffer.x-k8s.io/active-capacity"

	// ReadyForProvisioningCondition is True once the buffer's pod shape
	// and replica count are resolved.
	ReadyForProvisioningCondition = "ReadyForProvisioning"
	// ProvisioningCondition is True when all of the buffer's chunks fit on
	// capacity that exists (nodes, or machines already booting).
	ProvisioningCondition = "Provisioning"
	// LimitedByQuotasCondition is part of the shared API; Joinery does not
	// set it (no quotas), as Karpenter does not.
	LimitedByQuotasCondition = "LimitedByQuotas"

	// ScalableRef kinds the shared API resolves (group apps).
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindReplicaSet  = "ReplicaSet"
)

// Reasons of the ReadyForProvisioning condition (Karpenter's
// controllers/capacitybuffer/constants.go).
const (
	ReasonResolved            = "Resolved"
	ReasonScalableRefNotFound = "ScalableRefNotFound"
	ReasonPodTemplateNotFound = "PodTemplateNotFound"
	ReasonResolutionFailed    = "ResolutionFailed"
	// ReasonUnsupportedStrategy is Joinery's: the buffer asks for a
	// provisioning strategy no autoscaler here implements.
	ReasonUnsupportedStrategy = "UnsupportedProvisioningStrategy"
)

// Reasons of the Provisioning condition.
const (
	ReasonFitsExistingCapacity    = "FitsExistingCapacity"
	ReasonRequiresNewCapacity     = "RequiresNewCapacity"
	ReasonNotReadyForProvisioning = "NotReadyForProvisioning"
	ReasonBufferEmpty             = "BufferEmpty"
)
