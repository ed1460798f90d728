package cloud

import (
	"context"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Image is what EC2 says about an AMI that shapes the nodes it boots.
type Image struct {
	ID string
	// Arch is amd64 or arm64, as the kubernetes.io/arch label names it.
	Arch string
	// RootDeviceSize is the size of the AMI's root device snapshot, the
	// root volume CAPA launches with when the AWSMachineTemplate sets no
	// rootVolume; zero when EC2 did not say.
	RootDeviceSize resource.Quantity
}

// Images looks AMIs up by ID (EC2 DescribeImages). cloud/live has one; a
// manager without EC2 access has none.
type Images interface {
	Image(ctx context.Context, region, id string) (Image, error)
}

// ArchOfImage maps an EC2 image architecture to the kubernetes.io/arch
// value of the nodes it boots; "" for architectures Joinery does not
// launch (i386, x86_64_mac, arm64_mac).
func ArchOfImage(ec2Architecture string) string {
	switch ec2Architecture {
	case "x86_64":
		return ArchAMD64
	case "arm64":
		return ArchARM64
	}
	return ""
}
