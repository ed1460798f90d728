package provisioning

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
)

// capaMessage is the InstanceReady message CAPA v2.13 writes when
// RunInstances fails: its wrapping, then aws-sdk-go-v2's operation error.
func capaMessage(code, msg string) string {
	return "failed to create AWSMachine instance: failed to run instance: operation error EC2: RunInstances, https response error StatusCode: 400, RequestID: 5f0d, api error " + code + ": " + msg
}

func TestClassifyLaunchError(t *testing.T) {
	for _, tc := range []struct {
		rule      string
		code, msg string
		class     LaunchErrorClass
		scope     LaunchErrorScope
		field     string // substring of the field to fix
	}{
		{"no capacity for the type in the zone is the offering", "InsufficientInstanceCapacity", "We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a).", LaunchErrorCapacity, ScopeOffering, ""},
		{"InsufficientCapacity is the offering", "InsufficientCapacity", "Insufficient capacity.", LaunchErrorCapacity, ScopeOffering, ""},
		{"UnfulfillableCapacity is the offering", "UnfulfillableCapacity", "Unable to fulfill capacity", LaunchErrorCapacity, ScopeOffering, ""},
		{"spot price below the market is the spot market of the offering", "SpotMaxPriceTooLow", "Your Spot request price of 0.01 is lower than the minimum required Spot request fulfillment price of 0.035.", LaunchErrorCapacity, ScopeSpotOffering, ""},
		{"the spot instance limit is the quota group", "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded", LaunchErrorCapacity, ScopeQuotaGroup, ""},
		{"the vCPU limit is the quota group", "VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 32 allows", LaunchErrorCapacity, ScopeQuotaGroup, ""},
		{"no free addresses is the pool's zone", "InsufficientFreeAddressesInSubnet", "The specified subnet subnet-1 does not have enough free addresses", LaunchErrorCapacity, ScopePoolZone, ""},
		{"an unsupported type is the type in the zone", "Unsupported", "Your requested instance type (m7i.large) is not supported in your requested Availability Zone (us-east-1e).", LaunchErrorCapacity, ScopeTypeInZone, ""},
		{"an instance type not supported, said as a parameter, is the type in the zone", "InvalidParameterValue", "The requested instance type m7i.large is not supported in the requested availability zone", LaunchErrorCapacity, ScopeTypeInZone, ""},
		{"a full reservation is the reservation", "ReservationCapacityExceeded", "The requested reservation does not have sufficient compatible and available capacity", LaunchErrorCapacity, ScopeReservation, ""},
		{"an architecture mismatch points at the AMI", "InvalidParameterValue", "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.", LaunchErrorConfiguration, ScopePool, "spec.template.spec.ami"},
		{"a missing AMI points at the AMI", "InvalidAMIID.NotFound", "The image id '[ami-123]' does not exist", LaunchErrorConfiguration, ScopePool, "spec.template.spec.ami"},
		{"a missing subnet points at the subnet", "InvalidSubnetID.NotFound", "The subnet ID 'subnet-9' does not exist", LaunchErrorConfiguration, ScopePool, "spec.template.spec.subnet"},
		{"a bad parameter combination is configuration, the message says which", "InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request", LaunchErrorConfiguration, ScopePool, ""},
		{"a missing security group points at the security groups", "InvalidGroup.NotFound", "The security group 'sg-1' does not exist", LaunchErrorConfiguration, ScopePool, "additionalSecurityGroups"},
		{"missing permissions are CAPA's credentials", "UnauthorizedOperation", "You are not authorized to perform this operation.", LaunchErrorConfiguration, ScopePool, "credentials"},
		{"throttling is left to CAPA's retries", "RequestLimitExceeded", "Request limit exceeded.", LaunchErrorTransient, "", ""},
		{"an unknown code is capacity of the offering", "SomethingNew", "a new failure", LaunchErrorUnknown, ScopeOffering, ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			msg := capaMessage(tc.code, tc.msg)
			code := EC2ErrorCode(msg)
			if code != tc.code {
				t.Fatalf("EC2ErrorCode = %q, want %q", code, tc.code)
			}
			got := ClassifyLaunchError(code, msg)
			if got.Class != tc.class || got.Scope != tc.scope {
				t.Errorf("class %s scope %q, want %s %q", got.Class, got.Scope, tc.class, tc.scope)
			}
			if !strings.Contains(got.Field, tc.field) || (tc.field == "" && tc.class == LaunchErrorCapacity && got.Field != "") {
				t.Errorf("field %q, want it to name %q", got.Field, tc.field)
			}
		})
	}
}

func TestClassifyCAPARefusalsBeforeEC2(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		msg   string
		class LaunchErrorClass
		field string
	}{
		{"a subnet in another zone than the failure domain is the subnet",
			`failed to create AWSMachine instance: failed to run machine "w-1", found 1 subnets matching criteria but post-filtering failed. subnet "subnet-1" availability zone "us-east-1a" does not match failure domain "us-east-1b".`,
			LaunchErrorConfiguration, "spec.template.spec.subnet"},
		{"no public subnet in the zone is publicIP",
			`failed to create AWSMachine instance: failed to run machine "w-1" with public IP, no public subnets available in availability zone "us-east-1b"`,
			LaunchErrorConfiguration, "spec.template.spec.publicIP"},
		{"spot with a reservation is the reservation",
			"failed to create AWSMachine instance: unable to generate marketOptions for spot instance, capacityReservationID is incompatible with marketType spot and spotMarketOptions",
			LaunchErrorConfiguration, "capacityReservationId"},
		{"waiting for CAPA's own infrastructure is transient",
			"failed to create AWSMachine instance: failed to run controlplane, APIServer ELB not available",
			LaunchErrorTransient, ""},
		{"a dynamic host allocation is not mistaken for an AMI",
			"failed to create AWSMachine instance: failed to allocate dedicated host: host limit",
			LaunchErrorTransient, ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			if code := EC2ErrorCode(tc.msg); code != "" {
				t.Fatalf("EC2ErrorCode = %q, want none", code)
			}
			got := ClassifyLaunchError("", tc.msg)
			if got.Class != tc.class || !strings.Contains(got.Field, tc.field) {
				t.Errorf("class %s field %q, want %s naming %q", got.Class, got.Field, tc.class, tc.field)
			}
		})
	}
}

func TestScopeBlocksWhatTheRefusalCovers(t *testing.T) {
	d := Decision{NodePool: "general", Offering: Offering{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot"}}
	pool := types.NamespacedName{Namespace: "team-a", Name: "general"}
	type offering struct {
		pool, reservation, typ, zone, capacityType string
		blocked                                    bool
	}
	for _, tc := range []struct {
		rule      string
		e         LaunchError
		region    string
		resv      string
		offerings []offering
	}{
		{"an offering refusal blocks that offering only", LaunchError{Scope: ScopeOffering}, "us-east-1", "", []offering{
			{"team-a/general", "", "m5.large", "us-east-1a", "spot", true},
			{"team-a/general", "", "m5.large", "us-east-1a", "on-demand", false},
			{"team-a/general", "", "m5.large", "us-east-1b", "spot", false},
		}},
		{"a spot market refusal leaves on-demand", LaunchError{Scope: ScopeSpotOffering}, "us-east-1", "", []offering{
			{"team-b/other", "", "m5.large", "us-east-1a", "spot", true},
			{"team-a/general", "", "m5.large", "us-east-1a", "on-demand", false},
			{"team-a/general", "", "c5.large", "us-east-1a", "spot", false},
		}},
		{"a quota refusal blocks the family group in every zone of the region, for its capacity type", LaunchError{Scope: ScopeQuotaGroup}, "us-east-1", "", []offering{
			{"team-a/general", "", "c5.xlarge", "us-east-1b", "spot", true},
			{"team-a/general", "", "m5.large", "us-east-1a", "on-demand", false},
			{"team-a/general", "", "g5.xlarge", "us-east-1a", "spot", false},
		}},
		{"no free addresses blocks the zone for the pool only", LaunchError{Scope: ScopePoolZone}, "us-east-1", "", []offering{
			{"team-a/general", "", "c5.large", "us-east-1a", "on-demand", true},
			{"team-a/gpu", "", "c5.large", "us-east-1a", "on-demand", false},
			{"team-a/general", "", "c5.large", "us-east-1b", "on-demand", false},
		}},
		{"an unsupported type blocks the type in the zone for both markets", LaunchError{Scope: ScopeTypeInZone}, "us-east-1", "", []offering{
			{"team-a/general", "", "m5.large", "us-east-1a", "on-demand", true},
			{"team-a/general", "", "m5.large", "us-east-1b", "on-demand", false},
		}},
		{"a full reservation blocks the pools targeting it", LaunchError{Scope: ScopeReservation}, "us-east-1", "cr-1", []offering{
			{"team-a/general", "cr-1", "m5.large", "us-east-1a", "on-demand", true},
			{"team-a/other", "", "m5.large", "us-east-1a", "on-demand", false},
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			s := ScopeOf(tc.e, d, pool, tc.region, tc.resv)
			for _, o := range tc.offerings {
				if got := s.Blocks("us-east-1", o.pool, o.reservation, o.typ, o.zone, o.capacityType); got != o.blocked {
					t.Errorf("%s blocks %+v: %v, want %v", s, o, got, o.blocked)
				}
			}
		})
	}
	q := ScopeOf(LaunchError{Scope: ScopeQuotaGroup}, d, pool, "us-east-1", "")
	if q.Blocks("eu-west-1", "team-a/general", "", "m5.large", "eu-west-1a", "spot") {
		t.Errorf("a quota of us-east-1 blocks eu-west-1")
	}
}

func TestQuotaGroup(t *testing.T) {
	for typ, want := range map[string]string{
		"m5.large": "standard", "c7g.xlarge": "standard", "t3.micro": "standard", "r6i.2xlarge": "standard",
		"g5.xlarge": "g", "vt1.3xlarge": "g", "p4d.24xlarge": "p", "inf2.xlarge": "inf", "trn1.2xlarge": "trn",
		"x2idn.16xlarge": "x", "f1.2xlarge": "f", "dl1.24xlarge": "dl", "hpc7g.4xlarge": "hpc", "u-6tb1.metal": "high-memory",
		"mac2.metal": "mac", "i4i.large": "standard", "z1d.large": "standard", "d3.xlarge": "standard", "hpc6a.48xlarge": "hpc",
	} {
		if got := QuotaGroup(typ); got != want {
			t.Errorf("QuotaGroup(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestInstanceGone(t *testing.T) {
	terminated := infrav1.InstanceStateTerminated
	running := infrav1.InstanceStateRunning
	withCondition := func(reason string) *infrav1.AWSMachine {
		return &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: &running, Conditions: clusterv1beta1.Conditions{{
			Type: infrav1.InstanceReadyCondition, Status: corev1.ConditionFalse, Reason: reason}}}}
	}
	for _, tc := range []struct {
		rule string
		aws  *infrav1.AWSMachine
		want bool
	}{
		{"a terminated instance is gone", &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: &terminated,
			FailureReason: ptr.To("UpdateError"), FailureMessage: ptr.To(`EC2 instance state "terminated" is unexpected`)}}, true},
		{"a shutting-down instance is gone", &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: ptr.To(infrav1.InstanceStateShuttingDown)}}, true},
		{"InstanceTerminated on InstanceReady is gone", withCondition(infrav1.InstanceTerminatedReason), true},
		{"a running instance is not", &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: &running}}, false},
		{"a refused launch is not (it never had an instance)", withCondition(infrav1.InstanceProvisionFailedReason), false},
		{"no AWSMachine is not", nil, false},
	} {
		if got := InstanceGone(tc.aws); got != tc.want {
			t.Errorf("%s: InstanceGone = %v", tc.rule, got)
		}
	}
}
