package cloudsim

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// targeted is RunInstances as CAPA v2.13 builds it for an AWSMachine with
// capacityReservationId (and marketType CapacityBlock when block):
// getCapacityReservationSpecification and getInstanceMarketOptionsRequest
// in pkg/cloud/services/ec2/instances.go.
func targeted(subnet, instanceType, reservation string, block bool) *ec2.RunInstancesInput {
	in := capaRunInput(subnet, instanceType, DefaultImageAMD64)
	in.CapacityReservationSpecification = &ec2types.CapacityReservationSpecification{
		CapacityReservationTarget: &ec2types.CapacityReservationTarget{CapacityReservationId: aws.String(reservation)},
	}
	if block {
		in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeCapacityBlock}
	}
	return in
}

func TestCapacityReservationFillsThenRefusesThenFreesOnTermination(t *testing.T) {
	cl, _ := newTestCloud(t)
	ctx := context.Background()
	c := ec2Client(cl.EC2Endpoint())
	id, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 3, UsedElsewhere: 1,
		InstanceMatchCriteria: MatchTargeted, Tags: map[string]string{"team": "ml"}})
	if err != nil {
		t.Fatal(err)
	}
	available := func() int32 {
		t.Helper()
		out, err := c.DescribeCapacityReservations(ctx, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{id}})
		if err != nil || len(out.CapacityReservations) != 1 {
			t.Fatalf("DescribeCapacityReservations %s: %v, %d reservations", id, err, len(out.CapacityReservations))
		}
		return aws.ToInt32(out.CapacityReservations[0].AvailableInstanceCount)
	}
	if n := available(); n != 2 {
		t.Fatalf("available %d at start, want 2 (3 held, 1 used elsewhere)", n)
	}
	first := runInstance(t, cl, targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", id, false))
	runInstance(t, cl, targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", id, false))
	if n := available(); n != 0 {
		t.Fatalf("available %d after two launches, want 0", n)
	}
	inst, _ := cl.Instance(first)
	if inst.CapacityReservationID != id || inst.CapacityType != CapacityTypeReserved {
		t.Errorf("ledger %+v, want reserved in %s", inst.Offering, id)
	}
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{first}})
	if err != nil {
		t.Fatal(err)
	}
	x := d.Reservations[0].Instances[0]
	if aws.ToString(x.CapacityReservationId) != id || x.CapacityReservationSpecification == nil ||
		aws.ToString(x.CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId) != id {
		t.Errorf("DescribeInstances: capacityReservationId %q, specification %+v; want %s", aws.ToString(x.CapacityReservationId), x.CapacityReservationSpecification, id)
	}

	// Used up: EC2's code and wording, and nothing launched.
	_, err = c.RunInstances(ctx, targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", id, false))
	if code, status := apiErr(err); code != "ReservationCapacityExceeded" || status != 400 || !strings.Contains(err.Error(), "does not have sufficient compatible and available capacity") {
		t.Fatalf("third launch: %v, want ReservationCapacityExceeded", err)
	}
	if n := len(cl.Instances()); n != 2 {
		t.Errorf("%d instances, want 2", n)
	}

	// A terminated instance gives its slot back.
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{first}}); err != nil {
		t.Fatal(err)
	}
	if n := available(); n != 1 {
		t.Errorf("available %d after a termination, want 1", n)
	}
	runInstance(t, cl, targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", id, false))
}

func TestCapacityReservationRefusesWhatEC2Refuses(t *testing.T) {
	cl, _ := newTestCloud(t)
	odcr, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 2, InstanceMatchCriteria: MatchTargeted})
	if err != nil {
		t.Fatal(err)
	}
	block, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 2,
		ReservationType: ReservationTypeCapacityBlock, EndDate: time.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 2,
		InstanceMatchCriteria: MatchTargeted, EndDate: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	spot := targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", odcr, false)
	spot.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot}
	for _, tc := range []struct {
		name, code, contains string
		in                   *ec2.RunInstancesInput
	}{
		{"another instance type", "ReservationCapacityExceeded", "compatible and available capacity", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.xlarge", odcr, false)},
		{"another zone", "ReservationCapacityExceeded", "compatible and available capacity", targeted("subnet-0bbbbbbbbbbbbbbbb", "m5.large", odcr, false)},
		{"an expired reservation", "ReservationCapacityExceeded", "compatible and available capacity", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", expired, false)},
		{"an unknown reservation", "InvalidCapacityReservationId.NotFound", "cr-0123456789abcdef0", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", "cr-0123456789abcdef0", false)},
		{"a malformed id", "InvalidCapacityReservationId.Malformed", "expecting \"cr-...\"", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", "sg-0123", false)},
		{"a capacity block without its market type", "InvalidParameterCombination", "capacity-block", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", block, false)},
		{"the capacity-block market type on a reservation", "InvalidParameterCombination", "capacity-block", targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", odcr, true)},
		{"spot into a reservation", "InvalidParameterCombination", "Spot", spot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ec2Client(cl.EC2Endpoint()).RunInstances(context.Background(), tc.in)
			if code, _ := apiErr(err); code != tc.code || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
	// The capacity block takes a launch with its market type, as CAPA
	// sends marketType: CapacityBlock.
	id := runInstance(t, cl, targeted("subnet-0aaaaaaaaaaaaaaaa", "m5.large", block, true))
	d, err := ec2Client(cl.EC2Endpoint()).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if x := d.Reservations[0].Instances[0]; x.InstanceLifecycle != ec2types.InstanceLifecycleTypeCapacityBlock || aws.ToString(x.CapacityReservationId) != block {
		t.Errorf("instance lifecycle %q in %q, want capacity-block in %s", x.InstanceLifecycle, aws.ToString(x.CapacityReservationId), block)
	}
}

// EC2 puts an on-demand launch of the right type and zone into an open
// reservation with room, without being asked.
func TestOpenCapacityReservationTakesMatchingOnDemandLaunches(t *testing.T) {
	cl, _ := newTestCloud(t)
	open, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := runInstance(t, cl, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64))
	out := runInstance(t, cl, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.large", DefaultImageAMD64))
	other := runInstance(t, cl, capaRunInput("subnet-0aaaaaaaaaaaaaaaa", "m5.xlarge", DefaultImageAMD64))
	for _, tc := range []struct {
		id, want string
	}{{in, open}, {out, ""}, {other, ""}} {
		if i, _ := cl.Instance(tc.id); i.CapacityReservationID != tc.want {
			t.Errorf("instance %s (%s) in reservation %q, want %q", tc.id, i.InstanceType, i.CapacityReservationID, tc.want)
		}
	}
}

// Karpenter's capacity reservation provider lists by id, or by owner-id
// and tag:<key> filters with state active; the SDK's paginator pages.
func TestDescribeCapacityReservationsFiltersAndPages(t *testing.T) {
	cl, _ := newTestCloud(t)
	ctx := context.Background()
	c := ec2Client(cl.EC2Endpoint())
	var ml []string
	for i := range 5 {
		id, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "m5.large", Zone: "us-east-1a", TotalInstanceCount: 1 + i,
			Tags: map[string]string{"team": "ml"}})
		if err != nil {
			t.Fatal(err)
		}
		ml = append(ml, id)
	}
	if _, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "c5.large", Zone: "us-east-1b", TotalInstanceCount: 1, Tags: map[string]string{"team": "web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AddCapacityReservation(CapacityReservation{InstanceType: "c5.large", Zone: "us-east-1b", TotalInstanceCount: 1, Tags: map[string]string{"team": "ml"}, OwnerID: "210987654321"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetCapacityReservationState(ml[4], "cancelled"); err != nil {
		t.Fatal(err)
	}
	var got []string
	p := ec2.NewDescribeCapacityReservationsPaginator(c, &ec2.DescribeCapacityReservationsInput{MaxResults: aws.Int32(2), Filters: []ec2types.Filter{
		{Name: aws.String("tag:team"), Values: []string{"ml"}},
		{Name: aws.String("owner-id"), Values: []string{DefaultAccountID}},
		{Name: aws.String("state"), Values: []string{"active"}},
	}})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.CapacityReservations {
			got = append(got, aws.ToString(r.CapacityReservationId))
			if r.State != ec2types.CapacityReservationStateActive || r.ReservationType != ec2types.CapacityReservationTypeDefault ||
				aws.ToString(r.AvailabilityZoneId) == "" || r.InstanceMatchCriteria != ec2types.InstanceMatchCriteriaOpen {
				t.Errorf("reservation %+v lacks EC2's fields", r)
			}
		}
	}
	want := append([]string(nil), ml[:4]...)
	if strings.Join(sorted(got), ",") != strings.Join(sorted(want), ",") || pages != 2 {
		t.Errorf("got %v in %d pages, want %v (the active ml ones of this account) in 2", got, pages, want)
	}
	_, err := c.DescribeCapacityReservations(ctx, &ec2.DescribeCapacityReservationsInput{Filters: []ec2types.Filter{{Name: aws.String("reservation-size"), Values: []string{"1"}}}})
	if code, _ := apiErr(err); code != "InvalidParameterValue" {
		t.Errorf("unknown filter: %v", err)
	}
	_, err = c.DescribeCapacityReservations(ctx, &ec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{"cr-0123456789abcdef0"}})
	if code, _ := apiErr(err); code != "InvalidCapacityReservationId.NotFound" {
		t.Errorf("unknown id: %v", err)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
