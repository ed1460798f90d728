package cloudsim

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// ec2Error renders an EC2 API error the way aws-sdk-go-v2 does, so the
// message CAPA puts on the AWSMachine reads as it would against AWS.
//
// The request ID is derived from the AWSMachine, so a launch refused again
// for the same reason leaves the AWSMachine's status unchanged (no update
// event, no hot loop); AWS's would differ on every call.
func ec2Error(requestSeed, code string, status int, message string) error {
	return fmt.Errorf("operation error EC2: RunInstances, https response error StatusCode: %d, RequestID: %s, api error %s: %s",
		status, requestID(requestSeed), code, message)
}

// InsufficientCapacityCode is the EC2 error code of a refused launch.
const InsufficientCapacityCode = "InsufficientInstanceCapacity"

// insufficientCapacity is EC2's answer when it has no capacity for the
// offering: the on-demand message names the zone and suggests the others;
// spot has its own message under the same code.
func insufficientCapacity(requestSeed string, o Offering, otherZones []string) error {
	if o.CapacityType == CapacityTypeSpot {
		return ec2Error(requestSeed, InsufficientCapacityCode, 500, "There is no Spot capacity available that matches your request.")
	}
	msg := fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). "+
		"Our system will be working on provisioning additional capacity.", o.InstanceType, o.Zone)
	if len(otherZones) > 0 {
		msg += fmt.Sprintf(" You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.",
			o.InstanceType, strings.Join(otherZones, ", "))
	}
	return ec2Error(requestSeed, InsufficientCapacityCode, 500, msg)
}

func requestID(seed string) string {
	b := sha256.Sum256([]byte(seed))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
