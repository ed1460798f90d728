package cloudsim

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/joinery-dev/joinery/cloud"
)

// The EC2 actions of instances and the resources they use, as CAPA
// v2.13's AWSMachine controller calls them (pkg/cloud/services/ec2):
// RunInstances, DescribeInstances, TerminateInstances, DescribeImages,
// DescribeSubnets, DescribeSecurityGroups, DescribeNetworkInterfaces,
// DescribeNetworkInterfaceAttribute, ModifyNetworkInterfaceAttribute,
// CreateTags, DeleteTags, ModifyInstanceMetadataOptions, DescribeVpcs and
// DescribeDhcpOptions (which CAPA reads for the instance's addresses), and
// DescribeCapacityReservations, which Joinery's live catalog reads as
// Karpenter's capacity reservation provider does (reservations.go).

// clusterTagPrefix is the tag CAPA puts on every resource of a cluster:
// sigs.k8s.io/cluster-api-provider-aws/cluster/<cluster name>=owned.
const clusterTagPrefix = "sigs.k8s.io/cluster-api-provider-aws/cluster/"

// instanceWire is what EC2 keeps of an instance beyond the ledger.
type instanceWire struct {
	reservationID  string
	vpcID, zoneID  string
	eniID          string
	volumes        []string // volume IDs, root first
	rootDeviceName string
	rootVolumeGiB  int32
	userData       []byte // as RunInstances got it, after base64
	keyName        string
	iamProfile     string
	metadata       ec2MetadataOptionsXML
	spotRequestID  string
	capacityPref   string
	capacityTarget string // the targeted reservation
	capacityBlock  bool   // launched with the capacity-block market type
	arch           string
	facts          cloud.InstanceType
	ebsOptimized   bool
	groups         []string // at launch, for the reservation's groupSet
}

type networkInterface struct {
	id, subnetID, vpcID, zone, zoneID string
	privateIP, dnsName, mac           string
	description                       string
	groups                            []string
	instanceID, attachmentID          string
	attachTime                        time.Time
	sourceDestCheck                   bool
}

type volume struct {
	id, device, instanceID string
	sizeGiB                int32
	attachTime             time.Time
}

// params that each action reads; any other is refused (UnknownParameter)
// rather than ignored.
var computeParams = map[string][]string{
	"RunInstances": {"ImageId", "InstanceType", "MinCount", "MaxCount", "SubnetId", "SecurityGroupId", "NetworkInterface", "UserData",
		"TagSpecification", "InstanceMarketOptions", "Placement", "BlockDeviceMapping", "MetadataOptions", "IamInstanceProfile",
		"CapacityReservationSpecification", "KeyName", "EbsOptimized", "ClientToken"},
	"DescribeInstances":                 {"InstanceId", "Filter", "MaxResults", "NextToken"},
	"TerminateInstances":                {"InstanceId", "Force", "SkipOsShutdown"},
	"DescribeImages":                    {"ImageId", "Owner", "ExecutableBy", "Filter", "MaxResults", "NextToken", "IncludeDeprecated", "IncludeDisabled"},
	"DescribeSubnets":                   {"SubnetId", "Filter", "MaxResults", "NextToken"},
	"DescribeSecurityGroups":            {"GroupId", "GroupName", "Filter", "MaxResults", "NextToken"},
	"DescribeNetworkInterfaces":         {"NetworkInterfaceId", "Filter", "MaxResults", "NextToken"},
	"DescribeNetworkInterfaceAttribute": {"NetworkInterfaceId", "Attribute"},
	"ModifyNetworkInterfaceAttribute":   {"NetworkInterfaceId", "SecurityGroupId", "SourceDestCheck", "Description"},
	"CreateTags":                        {"ResourceId", "Tag"},
	"DeleteTags":                        {"ResourceId", "Tag"},
	"ModifyInstanceMetadataOptions":     {"InstanceId", "HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags"},
	"DescribeVpcs":                      {"VpcId", "Filter", "MaxResults", "NextToken"},
	"DescribeDhcpOptions":               {"DhcpOptionsId", "Filter", "MaxResults", "NextToken"},
	"DescribeCapacityReservations":      {"CapacityReservationId", "Filter", "MaxResults", "NextToken"},
}

// serveCompute answers the compute actions; the EC2 endpoint calls it with
// its lock held.
func (c *Cloud) serveCompute(action string, in ec2Input, requestID string) (any, *ec2APIError, bool) {
	allowed, ok := computeParams[action]
	if !ok {
		return nil, nil, false
	}
	for key := range in.values {
		top, _, _ := strings.Cut(key, ".")
		if top == "Action" || top == "Version" || top == "DryRun" {
			continue
		}
		if !slices.Contains(allowed, top) {
			return nil, &ec2APIError{400, "UnknownParameter", fmt.Sprintf("The parameter %s is not recognized by the simulated EC2's %s, which reads %s.", key, action, strings.Join(allowed, ", "))}, true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var out any
	var err *ec2APIError
	switch action {
	case "RunInstances":
		out, err = c.runInstances(in, requestID, now)
	case "DescribeInstances":
		out, err = c.describeInstances(in, requestID, now)
	case "TerminateInstances":
		out, err = c.terminateInstances(in, requestID, now)
	case "DescribeImages":
		out, err = c.describeImages(in, requestID)
	case "DescribeSubnets":
		out, err = c.describeSubnets(in, requestID)
	case "DescribeSecurityGroups":
		out, err = c.describeSecurityGroups(in, requestID)
	case "DescribeNetworkInterfaces":
		out, err = c.describeNetworkInterfaces(in, requestID)
	case "DescribeNetworkInterfaceAttribute":
		out, err = c.describeNetworkInterfaceAttribute(in, requestID)
	case "ModifyNetworkInterfaceAttribute":
		out, err = c.modifyNetworkInterfaceAttribute(in, requestID)
	case "CreateTags", "DeleteTags":
		out, err = c.changeTags(action, in, requestID, now)
	case "ModifyInstanceMetadataOptions":
		out, err = c.modifyInstanceMetadataOptions(in, requestID, now)
	case "DescribeVpcs":
		out, err = c.describeVpcs(in, requestID)
	case "DescribeDhcpOptions":
		out, err = c.describeDhcpOptions(in, requestID)
	case "DescribeCapacityReservations":
		out, err = c.describeCapacityReservations(in, requestID, now)
	}
	return out, err, true
}

// Parameter helpers.

func errMissing(name string) *ec2APIError {
	return &ec2APIError{400, "MissingParameter", fmt.Sprintf("The request must contain the parameter %s", name)}
}

func errUnknownSubParam(key, action string) *ec2APIError {
	return &ec2APIError{400, "UnknownParameter", fmt.Sprintf("The parameter %s is not recognized by the simulated EC2's %s.", key, action)}
}

// structList returns the members of a list of structures (Key.N.Field):
// for each N, in order, the fields by their remaining key.
func (in ec2Input) structList(key string) []map[string]string {
	byIndex := map[int]map[string]string{}
	for k, v := range in.values {
		rest, ok := strings.CutPrefix(k, key+".")
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || len(v) == 0 {
			continue
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		byIndex[n][field] = v[0]
	}
	idx := slices.Sorted(maps.Keys(byIndex))
	out := make([]map[string]string, 0, len(idx))
	for _, n := range idx {
		out = append(out, byIndex[n])
	}
	return out
}

// sub returns the fields of m under prefix (prefix.X -> X).
func sub(m map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
			out[rest] = v
		}
	}
	return out
}

// listOf returns prefix.1, prefix.2, ... of m.
func listOf(m map[string]string, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := m[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// checkFields refuses fields of a structure parameter the simulator does
// not read.
func checkFields(m map[string]string, where, action string, known ...string) *ec2APIError {
	for k := range m {
		top, _, _ := strings.Cut(k, ".")
		if !slices.Contains(known, top) {
			return errUnknownSubParam(where+"."+k, action)
		}
	}
	return nil
}

var tagFilter = regexp.MustCompile(`^tag:(.+)$`)

// checkFiltersTagged is checkFilters that also takes tag:<key> filters.
func (in ec2Input) checkFiltersTagged(known ...string) *ec2APIError {
	rest := ec2Input{values: in.values, filters: map[string][]string{}}
	for name, v := range in.filters {
		if tagFilter.MatchString(name) {
			if len(v) == 0 {
				return errEC2InvalidParameterValue("The filter '%s' has no values", name)
			}
			continue
		}
		rest.filters[name] = v
	}
	return rest.checkFilters(known...)
}

// matchTags applies the tag:<key> and tag-key filters to a resource's tags.
func (in ec2Input) matchTags(tags map[string]string) bool {
	for name := range in.filters {
		if m := tagFilter.FindStringSubmatch(name); m != nil {
			v, ok := tags[m[1]]
			if !ok || !in.match(name, v) {
				return false
			}
		}
	}
	if _, ok := in.filters["tag-key"]; ok {
		return slices.ContainsFunc(slices.Collect(maps.Keys(tags)), func(k string) bool { return in.match("tag-key", k) })
	}
	return true
}

// matchAny passes when any of values passes the named filter.
func (in ec2Input) matchAny(name string, values []string) bool {
	if _, ok := in.filters[name]; !ok {
		return true
	}
	return slices.ContainsFunc(values, func(v string) bool { return in.match(name, v) })
}

func tagSet(tags map[string]string) []ec2Tag {
	out := make([]ec2Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, ec2Tag{Key: k, Value: tags[k]})
	}
	return out
}

func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

var stateCodes = map[string]int{StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48}

func stateOf(name string) ec2State { return ec2State{Code: stateCodes[name], Name: name} }

// RunInstances.

func (c *Cloud) runInstances(in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	const action = "RunInstances"
	// The SDK sends an idempotency token with every RunInstances; a retry
	// with the same token gets the instances of the first call.
	token := in.get("ClientToken")
	if ids, ok := c.clientTokens[token]; ok && token != "" {
		resp := ec2RunInstancesResponse{Namespace: ec2Namespace, RequestID: requestID}
		resp.OwnerID = c.opts.AccountID
		for i, id := range ids {
			inst := c.instances[id]
			resp.ReservationID = inst.wire.reservationID
			x := c.instanceXML(inst, now)
			x.AMILaunchIndex, x.ClientToken = i, token
			resp.Instances = append(resp.Instances, x)
		}
		return resp, nil
	}
	imageID := in.get("ImageId")
	if imageID == "" {
		return nil, errMissing("ImageId")
	}
	img, ok := c.net.images[imageID]
	if !ok {
		return nil, &ec2APIError{400, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", imageID)}
	}
	instanceType := in.get("InstanceType")
	if instanceType == "" {
		instanceType = "m1.small" // EC2's default
	}
	facts, ok := c.ec2.types[instanceType]
	if !ok {
		return nil, errEC2InvalidParameterValue("Invalid value '%s' for InstanceType.", instanceType)
	}
	typeArch := ArchitectureX86_64
	if facts.Arch == cloud.ArchARM64 {
		typeArch = ArchitectureARM64
	}
	if typeArch != img.Architecture {
		return nil, errEC2InvalidParameterValue("The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. "+
			"Specify an instance type and an AMI that have matching architectures, and try again. "+
			"You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.", typeArch, img.Architecture)
	}
	minCount, err1 := strconv.Atoi(in.get("MinCount"))
	maxCount, err2 := strconv.Atoi(in.get("MaxCount"))
	switch {
	case in.get("MinCount") == "":
		return nil, errMissing("MinCount")
	case in.get("MaxCount") == "":
		return nil, errMissing("MaxCount")
	case err1 != nil || err2 != nil || minCount < 1 || maxCount < minCount:
		return nil, errEC2InvalidParameterValue("Value (%s) for parameter MinCount and (%s) for MaxCount are invalid: want 1 <= MinCount <= MaxCount.", in.get("MinCount"), in.get("MaxCount"))
	}

	// Network: an instance-level subnet and groups, or one network
	// interface to create (device index 0).
	subnetID, groups := in.get("SubnetId"), in.list("SecurityGroupId")
	nis := in.structList("NetworkInterface")
	if len(nis) > 0 {
		if subnetID != "" {
			return nil, &ec2APIError{400, "InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request"}
		}
		if len(groups) > 0 {
			return nil, &ec2APIError{400, "InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request"}
		}
		if len(nis) > 1 {
			return nil, &ec2APIError{400, "Unsupported", "The simulated EC2 launches instances with one network interface; the request has " + strconv.Itoa(len(nis)) + "."}
		}
		ni := nis[0]
		if err := checkFields(ni, "NetworkInterface.1", action, "DeviceIndex", "SubnetId", "SecurityGroupId", "AssociatePublicIpAddress", "DeleteOnTermination", "Description", "InterfaceType"); err != nil {
			return nil, err
		}
		if d := ni["DeviceIndex"]; d != "" && d != "0" {
			return nil, errEC2InvalidParameterValue("Value (%s) for parameter networkInterface.deviceIndex is invalid: the primary network interface has device index 0.", d)
		}
		if t := ni["InterfaceType"]; t != "" && t != "interface" {
			return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("The simulated EC2 does not create %s network interfaces.", t)}
		}
		subnetID, groups = ni["SubnetId"], listOf(ni, "SecurityGroupId")
	}
	placement := sub(in.values2(), "Placement")
	if err := checkFields(placement, "Placement", action, "AvailabilityZone", "Tenancy"); err != nil {
		return nil, err
	}
	if t := placement["Tenancy"]; t != "" && t != "default" {
		return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("The simulated EC2 runs instances with default tenancy, not %q.", t)}
	}
	zone := placement["AvailabilityZone"]
	var sn *subnet
	if subnetID != "" {
		if sn, ok = c.net.subnets[subnetID]; !ok {
			return nil, &ec2APIError{400, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", subnetID)}
		}
		if zone != "" && zone != sn.AvailabilityZone {
			return nil, errEC2InvalidParameterValue("Value (%s) for parameter availabilityZone is invalid. Subnet '%s' is in the availability zone %s", zone, sn.ID, sn.AvailabilityZone)
		}
	} else {
		if zone != "" && c.ec2.zoneID(zone) == "" {
			return nil, errEC2InvalidParameterValue("Invalid availability zone: [%s]", zone)
		}
		for _, id := range slices.Sorted(maps.Keys(c.net.subnets)) {
			s := c.net.subnets[id]
			if s.defaultAZ && (zone == "" || s.AvailabilityZone == zone) && (sn == nil || s.AvailabilityZone < sn.AvailabilityZone) {
				sn = s
			}
		}
		if sn == nil {
			return nil, &ec2APIError{400, "VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC."}
		}
	}
	zone = sn.AvailabilityZone
	if len(groups) == 0 {
		for _, g := range c.net.groups {
			if g.vpcID == sn.vpcID && g.Name == "default" {
				groups = []string{g.ID}
			}
		}
	}
	for _, g := range groups {
		sg, ok := c.net.groups[g]
		if !ok || sg.vpcID != sn.vpcID {
			return nil, &ec2APIError{400, "InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", g, sn.vpcID)}
		}
	}
	if !c.ec2.offered[sn.zoneID][instanceType] {
		var others []string
		for _, z := range c.ec2.zones {
			if c.ec2.offered[z.ID][instanceType] {
				others = append(others, z.Name)
			}
		}
		sort.Strings(others)
		return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("Your requested instance type (%s) is not supported in your requested Availability Zone (%s). "+
			"Please retry your request by not specifying an Availability Zone or choosing %s.", instanceType, zone, strings.Join(others, ", "))}
	}

	// Market.
	market := sub(in.values2(), "InstanceMarketOptions")
	if err := checkFields(market, "InstanceMarketOptions", action, "MarketType", "SpotOptions"); err != nil {
		return nil, err
	}
	capacityType, maxPrice := CapacityTypeOnDemand, 0.0
	switch market["MarketType"] {
	case "":
		if len(market) > 0 {
			return nil, errMissing("InstanceMarketOptions.MarketType")
		}
	case "spot":
		capacityType = CapacityTypeSpot
		spot := sub(market, "SpotOptions")
		if err := checkFields(spot, "InstanceMarketOptions.SpotOptions", action, "MaxPrice", "SpotInstanceType", "InstanceInterruptionBehavior"); err != nil {
			return nil, err
		}
		if t := spot["SpotInstanceType"]; t != "" && t != "one-time" {
			return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("The simulated EC2 runs one-time spot instances, not %s.", t)}
		}
		if b := spot["InstanceInterruptionBehavior"]; b != "" && b != "terminate" {
			return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("The simulated EC2 terminates interrupted spot instances; InstanceInterruptionBehavior %s is not simulated.", b)}
		}
		if s := spot["MaxPrice"]; s != "" {
			p, err := strconv.ParseFloat(s, 64)
			if err != nil || p <= 0 {
				return nil, errEC2InvalidParameterValue("Value (%s) for parameter spotPrice is invalid.", s)
			}
			maxPrice = p
		}
	case ReservationTypeCapacityBlock:
		if len(sub(market, "SpotOptions")) > 0 {
			return nil, &ec2APIError{400, "InvalidParameterCombination", "SpotOptions cannot be specified with the market type capacity-block."}
		}
	default:
		return nil, &ec2APIError{400, "Unsupported", fmt.Sprintf("The simulated EC2 does not sell the %s market type.", market["MarketType"])}
	}

	// Capacity reservations: a targeted one, or an open one EC2 matches.
	cr := sub(in.values2(), "CapacityReservationSpecification")
	if err := checkFields(cr, "CapacityReservationSpecification", action, "CapacityReservationPreference", "CapacityReservationTarget"); err != nil {
		return nil, err
	}
	target := cr["CapacityReservationTarget.CapacityReservationId"]
	if err := checkFields(sub(cr, "CapacityReservationTarget"), "CapacityReservationSpecification.CapacityReservationTarget", action, "CapacityReservationId"); err != nil {
		return nil, err
	}
	switch p := cr["CapacityReservationPreference"]; p {
	case "", "open", "none", "capacity-reservations-only":
	default:
		return nil, errEC2InvalidParameterValue("Value (%s) for parameter capacityReservationPreference is invalid.", p)
	}
	resv, apiErr := c.reservationFor(target, market["MarketType"], cr["CapacityReservationPreference"], instanceType, zone, minCount, now)
	if apiErr != nil {
		return nil, apiErr
	}
	if resv != nil {
		capacityType = CapacityTypeReserved
		maxCount = min(maxCount, resv.available())
	}
	o := Offering{InstanceType: instanceType, Zone: zone, CapacityType: capacityType}
	price, _ := c.opts.Prices(instanceType, zone, capacityType)
	if capacityType == CapacityTypeSpot {
		if p, ok := c.ec2.currentSpotPrice(instanceType, sn.zoneID); ok {
			if maxPrice > 0 && p > maxPrice {
				return nil, &ec2APIError{400, "SpotMaxPriceTooLow", fmt.Sprintf("Your Spot request price of %s is lower than the minimum required Spot request fulfillment price of %s.",
					strconv.FormatFloat(maxPrice, 'f', -1, 64), strconv.FormatFloat(p, 'f', -1, 64))}
			}
			if c.defaultPrices {
				price = p
			}
		}
	}

	// Faults, in the order EC2 would meet them: capacity, then limits. A
	// reservation's room is held for it: no shortage of capacity reaches it.
	for _, f := range c.ice {
		if resv == nil && f.matches(o) {
			var others []string
			for _, z := range c.ec2.zones {
				if z.Name != zone && c.ec2.offered[z.ID][instanceType] {
					others = append(others, z.Name)
				}
			}
			sort.Strings(others)
			return nil, insufficientCapacity(o, others)
		}
	}
	for _, f := range c.launchErrors {
		if f.match.matches(o) {
			return nil, launchErrorFor(f, o, sn.ID)
		}
	}

	// Storage.
	rootGiB := img.RootVolumeGiB
	type bdm struct {
		device string
		size   int32
	}
	var extra []bdm
	for i, m := range in.structList("BlockDeviceMapping") {
		where := fmt.Sprintf("BlockDeviceMapping.%d", i+1)
		if err := checkFields(m, where, action, "DeviceName", "Ebs", "NoDevice", "VirtualName"); err != nil {
			return nil, err
		}
		ebs := sub(m, "Ebs")
		if err := checkFields(ebs, where+".Ebs", action, "VolumeSize", "VolumeType", "DeleteOnTermination", "Encrypted", "Iops", "Throughput", "KmsKeyId"); err != nil {
			return nil, err
		}
		if m["DeviceName"] == "" {
			return nil, errMissing(where + ".DeviceName")
		}
		size := int32(0)
		if s := ebs["VolumeSize"]; s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 16384 {
				return nil, errEC2InvalidParameterValue("Volume size %s is out of range 1-16384 GiB", s)
			}
			size = int32(n)
		}
		if m["DeviceName"] == img.RootDeviceName {
			if size != 0 && size < img.RootVolumeGiB {
				return nil, &ec2APIError{400, "InvalidBlockDeviceMapping", fmt.Sprintf("Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB", size, snapshotOf(img), img.RootVolumeGiB)}
			}
			if size != 0 {
				rootGiB = size
			}
			continue
		}
		if size == 0 {
			return nil, errEC2InvalidParameterValue("The request must contain the parameter size or snapshotId for %s", m["DeviceName"])
		}
		extra = append(extra, bdm{m["DeviceName"], size})
	}

	// Tags.
	tagsFor := map[string]map[string]string{}
	for i, spec := range in.structList("TagSpecification") {
		rt := spec["ResourceType"]
		switch rt {
		case "instance", "volume", "network-interface", "spot-instances-request":
		default:
			return nil, errEC2InvalidParameterValue("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		if err := checkFields(spec, fmt.Sprintf("TagSpecification.%d", i+1), action, "ResourceType", "Tag"); err != nil {
			return nil, err
		}
		if tagsFor[rt] == nil {
			tagsFor[rt] = map[string]string{}
		}
		for _, t := range (ec2Input{values: map[string][]string{}}).fromMap(spec).structList("Tag") {
			if strings.HasPrefix(t["Key"], "aws:") {
				return nil, errEC2InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
			}
			tagsFor[rt][t["Key"]] = t["Value"]
		}
	}

	// Instance metadata, IAM, capacity reservations, user data.
	md, apiErr := metadataOptions(sub(in.values2(), "MetadataOptions"), ec2MetadataOptionsXML{
		State: "applied", HTTPTokens: "optional", HTTPPutResponseHopLimit: 1, HTTPEndpoint: "enabled", HTTPProtocolIPv6: "disabled", InstanceMetadataTags: "disabled",
	}, "MetadataOptions")
	if apiErr != nil {
		return nil, apiErr
	}
	iam := sub(in.values2(), "IamInstanceProfile")
	if err := checkFields(iam, "IamInstanceProfile", action, "Name", "Arn"); err != nil {
		return nil, err
	}
	iamArn := iam["Arn"]
	if iam["Name"] != "" {
		iamArn = fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", c.opts.AccountID, iam["Name"])
	}
	var userData []byte
	if s := in.get("UserData"); s != "" {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errEC2InvalidParameterValue("Invalid BASE64 encoding of user data.")
		}
		if len(b) > 16384 {
			return nil, errEC2InvalidParameterValue("User data is limited to 16384 bytes")
		}
		userData = b
	}

	// Addresses, all or none.
	var ips []string
	for range maxCount {
		ip, ok := sn.allocateIP()
		if !ok {
			break
		}
		ips = append(ips, ip)
	}
	if len(ips) < minCount {
		for _, ip := range ips {
			sn.releaseIP(ip)
		}
		return nil, &ec2APIError{400, "InsufficientFreeAddressesInSubnet", fmt.Sprintf("There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.ID)}
	}

	reservation := newID("r")
	resp := ec2RunInstancesResponse{Namespace: ec2Namespace, RequestID: requestID}
	resp.ReservationID, resp.OwnerID = reservation, c.opts.AccountID
	for i, ip := range ips {
		inst := &Instance{
			ID: newID("i"), Offering: o, PricePerHour: price, MaxPrice: maxPrice, ImageID: img.ID, SubnetID: sn.ID, PrivateIP: ip,
			State: StatePending, LaunchTime: now, bootDelay: c.opts.BootDelay, hostname: privateDNSName(ip, c.opts.Region),
		}
		inst.Tags = maps.Clone(tagsFor["instance"])
		if inst.Tags == nil {
			inst.Tags = map[string]string{}
		}
		c.net.tags[inst.ID] = inst.Tags
		c.attribute(inst)
		w := &instanceWire{
			reservationID: reservation, vpcID: sn.vpcID, zoneID: sn.zoneID, rootDeviceName: img.RootDeviceName, rootVolumeGiB: rootGiB,
			userData: userData, keyName: in.get("KeyName"), iamProfile: iamArn, metadata: md, capacityPref: cr["CapacityReservationPreference"],
			arch: typeArch, facts: facts, ebsOptimized: in.get("EbsOptimized") == "true", groups: slices.Clone(groups),
			capacityTarget: target, capacityBlock: market["MarketType"] == ReservationTypeCapacityBlock,
		}
		if resv != nil {
			resv.instances[inst.ID] = true
			inst.CapacityReservationID = resv.ID
		}
		if capacityType == CapacityTypeSpot {
			w.spotRequestID = "sir-" + newID("x")[2:10]
		}
		eni := &networkInterface{
			id: newID("eni"), subnetID: sn.ID, vpcID: sn.vpcID, zone: zone, zoneID: sn.zoneID, privateIP: ip, dnsName: inst.hostname,
			mac:    macAddress(ip),
			groups: slices.Clone(groups), instanceID: inst.ID, attachmentID: newID("eni-attach"), attachTime: now, sourceDestCheck: true,
		}
		c.net.enis[eni.id] = eni
		c.net.tags[eni.id] = maps.Clone(tagsFor["network-interface"])
		w.eniID = eni.id
		for _, v := range append([]bdm{{img.RootDeviceName, rootGiB}}, extra...) {
			vol := &volume{id: newID("vol"), device: v.device, instanceID: inst.ID, sizeGiB: v.size, attachTime: now}
			c.net.volumes[vol.id] = vol
			c.net.tags[vol.id] = maps.Clone(tagsFor["volume"])
			w.volumes = append(w.volumes, vol.id)
		}
		inst.wire = w
		for _, s := range c.slowBoots {
			if s.match.matches(o) {
				inst.bootDelay = s.delay
				break
			}
		}
		for _, n := range c.neverJoin {
			if n.matches(o) {
				inst.neverJoin = true
			}
		}
		c.instances[inst.ID] = inst
		if token != "" {
			c.clientTokens[token] = append(c.clientTokens[token], inst.ID)
		}
		c.scheduleJoin(inst.ID, inst.bootDelay+c.opts.JoinDelay)
		x := c.instanceXML(inst, now)
		x.AMILaunchIndex, x.ClientToken = i, token
		resp.Instances = append(resp.Instances, x)
		c.opts.Log.Info("RunInstances", "instance", inst.ID, "offering", o.String(), "pricePerHour", price, "awsMachine", inst.AWSMachine.String(), "subnet", sn.ID)
	}
	return resp, nil
}

// values2 flattens the request's values to their first value.
func (in ec2Input) values2() map[string]string {
	out := make(map[string]string, len(in.values))
	for k, v := range in.values {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// fromMap is an input over a flattened structure.
func (in ec2Input) fromMap(m map[string]string) ec2Input {
	for k, v := range m {
		in.values[k] = []string{v}
	}
	return in
}

// macAddress is a locally administered MAC derived from the address, so
// every interface of the simulation has its own.
func macAddress(ip string) string {
	parts := strings.Split(ip, ".")
	out := "0e:5a"
	for _, p := range parts {
		n, _ := strconv.Atoi(p)
		out += fmt.Sprintf(":%02x", n)
	}
	return out
}

func snapshotOf(img *Image) string { return "snap-" + strings.TrimPrefix(img.ID, "ami-") }

// attribute names the cluster and AWSMachine an instance was launched for
// from CAPA's tags; mu held.
func (c *Cloud) attribute(inst *Instance) {
	for k, v := range inst.Tags {
		if name, ok := strings.CutPrefix(k, clusterTagPrefix); ok && v == "owned" {
			inst.Cluster.Name = name
			if cl, ok := c.clusterNamed(name); ok {
				inst.Cluster = cl
			}
		}
	}
	if name := inst.Tags["Name"]; name != "" {
		inst.AWSMachine = types.NamespacedName{Namespace: inst.Cluster.Namespace, Name: name}
	}
}

func metadataOptions(m map[string]string, base ec2MetadataOptionsXML, where string) (ec2MetadataOptionsXML, *ec2APIError) {
	if err := checkFields(m, where, "RunInstances", "HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags"); err != nil {
		return base, err
	}
	oneOf := func(field string, dst *string, values ...string) *ec2APIError {
		v, ok := m[field]
		if !ok || v == "" {
			return nil
		}
		if !slices.Contains(values, v) {
			return errEC2InvalidParameterValue("Value (%s) for parameter %s is invalid. Valid values: %s", v, field, strings.Join(values, ", "))
		}
		*dst = v
		return nil
	}
	for _, err := range []*ec2APIError{
		oneOf("HttpTokens", &base.HTTPTokens, "optional", "required"),
		oneOf("HttpEndpoint", &base.HTTPEndpoint, "enabled", "disabled"),
		oneOf("HttpProtocolIpv6", &base.HTTPProtocolIPv6, "enabled", "disabled"),
		oneOf("InstanceMetadataTags", &base.InstanceMetadataTags, "enabled", "disabled"),
	} {
		if err != nil {
			return base, err
		}
	}
	if s := m["HttpPutResponseHopLimit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 64 {
			return base, errEC2InvalidParameterValue("Value (%s) for parameter HttpPutResponseHopLimit is invalid. Valid values: 1 to 64", s)
		}
		base.HTTPPutResponseHopLimit = n
	}
	return base, nil
}

// instanceXML describes an instance as DescribeInstances does; mu held.
func (c *Cloud) instanceXML(inst *Instance, now time.Time) ec2InstanceXML {
	c.refresh(inst, now)
	w := inst.wire
	x := ec2InstanceXML{
		InstanceID: inst.ID, ImageID: inst.ImageID, State: stateOf(inst.State), InstanceType: inst.InstanceType,
		LaunchTime: ec2Time(inst.LaunchTime), KeyName: w.keyName,
		Placement:  ec2PlacementXML{AvailabilityZone: inst.Zone, Tenancy: "default"},
		Monitoring: ec2State{Name: "disabled"}, SourceDestCheck: true, Architecture: w.arch,
		RootDeviceType: "ebs", RootDeviceName: w.rootDeviceName, VirtualizationType: "hvm", Hypervisor: "xen",
		Tags: tagSet(inst.Tags), EBSOptimized: w.ebsOptimized, ENASupport: true, MetadataOptions: w.metadata,
		PrivateDNSNameOptions: ec2PrivateDNSOptionsXML{HostnameType: "ip-name"},
		PlatformDetails:       "Linux/UNIX", UsageOperation: "RunInstances", BootMode: "legacy-bios",
	}
	x.Monitoring.Name = "disabled"
	switch {
	case w.capacityTarget != "":
		x.CapacityReservation = &ec2CapacityResSpecXML{Target: &ec2CapacityResTargetXML{ID: w.capacityTarget}}
	case w.capacityPref != "":
		x.CapacityReservation = &ec2CapacityResSpecXML{Preference: w.capacityPref}
	default:
		x.CapacityReservation = &ec2CapacityResSpecXML{Preference: "open"}
	}
	x.CapacityReservationID = inst.CapacityReservationID
	if w.capacityBlock {
		x.InstanceLifecycle = ReservationTypeCapacityBlock
	}
	if w.iamProfile != "" {
		x.IAMInstanceProfile = &ec2IAMProfileXML{Arn: w.iamProfile, ID: "AIPA" + strings.ToUpper(newID("x")[2:19])}
	}
	if inst.CapacityType == CapacityTypeSpot {
		x.InstanceLifecycle, x.SpotInstanceRequestID = "spot", w.spotRequestID
	}
	if inst.State == StateShuttingDown || inst.State == StateTerminated {
		// EC2 detaches a terminated instance's interface and volumes.
		x.Reason = fmt.Sprintf("User initiated (%s)", inst.shutdownAt.UTC().Format("2006-01-02 15:04:05 MST"))
		code := "Client.UserInitiatedShutdown"
		msg := "Client.UserInitiatedShutdown: User initiated shutdown"
		if inst.TerminationReason == "spot interruption" {
			code, msg = "Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination"
		}
		x.StateReason = &ec2StateReason{Code: code, Message: msg}
		if inst.State == StateTerminated {
			x.RootDeviceName = w.rootDeviceName
			return x
		}
	}
	x.SubnetID, x.VpcID, x.PrivateIPAddress, x.PrivateDNSName = inst.SubnetID, w.vpcID, inst.PrivateIP, inst.hostname
	if eni, ok := c.net.enis[w.eniID]; ok {
		x.Groups = c.groupRefs(eni.groups)
		x.NetworkInterfaces = []ec2InstanceENIXML{{
			NetworkInterfaceID: eni.id, SubnetID: eni.subnetID, VpcID: eni.vpcID, Description: eni.description, OwnerID: c.opts.AccountID,
			Status: "in-use", MacAddress: eni.mac, PrivateIPAddress: eni.privateIP, PrivateDNSName: eni.dnsName, SourceDestCheck: eni.sourceDestCheck,
			Groups: c.groupRefs(eni.groups), Attachment: c.attachment(eni),
			PrivateIPAddresses: []ec2PrivateIPXML{{PrivateIPAddress: eni.privateIP, PrivateDNSName: eni.dnsName, Primary: true}},
			InterfaceType:      "interface",
		}}
	}
	for _, id := range w.volumes {
		v, ok := c.net.volumes[id]
		if !ok {
			continue
		}
		m := ec2InstanceBDM{DeviceName: v.device}
		m.EBS.VolumeID, m.EBS.Status, m.EBS.AttachTime, m.EBS.DeleteOnTermination = v.id, "attached", ec2Time(v.attachTime), true
		x.BlockDeviceMappings = append(x.BlockDeviceMappings, m)
	}
	return x
}

func (c *Cloud) attachment(eni *networkInterface) ec2Attachment {
	return ec2Attachment{AttachmentID: eni.attachmentID, InstanceID: eni.instanceID, InstanceOwnerID: c.opts.AccountID,
		Status: "attached", AttachTime: ec2Time(eni.attachTime), DeleteOnTermination: true}
}

func (c *Cloud) groupRefs(ids []string) []ec2GroupRef {
	out := make([]ec2GroupRef, 0, len(ids))
	for _, id := range ids {
		name := id
		if g, ok := c.net.groups[id]; ok {
			name = g.Name
		}
		out = append(out, ec2GroupRef{GroupID: id, GroupName: name})
	}
	return out
}

// visible: EC2 keeps showing a terminated instance for about an hour.
func (c *Cloud) visible(inst *Instance, now time.Time) bool {
	c.refresh(inst, now)
	return inst.State != StateTerminated || now.Sub(inst.TerminateTime) < c.opts.TerminatedRetention
}

// DescribeInstances.

func (c *Cloud) describeInstances(in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("instance-id", "instance-state-name", "instance-state-code", "instance-type", "vpc-id", "subnet-id",
		"availability-zone", "private-ip-address", "private-dns-name", "image-id", "instance-lifecycle", "reservation-id",
		"network-interface.network-interface-id", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("InstanceId")
	if len(ids) > 0 && in.get("MaxResults") != "" {
		return nil, &ec2APIError{400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults"}
	}
	if err := c.checkInstanceIDs(ids, now); err != nil {
		return nil, err
	}
	var matched []*Instance
	for _, inst := range c.instances {
		if !c.visible(inst, now) || (len(ids) > 0 && !slices.Contains(ids, inst.ID)) {
			continue
		}
		w := inst.wire
		lifecycle := ""
		if inst.CapacityType == CapacityTypeSpot {
			lifecycle = "spot"
		}
		if !in.match("instance-id", inst.ID) || !in.match("instance-state-name", inst.State) ||
			!in.match("instance-state-code", strconv.Itoa(stateCodes[inst.State])) || !in.match("instance-type", inst.InstanceType) ||
			!in.match("vpc-id", w.vpcID) || !in.match("subnet-id", inst.SubnetID) || !in.match("availability-zone", inst.Zone) ||
			!in.match("private-ip-address", inst.PrivateIP) || !in.match("private-dns-name", inst.hostname) ||
			!in.match("image-id", inst.ImageID) || !in.match("instance-lifecycle", lifecycle) || !in.match("reservation-id", w.reservationID) ||
			!in.match("network-interface.network-interface-id", w.eniID) || !in.matchTags(inst.Tags) {
			continue
		}
		matched = append(matched, inst)
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].ID < matched[j].ID })
	items, next, err := page(in, matched, func(i *Instance) string { return i.ID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	out := ec2DescribeInstancesResponse{Namespace: ec2Namespace, RequestID: requestID, NextToken: next}
	byRes := map[string]int{}
	for _, inst := range items {
		r, ok := byRes[inst.wire.reservationID]
		if !ok {
			r = len(out.Reservations)
			byRes[inst.wire.reservationID] = r
			out.Reservations = append(out.Reservations, ec2ReservationXML{ReservationID: inst.wire.reservationID, OwnerID: c.opts.AccountID})
		}
		out.Reservations[r].Instances = append(out.Reservations[r].Instances, c.instanceXML(inst, now))
	}
	return out, nil
}

// checkInstanceIDs refuses malformed and unknown instance IDs, as EC2 does
// for the whole request; mu held.
func (c *Cloud) checkInstanceIDs(ids []string, now time.Time) *ec2APIError {
	var missing []string
	for _, id := range ids {
		if !regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`).MatchString(id) {
			return &ec2APIError{400, "InvalidInstanceID.Malformed", fmt.Sprintf("Invalid id: \"%s\"", id)}
		}
		if inst, ok := c.instances[id]; !ok || !c.visible(inst, now) {
			missing = append(missing, id)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return &ec2APIError{400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", missing[0])}
	default:
		return &ec2APIError{400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(missing, ", "))}
	}
}

// TerminateInstances.

func (c *Cloud) terminateInstances(in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	ids := in.list("InstanceId")
	if len(ids) == 0 {
		return nil, errMissing("InstanceId")
	}
	if err := c.checkInstanceIDs(ids, now); err != nil {
		return nil, err
	}
	out := ec2TerminateInstancesResponse{Namespace: ec2Namespace, RequestID: requestID}
	for _, id := range ids {
		inst := c.instances[id]
		c.refresh(inst, now)
		previous := inst.State
		snapshot, changed := c.beginTermination(inst, "TerminateInstances", now, false)
		out.Instances = append(out.Instances, ec2StateChangeXML{InstanceID: id, CurrentState: stateOf(inst.State), PreviousState: stateOf(previous)})
		if changed {
			c.opts.Log.Info("TerminateInstances", "instance", id, "awsMachine", snapshot.AWSMachine.String())
			go func() {
				if err := c.deleteNode(context.Background(), snapshot); err != nil {
					c.opts.Log.Error(err, "deleting the Node of a terminated instance", "instance", id)
				}
			}()
		}
	}
	return out, nil
}

// releaseResources deletes a terminating instance's network interface
// and volumes (DeleteOnTermination) and frees its address; mu held.
func (c *Cloud) releaseResources(inst *Instance) {
	if r, ok := c.reservations[inst.CapacityReservationID]; ok {
		delete(r.instances, inst.ID)
	}
	w := inst.wire
	if w == nil {
		return
	}
	if sn, ok := c.net.subnets[inst.SubnetID]; ok {
		sn.releaseIP(inst.PrivateIP)
	}
	delete(c.net.enis, w.eniID)
	delete(c.net.tags, w.eniID)
	for _, v := range w.volumes {
		delete(c.net.volumes, v)
		delete(c.net.tags, v)
	}
}

// DescribeImages.

func (c *Cloud) describeImages(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("image-id", "name", "architecture", "state", "owner-id", "root-device-name", "root-device-type",
		"virtualization-type", "is-public", "image-type", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("ImageId")
	var missing []string
	for _, id := range ids {
		if !strings.HasPrefix(id, "ami-") {
			return nil, &ec2APIError{400, "InvalidAMIID.Malformed", fmt.Sprintf("Invalid id: \"%s\" (expecting \"ami-...\")", id)}
		}
		if _, ok := c.net.images[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, &ec2APIError{400, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", strings.Join(missing, ", "))}
	}
	owners := in.list("Owner")
	var images []ec2ImageXML
	for _, img := range c.net.images {
		if len(ids) > 0 && !slices.Contains(ids, img.ID) {
			continue
		}
		if len(owners) > 0 && !slices.Contains(owners, "self") && !slices.Contains(owners, c.opts.AccountID) {
			continue
		}
		tags := c.net.tags[img.ID]
		if !in.match("image-id", img.ID) || !in.match("name", img.Name) || !in.match("architecture", img.Architecture) ||
			!in.match("state", "available") || !in.match("owner-id", c.opts.AccountID) || !in.match("root-device-name", img.RootDeviceName) ||
			!in.match("root-device-type", "ebs") || !in.match("virtualization-type", "hvm") || !in.match("is-public", "false") ||
			!in.match("image-type", "machine") || !in.matchTags(tags) {
			continue
		}
		x := ec2ImageXML{
			ImageID: img.ID, ImageLocation: c.opts.AccountID + "/" + img.Name, ImageState: "available", ImageOwnerID: c.opts.AccountID,
			CreationDate: "2025-01-01T00:00:00.000Z", Architecture: img.Architecture, ImageType: "machine", Name: img.Name,
			RootDeviceType: "ebs", RootDeviceName: img.RootDeviceName, VirtualizationType: "hvm", Hypervisor: "xen", ENASupport: true,
			PlatformDetails: "Linux/UNIX", Tags: tagSet(tags),
		}
		m := ec2ImageBDM{DeviceName: img.RootDeviceName}
		m.EBS.SnapshotID, m.EBS.VolumeSize, m.EBS.DeleteOnTermination, m.EBS.VolumeType = snapshotOf(img), img.RootVolumeGiB, true, "gp3"
		x.BlockDeviceMapping = []ec2ImageBDM{m}
		images = append(images, x)
	}
	sort.Slice(images, func(i, j int) bool { return images[i].ImageID < images[j].ImageID })
	items, next, err := page(in, images, func(i ec2ImageXML) string { return i.ImageID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeImagesResponse{Namespace: ec2Namespace, RequestID: requestID, Images: items, NextToken: next}, nil
}

// DescribeSubnets.

func (c *Cloud) describeSubnets(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("subnet-id", "vpc-id", "availability-zone", "availability-zone-id", "state", "cidr-block", "cidr",
		"cidrBlock", "map-public-ip-on-launch", "default-for-az", "defaultForAz", "owner-id", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("SubnetId")
	for _, id := range ids {
		if _, ok := c.net.subnets[id]; !ok {
			return nil, &ec2APIError{400, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id)}
		}
	}
	var out []ec2SubnetXML
	for _, s := range c.net.subnets {
		if len(ids) > 0 && !slices.Contains(ids, s.ID) {
			continue
		}
		tags := c.net.tags[s.ID]
		cidr, public, def := s.prefix.String(), strconv.FormatBool(s.Public), strconv.FormatBool(s.defaultAZ)
		if !in.match("subnet-id", s.ID) || !in.match("vpc-id", s.vpcID) || !in.match("availability-zone", s.AvailabilityZone) ||
			!in.match("availability-zone-id", s.zoneID) || !in.match("state", "available") || !in.match("cidr-block", cidr) ||
			!in.match("cidr", cidr) || !in.match("cidrBlock", cidr) || !in.match("map-public-ip-on-launch", public) ||
			!in.match("default-for-az", def) || !in.match("defaultForAz", def) || !in.match("owner-id", c.opts.AccountID) || !in.matchTags(tags) {
			continue
		}
		x := ec2SubnetXML{
			SubnetID: s.ID, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", c.opts.Region, c.opts.AccountID, s.ID), State: "available",
			VpcID: s.vpcID, OwnerID: c.opts.AccountID, CidrBlock: cidr, AvailableIPAddressCount: s.availableIPs(),
			AvailabilityZone: s.AvailabilityZone, AvailabilityZoneID: s.zoneID, DefaultForAz: s.defaultAZ, MapPublicIPOnLaunch: s.Public,
			Tags: tagSet(tags),
		}
		x.PrivateDNSNameOptions.HostnameType = "ip-name"
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SubnetID < out[j].SubnetID })
	items, next, err := page(in, out, func(s ec2SubnetXML) string { return s.SubnetID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeSubnetsResponse{Namespace: ec2Namespace, RequestID: requestID, Subnets: items, NextToken: next}, nil
}

// DescribeSecurityGroups.

func (c *Cloud) describeSecurityGroups(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("group-id", "group-name", "vpc-id", "description", "owner-id", "tag-key"); err != nil {
		return nil, err
	}
	ids, names := in.list("GroupId"), in.list("GroupName")
	for _, id := range ids {
		if _, ok := c.net.groups[id]; !ok {
			return nil, &ec2APIError{400, "InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist", id)}
		}
	}
	var out []ec2SecurityGroupXML
	for _, g := range c.net.groups {
		if (len(ids) > 0 && !slices.Contains(ids, g.ID)) || (len(names) > 0 && !slices.Contains(names, g.Name)) {
			continue
		}
		tags := c.net.tags[g.ID]
		if !in.match("group-id", g.ID) || !in.match("group-name", g.Name) || !in.match("vpc-id", g.vpcID) ||
			!in.match("description", g.Description) || !in.match("owner-id", c.opts.AccountID) || !in.matchTags(tags) {
			continue
		}
		out = append(out, ec2SecurityGroupXML{
			OwnerID: c.opts.AccountID, GroupID: g.ID, GroupName: g.Name, GroupDescription: g.Description, VpcID: g.vpcID,
			SecurityGroupArn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", c.opts.Region, c.opts.AccountID, g.ID), Tags: tagSet(tags),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	items, next, err := page(in, out, func(g ec2SecurityGroupXML) string { return g.GroupID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeSecurityGroupsResponse{Namespace: ec2Namespace, RequestID: requestID, Groups: items, NextToken: next}, nil
}

// Network interfaces.

func (c *Cloud) eni(id string) (*networkInterface, *ec2APIError) {
	if id == "" {
		return nil, errMissing("NetworkInterfaceId")
	}
	eni, ok := c.net.enis[id]
	if !ok {
		return nil, &ec2APIError{400, "InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", id)}
	}
	return eni, nil
}

func (c *Cloud) describeNetworkInterfaces(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("attachment.instance-id", "network-interface-id", "subnet-id", "vpc-id", "availability-zone",
		"group-id", "private-ip-address", "private-dns-name", "status", "attachment.status", "owner-id", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("NetworkInterfaceId")
	for _, id := range ids {
		if _, err := c.eni(id); err != nil {
			return nil, err
		}
	}
	var out []ec2NetworkInterfaceXML
	for _, eni := range c.net.enis {
		if len(ids) > 0 && !slices.Contains(ids, eni.id) {
			continue
		}
		tags := c.net.tags[eni.id]
		if !in.match("attachment.instance-id", eni.instanceID) || !in.match("network-interface-id", eni.id) || !in.match("subnet-id", eni.subnetID) ||
			!in.match("vpc-id", eni.vpcID) || !in.match("availability-zone", eni.zone) || !in.matchAny("group-id", eni.groups) ||
			!in.match("private-ip-address", eni.privateIP) || !in.match("private-dns-name", eni.dnsName) || !in.match("status", "in-use") ||
			!in.match("attachment.status", "attached") || !in.match("owner-id", c.opts.AccountID) || !in.matchTags(tags) {
			continue
		}
		a := c.attachment(eni)
		out = append(out, ec2NetworkInterfaceXML{
			NetworkInterfaceID: eni.id, SubnetID: eni.subnetID, VpcID: eni.vpcID, AvailabilityZone: eni.zone, AvailabilityZoneID: eni.zoneID,
			Description: eni.description, OwnerID: c.opts.AccountID, Status: "in-use", MacAddress: eni.mac, PrivateIPAddress: eni.privateIP,
			PrivateDNSName: eni.dnsName, SourceDestCheck: eni.sourceDestCheck, Groups: c.groupRefs(eni.groups), Attachment: &a,
			PrivateIPAddresses: []ec2PrivateIPXML{{PrivateIPAddress: eni.privateIP, PrivateDNSName: eni.dnsName, Primary: true}},
			InterfaceType:      "interface", Tags: tagSet(tags),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NetworkInterfaceID < out[j].NetworkInterfaceID })
	items, next, err := page(in, out, func(n ec2NetworkInterfaceXML) string { return n.NetworkInterfaceID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeNetworkInterfacesResponse{Namespace: ec2Namespace, RequestID: requestID, Interfaces: items, NextToken: next}, nil
}

func (c *Cloud) describeNetworkInterfaceAttribute(in ec2Input, requestID string) (any, *ec2APIError) {
	eni, err := c.eni(in.get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	out := ec2DescribeNetworkInterfaceAttributeResponse{Namespace: ec2Namespace, RequestID: requestID, NetworkInterfaceID: eni.id}
	switch a := in.get("Attribute"); a {
	case "groupSet":
		out.Groups = c.groupRefs(eni.groups)
	case "sourceDestCheck":
		out.SourceDestCheck = &ec2AttributeValue{Value: strconv.FormatBool(eni.sourceDestCheck)}
	case "description":
		out.Description = &ec2AttributeValue{Value: eni.description}
	case "attachment":
		a := c.attachment(eni)
		out.Attachment = &a
	case "":
		return nil, errMissing("Attribute")
	default:
		return nil, errEC2InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid values: description, groupSet, sourceDestCheck, attachment", a)
	}
	return out, nil
}

func (c *Cloud) modifyNetworkInterfaceAttribute(in ec2Input, requestID string) (any, *ec2APIError) {
	eni, err := c.eni(in.get("NetworkInterfaceId"))
	if err != nil {
		return nil, err
	}
	groups := in.list("SecurityGroupId")
	changes := 0
	if len(groups) > 0 {
		for _, g := range groups {
			sg, ok := c.net.groups[g]
			if !ok || sg.vpcID != eni.vpcID {
				return nil, &ec2APIError{400, "InvalidGroup.NotFound", fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", g, eni.vpcID)}
			}
		}
		changes++
	}
	sdc, hasSDC := in.values["SourceDestCheck.Value"]
	desc, hasDesc := in.values["Description.Value"]
	for k := range in.values {
		if (strings.HasPrefix(k, "SourceDestCheck") && k != "SourceDestCheck.Value") || (strings.HasPrefix(k, "Description") && k != "Description.Value") {
			return nil, errUnknownSubParam(k, "ModifyNetworkInterfaceAttribute")
		}
	}
	if hasSDC {
		changes++
	}
	if hasDesc {
		changes++
	}
	if changes == 0 {
		// The SDK sends an empty SecurityGroupId list as nothing at all.
		// CAPA does that for an externally managed cluster whose
		// AWSMachine has no additionalSecurityGroups while the interface
		// has a group (e.g. the VPC's default one).
		return nil, &ec2APIError{400, "MissingParameter", "The request must contain one of SecurityGroupId, SourceDestCheck or Description; " +
			"a network interface needs at least one security group, so an empty SecurityGroupId list is refused."}
	}
	if changes != 1 {
		return nil, &ec2APIError{400, "InvalidParameterCombination", "Exactly one attribute may be modified per request: SecurityGroupId, SourceDestCheck or Description."}
	}
	switch {
	case len(groups) > 0:
		eni.groups = slices.Clone(groups)
	case hasSDC:
		eni.sourceDestCheck = sdc[0] == "true"
	case hasDesc:
		eni.description = desc[0]
	}
	return ec2ReturnResponse{XMLName: xmlName("ModifyNetworkInterfaceAttributeResponse"), Namespace: ec2Namespace, RequestID: requestID, Return: true}, nil
}

// Tags.

func (c *Cloud) changeTags(action string, in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	ids := in.list("ResourceId")
	if len(ids) == 0 {
		return nil, errMissing("ResourceId")
	}
	tags := in.structList("Tag")
	if action == "CreateTags" && len(tags) == 0 {
		return nil, errMissing("Tag")
	}
	for i, t := range tags {
		if err := checkFields(t, fmt.Sprintf("Tag.%d", i+1), action, "Key", "Value"); err != nil {
			return nil, err
		}
		if strings.HasPrefix(t["Key"], "aws:") {
			return nil, errEC2InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	for _, id := range ids {
		if err := c.checkTaggable(id, now); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		m := c.net.tags[id]
		if m == nil {
			m = map[string]string{}
			c.net.tags[id] = m
		}
		for _, t := range tags {
			if action == "CreateTags" {
				m[t["Key"]] = t["Value"]
				continue
			}
			// DeleteTags: a tag given with a value goes only if it has it.
			if v, ok := t["Value"]; ok && m[t["Key"]] != v {
				continue
			}
			delete(m, t["Key"])
		}
		if inst, ok := c.instances[id]; ok {
			inst.Tags = m
			c.attribute(inst)
		}
	}
	return ec2ReturnResponse{XMLName: xmlName(action + "Response"), Namespace: ec2Namespace, RequestID: requestID, Return: true}, nil
}

// checkTaggable refuses an ID of a resource that does not exist, with the
// NotFound code of its kind; mu held.
func (c *Cloud) checkTaggable(id string, now time.Time) *ec2APIError {
	kind, _, _ := strings.Cut(id, "-")
	exists := false
	var code, what string
	switch kind {
	case "i":
		if err := c.checkInstanceIDs([]string{id}, now); err != nil {
			return err
		}
		return nil
	case "eni":
		_, exists = c.net.enis[id]
		code, what = "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist"
	case "vol":
		_, exists = c.net.volumes[id]
		code, what = "InvalidVolume.NotFound", "The volume '%s' does not exist."
	case "subnet":
		_, exists = c.net.subnets[id]
		code, what = "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist"
	case "sg":
		_, exists = c.net.groups[id]
		code, what = "InvalidGroup.NotFound", "The security group '%s' does not exist"
	case "vpc":
		_, exists = c.net.vpcs[id]
		code, what = "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"
	case "ami":
		_, exists = c.net.images[id]
		code, what = "InvalidAMIID.NotFound", "The image id '[%s]' does not exist"
	default:
		return &ec2APIError{400, "InvalidID", fmt.Sprintf("The ID '%s' is not valid", id)}
	}
	if !exists {
		return &ec2APIError{400, code, fmt.Sprintf(what, id)}
	}
	return nil
}

// ModifyInstanceMetadataOptions.

func (c *Cloud) modifyInstanceMetadataOptions(in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	id := in.get("InstanceId")
	if id == "" {
		return nil, errMissing("InstanceId")
	}
	if err := c.checkInstanceIDs([]string{id}, now); err != nil {
		return nil, err
	}
	inst := c.instances[id]
	if inst.State == StateShuttingDown || inst.State == StateTerminated {
		return nil, &ec2APIError{400, "IncorrectInstanceState", fmt.Sprintf("The instance '%s' is not in a state from which it can be modified.", id)}
	}
	md, err := metadataOptions(in.values2Only("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags"), inst.wire.metadata, "ModifyInstanceMetadataOptions")
	if err != nil {
		return nil, err
	}
	inst.wire.metadata = md
	return ec2ModifyMetadataOptionsResponse{Namespace: ec2Namespace, RequestID: requestID, InstanceID: id, Options: md}, nil
}

func (in ec2Input) values2Only(keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v := in.get(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// DescribeVpcs and DescribeDhcpOptions: CAPA reads the VPC's DHCP options
// for a custom domain name among the instance's addresses.

func (c *Cloud) describeVpcs(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("vpc-id", "state", "is-default", "cidr", "owner-id", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("VpcId")
	for _, id := range ids {
		if _, ok := c.net.vpcs[id]; !ok {
			return nil, &ec2APIError{400, "InvalidVpcID.NotFound", fmt.Sprintf("The vpc ID '%s' does not exist", id)}
		}
	}
	var out []ec2VpcXML
	for _, v := range c.net.vpcs {
		tags := c.net.tags[v.id]
		if (len(ids) > 0 && !slices.Contains(ids, v.id)) || !in.match("vpc-id", v.id) || !in.match("state", "available") ||
			!in.match("is-default", strconv.FormatBool(v.isDefault)) || !in.match("cidr", v.cidr) || !in.match("owner-id", c.opts.AccountID) || !in.matchTags(tags) {
			continue
		}
		out = append(out, ec2VpcXML{VpcID: v.id, OwnerID: c.opts.AccountID, State: "available", CidrBlock: v.cidr, DhcpOptionsID: v.dhcpOptionsID,
			InstanceTenancy: "default", IsDefault: v.isDefault, Tags: tagSet(tags)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VpcID < out[j].VpcID })
	items, next, err := page(in, out, func(v ec2VpcXML) string { return v.VpcID }, 5, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeVpcsResponse{Namespace: ec2Namespace, RequestID: requestID, Vpcs: items, NextToken: next}, nil
}

func (c *Cloud) describeDhcpOptions(in ec2Input, requestID string) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("dhcp-options-id"); err != nil {
		return nil, err
	}
	const id = "dopt-0d0d0d0d0d0d0d0d0"
	for _, asked := range in.list("DhcpOptionsId") {
		if asked != id {
			return nil, &ec2APIError{400, "InvalidDhcpOptionID.NotFound", fmt.Sprintf("The dhcpOption ID '%s' does not exist", asked)}
		}
	}
	domain := c.opts.Region + ".compute.internal"
	if c.opts.Region == "us-east-1" {
		domain = "ec2.internal"
	}
	out := ec2DescribeDhcpOptionsResponse{Namespace: ec2Namespace, RequestID: requestID}
	if in.match("dhcp-options-id", id) {
		out.Options = []ec2DhcpOptionsXML{{DhcpOptionsID: id, OwnerID: c.opts.AccountID, Configurations: []ec2DhcpConfigurationXML{
			{Key: "domain-name", Values: []ec2AttributeValue{{Value: domain}}},
			{Key: "domain-name-servers", Values: []ec2AttributeValue{{Value: "AmazonProvidedDNS"}}},
		}}}
	}
	return out, nil
}
