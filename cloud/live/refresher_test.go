package live

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/scenario"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

const region = "us-east-1"

// live is a refresher reading a simulated EC2 that starts out answering
// exactly what the embedded catalog says of us-east-1.
type live struct {
	base *cloud.Catalog
	ec2  *cloudsim.EC2
	r    *Refresher
}

func startLive(t *testing.T, opts Options) *live {
	t.Helper()
	base, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cloudsim.NewEC2FromCatalog(base, region)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	// No retries: a fault shows in one call, and an endpoint that is down
	// fails at once instead of after the SDK's backoff.
	client := ec2.New(ec2.Options{Region: region, BaseEndpoint: aws.String(sim.URL()), RetryMaxAttempts: 1, HTTPClient: HTTPClient()})
	opts.Regions = []string{region}
	r, err := New(base, map[string]EC2API{region: client}, opts, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return &live{base: base, ec2: sim, r: r}
}

func (l *live) refresh(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := l.r.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	t.Logf("full refresh of %s against the local endpoint: %s", region, time.Since(start).Round(time.Millisecond))
}

// A pool that may launch three similar types, spot only, for a cluster
// whose only failure domain is us-east-1a; and one pending pod.
const decisionInput = `
apiVersion: joinery.dev/v1alpha1
kind: NodePool
metadata: {name: general}
spec:
  clusterName: workload-1
  template:
    spec:
      requirements:
      - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
      - {key: node.kubernetes.io/instance-type, operator: In, values: [%s]}
      infrastructureTemplateRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: AWSMachineTemplate, name: w}
      bootstrapTemplateRef: {apiGroup: bootstrap.cluster.x-k8s.io, kind: KubeadmConfigTemplate, name: w}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec:
  containers: [{name: web, image: web, resources: {requests: {cpu: "1", memory: 2Gi}}}]
`

// decide plans for the pending pod as the provisioning controller does,
// with the catalog's offerings in us-east-1a, and names the one offering
// chosen: "type zone capacity-type price".
func decide(t *testing.T, c *cloud.Catalog, types ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "input.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(decisionInput, strings.Join(types, ", "))), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := scenario.LoadFiles(file)
	if err != nil {
		t.Fatal(err)
	}
	offered, err := c.RegionOfferings(region, cloud.WithZones(region+"a"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := solverinput.Snapshot(solverinput.Objects{Pods: objs.Pods, NodePools: objs.NodePools}, offered, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := solver.Solve(snap, solver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewNodes) != 1 {
		t.Fatalf("plan has %d new nodes (unschedulable: %+v), want 1", len(plan.NewNodes), plan.Unschedulable)
	}
	n := plan.NewNodes[0]
	return fmt.Sprintf("%s %s %s %g", n.InstanceType.Name, n.Offering.Zone, n.Offering.CapacityType, n.Offering.PricePerHour)
}

// zoneID is the ID of us-east-1a in the embedded catalog's default naming.
const zoneID = "use1-az1"

func TestLiveRefreshChangesTheNextDecision(t *testing.T) {
	l := startLive(t, DefaultOptions())
	candidates := []string{"m5.large", "m6i.large", "m7i.large"}
	if got, want := decide(t, l.r.Current(), candidates...), "m7i.large us-east-1a spot 0.0373"; got != want {
		t.Fatalf("before any refresh (the embedded catalog): %s, want %s", got, want)
	}
	l.refresh(t)
	if l.r.Current() == l.base {
		t.Fatal("a successful refresh kept the embedded catalog")
	}
	if got, want := decide(t, l.r.Current(), candidates...), "m7i.large us-east-1a spot 0.0373"; got != want {
		t.Fatalf("after refreshing from an endpoint that answers what the snapshot says: %s, want the same decision %s", got, want)
	}

	l.ec2.RemoveOffering("m7i.large", zoneID)
	before := l.r.Current()
	if got, want := decide(t, before, candidates...), "m7i.large us-east-1a spot 0.0373"; got != want {
		t.Fatalf("a change at the endpoint reached the catalog before a refresh: %s", got)
	}
	l.refresh(t)
	if got, want := decide(t, l.r.Current(), candidates...), "m6i.large us-east-1a spot 0.0379"; got != want {
		t.Errorf("after m7i.large left us-east-1a: %s, want %s", got, want)
	}

	l.ec2.SetSpotPrice("m6i.large", zoneID, 0.05)
	l.refresh(t)
	if got, want := decide(t, l.r.Current(), candidates...), "m5.large us-east-1a spot 0.0383"; got != want {
		t.Errorf("after m6i.large's spot price in us-east-1a rose to 0.05: %s, want %s", got, want)
	}
	if p, _ := l.r.Current().ZoneSpotPrice(region, zoneID, "m6i.large"); p != 0.05 {
		t.Errorf("catalog's m6i.large spot price in %s = %v, want 0.05", zoneID, p)
	}
	if p, ok := l.r.Current().OnDemandPrice(region, "m6i.large"); !ok || p != 0.096 {
		t.Errorf("on-demand price of m6i.large = %v, %v; want the snapshot's 0.096", p, ok)
	}

	// A type EC2 announced after the snapshot: described, offered and
	// priced by the endpoint only.
	l.ec2.AddInstanceType(cloud.InstanceType{Name: "m9z.large", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 8192, CPUManufacturer: "intel",
		MaxENIs: 3, DefaultCardMaxENIs: 3, IPv4PerENI: 10, Hypervisor: "nitro", NetworkBandwidthMbps: 937})
	l.ec2.AddOffering("m9z.large", zoneID)
	l.ec2.SetSpotPrice("m9z.large", zoneID, 0.02)
	l.refresh(t)
	if got, want := decide(t, l.r.Current(), append(candidates, "m9z.large")...), "m9z.large us-east-1a spot 0.02"; got != want {
		t.Errorf("after m9z.large appeared at 0.02: %s, want %s", got, want)
	}
	m9z, ok := l.r.Current().InstanceType("m9z.large")
	if !ok || m9z.Family != "m9z" || m9z.Generation != 9 || m9z.MaxPodsENI != 29 || m9z.CPUManufacturer != "intel" || m9z.NetworkBandwidthMbps != 937 {
		t.Errorf("m9z.large as read from EC2 = %+v, %v", m9z, ok)
	}
}

func TestUnreachableEC2KeepsTheLastGoodCatalog(t *testing.T) {
	t.Run("the embedded catalog until a first refresh succeeds", func(t *testing.T) {
		l := startLive(t, DefaultOptions())
		errorsBefore := testutil.ToFloat64(refreshes.WithLabelValues(region, dataInstanceTypes, "error"))
		l.ec2.FailWith("", "RequestLimitExceeded", http.StatusServiceUnavailable)
		err := l.r.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") || !strings.Contains(err.Error(), "region us-east-1") {
			t.Fatalf("Refresh against a throttling endpoint = %v, want an error naming the region and EC2's code", err)
		}
		if l.r.Current() != l.base {
			t.Error("a failed first refresh replaced the embedded catalog")
		}
		if got := testutil.ToFloat64(refreshes.WithLabelValues(region, dataInstanceTypes, "error")) - errorsBefore; got != 1 {
			t.Errorf("joinery_catalog_refresh_total{data=instance-types,result=error} rose by %v, want 1", got)
		}
		l.ec2.FailWith("", "", 0)
		l.refresh(t)
		if l.r.Current() == l.base {
			t.Error("the refresh after EC2 recovered kept the embedded catalog")
		}
	})

	t.Run("the last refreshed catalog when the endpoint goes down", func(t *testing.T) {
		l := startLive(t, DefaultOptions())
		l.refresh(t)
		good := l.r.Current()
		stamp := testutil.ToFloat64(lastRefresh.WithLabelValues(region, dataSpotPrices))
		errorsBefore := testutil.ToFloat64(refreshes.WithLabelValues(region, dataSpotPrices, "error"))
		l.ec2.RemoveOffering("m7i.large", zoneID)
		if err := l.ec2.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.r.Refresh(context.Background()); err == nil {
			t.Fatal("Refresh against a closed endpoint succeeded")
		}
		if err := l.r.RefreshSpotPrices(context.Background()); err == nil {
			t.Fatal("RefreshSpotPrices against a closed endpoint succeeded")
		}
		if l.r.Current() != good {
			t.Error("failed refreshes replaced the last good catalog")
		}
		if got, want := decide(t, l.r.Current(), "m5.large", "m6i.large", "m7i.large"), "m7i.large us-east-1a spot 0.0373"; got != want {
			t.Errorf("decision while EC2 is down: %s, want the last good catalog's %s", got, want)
		}
		if got := testutil.ToFloat64(refreshes.WithLabelValues(region, dataSpotPrices, "error")) - errorsBefore; got != 2 {
			t.Errorf("joinery_catalog_refresh_total{data=spot-prices,result=error} rose by %v, want 2", got)
		}
		if got := testutil.ToFloat64(lastRefresh.WithLabelValues(region, dataSpotPrices)); got != stamp {
			t.Errorf("joinery_catalog_last_refresh_timestamp_seconds moved from %v to %v on failures", stamp, got)
		}
	})

	t.Run("each part keeps its own last good answer", func(t *testing.T) {
		l := startLive(t, DefaultOptions())
		l.refresh(t)
		l.ec2.FailWith("DescribeSpotPriceHistory", "UnauthorizedOperation", http.StatusForbidden)
		l.ec2.RemoveOffering("m7i.large", zoneID)
		l.ec2.SetSpotPrice("m6i.large", zoneID, 0.05)
		err := l.r.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), "DescribeSpotPriceHistory") || !strings.Contains(err.Error(), "UnauthorizedOperation") {
			t.Fatalf("Refresh = %v, want the spot price call's error", err)
		}
		// The offerings were read; the spot prices stay as last read.
		if got, want := decide(t, l.r.Current(), "m5.large", "m6i.large", "m7i.large"), "m6i.large us-east-1a spot 0.0379"; got != want {
			t.Errorf("decision = %s, want %s", got, want)
		}
	})
}

func TestRefreshReadsEveryPage(t *testing.T) {
	l := startLive(t, DefaultOptions())
	// Sorted after every type of the snapshot: on the last page.
	l.ec2.AddInstanceType(cloud.InstanceType{Name: "zz1.large", Arch: cloud.ArchARM64, VCPU: 2, MemoryMiB: 4096})
	l.ec2.AddOffering("zz1.large", "use1-az6")
	l.ec2.SetSpotPrice("zz1.large", "use1-az6", 0.011)
	l.refresh(t)

	var types, offerings int
	seen := map[string]bool{}
	for _, o := range l.base.Tables().Offerings {
		if o.Region == region {
			offerings++
			if !seen[o.InstanceType] {
				seen[o.InstanceType] = true
				types++
			}
		}
	}
	types, offerings = types+1, offerings+1 // zz1.large
	pages := func(n, size int) int { return (n + size - 1) / size }
	for _, tc := range []struct {
		action string
		want   int
	}{
		{"DescribeInstanceTypes", pages(types, instanceTypesPageSize)},
		{"DescribeInstanceTypeOfferings", pages(offerings, offeringsPageSize)},
		{"DescribeAvailabilityZones", 1},
	} {
		if got := l.ec2.Calls(tc.action); got != tc.want || got < 1 {
			t.Errorf("%s calls = %d, want %d", tc.action, got, tc.want)
		}
	}
	if got := l.ec2.Calls("DescribeSpotPriceHistory"); got < 2 {
		t.Errorf("DescribeSpotPriceHistory calls = %d, want several pages", got)
	}
	c := l.r.Current()
	var liveOfferings int
	for _, o := range c.Tables().Offerings {
		if o.Region == region {
			liveOfferings++
		}
	}
	if liveOfferings != offerings {
		t.Errorf("catalog has %d offerings in %s, want all %d the endpoint lists", liveOfferings, region, offerings)
	}
	if p, ok := c.ZoneSpotPrice(region, "use1-az6", "zz1.large"); !ok || p != 0.011 {
		t.Errorf("zz1.large, on the last page of each call: spot price %v, %v", p, ok)
	}
	t.Logf("pages: DescribeInstanceTypes %d, DescribeInstanceTypeOfferings %d, DescribeSpotPriceHistory %d",
		l.ec2.Calls("DescribeInstanceTypes"), l.ec2.Calls("DescribeInstanceTypeOfferings"), l.ec2.Calls("DescribeSpotPriceHistory"))
}

func TestStartRefreshesSpotPricesOnTheirInterval(t *testing.T) {
	l := startLive(t, Options{Interval: time.Hour, SpotInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.r.Start(ctx) }()
	waitFor := func(what string, ok func(*cloud.Catalog) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute) // generous: the machine may be busy
		for !ok(l.r.Current()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the first refresh at start", func(c *cloud.Catalog) bool { return c != l.base })
	l.ec2.SetSpotPrice("m5.large", zoneID, 0.5)
	waitFor("the new spot price", func(c *cloud.Catalog) bool {
		p, _ := c.ZoneSpotPrice(region, zoneID, "m5.large")
		return p == 0.5
	})
	if got := l.ec2.Calls("DescribeInstanceTypes"); got != pagesOf(t, l) {
		t.Errorf("instance types were read %d times within the hour's interval, want one refresh", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v when its context ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return when its context ended")
	}
}

// pagesOf is how many DescribeInstanceTypes pages one refresh reads.
func pagesOf(t *testing.T, l *live) int {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range l.base.Tables().Offerings {
		if o.Region == region {
			seen[o.InstanceType] = true
		}
	}
	return (len(seen) + instanceTypesPageSize - 1) / instanceTypesPageSize
}

func TestFailedRefreshesAreRetriedSoonerThenBackOff(t *testing.T) {
	r := &Refresher{}
	var failures int
	fail := fmt.Errorf("unreachable")
	var got []time.Duration
	for range 5 {
		got = append(got, r.nextDelay(fail, &failures, 6*time.Minute))
	}
	got = append(got, r.nextDelay(nil, &failures, 6*time.Minute), r.nextDelay(fail, &failures, 6*time.Minute))
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 6 * time.Minute, 6 * time.Minute, 6 * time.Minute, time.Minute}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays = %v, want %v (doubling from a minute, capped at the interval, reset by a success)", got, want)
	}
}

func TestOptionsValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, ""},
		{Options{Regions: []string{"us-east-1"}, Interval: time.Hour}, ""},
		{Options{Regions: []string{"us-east-1"}}, "--catalog-refresh-interval=0s"},
		{Options{Regions: []string{"us-east-1"}, Interval: time.Hour, SpotInterval: -time.Second}, "--catalog-spot-refresh-interval"},
		{Options{Regions: []string{"us-east-1"}, Interval: time.Hour, ReservationInterval: -time.Second}, "--catalog-reservation-refresh-interval"},
		{Options{Regions: []string{"us east"}, Interval: time.Hour}, `--catalog-regions: "us east" is not a region`},
	} {
		err := tc.opts.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// Decisions wait for the first read, and a first read that fails must
// end the wait as surely as one that succeeds.
func TestFirstReadDoneAfterTheFirstRefreshReadOrFailed(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("EC2 fails: %t", fail), func(t *testing.T) {
			l := startLive(t, DefaultOptions())
			if fail {
				l.ec2.FailWith("DescribeAvailabilityZones", "UnauthorizedOperation", http.StatusForbidden)
			}
			if l.r.FirstReadDone() {
				t.Fatal("FirstReadDone before Start")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.r.Start(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			deadline := time.Now().Add(30 * time.Second)
			for !l.r.FirstReadDone() {
				if time.Now().After(deadline) {
					t.Fatal("FirstReadDone still false 30 s after Start")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if known := l.r.Current().ZoneNamesKnown(region); known == fail {
				t.Errorf("after the first read, zone names known = %t; want %t", known, !fail)
			}
		})
	}
}

// Capacity reservations are read with every refresh and, on their own
// short interval, alone: a launch into one shows in the next read's
// available count, and a used-up one is an offering that is not available.
func TestRefreshReadsCapacityReservationsAndTheirCounts(t *testing.T) {
	sim, err := cloudsim.New(cloudsim.Options{BootDelay: time.Hour, JoinDelay: time.Hour, CapacityReservations: []cloudsim.CapacityReservation{
		{ID: "cr-0aaaaaaaaaaaaaaa1", InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 1, InstanceMatchCriteria: cloudsim.MatchTargeted, Tags: map[string]string{"team": "ml"}},
		{ID: "cr-0aaaaaaaaaaaaaaa2", InstanceType: "p5.48xlarge", Zone: "us-east-1a", TotalInstanceCount: 2, ReservationType: cloudsim.ReservationTypeCapacityBlock,
			EndDate: time.Now().Add(48 * time.Hour)},
		{ID: "cr-0aaaaaaaaaaaaaaa3", InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 1, State: "cancelled"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	client := ec2.New(ec2.Options{Region: region, BaseEndpoint: aws.String(sim.EC2Endpoint()), RetryMaxAttempts: 1, HTTPClient: HTTPClient()})
	base, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(base, map[string]EC2API{region: client}, Options{Regions: []string{region}, Interval: time.Hour}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	reserved := func() map[string]string {
		offered, err := r.Current().RegionOfferings(region, cloud.WithZones("us-east-1a"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, ito := range offered {
			for _, o := range ito.Offerings {
				if o.Reservation != nil {
					out[o.Reservation.ID] = fmt.Sprintf("%s %s %s available=%t %d/%d", o.InstanceType, o.Zone, o.Reservation.Type, o.Available, o.Reservation.Available, o.Reservation.Total)
				}
			}
		}
		return out
	}
	want := map[string]string{
		"cr-0aaaaaaaaaaaaaaa1": "m5.large us-east-1a default available=true 1/1",
		"cr-0aaaaaaaaaaaaaaa2": "p5.48xlarge us-east-1a capacity-block available=true 2/2",
	}
	if got := reserved(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reserved offerings after a refresh:\n  %v\nwant (the cancelled one left out):\n  %v", got, want)
	}

	// A launch into the reservation, then the reservations alone again.
	if _, err := client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String(cloudsim.DefaultImageAMD64), InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a")},
		CapacityReservationSpecification: &ec2types.CapacityReservationSpecification{
			CapacityReservationTarget: &ec2types.CapacityReservationTarget{CapacityReservationId: aws.String("cr-0aaaaaaaaaaaaaaa1")}},
	}); err != nil {
		t.Fatal(err)
	}
	tables := r.Current()
	if err := r.RefreshReservations(context.Background()); err != nil {
		t.Fatal(err)
	}
	want["cr-0aaaaaaaaaaaaaaa1"] = "m5.large us-east-1a default available=false 0/1"
	if got := reserved(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reserved offerings after the launch:\n  %v\nwant:\n  %v", got, want)
	}
	if r.Current() == tables {
		t.Error("RefreshReservations did not publish a catalog")
	}
	// Nothing changed since: nothing to publish, and the offerings every
	// pass caches per catalog stay valid.
	same := r.Current()
	if err := r.RefreshReservations(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Current() != same {
		t.Error("RefreshReservations published a new catalog for the same reservations")
	}
	if got := r.Current().CapacityReservations(region)[0].Tags["team"]; got != "ml" {
		t.Errorf("tags not read: team=%q", got)
	}
}
