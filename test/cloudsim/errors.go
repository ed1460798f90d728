package cloudsim

import (
	"fmt"
	"strings"
)

// InsufficientCapacityCode is the EC2 error code of a launch refused for
// want of capacity.
const InsufficientCapacityCode = "InsufficientInstanceCapacity"

// insufficientCapacity is EC2's answer when it has no capacity for the
// offering: the on-demand message names the zone and suggests the others;
// spot has its own message under the same code. Both are server errors.
func insufficientCapacity(o Offering, otherZones []string) *ec2APIError {
	if o.CapacityType == CapacityTypeSpot {
		return &ec2APIError{500, InsufficientCapacityCode, "There is no Spot capacity available that matches your request."}
	}
	msg := fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). "+
		"Our system will be working on provisioning additional capacity.", o.InstanceType, o.Zone)
	if len(otherZones) > 0 {
		msg += fmt.Sprintf(" You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.",
			o.InstanceType, strings.Join(otherZones, ", "))
	}
	return &ec2APIError{500, InsufficientCapacityCode, msg}
}

// launchErrors are EC2's HTTP status and wording of the errors
// RunInstances answers; %[1]s is the instance type, %[2]s the zone, %[3]s
// the subnet.
var launchErrorText = map[string]struct {
	status  int
	message string
}{
	"InsufficientInstanceCapacity":         {500, "We currently do not have sufficient %[1]s capacity in the Availability Zone you requested (%[2]s). Our system will be working on provisioning additional capacity."},
	"InsufficientCapacity":                 {500, "There is not enough capacity to fulfill your request."},
	"InsufficientHostCapacity":             {500, "There is not enough capacity to fulfill your Dedicated Host request."},
	"InsufficientReservedInstanceCapacity": {500, "There is not enough capacity to fulfill your request for Reserved Instances."},
	"InsufficientAddressCapacity":          {500, "Not enough available addresses to satisfy your minimum request."},
	"UnfulfillableCapacity":                {500, "Unable to fulfill capacity due to your request configuration. Please adjust your request and try again."},
	"InternalError":                        {500, "An internal error has occurred."},
	"Unavailable":                          {503, "The server is overloaded and can't handle the request."},
	"RequestLimitExceeded":                 {503, "Request limit exceeded."},
	"VcpuLimitExceeded":                    {400, "You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."},
	"MaxSpotInstanceCountExceeded":         {400, "Max spot instance count exceeded"},
	"InsufficientFreeAddressesInSubnet":    {400, "There are not enough free addresses in subnet '%[3]s' to satisfy the requested number of instances."},
	"Unsupported":                          {400, "The requested configuration is currently not supported. Please check the documentation for supported configurations."},
	"SpotMaxPriceTooLow":                   {400, "Your Spot request price is lower than the minimum required Spot request fulfillment price."},
	"ReservationCapacityExceeded":          {400, "The requested reservation does not have sufficient compatible and available capacity for this request."},
	"InvalidParameterValue":                {400, "Invalid value '%[1]s' for InstanceType."},
	"InstanceLimitExceeded":                {400, "You have requested more instances than your current instance limit allows for the specified instance type."},
}

// launchErrorFor is the error of an injected launch fault.
func launchErrorFor(f launchError, o Offering, subnetID string) *ec2APIError {
	text, ok := launchErrorText[f.code]
	if !ok {
		text.status, text.message = 400, "simulated fault: "+f.code
	}
	msg := f.message
	if msg == "" {
		// Messages that use none of the arguments get fmt's EXTRA suffix.
		msg = fmt.Sprintf(text.message, o.InstanceType, o.Zone, subnetID)
		if i := strings.Index(msg, "%!(EXTRA"); i >= 0 {
			msg = msg[:i]
		}
	}
	return &ec2APIError{text.status, f.code, msg}
}
