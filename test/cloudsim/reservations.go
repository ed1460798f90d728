package cloudsim

import (
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Capacity reservations: on-demand capacity reservations (ODCRs) and
// capacity blocks, as DescribeCapacityReservations describes them and
// RunInstances launches into them.
//
// A launch uses a reservation when it targets one
// (CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId,
// which CAPA sends for an AWSMachine's capacityReservationId), or, being
// on-demand with preference open (EC2's default), when an active open
// reservation of its type and zone has room, as EC2 matches open
// reservations by itself. A capacity block takes only targeted launches
// with the capacity-block market type (CAPA's marketType: CapacityBlock).
// An instance holds its slot until it terminates.

// Capacity reservation kinds and states, as EC2 spells them.
const (
	ReservationTypeDefault       = "default"
	ReservationTypeCapacityBlock = "capacity-block"
	MatchOpen                    = "open"
	MatchTargeted                = "targeted"
	ReservationActive            = "active"
	ReservationExpired           = "expired"
	// CapacityTypeReserved is the ledger's capacity type of an instance
	// launched into a reservation.
	CapacityTypeReserved = "reserved"
)

// CapacityReservation is a reservation the simulated account holds.
type CapacityReservation struct {
	// ID defaults to a new cr-... id.
	ID           string
	InstanceType string
	// Zone is the zone name (us-east-1a).
	Zone string
	// TotalInstanceCount is how many instances it holds room for.
	TotalInstanceCount int
	// UsedElsewhere are slots taken by instances the simulator did not
	// launch: the reservation's available count starts at
	// TotalInstanceCount - UsedElsewhere.
	UsedElsewhere int
	// InstanceMatchCriteria is open (default; capacity blocks: targeted)
	// or targeted.
	InstanceMatchCriteria string
	// ReservationType is default (an ODCR, the default) or capacity-block.
	ReservationType string
	// State is active (default), pending, cancelled, expired or failed;
	// past EndDate an active reservation answers expired.
	State string
	// EndDate is when it ends (zero: unlimited).
	EndDate time.Time
	// OwnerID defaults to the cloud's account.
	OwnerID string
	Tags    map[string]string

	startDate time.Time
	zoneID    string
	instances map[string]bool // instance IDs holding a slot
}

// available is how many more instances it takes now.
func (r *CapacityReservation) available() int {
	return max(0, r.TotalInstanceCount-r.UsedElsewhere-len(r.instances))
}

func (r *CapacityReservation) state(now time.Time) string {
	if r.State == ReservationActive && !r.EndDate.IsZero() && !now.Before(r.EndDate) {
		return ReservationExpired
	}
	return r.State
}

// AddCapacityReservation declares a reservation and returns its ID.
func (c *Cloud) AddCapacityReservation(r CapacityReservation) (string, error) {
	if r.ID == "" {
		r.ID = newID("cr")
	}
	if !strings.HasPrefix(r.ID, "cr-") {
		return "", fmt.Errorf("capacity reservation %q: an ID starts with cr-", r.ID)
	}
	// Outside a request: the EC2 lock first, never under mu.
	c.ec2.mu.Lock()
	_, known := c.ec2.types[r.InstanceType]
	r.zoneID = c.ec2.zoneID(r.Zone)
	c.ec2.mu.Unlock()
	if !known {
		return "", fmt.Errorf("capacity reservation %s: instance type %q is not in the simulated EC2's catalog", r.ID, r.InstanceType)
	}
	if r.zoneID == "" {
		return "", fmt.Errorf("capacity reservation %s: zone %q is not a zone of the simulated region %s", r.ID, r.Zone, c.opts.Region)
	}
	if r.TotalInstanceCount < 1 || r.UsedElsewhere < 0 || r.UsedElsewhere > r.TotalInstanceCount {
		return "", fmt.Errorf("capacity reservation %s: TotalInstanceCount %d must be at least 1 and UsedElsewhere %d between 0 and it", r.ID, r.TotalInstanceCount, r.UsedElsewhere)
	}
	switch r.ReservationType {
	case "":
		r.ReservationType = ReservationTypeDefault
	case ReservationTypeDefault, ReservationTypeCapacityBlock:
	default:
		return "", fmt.Errorf("capacity reservation %s: ReservationType %q is %s or %s", r.ID, r.ReservationType, ReservationTypeDefault, ReservationTypeCapacityBlock)
	}
	switch r.InstanceMatchCriteria {
	case "":
		r.InstanceMatchCriteria = MatchOpen
		if r.ReservationType == ReservationTypeCapacityBlock {
			r.InstanceMatchCriteria = MatchTargeted
		}
	case MatchOpen, MatchTargeted:
	default:
		return "", fmt.Errorf("capacity reservation %s: InstanceMatchCriteria %q is %s or %s", r.ID, r.InstanceMatchCriteria, MatchOpen, MatchTargeted)
	}
	if r.ReservationType == ReservationTypeCapacityBlock && r.InstanceMatchCriteria != MatchTargeted {
		return "", fmt.Errorf("capacity reservation %s: a capacity block only takes targeted launches (InstanceMatchCriteria %s)", r.ID, MatchTargeted)
	}
	if r.State == "" {
		r.State = ReservationActive
	}
	if r.OwnerID == "" {
		r.OwnerID = c.opts.AccountID
	}
	r.Tags = maps.Clone(r.Tags)
	r.startDate = time.Now()
	r.instances = map[string]bool{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.reservations[r.ID]; dup {
		return "", fmt.Errorf("capacity reservation %s already exists", r.ID)
	}
	c.reservations[r.ID] = &r
	return r.ID, nil
}

// SetCapacityReservationState changes a reservation's state (cancelled,
// expired, ...), as its owner or its end date would.
func (c *Cloud) SetCapacityReservationState(id, state string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reservations[id]
	if !ok {
		return fmt.Errorf("capacity reservation %s does not exist", id)
	}
	r.State = state
	return nil
}

// CapacityReservationUsage is how many instances a reservation holds now,
// and which of the simulator's.
type CapacityReservationUsage struct {
	Available int
	Instances []string
}

// CapacityReservationUsage reports a reservation's use (ok false when it
// does not exist).
func (c *Cloud) CapacityReservationUsage(id string) (CapacityReservationUsage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reservations[id]
	if !ok {
		return CapacityReservationUsage{}, false
	}
	return CapacityReservationUsage{Available: r.available(), Instances: slices.Sorted(maps.Keys(r.instances))}, true
}

// reservationFor picks the reservation a launch uses, if any: the target,
// checked as EC2 checks it, or an open one with room. mu held.
func (c *Cloud) reservationFor(target, marketType, preference, instanceType, zone string, count int, now time.Time) (*CapacityReservation, *ec2APIError) {
	block := marketType == ReservationTypeCapacityBlock
	if target == "" {
		if block {
			return nil, errMissing("CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId")
		}
		if marketType != "" || preference == "none" {
			return nil, nil
		}
		// EC2 fills open reservations by itself, oldest first.
		var open []*CapacityReservation
		for _, r := range c.reservations {
			if r.InstanceMatchCriteria == MatchOpen && r.InstanceType == instanceType && r.Zone == zone && r.state(now) == ReservationActive && r.available() >= count {
				open = append(open, r)
			}
		}
		sort.Slice(open, func(i, j int) bool { return open[i].ID < open[j].ID })
		if len(open) > 0 {
			return open[0], nil
		}
		if preference == "capacity-reservations-only" {
			return nil, &ec2APIError{400, "ReservationCapacityExceeded", launchErrorText["ReservationCapacityExceeded"].message}
		}
		return nil, nil
	}
	if !strings.HasPrefix(target, "cr-") {
		return nil, &ec2APIError{400, "InvalidCapacityReservationId.Malformed", fmt.Sprintf("Invalid id: \"%s\" (expecting \"cr-...\")", target)}
	}
	r, ok := c.reservations[target]
	if !ok {
		return nil, &ec2APIError{400, "InvalidCapacityReservationId.NotFound", fmt.Sprintf("The capacity reservation ID '%s' does not exist", target)}
	}
	switch {
	case marketType == "spot":
		return nil, &ec2APIError{400, "InvalidParameterCombination", "A Spot Instance cannot be launched into a Capacity Reservation."}
	case block && r.ReservationType != ReservationTypeCapacityBlock:
		return nil, &ec2APIError{400, "InvalidParameterCombination", fmt.Sprintf("The market type capacity-block needs a Capacity Block; %s is an On-Demand Capacity Reservation.", r.ID)}
	case !block && r.ReservationType == ReservationTypeCapacityBlock:
		return nil, &ec2APIError{400, "InvalidParameterCombination", fmt.Sprintf("%s is a Capacity Block: launch into it with the market type capacity-block.", r.ID)}
	}
	// EC2's one answer for a reservation that is not active, of another
	// type or zone, or full: "compatible and available capacity".
	if r.state(now) != ReservationActive || r.InstanceType != instanceType || r.Zone != zone || r.available() < count {
		return nil, &ec2APIError{400, "ReservationCapacityExceeded", launchErrorText["ReservationCapacityExceeded"].message}
	}
	return r, nil
}

// DescribeCapacityReservations.

type ec2DescribeCapacityReservationsResponse struct {
	XMLName      xml.Name                    `xml:"DescribeCapacityReservationsResponse"`
	Namespace    string                      `xml:"xmlns,attr"`
	RequestID    string                      `xml:"requestId"`
	Reservations []ec2CapacityReservationXML `xml:"capacityReservationSet>item"`
	NextToken    string                      `xml:"nextToken,omitempty"`
}

type ec2CapacityReservationXML struct {
	ID                     string   `xml:"capacityReservationId"`
	OwnerID                string   `xml:"ownerId"`
	Arn                    string   `xml:"capacityReservationArn"`
	AvailabilityZoneID     string   `xml:"availabilityZoneId"`
	InstanceType           string   `xml:"instanceType"`
	InstancePlatform       string   `xml:"instancePlatform"`
	AvailabilityZone       string   `xml:"availabilityZone"`
	Tenancy                string   `xml:"tenancy"`
	TotalInstanceCount     int      `xml:"totalInstanceCount"`
	AvailableInstanceCount int      `xml:"availableInstanceCount"`
	EBSOptimized           bool     `xml:"ebsOptimized"`
	EphemeralStorage       bool     `xml:"ephemeralStorage"`
	State                  string   `xml:"state"`
	StartDate              string   `xml:"startDate"`
	EndDate                string   `xml:"endDate,omitempty"`
	EndDateType            string   `xml:"endDateType"`
	InstanceMatchCriteria  string   `xml:"instanceMatchCriteria"`
	CreateDate             string   `xml:"createDate"`
	Tags                   []ec2Tag `xml:"tagSet>item"`
	ReservationType        string   `xml:"reservationType"`
}

func (c *Cloud) describeCapacityReservations(in ec2Input, requestID string, now time.Time) (any, *ec2APIError) {
	if err := in.checkFiltersTagged("instance-type", "owner-id", "instance-platform", "availability-zone", "tenancy", "state",
		"end-date-type", "instance-match-criteria", "tag-key"); err != nil {
		return nil, err
	}
	ids := in.list("CapacityReservationId")
	for _, id := range ids {
		if !strings.HasPrefix(id, "cr-") {
			return nil, &ec2APIError{400, "InvalidCapacityReservationId.Malformed", fmt.Sprintf("Invalid id: \"%s\" (expecting \"cr-...\")", id)}
		}
		if _, ok := c.reservations[id]; !ok {
			return nil, &ec2APIError{400, "InvalidCapacityReservationId.NotFound", fmt.Sprintf("The capacity reservation ID '%s' does not exist", id)}
		}
	}
	var out []ec2CapacityReservationXML
	for _, r := range c.reservations {
		endType := "unlimited"
		if !r.EndDate.IsZero() {
			endType = "limited"
		}
		state := r.state(now)
		if (len(ids) > 0 && !slices.Contains(ids, r.ID)) || !in.match("instance-type", r.InstanceType) || !in.match("owner-id", r.OwnerID) ||
			!in.match("instance-platform", "Linux/UNIX") || !in.match("availability-zone", r.Zone) || !in.match("tenancy", "default") ||
			!in.match("state", state) || !in.match("end-date-type", endType) || !in.match("instance-match-criteria", r.InstanceMatchCriteria) ||
			!in.matchTags(r.Tags) {
			continue
		}
		x := ec2CapacityReservationXML{
			ID: r.ID, OwnerID: r.OwnerID, Arn: fmt.Sprintf("arn:aws:ec2:%s:%s:capacity-reservation/%s", c.opts.Region, r.OwnerID, r.ID),
			AvailabilityZoneID: r.zoneID, InstanceType: r.InstanceType, InstancePlatform: "Linux/UNIX", AvailabilityZone: r.Zone,
			Tenancy: "default", TotalInstanceCount: r.TotalInstanceCount, AvailableInstanceCount: r.available(), EBSOptimized: true,
			State: state, StartDate: ec2Time(r.startDate), EndDateType: endType, InstanceMatchCriteria: r.InstanceMatchCriteria,
			CreateDate: ec2Time(r.startDate), Tags: tagSet(r.Tags), ReservationType: r.ReservationType,
		}
		if state != ReservationActive {
			x.AvailableInstanceCount = 0
		}
		if !r.EndDate.IsZero() {
			x.EndDate = ec2Time(r.EndDate)
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	items, next, err := page(in, out, func(x ec2CapacityReservationXML) string { return x.ID }, 1, 1000)
	if err != nil {
		return nil, err
	}
	return ec2DescribeCapacityReservationsResponse{Namespace: ec2Namespace, RequestID: requestID, Reservations: items, NextToken: next}, nil
}
