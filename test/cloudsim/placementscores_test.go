package cloudsim

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func TestGetSpotPlacementScoresAsTheSDKReadsThem(t *testing.T) {
	e, c := startEC2(t)
	e.AddOffering("m6g.large", "use1-az1")
	e.SetPlacementScore("m5.large", "use1-az1", 2)
	e.SetPlacementScore("m6g.large", "use1-az1", 4)
	e.SetPlacementScore("m5.large", "use1-az4", 3)
	ctx := context.Background()
	scores := func(in *ec2.GetSpotPlacementScoresInput) map[string]int {
		t.Helper()
		out := map[string]int{}
		pages := ec2.NewGetSpotPlacementScoresPaginator(c, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.SpotPlacementScores {
				out[aws.ToString(s.Region)+"/"+aws.ToString(s.AvailabilityZoneId)] = int(aws.ToInt32(s.Score))
			}
		}
		return out
	}
	three := []string{"m5.large", "m6g.large", "g5.xlarge"}
	perZone := scores(&ec2.GetSpotPlacementScoresInput{InstanceTypes: three, TargetCapacity: aws.Int32(10), SingleAvailabilityZone: aws.Bool(true),
		RegionNames: []string{"us-east-1"}})
	// use1-az1: the best of the set there (m6g.large, 4); use1-az2: nothing
	// set, the default 10; use1-az4: g5.xlarge unset, 10.
	want := map[string]int{"us-east-1/use1-az1": 4, "us-east-1/use1-az2": 10, "us-east-1/use1-az4": 10}
	if len(perZone) != len(want) {
		t.Fatalf("per-zone scores %v, want %v", perZone, want)
	}
	for k, v := range want {
		if perZone[k] != v {
			t.Fatalf("per-zone scores %v, want %v", perZone, want)
		}
	}
	if region := scores(&ec2.GetSpotPlacementScoresInput{InstanceTypes: three, TargetCapacity: aws.Int32(10)}); len(region) != 1 || region["us-east-1/"] != 10 {
		t.Fatalf("region scores %v, want us-east-1 at its best zone's 10", region)
	}
	if few := scores(&ec2.GetSpotPlacementScoresInput{InstanceTypes: []string{"m5.large"}, TargetCapacity: aws.Int32(1), SingleAvailabilityZone: aws.Bool(true)}); few["us-east-1/use1-az2"] != 1 {
		t.Fatalf("one type scores %v; fewer than three types always score low (1)", few)
	}
	if other := scores(&ec2.GetSpotPlacementScoresInput{InstanceTypes: three, TargetCapacity: aws.Int32(1), RegionNames: []string{"eu-west-1"}}); len(other) != 0 {
		t.Fatalf("a request for eu-west-1 scored %v in the us-east-1 endpoint", other)
	}
	for _, tc := range []struct {
		name string
		in   *ec2.GetSpotPlacementScoresInput
		code string
	}{
		{"no types", &ec2.GetSpotPlacementScoresInput{TargetCapacity: aws.Int32(1)}, "InvalidParameterValue"},
		{"an unknown type", &ec2.GetSpotPlacementScoresInput{InstanceTypes: []string{"m5.large", "m6g.large", "x9.huge"}, TargetCapacity: aws.Int32(1)}, "InvalidParameterValue"},
		{"attributes instead of types", &ec2.GetSpotPlacementScoresInput{TargetCapacity: aws.Int32(1), InstanceRequirementsWithMetadata: &ec2types.InstanceRequirementsWithMetadataRequest{
			ArchitectureTypes: []ec2types.ArchitectureType{ec2types.ArchitectureTypeArm64}}}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetSpotPlacementScores(ctx, tc.in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
		})
	}
}

// A Poisson process per offering: a high rate interrupts most instances of
// its offering over an hour, a zero rate none, and the same seed the same
// instances.
func TestInterruptionRatesPerOffering(t *testing.T) {
	run := func(seed int64) map[string]bool {
		c, err := New(Options{BootDelay: time.Millisecond, JoinDelay: time.Hour, SpotInterruptionWarning: time.Millisecond, InterruptionSeed: seed, InterruptionTick: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		if _, err := c.AddNetwork(Network{CIDR: "10.0.0.0/16", Subnets: []Subnet{
			{ID: "subnet-0aaaaaaaaaaaaaaaa", AvailabilityZone: "us-east-1a", CIDR: "10.0.0.0/24"},
			{ID: "subnet-0bbbbbbbbbbbbbbbb", AvailabilityZone: "us-east-1b", CIDR: "10.0.1.0/24"}},
			SecurityGroups: []SecurityGroup{{ID: "sg-0000000000000node", Name: "c1-node"}, {ID: "sg-00000000000000lb", Name: "c1-lb"}}}); err != nil {
			t.Fatal(err)
		}
		spot := func(subnet string) string {
			in := capaRunInput(subnet, "m5.large", DefaultImageAMD64)
			in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot}
			return runInstance(t, c, in)
		}
		var risky, safe []string
		for range 20 {
			risky = append(risky, spot("subnet-0aaaaaaaaaaaaaaaa"))
			safe = append(safe, spot("subnet-0bbbbbbbbbbbbbbbb"))
		}
		c.SetInterruptionRate(Offering{Zone: "us-east-1a", CapacityType: CapacityTypeSpot}, 2)
		time.Sleep(5 * time.Millisecond) // booted
		hit := map[string]bool{}
		for _, n := range c.StepInterruptions(time.Hour) {
			hit[n.InstanceID] = true
		}
		for _, id := range safe {
			if hit[id] {
				t.Fatalf("instance %s in us-east-1b (rate 0) was interrupted", id)
			}
		}
		// 1 - e^-2 = 86% of 20: far from both 0 and 20.
		if len(hit) < 10 || len(hit) == 20 {
			t.Fatalf("%d of 20 instances at 2 interruptions per hour were interrupted in an hour, want about 17", len(hit))
		}
		if n := c.StepInterruptions(0); len(n) != 0 {
			t.Fatalf("no time passing interrupted %d instances", len(n))
		}
		for id := range hit {
			if !slices.Contains(risky, id) {
				t.Fatalf("interrupted %s, not an instance of the risky offering", id)
			}
		}
		return hit
	}
	a, b := run(7), run(7)
	// Instance IDs are random; the draws, in ID order, are the seed's.
	if len(a) != len(b) {
		t.Fatalf("the same seed interrupted %d, then %d instances", len(a), len(b))
	}
}
