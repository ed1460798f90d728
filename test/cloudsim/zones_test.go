package cloudsim

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"

	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/cloud/live"
)

// otherAccount maps us-east-1's zone IDs to names as an account other than
// the one the snapshot's guess (cloud.DefaultZoneNames: az1=a, az2=b, ...)
// describes: AWS shuffles the mapping per account.
var otherAccount = map[string]string{
	"use1-az4": "us-east-1a", "use1-az6": "us-east-1b", "use1-az1": "us-east-1c",
	"use1-az2": "us-east-1d", "use1-az3": "us-east-1e", "use1-az5": "us-east-1f",
}

// An account's zone names are what DescribeAvailabilityZones answers and
// what its subnets are in; the live catalog reads them from there, not
// from the snapshot's guess.
func TestAccountZoneNamesReachTheLiveCatalogAndSubnets(t *testing.T) {
	c, err := New(Options{ZoneNames: otherAccount})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	api := ec2Client(c.EC2Endpoint())
	ctx := context.Background()

	azs, err := api.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(azs.AvailabilityZones) != len(otherAccount) {
		t.Fatalf("DescribeAvailabilityZones gave %d zones, want %d", len(azs.AvailabilityZones), len(otherAccount))
	}
	for _, z := range azs.AvailabilityZones {
		if want := otherAccount[aws.ToString(z.ZoneId)]; aws.ToString(z.ZoneName) != want {
			t.Errorf("zone %s is named %s, want the account's %s", aws.ToString(z.ZoneId), aws.ToString(z.ZoneName), want)
		}
	}

	subnets, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(subnets.Subnets) != 1 || aws.ToString(subnets.Subnets[0].AvailabilityZoneId) != "use1-az4" {
		var ids []string
		for _, s := range subnets.Subnets {
			ids = append(ids, aws.ToString(s.SubnetId)+" in "+aws.ToString(s.AvailabilityZoneId))
		}
		t.Errorf("default subnets of us-east-1a: %v, want one in use1-az4", ids)
	}

	base, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	r, err := live.New(base, map[string]live.EC2API{"us-east-1": api}, live.Options{Regions: []string{"us-east-1"}}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	catalog := r.Current()
	if !catalog.ZoneNamesKnown("us-east-1") {
		t.Fatal("after a refresh the catalog still assumes us-east-1's zone names")
	}
	offerings, err := catalog.RegionOfferings("us-east-1", cloud.WithZones("us-east-1a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(offerings) == 0 {
		t.Fatal("no offerings in us-east-1a")
	}
	for _, it := range offerings {
		for _, o := range it.Offerings {
			if o.ZoneID != "use1-az4" {
				t.Fatalf("%s offered in us-east-1a with zone ID %s, want the account's use1-az4 (the snapshot guesses use1-az1)", it.InstanceType.Name, o.ZoneID)
			}
		}
	}
}

func TestAccountZoneNamesMustNameEachZoneOnce(t *testing.T) {
	for name, mapping := range map[string]map[string]string{
		"unknown zone ID": {"use1-az9": "us-east-1a"},
		"unnamed zone":    {"use1-az1": "us-east-1a"},
		"name twice":      {"use1-az1": "us-east-1a", "use1-az2": "us-east-1a", "use1-az3": "us-east-1c", "use1-az4": "us-east-1d", "use1-az5": "us-east-1e", "use1-az6": "us-east-1f"},
	} {
		c, err := New(Options{ZoneNames: mapping})
		if err == nil {
			c.Stop()
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "cloudsim.Options.ZoneNames") {
			t.Errorf("%s: error %q does not name cloudsim.Options.ZoneNames", name, err)
		}
	}
}
