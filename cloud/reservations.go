package cloud

import (
	"maps"
	"slices"
	"time"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// CapacityReservation is an EC2 capacity reservation (an on-demand
// capacity reservation or a capacity block) as DescribeCapacityReservations
// reports it. Reservations are the account's live state, not catalog data:
// they are never written to the catalog's files.
type CapacityReservation struct {
	ID           string
	OwnerID      string
	InstanceType string
	Region       string
	Zone         string // the account's zone name
	ZoneID       string
	// Type is v1alpha1.CapacityReservationTypeDefault or
	// CapacityReservationTypeBlock.
	Type string
	// Total is how many instances it holds room for; Available how many
	// more it took when it was read.
	Total     int
	Available int
	State     string // active, expired, cancelled, ...
	// EndDate is when it ends (zero: unlimited).
	EndDate time.Time
	Tags    map[string]string
}

// reservedPriceDivisor makes a reserved offering all but free: Karpenter's
// AWS provider prices one at its type's on-demand price / 10,000,000
// (ReservedCapacityResolver), since the reservation is paid for whether
// used or not, so the solver prefers it over any spot or on-demand
// offering, and the ratio keeps its types in their on-demand order when it
// compares reserved offerings with each other (a larger reserved type
// still costs more than a smaller one, which consolidation needs).
const reservedPriceDivisor = 10_000_000.0

// ReservedPrice is the price planning gives a reserved offering of a type
// whose on-demand price is onDemand.
func ReservedPrice(onDemand float64) float64 { return onDemand / reservedPriceDivisor }

// Selects reports whether the term selects r, as Karpenter's EC2NodeClass
// terms do: by id, or by every tag (a value of "*" matches any value) and,
// when set, the owning account.
func Selects(term v1alpha1.CapacityReservationSelectorTerm, r *CapacityReservation) bool {
	if term.ID != "" {
		return term.ID == r.ID
	}
	if len(term.Tags) == 0 {
		return false
	}
	if term.OwnerID != "" && term.OwnerID != r.OwnerID {
		return false
	}
	for k, want := range term.Tags {
		got, ok := r.Tags[k]
		if !ok || (want != "*" && want != got) {
			return false
		}
	}
	return true
}

// SelectsAny reports whether any of the terms selects r.
func SelectsAny(terms []v1alpha1.CapacityReservationSelectorTerm, r *CapacityReservation) bool {
	return slices.ContainsFunc(terms, func(t v1alpha1.CapacityReservationSelectorTerm) bool { return Selects(t, r) })
}

// CapacityReservations returns the reservations the catalog knows in
// region (read from EC2 by cloud/live); do not modify them.
func (c *Catalog) CapacityReservations(region string) []CapacityReservation {
	return c.reservations[region]
}

// WithCapacityReservations returns a catalog like c whose reservations in
// region are rs (nil leaves none). c itself is not changed, and the rest
// is shared: reservations change every minute, the catalog's tables twice
// a day.
func (c *Catalog) WithCapacityReservations(region string, rs []CapacityReservation) *Catalog {
	next := *c
	next.reservations = maps.Clone(c.reservations)
	if next.reservations == nil {
		next.reservations = map[string][]CapacityReservation{}
	}
	if rs == nil {
		delete(next.reservations, region)
	} else {
		next.reservations[region] = slices.Clone(rs)
	}
	return &next
}

// reservedOfferings are the offerings of a region's active reservations in
// the kept zones, by instance type. A reservation with no room left is an
// offering that is not available, so explanations can still name it.
func (c *Catalog) reservedOfferings(region string, keep map[string]bool, names map[string]string) map[string][]Offering {
	out := map[string][]Offering{}
	rs := c.reservations[region]
	for i := range rs {
		r := &rs[i]
		if r.State != "active" || !keep[r.ZoneID] {
			continue
		}
		od, _ := c.onDemand[region][r.InstanceType]
		out[r.InstanceType] = append(out[r.InstanceType], Offering{
			InstanceType: r.InstanceType, Region: region, Zone: names[r.ZoneID], ZoneID: r.ZoneID,
			CapacityType: v1alpha1.CapacityTypeReserved, PricePerHour: ReservedPrice(od),
			Available: r.Available > 0, Reservation: r,
		})
	}
	return out
}
