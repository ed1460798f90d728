package cloudsim

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/cloud/live"
)

// startEC2 serves a simulated EC2 with three zones and a few types, and
// returns the SDK's client for it (no retries, so faults show at once).
func startEC2(t *testing.T) (*EC2, *ec2.Client) {
	t.Helper()
	e := NewEC2("us-east-1", EC2Zone{"use1-az1", "us-east-1b"}, EC2Zone{"use1-az2", "us-east-1a"}, EC2Zone{"use1-az4", "us-east-1c"})
	for _, it := range []cloud.InstanceType{
		{Name: "m5.large", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 8192, CPUManufacturer: "intel", MaxENIs: 3, DefaultCardMaxENIs: 3, IPv4PerENI: 10, Hypervisor: "nitro", NetworkBandwidthMbps: 750},
		{Name: "m6g.large", Arch: cloud.ArchARM64, VCPU: 2, MemoryMiB: 8192, CPUManufacturer: "aws", MaxENIs: 3, DefaultCardMaxENIs: 3, IPv4PerENI: 10, Hypervisor: "nitro"},
		{Name: "g5.xlarge", Arch: cloud.ArchAMD64, VCPU: 4, MemoryMiB: 16384, GPUCount: 1, GPUManufacturer: "nvidia", GPUName: "a10g", GPUMemoryMiB: 22888,
			LocalNVMeGB: 250, MaxENIs: 4, DefaultCardMaxENIs: 4, IPv4PerENI: 15, Hypervisor: "nitro"},
		{Name: "p5.48xlarge", Arch: cloud.ArchAMD64, VCPU: 192, MemoryMiB: 2097152, GPUCount: 8, GPUManufacturer: "nvidia", GPUName: "h100", GPUMemoryMiB: 81559,
			MaxENIs: 64, DefaultCardMaxENIs: 2, IPv4PerENI: 50, EFACount: 32, Hypervisor: "nitro", NetworkBandwidthMbps: 3200000},
	} {
		e.AddInstanceType(it)
	}
	for _, zone := range []string{"use1-az1", "use1-az2", "use1-az4"} {
		e.AddOffering("m5.large", zone)
		e.SetSpotPrice("m5.large", zone, 0.04)
	}
	e.AddOffering("m6g.large", "use1-az2")
	e.AddOffering("g5.xlarge", "use1-az4")
	if err := e.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, ec2Client(e.URL())
}

// ec2Client is the SDK's client as the refresher builds it (see
// live.HTTPClient for why its HTTP client differs from the SDK's default).
func ec2Client(endpoint string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1, HTTPClient: live.HTTPClient(),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		})),
	})
}

func TestEC2DescribeAvailabilityZonesNamesEachZoneID(t *testing.T) {
	_, c := startEC2(t)
	out, err := c.DescribeAvailabilityZones(context.Background(), &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("zone-type"), Values: []string{"availability-zone"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range out.AvailabilityZones {
		got = append(got, aws.ToString(z.ZoneId)+"="+aws.ToString(z.ZoneName)+" "+string(z.State)+" "+aws.ToString(z.RegionName))
	}
	want := []string{"use1-az1=us-east-1b available us-east-1", "use1-az2=us-east-1a available us-east-1", "use1-az4=us-east-1c available us-east-1"}
	if !slices.Equal(got, want) {
		t.Errorf("zones = %v, want %v", got, want)
	}
	none, err := c.DescribeAvailabilityZones(context.Background(), &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("zone-type"), Values: []string{"local-zone"}}},
	})
	if err != nil || len(none.AvailabilityZones) != 0 {
		t.Errorf("local zones = %v, %v; want none", none, err)
	}
}

func TestEC2DescribeInstanceTypesSpeaksTheSDKsShapes(t *testing.T) {
	_, c := startEC2(t)
	out, err := c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []ec2types.InstanceType{"g5.xlarge", "p5.48xlarge"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceTypes) != 2 {
		t.Fatalf("got %d types, want 2", len(out.InstanceTypes))
	}
	g5, p5 := out.InstanceTypes[0], out.InstanceTypes[1]
	if g5.InstanceType != "g5.xlarge" || aws.ToInt32(g5.VCpuInfo.DefaultVCpus) != 4 || aws.ToInt64(g5.MemoryInfo.SizeInMiB) != 16384 ||
		!slices.Equal(g5.ProcessorInfo.SupportedArchitectures, []ec2types.ArchitectureType{ec2types.ArchitectureTypeX8664}) {
		t.Errorf("g5.xlarge basics = %s %d vCPUs %d MiB %v", g5.InstanceType, aws.ToInt32(g5.VCpuInfo.DefaultVCpus), aws.ToInt64(g5.MemoryInfo.SizeInMiB), g5.ProcessorInfo.SupportedArchitectures)
	}
	if gpu := g5.GpuInfo.Gpus[0]; aws.ToString(gpu.Name) != "A10G" || aws.ToString(gpu.Manufacturer) != "NVIDIA" || aws.ToInt32(gpu.Count) != 1 || aws.ToInt32(gpu.MemoryInfo.SizeInMiB) != 22888 {
		t.Errorf("g5.xlarge GPU = %s %s x%d %d MiB", aws.ToString(gpu.Name), aws.ToString(gpu.Manufacturer), aws.ToInt32(gpu.Count), aws.ToInt32(gpu.MemoryInfo.SizeInMiB))
	}
	if s := g5.InstanceStorageInfo; s == nil || aws.ToInt64(s.TotalSizeInGB) != 250 || s.NvmeSupport != ec2types.EphemeralNvmeSupportRequired {
		t.Errorf("g5.xlarge storage = %+v", s)
	}
	n := p5.NetworkInfo
	if aws.ToInt32(n.MaximumNetworkInterfaces) != 64 || len(n.NetworkCards) != 2 || aws.ToInt32(n.NetworkCards[0].MaximumNetworkInterfaces) != 2 ||
		aws.ToFloat64(n.NetworkCards[0].BaselineBandwidthInGbps) != 3200 || aws.ToInt32(n.EfaInfo.MaximumEfaInterfaces) != 32 || aws.ToInt32(n.Ipv4AddressesPerInterface) != 50 {
		t.Errorf("p5.48xlarge network = %d ENIs, cards %+v, EFA %+v", aws.ToInt32(n.MaximumNetworkInterfaces), n.NetworkCards, n.EfaInfo)
	}
	if p5.Hypervisor != ec2types.InstanceTypeHypervisorNitro || aws.ToBool(p5.BareMetal) {
		t.Errorf("p5.48xlarge hypervisor = %q, bare metal %v", p5.Hypervisor, aws.ToBool(p5.BareMetal))
	}

	_, err = c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{"m9.huge"}})
	if code := apiCode(err); code != "InvalidInstanceType" || !strings.Contains(err.Error(), "m9.huge") {
		t.Errorf("unknown type: %v (code %q), want InvalidInstanceType naming it", err, code)
	}
	arm, err := c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{
		Filters: []ec2types.Filter{{Name: aws.String("processor-info.supported-architecture"), Values: []string{"arm64"}}},
	})
	if err != nil || len(arm.InstanceTypes) != 1 || arm.InstanceTypes[0].InstanceType != "m6g.large" {
		t.Errorf("arm64 filter = %v, %v; want m6g.large only", arm, err)
	}
}

func TestEC2PaginatesWithNextTokenAndMaxResults(t *testing.T) {
	e, c := startEC2(t)
	for i := range 12 {
		e.AddInstanceType(cloud.InstanceType{Name: "t" + string(rune('a'+i)) + "3.nano", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 512})
	}
	var names []string
	pages := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(page.InstanceTypes) > 5 {
			t.Errorf("a page has %d types, above MaxResults 5", len(page.InstanceTypes))
		}
		for _, it := range page.InstanceTypes {
			names = append(names, string(it.InstanceType))
		}
		if len(names) == 5 {
			// Added between pages, after the first page's last name: the
			// token carries a name, not a position, so it still comes.
			e.AddInstanceType(cloud.InstanceType{Name: "zz1.large", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 512})
		}
	}
	if len(names) != 17 || !slices.IsSorted(names) || names[16] != "zz1.large" {
		t.Errorf("paginated types = %v (%d), want all 17, sorted, ending with zz1.large", names, len(names))
	}
	if got := e.Calls("DescribeInstanceTypes"); got != 4 {
		t.Errorf("DescribeInstanceTypes calls = %d, want 4 pages of at most 5", got)
	}
	_, err := c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(101)})
	if code := apiCode(err); code != "InvalidParameterValue" {
		t.Errorf("MaxResults 101: %v, want InvalidParameterValue", err)
	}
	_, err = c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{NextToken: aws.String("!!")})
	if code := apiCode(err); code != "InvalidPaginationToken" {
		t.Errorf("a bad token: %v, want InvalidPaginationToken", err)
	}
}

func TestEC2DescribeInstanceTypeOfferingsByZoneIDNameAndRegion(t *testing.T) {
	e, c := startEC2(t)
	offerings := func(lt ec2types.LocationType, filters ...ec2types.Filter) []string {
		t.Helper()
		out, err := c.DescribeInstanceTypeOfferings(context.Background(), &ec2.DescribeInstanceTypeOfferingsInput{LocationType: lt, Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range out.InstanceTypeOfferings {
			if o.LocationType != lt {
				t.Errorf("location type %q, want %q", o.LocationType, lt)
			}
			got = append(got, string(o.InstanceType)+"@"+aws.ToString(o.Location))
		}
		return got
	}
	want := []string{"m5.large@use1-az1", "m5.large@use1-az2", "m6g.large@use1-az2", "g5.xlarge@use1-az4", "m5.large@use1-az4"}
	if got := offerings(ec2types.LocationTypeAvailabilityZoneId); !slices.Equal(got, want) {
		t.Errorf("by zone ID = %v, want %v", got, want)
	}
	if got := offerings(ec2types.LocationTypeAvailabilityZone, ec2types.Filter{Name: aws.String("instance-type"), Values: []string{"m6*"}}); !slices.Equal(got, []string{"m6g.large@us-east-1a"}) {
		t.Errorf("by zone name, m6* = %v", got)
	}
	if got := offerings(ec2types.LocationTypeRegion); !slices.Equal(got, []string{"g5.xlarge@us-east-1", "m5.large@us-east-1", "m6g.large@us-east-1"}) {
		t.Errorf("by region = %v", got)
	}
	e.RemoveOffering("m5.large", "use1-az2")
	if got := offerings(ec2types.LocationTypeAvailabilityZoneId, ec2types.Filter{Name: aws.String("location"), Values: []string{"use1-az2"}}); !slices.Equal(got, []string{"m6g.large@use1-az2"}) {
		t.Errorf("use1-az2 after removing m5.large = %v", got)
	}
	_, err := c.DescribeInstanceTypeOfferings(context.Background(), &ec2.DescribeInstanceTypeOfferingsInput{
		Filters: []ec2types.Filter{{Name: aws.String("no-such-filter"), Values: []string{"x"}}},
	})
	if code := apiCode(err); code != "InvalidParameterValue" || !strings.Contains(err.Error(), "no-such-filter") {
		t.Errorf("unknown filter: %v, want InvalidParameterValue naming it", err)
	}
}

func TestEC2SpotPriceHistoryFromNowIsThePriceInEffect(t *testing.T) {
	e, c := startEC2(t)
	clock := time.Now()
	e.now = func() time.Time { return clock }
	clock = clock.Add(time.Minute)
	e.SetSpotPrice("m5.large", "use1-az2", 0.09)
	clock = clock.Add(time.Minute)

	history := func(in *ec2.DescribeSpotPriceHistoryInput) []string {
		t.Helper()
		var got []string
		pages := ec2.NewDescribeSpotPriceHistoryPaginator(c, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.SpotPriceHistory {
				got = append(got, string(p.InstanceType)+"@"+aws.ToString(p.AvailabilityZone)+"="+aws.ToString(p.SpotPrice)+" "+string(p.ProductDescription))
			}
		}
		return got
	}
	now := history(&ec2.DescribeSpotPriceHistoryInput{StartTime: aws.Time(clock), ProductDescriptions: []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}, MaxResults: aws.Int32(5)})
	// Newest first: the price set last leads.
	if len(now) != 3 || now[0] != "m5.large@us-east-1a=0.090000 Linux/UNIX" ||
		!slices.Contains(now, "m5.large@us-east-1b=0.040000 Linux/UNIX") || !slices.Contains(now, "m5.large@us-east-1c=0.040000 Linux/UNIX") {
		t.Errorf("prices in effect now = %v, want us-east-1a's new 0.09 first, then the 0.04 of us-east-1b and us-east-1c", now)
	}
	all := history(&ec2.DescribeSpotPriceHistoryInput{InstanceTypes: []ec2types.InstanceType{"m5.large"}, AvailabilityZone: aws.String("us-east-1a")})
	if !slices.Equal(all, []string{"m5.large@us-east-1a=0.090000 Linux/UNIX", "m5.large@us-east-1a=0.040000 Linux/UNIX"}) {
		t.Errorf("whole history of us-east-1a = %v, want both records, newest first", all)
	}
	if windows := history(&ec2.DescribeSpotPriceHistoryInput{ProductDescriptions: []string{"Windows"}}); len(windows) != 0 {
		t.Errorf("Windows prices = %v, want none", windows)
	}
}

func TestEC2FaultsAndErrorDocuments(t *testing.T) {
	e, c := startEC2(t)
	e.FailWith("DescribeSpotPriceHistory", "UnauthorizedOperation", http.StatusForbidden)
	_, err := c.DescribeSpotPriceHistory(context.Background(), &ec2.DescribeSpotPriceHistoryInput{})
	if code := apiCode(err); code != "UnauthorizedOperation" || !strings.Contains(err.Error(), "StatusCode: 403") {
		t.Errorf("faulted call: %v, want UnauthorizedOperation with status 403", err)
	}
	if _, err := c.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{}); err != nil {
		t.Errorf("a fault on one action failed another: %v", err)
	}
	e.FailWith("", "RequestLimitExceeded", http.StatusServiceUnavailable)
	if _, err := c.DescribeAvailabilityZones(context.Background(), &ec2.DescribeAvailabilityZonesInput{}); apiCode(err) != "RequestLimitExceeded" {
		t.Errorf("a fault on every action: %v", err)
	}
	e.FailWith("", "", 0)
	e.FailWith("DescribeSpotPriceHistory", "", 0)
	if _, err := c.DescribeSpotPriceHistory(context.Background(), &ec2.DescribeSpotPriceHistoryInput{}); err != nil {
		t.Errorf("after clearing faults: %v", err)
	}

	// What a client that is not the SDK sees: EC2's error document.
	resp, err := http.PostForm(e.URL(), url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), "<Response><Errors><Error><Code>InvalidAction</Code><Message>") ||
		!strings.Contains(body.String(), "</Errors><RequestID>") {
		t.Errorf("unknown action: %d %s", resp.StatusCode, body.String())
	}
}

func TestEC2FromCatalogAnswersTheCatalogsRegion(t *testing.T) {
	catalog, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEC2FromCatalog(catalog, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c := ec2Client(e.URL())
	var offered int
	pages := ec2.NewDescribeInstanceTypeOfferingsPaginator(c, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZoneId, MaxResults: aws.Int32(1000)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		offered += len(page.InstanceTypeOfferings)
	}
	var want int
	for _, o := range catalog.Tables().Offerings {
		if o.Region == "eu-west-1" {
			want++
		}
	}
	if offered != want || want == 0 {
		t.Errorf("offerings = %d, want the catalog's %d", offered, want)
	}
	if _, err := NewEC2FromCatalog(catalog, "xx-nowhere-1"); err == nil {
		t.Error("a region the catalog lacks gave no error")
	}
}
