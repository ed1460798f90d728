package cloudsim

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// newTestCloud is a cloud with a quick boot and a network as the testbed
// declares one: two private subnets (us-east-1a, us-east-1b) and a node
// security group.
func newTestCloud(t *testing.T) (*Cloud, Network) {
	t.Helper()
	c, err := New(Options{BootDelay: 300 * time.Millisecond, ShutdownDelay: 300 * time.Millisecond, JoinDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	n, err := c.AddNetwork(Network{
		CIDR: "10.0.0.0/16",
		Subnets: []Subnet{
			{ID: "subnet-0aaaaaaaaaaaaaaaa", AvailabilityZone: "us-east-1a", CIDR: "10.0.0.0/24", Tags: map[string]string{"kubernetes.io/role/internal-elb": "1"}},
			{ID: "subnet-0bbbbbbbbbbbbbbbb", AvailabilityZone: "us-east-1b", CIDR: "10.0.1.0/28"},
		},
		SecurityGroups: []SecurityGroup{{ID: "sg-0000000000000node", Name: "c1-node"}, {ID: "sg-00000000000000lb", Name: "c1-lb"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

// capaRunInput is RunInstances as CAPA v2.13's runInstance builds it for a
// worker of cluster c1 in an externally managed AWSCluster.
func capaRunInput(subnet, instanceType, image string) *ec2.RunInstancesInput {
	tags := []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String("pool-a-xyz12")},
		{Key: aws.String("kubernetes.io/cluster/c1"), Value: aws.String("owned")},
		{Key: aws.String("sigs.k8s.io/cluster-api-provider-aws/cluster/c1"), Value: aws.String("owned")},
		{Key: aws.String("sigs.k8s.io/cluster-api-provider-aws/role"), Value: aws.String("node")},
	}
	var specs []ec2types.TagSpecification
	for _, rt := range []ec2types.ResourceType{ec2types.ResourceTypeInstance, ec2types.ResourceTypeVolume, ec2types.ResourceTypeNetworkInterface} {
		specs = append(specs, ec2types.TagSpecification{ResourceType: rt, Tags: tags})
	}
	return &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: ec2types.InstanceType(instanceType), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData: aws.String("I2Nsb3VkLWNvbmZpZwo="),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), Groups: []string{"sg-0000000000000node", "sg-00000000000000lb"},
		}},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("nodes.cluster-api-provider-aws.sigs.k8s.io")},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &ec2types.EbsBlockDevice{
			DeleteOnTermination: aws.Bool(true), VolumeSize: aws.Int32(40), VolumeType: ec2types.VolumeTypeGp3}}},
		TagSpecifications: specs,
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(1), HttpTokens: ec2types.HttpTokensStateOptional, InstanceMetadataTags: ec2types.InstanceMetadataTagsStateDisabled},
	}
}

func runInstance(t *testing.T, c *Cloud, in *ec2.RunInstancesInput) string {
	t.Helper()
	out, err := ec2Client(c.EC2Endpoint()).RunInstances(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// apiErr is the EC2 error code and HTTP status the SDK surfaces.
func apiErr(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		return "", 0
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func describe(t *testing.T, c *ec2.Client, in *ec2.DescribeInstancesInput) []ec2types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var all []ec2types.Instance
	for _, r := range out.Reservations {
		all = append(all, r.Instances...)
	}
	return all
}

func TestRunInstancesAsCAPACallsItThenPendingRunningTerminated(t *testing.T) {
	cl, _ := newTestCloud(t)
	c := ec2Client(cl.EC2Endpoint())
	ctx := context.Background()
	out, err := c.RunInstances(ctx, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	if s := out.Instances[0].State.Name; s != ec2types.InstanceStateNamePending {
		t.Errorf("RunInstances state = %s, want pending", s)
	}
	// CAPA's GetRunningInstanceByTags.
	byTags := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:sigs.k8s.io/cluster-api-provider-aws/cluster/c1"), Values: []string{"owned"}},
		{Name: aws.String("tag:Name"), Values: []string{"pool-a-xyz12"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}}
	got := describe(t, c, byTags)
	if len(got) != 1 || got[0].State.Name != ec2types.InstanceStateNamePending {
		t.Fatalf("by tags = %v, want the pending instance", got)
	}
	time.Sleep(400 * time.Millisecond)
	got = describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	i := got[0]
	checks := map[string][2]string{
		"state":        {string(i.State.Name), "running"},
		"zone":         {aws.ToString(i.Placement.AvailabilityZone), "us-east-1a"},
		"subnet":       {aws.ToString(i.SubnetId), "subnet-0aaaaaaaaaaaaaaaa"},
		"private IP":   {aws.ToString(i.PrivateIpAddress), "10.0.0.4"},
		"private DNS":  {aws.ToString(i.PrivateDnsName), "ip-10-0-0-4.ec2.internal"},
		"ENI subnet":   {aws.ToString(i.NetworkInterfaces[0].SubnetId), "subnet-0aaaaaaaaaaaaaaaa"},
		"groups":       {aws.ToString(i.SecurityGroups[0].GroupId) + "," + aws.ToString(i.SecurityGroups[1].GroupId), "sg-0000000000000node,sg-00000000000000lb"},
		"arch":         {string(i.Architecture), "x86_64"},
		"root device":  {aws.ToString(i.RootDeviceName), "/dev/sda1"},
		"lifecycle":    {string(i.InstanceLifecycle), ""},
		"http tokens":  {string(i.MetadataOptions.HttpTokens), "optional"},
		"iam":          {aws.ToString(i.IamInstanceProfile.Arn), "arn:aws:iam::" + DefaultAccountID + ":instance-profile/nodes.cluster-api-provider-aws.sigs.k8s.io"},
		"Name tag":     {tagValue(i.Tags, "Name"), "pool-a-xyz12"},
		"vpc":          {aws.ToString(i.VpcId), aws.ToString(i.NetworkInterfaces[0].VpcId)},
		"launch ahead": {boolStr(i.LaunchTime.After(time.Now())), "false"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if len(i.BlockDeviceMappings) != 1 || !strings.HasPrefix(aws.ToString(i.BlockDeviceMappings[0].Ebs.VolumeId), "vol-") {
		t.Errorf("block devices = %v, want the root volume", i.BlockDeviceMappings)
	}
	led, _ := cl.Instance(id)
	if led.Cluster.Name != "c1" || led.AWSMachine.Name != "pool-a-xyz12" || led.Offering != (Offering{"m5.large", "us-east-1a", CapacityTypeOnDemand}) || led.PricePerHour <= 0 {
		t.Errorf("ledger = %+v", led)
	}

	// CAPA's operational state: ENIs by instance, tags on them, groups.
	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil || len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("ENIs = %v, %v", enis, err)
	}
	eni := aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId)
	if tagValue(enis.NetworkInterfaces[0].TagSet, "sigs.k8s.io/cluster-api-provider-aws/cluster/c1") != "owned" {
		t.Errorf("ENI tags = %v, want the network-interface TagSpecification", enis.NetworkInterfaces[0].TagSet)
	}
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: []string{"sg-0000000000000node"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: []string{}}); !strings.Contains(errString(err), "at least one security group") {
		t.Errorf("ModifyNetworkInterfaceAttribute to no groups: %v, want InvalidParameterValue", err)
	}
	attr, err := c.DescribeNetworkInterfaceAttribute(ctx, &ec2.DescribeNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Attribute: ec2types.NetworkInterfaceAttributeGroupSet})
	if err != nil || len(attr.Groups) != 1 || aws.ToString(attr.Groups[0].GroupId) != "sg-0000000000000node" {
		t.Errorf("groupSet = %v, %v; want sg-0000000000000node", attr, err)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("sigs.k8s.io/cluster-api-provider-aws/role")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: ec2types.HttpTokensStateRequired}); err != nil {
		t.Fatal(err)
	}
	i = describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})[0]
	if tagValue(i.Tags, "team") != "web" || tagValue(i.Tags, "sigs.k8s.io/cluster-api-provider-aws/role") != "" || i.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
		t.Errorf("after CreateTags/DeleteTags/ModifyInstanceMetadataOptions: tags %v, tokens %s", i.Tags, i.MetadataOptions.HttpTokens)
	}
	if len(i.SecurityGroups) != 1 {
		t.Errorf("instance groups after ModifyNetworkInterfaceAttribute = %v, want one", i.SecurityGroups)
	}

	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != ec2types.InstanceStateNameShuttingDown || term.TerminatingInstances[0].PreviousState.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("TerminateInstances = %v, %v; want running -> shutting-down", term, err)
	}
	time.Sleep(400 * time.Millisecond)
	if got := describe(t, c, byTags); len(got) != 0 {
		t.Errorf("pending/running by tags after termination = %v, want none", got)
	}
	if got := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); got[0].State.Name != ec2types.InstanceStateNameTerminated {
		t.Errorf("by ID after termination = %s, want terminated (EC2 shows it for an hour)", got[0].State.Name)
	}
	if led, _ := cl.Instance(id); led.State != StateTerminated || led.TerminateTime.IsZero() {
		t.Errorf("ledger after termination = %s at %v", led.State, led.TerminateTime)
	}
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestRunInstancesFaultsAsTheSDKSurfacesThem(t *testing.T) {
	cl, _ := newTestCloud(t)
	spotIn := func(maxPrice string) *ec2.RunInstancesInput {
		in := capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64)
		in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot, SpotOptions: &ec2types.SpotMarketOptions{
			MaxPrice: aws.String(maxPrice), InstanceInterruptionBehavior: ec2types.InstanceInterruptionBehaviorTerminate, SpotInstanceType: ec2types.SpotInstanceTypeOneTime}}
		return in
	}
	cl.EC2().SetSpotPrice("m5.large", cl.EC2().zoneIDLocked("us-east-1a"), 0.05)
	for _, tc := range []struct {
		name       string
		fault      func()
		in         *ec2.RunInstancesInput
		code       string
		status     int
		msgContain string
	}{
		{"insufficient on-demand capacity is a server error naming the zone", func() { cl.InjectInsufficientCapacity(Offering{InstanceType: "m5.large", Zone: "us-east-1a"}) },
			capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64), "InsufficientInstanceCapacity", 500, "capacity in the Availability Zone you requested (us-east-1a)"},
		{"insufficient spot capacity", func() { cl.InjectInsufficientCapacity(Offering{CapacityType: CapacityTypeSpot}) },
			spotIn("1.0"), "InsufficientInstanceCapacity", 500, "no Spot capacity"},
		{"vCPU limit", func() { cl.InjectLaunchError(Offering{InstanceType: "m5.large"}, "VcpuLimitExceeded", "") },
			capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64), "VcpuLimitExceeded", 400, "vCPU limit"},
		{"unfulfillable capacity is a server error", func() { cl.InjectLaunchError(Offering{}, "UnfulfillableCapacity", "") },
			capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64), "UnfulfillableCapacity", 500, "Unable to fulfill capacity"},
		{"free addresses in the subnet", func() { cl.InjectLaunchError(Offering{}, "InsufficientFreeAddressesInSubnet", "") },
			capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64), "InsufficientFreeAddressesInSubnet", 400, "subnet 'subnet-0aaaaaaaaaaaaaaaa'"},
		{"spot max price below the current price", func() {}, spotIn("0.01"), "SpotMaxPriceTooLow", 400, "price of 0.01 is lower than the minimum required Spot request fulfillment price of 0.05"},
		{"throttled", func() { cl.Throttle("RunInstances", 1) },
			capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64), "RequestLimitExceeded", 503, "Request limit exceeded"},
		{"arm64 type on an x86_64 image", func() {}, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m6g.large", DefaultImageAMD64),
			"InvalidParameterValue", 400, "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI"},
		{"unknown image", func() {}, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", "ami-0123456789abcdef0"), "InvalidAMIID.NotFound", 400, "ami-0123456789abcdef0"},
		{"unknown subnet", func() {}, capaRunInput("subnet-0ccccccccccccccccc", "m5.large", DefaultImageAMD64), "InvalidSubnetID.NotFound", 400, "subnet-0ccccccccccccccccc"},
		{"root volume smaller than the snapshot", func() {}, func() *ec2.RunInstancesInput {
			in := capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64)
			in.BlockDeviceMappings[0].Ebs.VolumeSize = aws.Int32(4)
			return in
		}(), "InvalidBlockDeviceMapping", 400, "expect size >= 8GB"},
		{"subnet in another zone than the placement", func() {}, func() *ec2.RunInstancesInput {
			in := capaRunInput("", "m5.large", DefaultImageAMD64)
			in.NetworkInterfaces, in.SubnetId = nil, aws.String("subnet-0bbbbbbbbbbbbbbbb")
			in.Placement = &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a")}
			return in
		}(), "InvalidParameterValue", 400, "Subnet 'subnet-0bbbbbbbbbbbbbbbb' is in the availability zone us-east-1b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { cl.ClearInsufficientCapacity(); cl.ClearLaunchErrors(); cl.Throttle("", 0) })
			tc.fault()
			_, err := ec2Client(cl.EC2Endpoint()).RunInstances(context.Background(), tc.in)
			code, status := apiErr(err)
			if code != tc.code || status != tc.status || !strings.Contains(err.Error(), tc.msgContain) {
				t.Errorf("err = %v (code %q, status %d), want %s %d containing %q", err, code, status, tc.code, tc.status, tc.msgContain)
			}
		})
	}
	if n := len(cl.Instances()); n != 0 {
		t.Errorf("%d instances after refused launches, want 0", n)
	}
	// A fault cleared: the same request launches.
	if id := runInstance(t, cl, spotIn("1.0")); id == "" {
		t.Error("no instance")
	} else if i, _ := cl.Instance(id); i.CapacityType != CapacityTypeSpot || i.PricePerHour != 0.05 || i.MaxPrice != 1.0 {
		t.Errorf("spot ledger = %+v, want spot at the zone's 0.05", i)
	}
}

func TestEC2ComputeRefusesWhatItDoesNotImplement(t *testing.T) {
	cl, _ := newTestCloud(t)
	ctx := context.Background()
	c := ec2Client(cl.EC2Endpoint())
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if code, status := apiErr(err); code != "InvalidInstanceID.NotFound" || status != 400 {
		t.Errorf("unknown instance: %v", err)
	}
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("hibernation-options.configured"), Values: []string{"true"}}}})
	if code, _ := apiErr(err); code != "InvalidParameterValue" {
		t.Errorf("unknown filter: %v", err)
	}
	for name, form := range map[string]url.Values{
		"unimplemented action": {"Action": {"CreateLaunchTemplate"}, "Version": {"2016-11-15"}},
		"unknown parameter":    {"Action": {"RunInstances"}, "Version": {"2016-11-15"}, "ImageId": {DefaultImageAMD64}, "CpuOptions.CoreCount": {"1"}},
	} {
		resp, err := http.PostForm(cl.EC2Endpoint(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]int{"unimplemented action": 400, "unknown parameter": 400}[name]
		if resp.StatusCode != want {
			t.Errorf("%s: HTTP %d, want %d", name, resp.StatusCode, want)
		}
	}
	_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("x"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{}})
	if code, status := apiErr(err); code != "InvalidAction" || status != 400 {
		t.Errorf("CreateLaunchTemplate: %v, want InvalidAction 400", err)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(DefaultImageAMD64), InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		CpuOptions: &ec2types.CpuOptionsRequest{CoreCount: aws.Int32(1)}})
	if code, _ := apiErr(err); code != "UnknownParameter" || !strings.Contains(err.Error(), "CpuOptions.CoreCount") {
		t.Errorf("RunInstances with CpuOptions: %v, want UnknownParameter naming it", err)
	}
}

func TestDescribeFiltersAndPaging(t *testing.T) {
	cl, n := newTestCloud(t)
	ctx := context.Background()
	c := ec2Client(cl.EC2Endpoint())
	in := capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64)
	in.MinCount, in.MaxCount = aws.Int32(7), aws.Int32(7)
	if _, err := c.RunInstances(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The /28 subnet has 16-5 = 11 addresses: 12 instances do not fit.
	small := capaRunInput("subnet-0bbbbbbbbbbbbbbbb", "m5.large", DefaultImageAMD64)
	small.MinCount, small.MaxCount = aws.Int32(12), aws.Int32(12)
	if _, err := c.RunInstances(ctx, small); !strings.Contains(errString(err), "InsufficientFreeAddressesInSubnet") {
		t.Errorf("12 instances in a /28: %v, want InsufficientFreeAddressesInSubnet", err)
	}
	var ids []string
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{n.VPCID}}, {Name: aws.String("tag-key"), Values: []string{"kubernetes.io/cluster/*"}}}})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
	}
	slices.Sort(ids)
	if pages != 2 || len(slices.Compact(ids)) != 7 {
		t.Errorf("%d pages, %d distinct instances; want 2 pages of 7", pages, len(ids))
	}
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("state"), Values: []string{"pending", "available"}},
		{Name: aws.String("vpc-id"), Values: []string{n.VPCID}},
		{Name: aws.String("tag:kubernetes.io/role/internal-elb"), Values: []string{"1"}}}})
	if err != nil || len(subnets.Subnets) != 1 || aws.ToInt32(subnets.Subnets[0].AvailableIpAddressCount) != 256-5-7 {
		t.Errorf("subnets by tag = %v, %v; want subnet-a with 244 free addresses", subnets, err)
	}
	groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{"c1-*"}}}})
	if err != nil || len(groups.SecurityGroups) != 2 {
		t.Errorf("groups c1-* = %v, %v; want 2", groups, err)
	}
	images, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{DefaultImageARM64}})
	if err != nil || len(images.Images) != 1 || images.Images[0].Architecture != ec2types.ArchitectureValuesArm64 ||
		aws.ToInt32(images.Images[0].BlockDeviceMappings[0].Ebs.VolumeSize) != 8 {
		t.Errorf("arm64 image = %v, %v", images, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
