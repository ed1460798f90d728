package provisioning

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/solver"
)

// LaunchConstraints are what a pool's AWSMachineTemplate leaves to the
// decision. The template is cloned as it is apart from instance type and
// market, so a decision against it would be a launch CAPA or EC2 refuses
// (a subnet in another zone than the failure domain, a spot request with a
// capacity reservation) or one the user did not want (above their spot
// maxPrice).
type LaunchConstraints struct {
	// Zones the template's subnet settings allow; nil allows every zone.
	Zones map[string]bool
	// NoSpot: the template targets a capacity reservation or a capacity
	// block, which spot cannot use.
	NoSpot bool
	// InstanceType, when set, is the only type the pool may launch (a
	// capacity block is one type).
	InstanceType string
	// MaxPrice caps spot prices (USD per hour); MaxPriceText is the
	// template's value, kept verbatim on the clone.
	MaxPrice     *float64
	MaxPriceText string
	// Reservation is the capacityReservationId the launches target.
	Reservation string
	// Problems are what the pool's condition says; Blocking ones stop
	// the pool's launches until the template changes.
	Problems []string
	Blocking bool
}

func (c *LaunchConstraints) problem(blocking bool, format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	c.Blocking = c.Blocking || blocking
}

// TemplateConstraints derives the constraints of an AWSMachine spec, with
// the AWSCluster's subnets (spec.network.subnets, which CAPA fills for a
// managed VPC and the user for their own) to resolve subnets to zones
// without calling EC2.
func TemplateConstraints(spec *infrav1.AWSMachineSpec, subnets infrav1.Subnets) LaunchConstraints {
	var c LaunchConstraints
	const prefix = "AWSMachineTemplate spec.template.spec."
	candidates := subnets.FilterNonCni()
	pinned := false
	if s := spec.Subnet; s != nil && (s.ID != nil || len(s.Filters) > 0) {
		pinned = true
		if s.ID != nil {
			sn := candidates.FindByID(*s.ID)
			if sn == nil {
				c.problem(true, "%ssubnet.id %s is not among the AWSCluster's spec.network.subnets, so Joinery cannot tell its zone without EC2; list it there (with its availabilityZone) or select the subnet by filters on availability-zone", prefix, *s.ID)
				candidates = nil
			} else {
				candidates = infrav1.Subnets{*sn}
			}
		}
		var unresolved []string
		for _, f := range s.Filters {
			var keep infrav1.Subnets
			known := true
			for _, sn := range candidates {
				match, ok := subnetMatches(sn, f)
				if !ok {
					known = false
					break
				}
				if match {
					keep = append(keep, sn)
				}
			}
			if !known {
				unresolved = append(unresolved, f.Name)
				continue
			}
			candidates = keep
		}
		if len(unresolved) > 0 {
			c.problem(false, "%ssubnet.filters %s cannot be resolved without EC2; Joinery plans with the subnets the other filters allow, and a zone the template's subnets do not cover fails the launch with a subnet error (filter on availability-zone, tag:<key>, tag-key, subnet-id or vpc-id to let Joinery resolve it)", prefix, strings.Join(unresolved, ", "))
		}
	}
	if spec.PublicIP != nil && *spec.PublicIP {
		candidates = candidates.FilterPublic()
		pinned = true
		if len(candidates) == 0 {
			c.problem(true, "%spublicIP is true but the AWSCluster has no public subnet%s; add one to spec.network.subnets or set publicIP to false", prefix, map[bool]string{true: " among the template's subnets", false: ""}[spec.Subnet != nil])
		}
	}
	if pinned && !c.Blocking {
		c.Zones = map[string]bool{}
		for _, sn := range candidates {
			if sn.AvailabilityZone != "" {
				c.Zones[sn.AvailabilityZone] = true
			}
		}
		if len(c.Zones) == 0 {
			c.problem(true, "%ssubnet matches none of the AWSCluster's spec.network.subnets that have an availabilityZone; fix the subnet or the AWSCluster's subnets", prefix)
		}
	}
	if spec.CapacityReservationID != nil {
		c.NoSpot = true
		c.Reservation = *spec.CapacityReservationID
	}
	if spec.CapacityReservationPreference == infrav1.CapacityReservationPreferenceOnly {
		c.NoSpot = true
	}
	if spec.MarketType == infrav1.MarketTypeCapacityBlock {
		c.NoSpot = true
		c.InstanceType = spec.InstanceType
		switch {
		case spec.CapacityReservationID == nil:
			c.problem(true, "%smarketType is CapacityBlock without capacityReservationId; CAPA refuses it: set the capacity block's reservation id", prefix)
		case len(c.Zones) != 1:
			c.problem(true, "%smarketType CapacityBlock: Joinery cannot tell the capacity block's zone without EC2; pin spec.template.spec.subnet to the block's subnet (one zone)", prefix)
		}
	}
	if spec.SpotMarketOptions != nil && spec.SpotMarketOptions.MaxPrice != nil && *spec.SpotMarketOptions.MaxPrice != "" {
		text := *spec.SpotMarketOptions.MaxPrice
		price, err := strconv.ParseFloat(text, 64)
		if err != nil || price <= 0 {
			c.problem(true, "%sspotMarketOptions.maxPrice %q is not a positive price in USD per hour (such as \"0.05\"); fix or remove it", prefix, text)
		} else {
			c.MaxPrice, c.MaxPriceText = &price, text
		}
	}
	return c
}

// subnetMatches applies one EC2 DescribeSubnets filter to a subnet of the
// AWSCluster. ok is false for filters the AWSCluster's record cannot
// answer.
func subnetMatches(sn infrav1.SubnetSpec, f infrav1.Filter) (match, ok bool) {
	in := func(v string) bool {
		for _, want := range f.Values {
			if want == v {
				return true
			}
		}
		return false
	}
	switch {
	case f.Name == "availability-zone":
		return in(sn.AvailabilityZone), true
	case f.Name == "subnet-id":
		return in(sn.GetResourceID()), true
	case f.Name == "tag-key":
		for k := range sn.Tags {
			if in(k) {
				return true, true
			}
		}
		return false, true
	case strings.HasPrefix(f.Name, "tag:"):
		v, has := sn.Tags[strings.TrimPrefix(f.Name, "tag:")]
		return has && in(v), true
	case f.Name == "vpc-id":
		// The AWSCluster's subnets are the cluster VPC's; CAPA prefers
		// them among what the filters return.
		return true, true
	}
	return false, false
}

// Allows reports whether the constraints allow an offering.
func (c *LaunchConstraints) Allows(instanceType, zone, capacityType string, price float64) bool {
	switch {
	case c == nil:
		return true
	case c.Blocking:
		return false
	case c.Zones != nil && !c.Zones[zone]:
		return false
	case c.InstanceType != "" && c.InstanceType != instanceType:
		return false
	case capacityType == v1alpha1.CapacityTypeSpot && (c.NoSpot || (c.MaxPrice != nil && price > *c.MaxPrice)):
		return false
	}
	return true
}

// restriction is what one pass withholds from the solver, pool by pool:
// template constraints, scoped refusals and pools blocked by a
// configuration error.
type restriction struct {
	region      string
	namespace   string
	constraints map[string]*LaunchConstraints // by pool name
	scopes      []UnavailableScope
	blocked     map[string]bool // pool names
	// spotRisk weighs spot offerings (the solver's SpotRisk).
	spotRisk solver.SpotRisk
	// reservations are this cluster's Machines in each capacity
	// reservation, and reservationTotals each reservation's size, to
	// count what the catalog's last read of it does not show yet.
	reservations      reservationUse
	reservationTotals map[string]int
}

// reservationUse counts, per capacity reservation, the cluster's Machines
// launched into it (not being deleted), and those of them whose instance
// EC2 may not have counted yet.
type reservationUse map[string]*struct{ machines, launching int }

// count adds a Machine's decision; aws is its AWSMachine (nil before it
// is created). CAPA sets spec.instanceID once RunInstances answered: from
// then on EC2's available count includes the instance.
func (u reservationUse) count(d Decision, aws *infrav1.AWSMachine) {
	id := d.Offering.ReservationID
	if id == "" {
		return
	}
	c := u[id]
	if c == nil {
		c = &struct{ machines, launching int }{}
		u[id] = c
	}
	c.machines++
	if aws == nil || aws.Spec.InstanceID == nil || *aws.Spec.InstanceID == "" {
		c.launching++
	}
}

// reservationTotals are the sizes of the reservations the catalog offers.
func reservationTotals(offered []cloud.InstanceTypeOfferings) map[string]int {
	out := map[string]int{}
	for _, ito := range offered {
		for _, o := range ito.Offerings {
			if o.Reservation != nil {
				out[o.Reservation.ID] = o.Reservation.Total
			}
		}
	}
	return out
}

// reservedRoom is how many more machines a reservation takes, of the
// available count the catalog last read: Machines still launching are not
// in that count, and Machines launched since the read are not either, so
// whichever of the two says less wins (EC2 refuses the rest with
// ReservationCapacityExceeded, which marks the reservation unavailable).
func (r *restriction) reservedRoom(id string, read int) int {
	room := read
	if c := r.reservations[id]; c != nil {
		room -= c.launching
		if total, ok := r.reservationTotals[id]; ok {
			room = min(room, total-c.machines)
		}
	}
	return max(room, 0)
}

// apply marks offerings the restriction withholds unavailable in the
// snapshot's pools. The solver then never chooses them, as it never
// chooses an offering EC2 refused.
func (r *restriction) apply(snap *solver.Snapshot) {
	snap.SpotRisk = r.spotRisk
	for _, pool := range snap.Pools {
		c := r.constraints[pool.Name]
		blocked := r.blocked[pool.Name]
		key := r.namespace + "/" + pool.Name
		reservation := ""
		if c != nil {
			reservation = c.Reservation
		}
		for _, it := range pool.InstanceTypes {
			for i := range it.Offerings {
				o := &it.Offerings[i]
				if !o.Available {
					continue
				}
				if blocked || !c.Allows(it.Name, o.Zone, o.CapacityType, o.PricePerHour) {
					o.Available = false
					continue
				}
				target := reservation
				if o.ReservationID != "" {
					// A template that targets a reservation of its own
					// launches there: the selector terms' reservations
					// cannot be used.
					if reservation != "" {
						o.Available = false
						continue
					}
					target = o.ReservationID
					if o.ReservationCapacity = r.reservedRoom(o.ReservationID, o.ReservationCapacity); o.ReservationCapacity == 0 {
						o.Available = false
						continue
					}
				}
				for _, s := range r.scopes {
					if s.Blocks(r.region, key, target, it.Name, o.Zone, o.CapacityType) {
						o.Available = false
						break
					}
				}
			}
		}
	}
}

// problems lists a pool's constraint problems, sorted.
func (c *LaunchConstraints) problemText() string {
	if c == nil || len(c.Problems) == 0 {
		return ""
	}
	p := append([]string(nil), c.Problems...)
	sort.Strings(p)
	return strings.Join(p, "; ")
}
