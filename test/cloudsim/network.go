package cloudsim

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Network is a VPC as the testbed declares it in an AWSCluster: its
// subnets and security groups, which DescribeSubnets and
// DescribeSecurityGroups then answer.
type Network struct {
	VPCID          string // vpc-...; generated when empty
	CIDR           string // default 10.0.0.0/16
	Tags           map[string]string
	Subnets        []Subnet
	SecurityGroups []SecurityGroup
}

// Subnet is a subnet of a Network.
type Subnet struct {
	ID               string // subnet-...; generated when empty
	AvailabilityZone string // zone name, e.g. us-east-1a
	CIDR             string // inside the VPC's CIDR
	// Public subnets map a public IP on launch (mapPublicIpOnLaunch).
	Public bool
	Tags   map[string]string
}

// SecurityGroup is a security group of a Network.
type SecurityGroup struct {
	ID          string // sg-...; generated when empty
	Name        string // default the ID
	Description string
	Tags        map[string]string
}

// Architectures as EC2 names them on images and instances.
const (
	ArchitectureX86_64 = "x86_64"
	ArchitectureARM64  = "arm64"
)

// The images every simulated cloud knows, for tests and templates to name
// in AWSMachine spec.ami.id.
const (
	DefaultImageAMD64 = "ami-0a5a1a7ed0000a064"
	DefaultImageARM64 = "ami-0a5a1a7ed0000a864"
)

// Image is an AMI DescribeImages answers and RunInstances launches.
type Image struct {
	ID           string // ami-...
	Name         string
	Architecture string // x86_64 or arm64
	// RootDeviceName defaults to /dev/sda1 (Ubuntu-based CAPA AMIs);
	// RootVolumeGiB, the size of its snapshot, to 8.
	RootDeviceName string
	RootVolumeGiB  int32
	Tags           map[string]string
}

type vpc struct {
	id, cidr, dhcpOptionsID string
	isDefault               bool
}

type subnet struct {
	Subnet
	vpcID     string
	zoneID    string
	prefix    netip.Prefix
	defaultAZ bool
	next      uint32 // host offset handed out last
	free      map[uint32]bool
}

type securityGroup struct {
	SecurityGroup
	vpcID string
}

// network is what the cloud knows of VPCs, images and the resources
// instances attach (network interfaces, volumes); guarded by Cloud.mu.
type network struct {
	vpcs    map[string]*vpc
	subnets map[string]*subnet
	groups  map[string]*securityGroup
	images  map[string]*Image
	enis    map[string]*networkInterface
	volumes map[string]*volume
	// tags of every taggable resource, by ID.
	tags map[string]map[string]string
}

func newNetwork() network {
	return network{
		vpcs: map[string]*vpc{}, subnets: map[string]*subnet{}, groups: map[string]*securityGroup{},
		images: map[string]*Image{}, enis: map[string]*networkInterface{}, volumes: map[string]*volume{},
		tags: map[string]map[string]string{},
	}
}

// addDefaultNetwork creates the default VPC EC2 gives every account: a
// /20 subnet per zone, public, default for its zone, and the VPC's
// "default" security group.
func (c *Cloud) addDefaultNetwork() {
	n := Network{CIDR: "172.31.0.0/16"}
	for i, z := range c.ec2.zones {
		n.Subnets = append(n.Subnets, Subnet{AvailabilityZone: z.Name, CIDR: fmt.Sprintf("172.31.%d.0/20", 16*i), Public: true})
	}
	n.SecurityGroups = []SecurityGroup{{Name: "default", Description: "default VPC security group"}}
	if _, err := c.addNetwork(n, true); err != nil {
		panic(fmt.Sprintf("the simulated cloud's default VPC: %v", err)) // a bug: its input is fixed
	}
}

// AddNetwork declares a VPC with its subnets and security groups, and
// returns it with the IDs it generated for those given none. Unlike EC2 it
// creates no "default" security group for the VPC: RunInstances without
// groups uses one only if declared (named "default"). So an instance CAPA
// launches with no groups keeps none, and CAPA's security group
// reconciliation has nothing to change.
func (c *Cloud) AddNetwork(n Network) (Network, error) { return c.addNetwork(n, false) }

func (c *Cloud) addNetwork(n Network, isDefault bool) (Network, error) {
	zoneIDs := map[string]string{}
	for _, z := range c.ec2.Zones() {
		zoneIDs[z.Name] = z.ID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.VPCID == "" {
		n.VPCID = newID("vpc")
	}
	if n.CIDR == "" {
		n.CIDR = "10.0.0.0/16"
	}
	if !strings.HasPrefix(n.VPCID, "vpc-") {
		return n, fmt.Errorf("network VPCID %q: a VPC ID starts with vpc-", n.VPCID)
	}
	if _, ok := c.net.vpcs[n.VPCID]; ok {
		return n, fmt.Errorf("network VPCID %q: the VPC already exists", n.VPCID)
	}
	vpcPrefix, err := netip.ParsePrefix(n.CIDR)
	if err != nil || !vpcPrefix.Addr().Is4() {
		return n, fmt.Errorf("network %s CIDR %q: want an IPv4 CIDR such as 10.0.0.0/16", n.VPCID, n.CIDR)
	}
	var subnets []*subnet
	for i := range n.Subnets {
		s := &n.Subnets[i]
		if s.ID == "" {
			s.ID = newID("subnet")
		}
		if !strings.HasPrefix(s.ID, "subnet-") {
			return n, fmt.Errorf("network %s subnet %q: a subnet ID starts with subnet-", n.VPCID, s.ID)
		}
		if _, ok := c.net.subnets[s.ID]; ok {
			return n, fmt.Errorf("network %s subnet %s: the subnet already exists", n.VPCID, s.ID)
		}
		zoneID, ok := zoneIDs[s.AvailabilityZone]
		if !ok {
			return n, fmt.Errorf("network %s subnet %s AvailabilityZone %q: not a zone of %s; use one of %v", n.VPCID, s.ID, s.AvailabilityZone, c.opts.Region, sortedKeys(zoneIDs))
		}
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !p.Addr().Is4() || !vpcPrefix.Contains(p.Addr()) || p.Bits() < vpcPrefix.Bits() || p.Bits() > 28 {
			return n, fmt.Errorf("network %s subnet %s CIDR %q: want an IPv4 CIDR of /%d to /28 inside the VPC's %s", n.VPCID, s.ID, s.CIDR, vpcPrefix.Bits(), n.CIDR)
		}
		subnets = append(subnets, &subnet{Subnet: *s, vpcID: n.VPCID, zoneID: zoneID, prefix: p.Masked(), defaultAZ: isDefault, next: 3, free: map[uint32]bool{}})
	}
	for i := range n.SecurityGroups {
		g := &n.SecurityGroups[i]
		if g.ID == "" {
			g.ID = newID("sg")
		}
		if g.Name == "" {
			g.Name = g.ID
		}
		if !strings.HasPrefix(g.ID, "sg-") {
			return n, fmt.Errorf("network %s security group %q: a security group ID starts with sg-", n.VPCID, g.ID)
		}
		if _, ok := c.net.groups[g.ID]; ok {
			return n, fmt.Errorf("network %s security group %s: the group already exists", n.VPCID, g.ID)
		}
	}
	c.net.vpcs[n.VPCID] = &vpc{id: n.VPCID, cidr: n.CIDR, dhcpOptionsID: "dopt-0d0d0d0d0d0d0d0d0", isDefault: isDefault}
	c.net.tags[n.VPCID] = maps.Clone(n.Tags)
	for _, s := range subnets {
		c.net.subnets[s.ID] = s
		c.net.tags[s.ID] = maps.Clone(s.Tags)
	}
	for _, g := range n.SecurityGroups {
		c.net.groups[g.ID] = &securityGroup{SecurityGroup: g, vpcID: n.VPCID}
		c.net.tags[g.ID] = maps.Clone(g.Tags)
	}
	return n, nil
}

// AddImage declares an AMI.
func (c *Cloud) AddImage(img Image) error {
	if !strings.HasPrefix(img.ID, "ami-") {
		return fmt.Errorf("image %q: an AMI ID starts with ami-", img.ID)
	}
	if img.Architecture != ArchitectureX86_64 && img.Architecture != ArchitectureARM64 {
		return fmt.Errorf("image %s Architecture %q: EC2 names them %s or %s", img.ID, img.Architecture, ArchitectureX86_64, ArchitectureARM64)
	}
	if img.RootDeviceName == "" {
		img.RootDeviceName = "/dev/sda1"
	}
	if img.RootVolumeGiB == 0 {
		img.RootVolumeGiB = 8
	}
	if img.Name == "" {
		img.Name = img.ID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.net.images[img.ID] = &img
	c.net.tags[img.ID] = maps.Clone(img.Tags)
	return nil
}

// Image is the registered image id, as DescribeImages would return it.
func (c *Cloud) Image(id string) (Image, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.net.images[id]
	if !ok {
		return Image{}, false
	}
	return *img, true
}

// allocateIP hands out the next free address of a subnet, skipping the
// first four and the last, which AWS reserves; mu held.
func (s *subnet) allocateIP() (string, bool) {
	size := uint32(1) << (32 - s.prefix.Bits())
	for tries := uint32(0); tries < size; tries++ {
		s.next++
		if s.next >= size-1 {
			s.next = 4
		}
		if !s.free[s.next] {
			s.free[s.next] = true
			return offset(s.prefix, s.next), true
		}
	}
	return "", false
}

func (s *subnet) releaseIP(ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	b, base := a.As4(), s.prefix.Addr().As4()
	delete(s.free, binary.BigEndian.Uint32(b[:])-binary.BigEndian.Uint32(base[:]))
}

// availableIPs is what DescribeSubnets reports as availableIpAddressCount.
func (s *subnet) availableIPs() int {
	return (1 << (32 - s.prefix.Bits())) - 5 - len(s.free)
}

func offset(p netip.Prefix, n uint32) string {
	b := p.Addr().As4()
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(out).String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
