package cloudsim

import "encoding/xml"

// The XML shapes of the compute actions, with the element names
// aws-sdk-go-v2's service/ec2 deserializers read.

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2State struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type ec2GroupRef struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type ec2InstanceXML struct {
	InstanceID            string                  `xml:"instanceId"`
	ImageID               string                  `xml:"imageId"`
	State                 ec2State                `xml:"instanceState"`
	PrivateDNSName        string                  `xml:"privateDnsName"`
	DNSName               string                  `xml:"dnsName"`
	Reason                string                  `xml:"reason"`
	KeyName               string                  `xml:"keyName,omitempty"`
	AMILaunchIndex        int                     `xml:"amiLaunchIndex"`
	InstanceType          string                  `xml:"instanceType"`
	LaunchTime            string                  `xml:"launchTime"`
	Placement             ec2PlacementXML         `xml:"placement"`
	Monitoring            ec2State                `xml:"monitoring"`
	SubnetID              string                  `xml:"subnetId,omitempty"`
	VpcID                 string                  `xml:"vpcId,omitempty"`
	PrivateIPAddress      string                  `xml:"privateIpAddress,omitempty"`
	SourceDestCheck       bool                    `xml:"sourceDestCheck"`
	Groups                []ec2GroupRef           `xml:"groupSet>item"`
	StateReason           *ec2StateReason         `xml:"stateReason,omitempty"`
	Architecture          string                  `xml:"architecture"`
	RootDeviceType        string                  `xml:"rootDeviceType"`
	RootDeviceName        string                  `xml:"rootDeviceName"`
	BlockDeviceMappings   []ec2InstanceBDM        `xml:"blockDeviceMapping>item"`
	InstanceLifecycle     string                  `xml:"instanceLifecycle,omitempty"`
	SpotInstanceRequestID string                  `xml:"spotInstanceRequestId,omitempty"`
	VirtualizationType    string                  `xml:"virtualizationType"`
	ClientToken           string                  `xml:"clientToken"`
	Tags                  []ec2Tag                `xml:"tagSet>item"`
	Hypervisor            string                  `xml:"hypervisor"`
	NetworkInterfaces     []ec2InstanceENIXML     `xml:"networkInterfaceSet>item"`
	IAMInstanceProfile    *ec2IAMProfileXML       `xml:"iamInstanceProfile,omitempty"`
	EBSOptimized          bool                    `xml:"ebsOptimized"`
	ENASupport            bool                    `xml:"enaSupport"`
	CapacityReservation   *ec2CapacityResSpecXML  `xml:"capacityReservationSpecification,omitempty"`
	CapacityReservationID string                  `xml:"capacityReservationId,omitempty"`
	MetadataOptions       ec2MetadataOptionsXML   `xml:"metadataOptions"`
	PrivateDNSNameOptions ec2PrivateDNSOptionsXML `xml:"privateDnsNameOptions"`
	PlatformDetails       string                  `xml:"platformDetails"`
	UsageOperation        string                  `xml:"usageOperation"`
	BootMode              string                  `xml:"currentInstanceBootMode"`
}

type ec2PlacementXML struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type ec2StateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type ec2InstanceBDM struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		VolumeID            string `xml:"volumeId"`
		Status              string `xml:"status"`
		AttachTime          string `xml:"attachTime"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
	} `xml:"ebs"`
}

type ec2Attachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type ec2PrivateIPXML struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName"`
	Primary          bool   `xml:"primary"`
}

type ec2InstanceENIXML struct {
	NetworkInterfaceID string            `xml:"networkInterfaceId"`
	SubnetID           string            `xml:"subnetId"`
	VpcID              string            `xml:"vpcId"`
	Description        string            `xml:"description"`
	OwnerID            string            `xml:"ownerId"`
	Status             string            `xml:"status"`
	MacAddress         string            `xml:"macAddress"`
	PrivateIPAddress   string            `xml:"privateIpAddress"`
	PrivateDNSName     string            `xml:"privateDnsName"`
	SourceDestCheck    bool              `xml:"sourceDestCheck"`
	Groups             []ec2GroupRef     `xml:"groupSet>item"`
	Attachment         ec2Attachment     `xml:"attachment"`
	PrivateIPAddresses []ec2PrivateIPXML `xml:"privateIpAddressesSet>item"`
	InterfaceType      string            `xml:"interfaceType"`
}

type ec2IAMProfileXML struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type ec2CapacityResSpecXML struct {
	Preference string                   `xml:"capacityReservationPreference,omitempty"`
	Target     *ec2CapacityResTargetXML `xml:"capacityReservationTarget,omitempty"`
}

type ec2CapacityResTargetXML struct {
	ID string `xml:"capacityReservationId"`
}

type ec2MetadataOptionsXML struct {
	State                   string `xml:"state"`
	HTTPTokens              string `xml:"httpTokens"`
	HTTPPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint            string `xml:"httpEndpoint"`
	HTTPProtocolIPv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

type ec2PrivateDNSOptionsXML struct {
	HostnameType                    string `xml:"hostnameType"`
	EnableResourceNameDNSARecord    bool   `xml:"enableResourceNameDnsARecord"`
	EnableResourceNameDNSAAAARecord bool   `xml:"enableResourceNameDnsAAAARecord"`
}

type ec2ReservationXML struct {
	ReservationID string           `xml:"reservationId"`
	OwnerID       string           `xml:"ownerId"`
	Groups        []ec2GroupRef    `xml:"groupSet>item"`
	Instances     []ec2InstanceXML `xml:"instancesSet>item"`
}

type ec2RunInstancesResponse struct {
	XMLName   xml.Name `xml:"RunInstancesResponse"`
	Namespace string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	ec2ReservationXML
}

type ec2DescribeInstancesResponse struct {
	XMLName      xml.Name            `xml:"DescribeInstancesResponse"`
	Namespace    string              `xml:"xmlns,attr"`
	RequestID    string              `xml:"requestId"`
	Reservations []ec2ReservationXML `xml:"reservationSet>item"`
	NextToken    string              `xml:"nextToken,omitempty"`
}

type ec2StateChangeXML struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  ec2State `xml:"currentState"`
	PreviousState ec2State `xml:"previousState"`
}

type ec2TerminateInstancesResponse struct {
	XMLName   xml.Name            `xml:"TerminateInstancesResponse"`
	Namespace string              `xml:"xmlns,attr"`
	RequestID string              `xml:"requestId"`
	Instances []ec2StateChangeXML `xml:"instancesSet>item"`
}

type ec2ImageBDM struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		SnapshotID          string `xml:"snapshotId"`
		VolumeSize          int32  `xml:"volumeSize"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
		VolumeType          string `xml:"volumeType"`
		Encrypted           bool   `xml:"encrypted"`
	} `xml:"ebs"`
}

type ec2ImageXML struct {
	ImageID            string        `xml:"imageId"`
	ImageLocation      string        `xml:"imageLocation"`
	ImageState         string        `xml:"imageState"`
	ImageOwnerID       string        `xml:"imageOwnerId"`
	CreationDate       string        `xml:"creationDate"`
	IsPublic           bool          `xml:"isPublic"`
	Architecture       string        `xml:"architecture"`
	ImageType          string        `xml:"imageType"`
	Name               string        `xml:"name"`
	RootDeviceType     string        `xml:"rootDeviceType"`
	RootDeviceName     string        `xml:"rootDeviceName"`
	BlockDeviceMapping []ec2ImageBDM `xml:"blockDeviceMapping>item"`
	VirtualizationType string        `xml:"virtualizationType"`
	Hypervisor         string        `xml:"hypervisor"`
	ENASupport         bool          `xml:"enaSupport"`
	PlatformDetails    string        `xml:"platformDetails"`
	Tags               []ec2Tag      `xml:"tagSet>item"`
}

type ec2DescribeImagesResponse struct {
	XMLName   xml.Name      `xml:"DescribeImagesResponse"`
	Namespace string        `xml:"xmlns,attr"`
	RequestID string        `xml:"requestId"`
	Images    []ec2ImageXML `xml:"imagesSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

type ec2SubnetXML struct {
	SubnetID                string   `xml:"subnetId"`
	SubnetArn               string   `xml:"subnetArn"`
	State                   string   `xml:"state"`
	VpcID                   string   `xml:"vpcId"`
	OwnerID                 string   `xml:"ownerId"`
	CidrBlock               string   `xml:"cidrBlock"`
	AvailableIPAddressCount int      `xml:"availableIpAddressCount"`
	AvailabilityZone        string   `xml:"availabilityZone"`
	AvailabilityZoneID      string   `xml:"availabilityZoneId"`
	DefaultForAz            bool     `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool     `xml:"mapPublicIpOnLaunch"`
	AssignIPv6OnCreation    bool     `xml:"assignIpv6AddressOnCreation"`
	IPv6Native              bool     `xml:"ipv6Native"`
	Tags                    []ec2Tag `xml:"tagSet>item"`
	PrivateDNSNameOptions   struct {
		HostnameType string `xml:"hostnameType"`
	} `xml:"privateDnsNameOptionsOnLaunch"`
}

type ec2DescribeSubnetsResponse struct {
	XMLName   xml.Name       `xml:"DescribeSubnetsResponse"`
	Namespace string         `xml:"xmlns,attr"`
	RequestID string         `xml:"requestId"`
	Subnets   []ec2SubnetXML `xml:"subnetSet>item"`
	NextToken string         `xml:"nextToken,omitempty"`
}

type ec2SecurityGroupXML struct {
	OwnerID          string   `xml:"ownerId"`
	GroupID          string   `xml:"groupId"`
	GroupName        string   `xml:"groupName"`
	GroupDescription string   `xml:"groupDescription"`
	VpcID            string   `xml:"vpcId"`
	SecurityGroupArn string   `xml:"securityGroupArn"`
	Tags             []ec2Tag `xml:"tagSet>item"`
}

type ec2DescribeSecurityGroupsResponse struct {
	XMLName   xml.Name              `xml:"DescribeSecurityGroupsResponse"`
	Namespace string                `xml:"xmlns,attr"`
	RequestID string                `xml:"requestId"`
	Groups    []ec2SecurityGroupXML `xml:"securityGroupInfo>item"`
	NextToken string                `xml:"nextToken,omitempty"`
}

type ec2NetworkInterfaceXML struct {
	NetworkInterfaceID string            `xml:"networkInterfaceId"`
	SubnetID           string            `xml:"subnetId"`
	VpcID              string            `xml:"vpcId"`
	AvailabilityZone   string            `xml:"availabilityZone"`
	AvailabilityZoneID string            `xml:"availabilityZoneId"`
	Description        string            `xml:"description"`
	OwnerID            string            `xml:"ownerId"`
	RequesterManaged   bool              `xml:"requesterManaged"`
	Status             string            `xml:"status"`
	MacAddress         string            `xml:"macAddress"`
	PrivateIPAddress   string            `xml:"privateIpAddress"`
	PrivateDNSName     string            `xml:"privateDnsName"`
	SourceDestCheck    bool              `xml:"sourceDestCheck"`
	Groups             []ec2GroupRef     `xml:"groupSet>item"`
	Attachment         *ec2Attachment    `xml:"attachment,omitempty"`
	PrivateIPAddresses []ec2PrivateIPXML `xml:"privateIpAddressesSet>item"`
	InterfaceType      string            `xml:"interfaceType"`
	Tags               []ec2Tag          `xml:"tagSet>item"`
}

type ec2DescribeNetworkInterfacesResponse struct {
	XMLName    xml.Name                 `xml:"DescribeNetworkInterfacesResponse"`
	Namespace  string                   `xml:"xmlns,attr"`
	RequestID  string                   `xml:"requestId"`
	Interfaces []ec2NetworkInterfaceXML `xml:"networkInterfaceSet>item"`
	NextToken  string                   `xml:"nextToken,omitempty"`
}

type ec2AttributeValue struct {
	Value string `xml:"value"`
}

type ec2DescribeNetworkInterfaceAttributeResponse struct {
	XMLName            xml.Name           `xml:"DescribeNetworkInterfaceAttributeResponse"`
	Namespace          string             `xml:"xmlns,attr"`
	RequestID          string             `xml:"requestId"`
	NetworkInterfaceID string             `xml:"networkInterfaceId"`
	Groups             []ec2GroupRef      `xml:"groupSet>item,omitempty"`
	SourceDestCheck    *ec2AttributeValue `xml:"sourceDestCheck,omitempty"`
	Description        *ec2AttributeValue `xml:"description,omitempty"`
	Attachment         *ec2Attachment     `xml:"attachment,omitempty"`
}

// ec2ReturnResponse is the answer of the actions that only say they did it.
type ec2ReturnResponse struct {
	XMLName   xml.Name
	Namespace string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

type ec2ModifyMetadataOptionsResponse struct {
	XMLName    xml.Name              `xml:"ModifyInstanceMetadataOptionsResponse"`
	Namespace  string                `xml:"xmlns,attr"`
	RequestID  string                `xml:"requestId"`
	InstanceID string                `xml:"instanceId"`
	Options    ec2MetadataOptionsXML `xml:"instanceMetadataOptions"`
}

type ec2VpcXML struct {
	VpcID           string   `xml:"vpcId"`
	OwnerID         string   `xml:"ownerId"`
	State           string   `xml:"state"`
	CidrBlock       string   `xml:"cidrBlock"`
	DhcpOptionsID   string   `xml:"dhcpOptionsId"`
	InstanceTenancy string   `xml:"instanceTenancy"`
	IsDefault       bool     `xml:"isDefault"`
	Tags            []ec2Tag `xml:"tagSet>item"`
}

type ec2DescribeVpcsResponse struct {
	XMLName   xml.Name    `xml:"DescribeVpcsResponse"`
	Namespace string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Vpcs      []ec2VpcXML `xml:"vpcSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type ec2DhcpConfigurationXML struct {
	Key    string              `xml:"key"`
	Values []ec2AttributeValue `xml:"valueSet>item"`
}

type ec2DhcpOptionsXML struct {
	DhcpOptionsID  string                    `xml:"dhcpOptionsId"`
	OwnerID        string                    `xml:"ownerId"`
	Configurations []ec2DhcpConfigurationXML `xml:"dhcpConfigurationSet>item"`
}

type ec2DescribeDhcpOptionsResponse struct {
	XMLName   xml.Name            `xml:"DescribeDhcpOptionsResponse"`
	Namespace string              `xml:"xmlns,attr"`
	RequestID string              `xml:"requestId"`
	Options   []ec2DhcpOptionsXML `xml:"dhcpOptionsSet>item"`
}

func xmlName(local string) xml.Name { return xml.Name{Local: local} }
