package live

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/joinery-dev/joinery/cloud"
)

// ImagesAPI is the part of EC2's API Images reads; *ec2.Client has it.
type ImagesAPI interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// Images answers what an AMI is (architecture, root device size) from
// EC2 DescribeImages, once per region and image: an AMI ID names one
// immutable image, so an answer never goes stale. Failures are not
// cached; the next pass asks again.
type Images struct {
	clients map[string]ImagesAPI

	mu     sync.Mutex
	images map[string]cloud.Image // region/id
}

// NewImages returns Images reading each region through its client.
func NewImages(clients map[string]ImagesAPI) *Images {
	return &Images{clients: clients, images: map[string]cloud.Image{}}
}

// Image returns the AMI id of region.
func (im *Images) Image(ctx context.Context, region, id string) (cloud.Image, error) {
	key := region + "/" + id
	im.mu.Lock()
	img, ok := im.images[key]
	im.mu.Unlock()
	if ok {
		return img, nil
	}
	api := im.clients[region]
	if api == nil {
		return cloud.Image{}, fmt.Errorf("no EC2 client for region %s to look up AMI %s; add the region to --catalog-regions", region, id)
	}
	out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return cloud.Image{}, fmt.Errorf("DescribeImages %s in %s: %w", id, region, err)
	}
	if len(out.Images) == 0 {
		return cloud.Image{}, fmt.Errorf("DescribeImages: AMI %s does not exist in %s or is not shared with this account", id, region)
	}
	found := out.Images[0]
	img = cloud.Image{ID: id, Arch: cloud.ArchOfImage(string(found.Architecture))}
	if img.Arch == "" {
		return cloud.Image{}, fmt.Errorf("AMI %s in %s has architecture %q; Joinery launches x86_64 (amd64) and arm64 images", id, region, found.Architecture)
	}
	root := aws.ToString(found.RootDeviceName)
	for _, m := range found.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == root && m.Ebs != nil && m.Ebs.VolumeSize != nil {
			img.RootDeviceSize = *resource.NewQuantity(int64(*m.Ebs.VolumeSize)<<30, resource.BinarySI)
		}
	}
	im.mu.Lock()
	im.images[key] = img
	im.mu.Unlock()
	return img, nil
}
