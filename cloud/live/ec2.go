package live

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// EC2API is the part of EC2's API the refresher reads; *ec2.Client has it.
type EC2API interface {
	ec2.DescribeInstanceTypesAPIClient
	ec2.DescribeInstanceTypeOfferingsAPIClient
	ec2.DescribeSpotPriceHistoryAPIClient
	DescribeAvailabilityZones(context.Context, *ec2.DescribeAvailabilityZonesInput, ...func(*ec2.Options)) (*ec2.DescribeAvailabilityZonesOutput, error)
	ec2.DescribeCapacityReservationsAPIClient
}

// NewEC2Client returns an EC2 client for region. endpoint, when set,
// replaces the region's (a VPC endpoint, or a local one in tests).
// Credentials come from the SDK's default chain (see AWSConfig).
func NewEC2Client(ctx context.Context, region, endpoint string) (*ec2.Client, error) {
	cfg, err := AWSConfig(ctx, region, endpoint)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg), nil
}

// HTTPClient is the SDK's default HTTP client with one change: request
// bodies reach net/http without a WriteTo method. smithy-go closes a
// request's body as soon as the response's headers arrive, and its body
// answers WriteTo after Close with io.EOF; when net/http is still checking
// the body for bytes beyond its Content-Length at that moment (through
// WriteTo), it takes the io.EOF for a write error and closes the
// connection under the response being read ("use of closed network
// connection"). Against a nearby endpoint with large answers, such as
// DescribeInstanceTypes pages, that happens often; through Read a closed
// body is a plain end of data.
func HTTPClient() *http.Client {
	return &http.Client{Transport: readOnlyBodies{awshttp.NewBuildableClient().GetTransport()}}
}

type readOnlyBodies struct{ next http.RoundTripper }

func (t readOnlyBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.next.RoundTrip(req)
	}
	clone := req.Clone(req.Context())
	clone.Body = struct{ io.ReadCloser }{req.Body}
	return t.next.RoundTrip(clone)
}

// Page sizes: the largest each call allows, so a region takes few
// requests (about 9 for DescribeInstanceTypes in us-east-1).
const (
	instanceTypesPageSize = 100
	offeringsPageSize     = 1000
	spotPricesPageSize    = 1000
)

// spotProducts are the Linux descriptions spot prices are published
// under; accounts created after VPCs became the default see only the
// first, older ones may see the second.
var spotProducts = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

// readZones returns the region's Availability Zones (not Local or
// Wavelength Zones, which the catalog does not offer) as the account
// names them.
func readZones(ctx context.Context, api EC2API, region string) ([]cloud.Zone, error) {
	out, err := api.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("zone-type"), Values: []string{"availability-zone"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeAvailabilityZones: %w", err)
	}
	var zones []cloud.Zone
	for _, z := range out.AvailabilityZones {
		id, name := aws.ToString(z.ZoneId), aws.ToString(z.ZoneName)
		if id == "" || name == "" || (z.RegionName != nil && *z.RegionName != region) {
			continue
		}
		zones = append(zones, cloud.Zone{Region: region, ZoneID: id, ZoneName: name})
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("DescribeAvailabilityZones returned no Availability Zone for %s", region)
	}
	return zones, nil
}

// readInstanceTypes returns every type DescribeInstanceTypes lists, as
// the catalog describes types; types it cannot size (no vCPU or memory
// figure) are left out.
func readInstanceTypes(ctx context.Context, api EC2API) ([]cloud.InstanceType, error) {
	var types []cloud.InstanceType
	pages := ec2.NewDescribeInstanceTypesPaginator(api, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(instanceTypesPageSize)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeInstanceTypes: %w", err)
		}
		for _, info := range page.InstanceTypes {
			if it, ok := instanceType(info); ok {
				types = append(types, it)
			}
		}
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("DescribeInstanceTypes returned no instance type")
	}
	return types, nil
}

// readOfferings returns which types each Availability Zone offers, by
// zone ID: IDs are the same in every account, names are not.
func readOfferings(ctx context.Context, api EC2API, region string) ([]cloud.ZoneOffering, error) {
	var offerings []cloud.ZoneOffering
	pages := ec2.NewDescribeInstanceTypeOfferingsPaginator(api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZoneId,
		MaxResults:   aws.Int32(offeringsPageSize),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeInstanceTypeOfferings: %w", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			if o.Location == nil || o.InstanceType == "" {
				continue
			}
			offerings = append(offerings, cloud.ZoneOffering{Region: region, ZoneID: *o.Location, InstanceType: string(o.InstanceType)})
		}
	}
	if len(offerings) == 0 {
		return nil, fmt.Errorf("DescribeInstanceTypeOfferings returned no offering in %s", region)
	}
	return offerings, nil
}

// readCapacityReservations returns the region's active capacity
// reservations, the account's own and those shared with it. Karpenter's
// provider asks per EC2NodeClass, with each selector term as filters; one
// read of every active reservation serves every NodePool of every cluster
// at once, and the terms are matched here the way EC2 matches the filters
// (cloud.Selects): the reservations are few, the pools many.
func readCapacityReservations(ctx context.Context, api EC2API, region string, zones []cloud.Zone) ([]cloud.CapacityReservation, error) {
	idOf := make(map[string]string, len(zones))
	for _, z := range zones {
		idOf[z.ZoneName] = z.ZoneID
	}
	out := []cloud.CapacityReservation{} // not nil: read, maybe none
	pages := ec2.NewDescribeCapacityReservationsPaginator(api, &ec2.DescribeCapacityReservationsInput{
		Filters:    []ec2types.Filter{{Name: aws.String("state"), Values: []string{string(ec2types.CapacityReservationStateActive)}}},
		MaxResults: aws.Int32(reservationsPageSize),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeCapacityReservations: %w", err)
		}
		for _, r := range page.CapacityReservations {
			zoneID := aws.ToString(r.AvailabilityZoneId)
			if zoneID == "" {
				zoneID = idOf[aws.ToString(r.AvailabilityZone)]
			}
			if r.CapacityReservationId == nil || r.InstanceType == nil || zoneID == "" {
				continue
			}
			// Karpenter launches Linux only, and so do CAPA's AMIs here:
			// a Windows or RHEL reservation takes none of our instances.
			if r.InstancePlatform != "" && r.InstancePlatform != ec2types.CapacityReservationInstancePlatformLinuxUnix {
				continue
			}
			kind := v1alpha1.CapacityReservationTypeDefault
			if r.ReservationType == ec2types.CapacityReservationTypeCapacityBlock {
				kind = v1alpha1.CapacityReservationTypeBlock
			}
			tags := map[string]string{}
			for _, t := range r.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, cloud.CapacityReservation{
				ID: *r.CapacityReservationId, OwnerID: aws.ToString(r.OwnerId), InstanceType: *r.InstanceType, Region: region,
				Zone: aws.ToString(r.AvailabilityZone), ZoneID: zoneID, Type: kind,
				Total: int(aws.ToInt32(r.TotalInstanceCount)), Available: int(aws.ToInt32(r.AvailableInstanceCount)),
				State: string(r.State), EndDate: aws.ToTime(r.EndDate), Tags: tags,
			})
		}
	}
	return out, nil
}

// reservationsPageSize is DescribeCapacityReservations' largest page.
const reservationsPageSize = 1000

// readSpotPrices returns the spot price in effect now of every type in
// every zone: asked from now on, DescribeSpotPriceHistory answers the
// price each (type, zone) has had since its last change, and the newest
// record of each wins. Zones are named by ID, through zones when the
// record has only the name.
func readSpotPrices(ctx context.Context, api EC2API, region string, zones []cloud.Zone, now time.Time) ([]cloud.ZoneSpotPrice, error) {
	idOf := make(map[string]string, len(zones))
	for _, z := range zones {
		idOf[z.ZoneName] = z.ZoneID
	}
	type key struct{ instanceType, zoneID string }
	latest := map[key]ec2types.SpotPrice{}
	pages := ec2.NewDescribeSpotPriceHistoryPaginator(api, &ec2.DescribeSpotPriceHistoryInput{
		StartTime:           aws.Time(now),
		ProductDescriptions: spotProducts,
		MaxResults:          aws.Int32(spotPricesPageSize),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeSpotPriceHistory: %w", err)
		}
		for _, p := range page.SpotPriceHistory {
			zoneID := aws.ToString(p.AvailabilityZoneId)
			if zoneID == "" {
				zoneID = idOf[aws.ToString(p.AvailabilityZone)]
			}
			if zoneID == "" || p.InstanceType == "" || p.SpotPrice == nil {
				continue
			}
			k := key{string(p.InstanceType), zoneID}
			if prev, ok := latest[k]; ok && !aws.ToTime(p.Timestamp).After(aws.ToTime(prev.Timestamp)) {
				continue
			}
			latest[k] = p
		}
	}
	prices := make([]cloud.ZoneSpotPrice, 0, len(latest))
	for k, p := range latest {
		usd, err := strconv.ParseFloat(aws.ToString(p.SpotPrice), 64)
		if err != nil || usd < 0 || math.IsInf(usd, 0) || math.IsNaN(usd) {
			continue
		}
		prices = append(prices, cloud.ZoneSpotPrice{Region: region, ZoneID: k.zoneID, InstanceType: k.instanceType, USDPerHour: usd,
			AsOf: aws.ToTime(p.Timestamp).UTC().Format(time.RFC3339)})
	}
	if len(prices) == 0 {
		return nil, fmt.Errorf("DescribeSpotPriceHistory returned no Linux spot price in %s", region)
	}
	return prices, nil
}

// instanceType describes an EC2 type as the catalog does, spelling values
// as Karpenter's labels do (lower case, hyphens). It is used only for
// types the snapshot lacks. What the API does not give stays unknown:
// trunk branch ENIs, and the AWS class (Class).
func instanceType(info ec2types.InstanceTypeInfo) (cloud.InstanceType, bool) {
	it := cloud.InstanceType{Name: string(info.InstanceType), Unknown: cloud.AttrBranchENIs}
	if info.VCpuInfo != nil {
		it.VCPU = int(aws.ToInt32(info.VCpuInfo.DefaultVCpus))
	}
	if info.MemoryInfo != nil {
		it.MemoryMiB = aws.ToInt64(info.MemoryInfo.SizeInMiB)
	}
	if it.Name == "" || it.VCPU <= 0 || it.MemoryMiB <= 0 {
		return cloud.InstanceType{}, false
	}
	if p := info.ProcessorInfo; p != nil {
		for _, a := range p.SupportedArchitectures {
			if arch := karpenterArch(a); arch != "" {
				it.Arch = arch
				break
			}
		}
		it.CPUManufacturer = kebab(aws.ToString(p.Manufacturer))
	}
	if g := info.GpuInfo; g != nil && len(g.Gpus) > 0 {
		for _, d := range g.Gpus {
			it.GPUCount += int(aws.ToInt32(d.Count))
		}
		first := g.Gpus[0]
		it.GPUName, it.GPUManufacturer = kebab(aws.ToString(first.Name)), kebab(aws.ToString(first.Manufacturer))
		if first.MemoryInfo != nil {
			it.GPUMemoryMiB = int64(aws.ToInt32(first.MemoryInfo.SizeInMiB))
		}
	}
	switch n, a := info.NeuronInfo, info.InferenceAcceleratorInfo; {
	case n != nil && len(n.NeuronDevices) > 0:
		for _, d := range n.NeuronDevices {
			it.AcceleratorCount += int(aws.ToInt32(d.Count))
		}
		it.AcceleratorName, it.AcceleratorManufacturer = kebab(aws.ToString(n.NeuronDevices[0].Name)), cloud.ManufacturerAWS
	case a != nil && len(a.Accelerators) > 0:
		for _, d := range a.Accelerators {
			it.AcceleratorCount += int(aws.ToInt32(d.Count))
		}
		it.AcceleratorName, it.AcceleratorManufacturer = kebab(aws.ToString(a.Accelerators[0].Name)), kebab(aws.ToString(a.Accelerators[0].Manufacturer))
	}
	if s := info.InstanceStorageInfo; s != nil && s.NvmeSupport != ec2types.EphemeralNvmeSupportUnsupported {
		it.LocalNVMeGB = aws.ToInt64(s.TotalSizeInGB)
	}
	if n := info.NetworkInfo; n != nil {
		it.MaxENIs = int(aws.ToInt32(n.MaximumNetworkInterfaces))
		it.DefaultCardMaxENIs = it.MaxENIs
		it.IPv4PerENI = int(aws.ToInt32(n.Ipv4AddressesPerInterface))
		defaultCard := aws.ToInt32(n.DefaultNetworkCardIndex)
		var gbps float64
		for _, card := range n.NetworkCards {
			if aws.ToInt32(card.NetworkCardIndex) == defaultCard && card.MaximumNetworkInterfaces != nil {
				it.DefaultCardMaxENIs = int(*card.MaximumNetworkInterfaces)
			}
			gbps += aws.ToFloat64(card.BaselineBandwidthInGbps)
		}
		it.NetworkBandwidthMbps = int64(math.Round(gbps * 1000))
		if it.DefaultCardMaxENIs > 0 && it.IPv4PerENI > 0 {
			// The VPC CNI's rule: pod IPs come from the default card only.
			it.MaxPodsENI = it.DefaultCardMaxENIs*(it.IPv4PerENI-1) + 2
		}
		if n.EfaInfo != nil {
			it.EFACount = int(aws.ToInt32(n.EfaInfo.MaximumEfaInterfaces))
		}
	}
	it.BareMetal = aws.ToBool(info.BareMetal)
	if !it.BareMetal {
		it.Hypervisor = string(info.Hypervisor)
	}
	return it, true
}

func karpenterArch(a ec2types.ArchitectureType) string {
	switch a {
	case ec2types.ArchitectureTypeX8664, ec2types.ArchitectureTypeX8664Mac:
		return cloud.ArchAMD64
	case ec2types.ArchitectureTypeArm64, ec2types.ArchitectureTypeArm64Mac:
		return cloud.ArchARM64
	}
	return ""
}

// kebab spells a value as Karpenter's labels do: "Radeon Pro V520" is
// radeon-pro-v520.
func kebab(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "-"))
}
