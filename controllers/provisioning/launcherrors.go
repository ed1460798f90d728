package provisioning

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	v1beta1conditions "sigs.k8s.io/cluster-api/util/deprecated/v1beta1/conditions"
)

// LaunchErrorClass is what a refused launch means for the next plan.
type LaunchErrorClass string

const (
	// LaunchErrorCapacity: EC2 lacks something right now (capacity, a
	// quota, addresses); the scope is avoided for --unavailable-offerings-ttl
	// and the pods are planned again with the fallbacks.
	LaunchErrorCapacity LaunchErrorClass = "capacity"
	// LaunchErrorConfiguration: the pool's templates ask for something EC2
	// or CAPA refuses whatever the offering; relaunching with the same
	// templates would fail the same way.
	LaunchErrorConfiguration LaunchErrorClass = "configuration"
	// LaunchErrorUnknown: a code this table does not know. It is treated
	// as capacity of the offering: fallbacks exist, and a wrong guess costs
	// one TTL of one offering, not a relaunch loop.
	LaunchErrorUnknown LaunchErrorClass = "unknown"
	// LaunchErrorTransient: EC2 throttled or failed inside, or CAPA waits
	// for something of its own (security groups, the load balancer,
	// bootstrap data). CAPA retries by itself; the Machine stays, bounded
	// by --registration-timeout.
	LaunchErrorTransient LaunchErrorClass = "transient"
)

// LaunchErrorScope is what a capacity refusal makes unavailable.
type LaunchErrorScope string

const (
	// ScopeOffering: the instance type in the zone, for the capacity type.
	ScopeOffering LaunchErrorScope = "offering"
	// ScopeSpotOffering: spot of the instance type in the zone (the spot
	// market there), on-demand stays.
	ScopeSpotOffering LaunchErrorScope = "spot-offering"
	// ScopeQuotaGroup: every type of the instance's vCPU quota group in the
	// region, for the capacity type (EC2's vCPU quotas are per region,
	// per group of families, separately for on-demand and spot).
	ScopeQuotaGroup LaunchErrorScope = "quota-group"
	// ScopePoolZone: the zone, for the pool whose subnet ran out of
	// addresses (another pool may use another subnet there).
	ScopePoolZone LaunchErrorScope = "pool-zone"
	// ScopeTypeInZone: the instance type in the zone, any capacity type.
	ScopeTypeInZone LaunchErrorScope = "type-in-zone"
	// ScopeReservation: launches of pools targeting the capacity
	// reservation.
	ScopeReservation LaunchErrorScope = "reservation"
	// ScopePool: the pool's templates, until they change or the backoff
	// passes (configuration errors).
	ScopePool LaunchErrorScope = "pool"
)

// LaunchError is a refused launch, classified.
type LaunchError struct {
	Class LaunchErrorClass
	Scope LaunchErrorScope
	// Code is EC2's error code ("" when CAPA refused before calling EC2).
	Code string
	// Field names the template field to fix (configuration errors).
	Field string
	// Message is CAPA's message as it stands on the AWSMachine.
	Message string
}

// Event reasons and metric reasons per class.
func (e LaunchError) EventReason() string {
	switch e.Class {
	case LaunchErrorConfiguration:
		return "LaunchConfigurationError"
	case LaunchErrorUnknown:
		return "LaunchFailed"
	case LaunchErrorTransient:
		return "LaunchRetrying"
	}
	return "InsufficientCapacity"
}

// Template fields a configuration error points at, as a user finds them
// from the NodePool.
const (
	fieldInfraTemplate = "the AWSMachineTemplate of spec.template.spec.infrastructureTemplateRef"
	fieldAMI           = fieldInfraTemplate + ", spec.template.spec.ami"
	fieldSubnet        = fieldInfraTemplate + ", spec.template.spec.subnet"
	fieldPublicIP      = fieldInfraTemplate + ", spec.template.spec.publicIP"
	fieldSecurityGroup = fieldInfraTemplate + ", spec.template.spec.additionalSecurityGroups"
	fieldSSHKey        = fieldInfraTemplate + ", spec.template.spec.sshKeyName"
	fieldVolumes       = fieldInfraTemplate + ", spec.template.spec.rootVolume / nonRootVolumes"
	fieldProfile       = fieldInfraTemplate + ", spec.template.spec.iamInstanceProfile"
	fieldReservation   = fieldInfraTemplate + ", spec.template.spec.capacityReservationId / marketType"
	fieldCredentials   = "CAPA's AWS credentials (the AWSCluster's identityRef or the controller's IAM role)"
)

var capacityCodes = map[string]LaunchErrorScope{
	"InsufficientInstanceCapacity": ScopeOffering,
	"InsufficientCapacity":         ScopeOffering,
	"UnfulfillableCapacity":        ScopeOffering,
	"InsufficientHostCapacity":     ScopeOffering,
	"SpotMaxPriceTooLow":           ScopeSpotOffering,
	// The spot vCPU quota of the account, per group of families: every
	// spot offering of the group is refused until instances end.
	"MaxSpotInstanceCountExceeded":         ScopeQuotaGroup,
	"VcpuLimitExceeded":                    ScopeQuotaGroup,
	"InstanceLimitExceeded":                ScopeQuotaGroup,
	"InsufficientFreeAddressesInSubnet":    ScopePoolZone,
	"Unsupported":                          ScopeTypeInZone,
	"ReservationCapacityExceeded":          ScopeReservation,
	"InsufficientReservedInstanceCapacity": ScopeReservation,
}

// transientCodes are EC2's "try again": nothing about the offering or the
// templates.
var transientCodes = map[string]bool{
	"RequestLimitExceeded": true, "Throttling": true, "ThrottlingException": true,
	"InternalError": true, "InternalFailure": true, "ServiceUnavailable": true, "Unavailable": true,
	"RequestExpired": true, "IdempotentParameterMismatch": true,
}

// configCodes map EC2 codes that no offering choice can cure to the field
// to fix.
var configCodes = map[string]string{
	"InvalidAMIID.NotFound":                  fieldAMI,
	"InvalidAMIID.Malformed":                 fieldAMI,
	"InvalidAMIID.Unavailable":               fieldAMI,
	"InvalidSubnetID.NotFound":               fieldSubnet,
	"InvalidSubnetID.Malformed":              fieldSubnet,
	"InvalidSubnet":                          fieldSubnet,
	"InvalidGroup.NotFound":                  fieldSecurityGroup,
	"InvalidGroupId.Malformed":               fieldSecurityGroup,
	"InvalidKeyPair.NotFound":                fieldSSHKey,
	"InvalidBlockDeviceMapping":              fieldVolumes,
	"InvalidParameterCombination":            "",
	"InvalidParameterValue":                  "",
	"InvalidParameter":                       "",
	"UnauthorizedOperation":                  fieldCredentials,
	"AuthFailure":                            fieldCredentials,
	"InvalidCapacityReservationId.NotFound":  fieldReservation,
	"InvalidCapacityReservationId.Malformed": fieldReservation,
}

// ClassifyLaunchError says what a refused launch means, from EC2's error
// code and CAPA's message. code is "" when CAPA refused before calling
// RunInstances (subnet selection, market options): then the message
// decides.
func ClassifyLaunchError(code, message string) LaunchError {
	e := LaunchError{Code: code, Message: message}
	lower := strings.ToLower(message)
	if code == "" {
		e.Class, e.Scope = LaunchErrorConfiguration, ScopePool
		switch {
		case strings.Contains(lower, "does not match failure domain"):
			e.Field = fieldSubnet
		case strings.Contains(lower, "public subnets available"), strings.Contains(lower, "is a private subnet"):
			e.Field = fieldPublicIP
		case strings.Contains(lower, "subnet"):
			e.Field = fieldSubnet
		case strings.Contains(lower, "capacityreservationid"), strings.Contains(lower, "capacity-blocks"):
			e.Field = fieldReservation
		case strings.Contains(lower, "image"), strings.Contains(lower, " ami"):
			e.Field = fieldAMI
		default:
			e.Class, e.Scope = LaunchErrorTransient, ""
		}
		return e
	}
	if transientCodes[code] {
		e.Class = LaunchErrorTransient
		return e
	}
	if scope, ok := capacityCodes[code]; ok {
		e.Class, e.Scope = LaunchErrorCapacity, scope
		return e
	}
	if code == "InvalidParameterValue" && strings.Contains(lower, "instance type") && strings.Contains(lower, "not supported") {
		// A type the zone does not offer, said in other words.
		e.Class, e.Scope = LaunchErrorCapacity, ScopeTypeInZone
		return e
	}
	if field, ok := configCodes[code]; ok {
		e.Class, e.Scope, e.Field = LaunchErrorConfiguration, ScopePool, field
		if strings.Contains(lower, "architecture") {
			// "The architecture 'arm64' of the specified instance type
			// does not match the architecture 'x86_64' of the specified AMI."
			e.Field = fieldAMI
		} else if strings.Contains(lower, "iam instance profile") || strings.Contains(lower, "iaminstanceprofile") {
			e.Field = fieldProfile
		}
		return e
	}
	if strings.HasPrefix(code, "InvalidAMI") {
		e.Class, e.Scope, e.Field = LaunchErrorConfiguration, ScopePool, fieldAMI
		return e
	}
	e.Class, e.Scope = LaunchErrorUnknown, ScopeOffering
	return e
}

// apiError finds the last "api error <Code>: <message>" of an
// aws-sdk-go-v2 error chain (smithy's OperationError around an APIError).
var apiError = regexp.MustCompile(`api error ([A-Za-z][A-Za-z0-9.]*): `)

// EC2ErrorCode returns the EC2 error code in CAPA's message ("" if none).
func EC2ErrorCode(message string) string {
	all := apiError.FindAllStringSubmatch(message, -1)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1][1]
}

// launchFailure returns CAPA's message when the AWSMachine's launch was
// refused (InstanceReady=False, reason InstanceProvisionFailed: CAPA
// retries the same request forever, keeping that reason).
func launchFailure(aws *infrav1.AWSMachine) (string, bool) {
	c := v1beta1conditions.Get(aws, infrav1.InstanceReadyCondition)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != infrav1.InstanceProvisionFailedReason {
		return "", false
	}
	return c.Message, true
}

// InstanceGone reports an AWSMachine whose instance ended outside
// Joinery and CAPI (terminated or shutting down: a person, a spot
// reclaim, a failed host). CAPA marks it so and never launches again for
// the AWSMachine, so the Machine is no capacity and will never be.
func InstanceGone(aws *infrav1.AWSMachine) bool {
	if aws == nil {
		return false
	}
	if s := aws.Status.InstanceState; s != nil && (*s == infrav1.InstanceStateTerminated || *s == infrav1.InstanceStateShuttingDown) {
		return true
	}
	c := v1beta1conditions.Get(aws, infrav1.InstanceReadyCondition)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == infrav1.InstanceTerminatedReason
}
