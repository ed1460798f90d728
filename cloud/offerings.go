package cloud

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// Offering is one way to buy an instance type: a zone and a capacity type,
// with its price. As in Karpenter, a type has one offering per zone and
// capacity type.
type Offering struct {
	InstanceType string
	Region       string
	Zone         string // us-east-1a: the account's name for ZoneID
	ZoneID       string // use1-az1
	CapacityType string // v1alpha1.CapacityTypeOnDemand, CapacityTypeSpot or CapacityTypeReserved
	PricePerHour float64
	// PlacementScore is EC2's spot placement score of a spot offering,
	// 1 to 10; 0 is unknown (see Catalog.WithPlacementScores).
	PlacementScore int
	// Available is true for every spot and on-demand offering the catalog
	// returns: the snapshot knows nothing of current capacity. Callers
	// that track insufficient-capacity errors set it to false. A reserved
	// offering is available while its reservation had room when read.
	Available bool
	// Reservation is the capacity reservation of a reserved offering
	// (shared: do not modify it).
	Reservation *CapacityReservation
}

// Labels returns the labels a node launched from this offering carries on
// top of InstanceType.Labels: zone, zone ID, region and capacity type.
func (o Offering) Labels() map[string]string {
	labels := map[string]string{
		v1alpha1.LabelZone:         o.Zone,
		v1alpha1.LabelZoneID:       o.ZoneID,
		v1alpha1.LabelRegion:       o.Region,
		v1alpha1.LabelCapacityType: o.CapacityType,
	}
	if r := o.Reservation; r != nil {
		labels[v1alpha1.LabelCapacityReservationID] = r.ID
		labels[v1alpha1.LabelCapacityReservationType] = r.Type
	}
	return labels
}

// InstanceTypeOfferings is an instance type with its offerings in one region.
type InstanceTypeOfferings struct {
	InstanceType InstanceType
	// Offerings are ordered by zone (the region's zone order) and, within
	// a zone, on-demand before spot; reserved offerings (one per capacity
	// reservation) come last.
	Offerings []Offering
}

// OfferingOption tunes RegionOfferings.
type OfferingOption func(*offeringOptions)

type offeringOptions struct {
	zoneNames map[string]string // zone ID -> name; nil means DefaultZoneNames
	zones     []string          // zone names to keep; empty keeps all
}

// WithZoneNames gives the account's zone ID -> zone name mapping (EC2
// DescribeAvailabilityZones), which differs between AWS accounts. It must
// name every zone ID of the region; IDs of other regions are ignored, so one
// map can serve a whole account.
func WithZoneNames(zoneNames map[string]string) OfferingOption {
	return func(o *offeringOptions) { o.zoneNames = zoneNames }
}

// WithZones keeps only offerings in these zones (names such as us-east-1a),
// e.g. the failure domains of a CAPI Cluster. No names keeps every zone.
func WithZones(zones ...string) OfferingOption {
	return func(o *offeringOptions) { o.zones = zones }
}

// RegionOfferings returns, for every instance type the region offers, its
// offerings, sorted by type name. The rules:
//
//   - The zones of a region are the zone IDs offerings.csv lists for it.
//   - An on-demand offering exists in every zone where offerings.csv lists
//     the type, if the type has an on-demand USD price for the region; its
//     price is that price.
//   - A spot offering exists in those same zones if spot-prices-sample.csv
//     has the type for the region. Its price is spot_max_usd_per_hour, the
//     highest of the sampled per-zone prices: the sample does not say which
//     zone had which price, and pricing every zone at the worst one keeps
//     the solver from choosing spot on a saving that may not exist.
//   - In a region with per-zone spot prices (updated from EC2), a spot
//     offering exists only in the zones where the type has one, at that
//     price, as in Karpenter: no price, no spot offering.
//   - Each active capacity reservation the catalog knows (from EC2, see
//     WithCapacityReservations) in a kept zone is a reserved offering of
//     its type, priced at ReservedPrice, available while it has room.
//   - Types without an architecture are not offered (no AMI, no arch label).
//   - Zone names come from WithZoneNames, else the account's names the
//     catalog was updated with (zones its Zones do not name are left out),
//     else DefaultZoneNames.
//   - WithZones drops offerings outside the given zones; naming a zone the
//     region does not have is an error, since it is most likely a typo in a
//     Cluster's failure domains.
//
// Types with no offering left are omitted. An unknown region is an error.
func (c *Catalog) RegionOfferings(region string, opts ...OfferingOption) ([]InstanceTypeOfferings, error) {
	zoneIDs, ok := c.zoneIDs[region]
	if !ok {
		return nil, fmt.Errorf("region %q has no offerings in the catalog; regions with offerings: %s", region, knownList(c.Regions()))
	}
	var o offeringOptions
	for _, opt := range opts {
		opt(&o)
	}
	if account, ok := c.zoneNames[region]; ok && o.zoneNames == nil {
		o.zoneNames = account
		zoneIDs = slices.DeleteFunc(slices.Clone(zoneIDs), func(id string) bool { return account[id] == "" })
	}
	names, err := zoneNamesFor(region, zoneIDs, o.zoneNames)
	if err != nil {
		return nil, err
	}
	keep, err := zoneFilter(region, zoneIDs, names, o.zones)
	if err != nil {
		return nil, err
	}

	onDemand, spot := c.onDemand[region], c.spot[region]
	zoneSpot, perZoneSpot := c.zoneSpot[region]
	byType := c.zonesOf[region]
	reserved := c.reservedOfferings(region, keep, names)
	typeNames := sortedKeys(byType)
	for name := range reserved {
		if _, ok := byType[name]; !ok {
			if _, known := c.typeIndex[name]; known {
				typeNames = append(typeNames, name)
			}
		}
	}
	sort.Strings(typeNames)
	result := make([]InstanceTypeOfferings, 0, len(typeNames))
	for _, name := range typeNames {
		it := c.tables.InstanceTypes[c.typeIndex[name]]
		if !it.offerable() {
			continue
		}
		odPrice, hasOnDemand := onDemand[name]
		spotPrice, hasSpot := spot[name]
		var offerings []Offering
		for _, zoneID := range byType[name] {
			if !keep[zoneID] {
				continue
			}
			offering := Offering{InstanceType: name, Region: region, Zone: names[zoneID], ZoneID: zoneID, Available: true}
			if hasOnDemand {
				offering.CapacityType, offering.PricePerHour = v1alpha1.CapacityTypeOnDemand, odPrice
				offerings = append(offerings, offering)
			}
			switch price, inZone := zoneSpot[name][zoneID]; {
			case perZoneSpot && inZone:
				offering.CapacityType, offering.PricePerHour = v1alpha1.CapacityTypeSpot, price
				offering.PlacementScore = c.PlacementScoreOf(region, zoneID, name)
				offerings = append(offerings, offering)
			case !perZoneSpot && hasSpot:
				offering.CapacityType, offering.PricePerHour = v1alpha1.CapacityTypeSpot, spotPrice.MaxUSDPerHour
				offering.PlacementScore = c.PlacementScoreOf(region, zoneID, name)
				offerings = append(offerings, offering)
			}
		}
		offerings = append(offerings, reserved[name]...)
		if len(offerings) > 0 {
			result = append(result, InstanceTypeOfferings{InstanceType: it, Offerings: offerings})
		}
	}
	return result, nil
}

// ZoneNames returns the zone ID -> name mapping of a region: the account's
// when the catalog was updated from EC2, else the default one (see
// DefaultZoneNames); nil for a region without offerings.
func (c *Catalog) ZoneNames(region string) map[string]string {
	ids, ok := c.zoneIDs[region]
	if !ok {
		return nil
	}
	if account, ok := c.zoneNames[region]; ok {
		return maps.Clone(account)
	}
	return DefaultZoneNames(region, ids)
}

// ZoneNamesKnown reports whether the catalog has the account's zone names
// for region (from EC2 DescribeAvailabilityZones, by cloud/live or an
// updated catalog's zones.csv); without them ZoneNames is DefaultZoneNames,
// a guess.
func (c *Catalog) ZoneNamesKnown(region string) bool {
	_, ok := c.zoneNames[region]
	return ok
}

// DefaultZoneNames names zone IDs when the account's real mapping is not
// known. AWS assigns names per account, so any fixed choice is a guess; this
// one is deterministic: the IDs, sorted by their numeric suffix (az1, az2,
// ..., az10), are named region+"a", region+"b", ... in that order. A region
// whose catalog lists use1-az1, use1-az2 and use1-az4 gets us-east-1a,
// us-east-1b and us-east-1c.
func DefaultZoneNames(region string, zoneIDs []string) map[string]string {
	ids := append([]string(nil), zoneIDs...)
	sortZoneIDs(ids)
	names := make(map[string]string, len(ids))
	for i, id := range ids {
		names[id] = region + zoneLetters(i)
	}
	return names
}

// zoneLetters returns a, b, ..., z, aa, ab, ... for 0, 1, ...; real regions
// stop well before z, synthetic ones need not.
func zoneLetters(i int) string {
	var letters []byte
	for n := i + 1; n > 0; n = (n - 1) / 26 {
		letters = append([]byte{byte('a' + (n-1)%26)}, letters...)
	}
	return string(letters)
}

// zoneNamesFor resolves the zone names of a region's zone IDs and checks a
// user-given mapping covers them without clashes.
func zoneNamesFor(region string, zoneIDs []string, given map[string]string) (map[string]string, error) {
	if given == nil {
		return DefaultZoneNames(region, zoneIDs), nil
	}
	names := make(map[string]string, len(zoneIDs))
	owner := make(map[string]string, len(zoneIDs))
	for _, id := range zoneIDs {
		name, ok := given[id]
		if !ok || name == "" {
			return nil, fmt.Errorf("zone names: zone ID %s of region %s has no name; give every zone ID of the region (%s) a name",
				id, region, strings.Join(zoneIDs, ", "))
		}
		if other, dup := owner[name]; dup {
			return nil, fmt.Errorf("zone names: zone IDs %s and %s are both named %s; each zone needs its own name", other, id, name)
		}
		owner[name] = id
		names[id] = name
	}
	return names, nil
}

// zoneFilter returns the zone IDs to keep for a set of zone names.
func zoneFilter(region string, zoneIDs []string, names map[string]string, zones []string) (map[string]bool, error) {
	keep := make(map[string]bool, len(zoneIDs))
	if len(zones) == 0 {
		for _, id := range zoneIDs {
			keep[id] = true
		}
		return keep, nil
	}
	idOf := make(map[string]string, len(names))
	for id, name := range names {
		idOf[name] = id
	}
	for _, zone := range zones {
		id, ok := idOf[zone]
		if !ok {
			known := make([]string, 0, len(zoneIDs))
			for _, id := range zoneIDs {
				known = append(known, names[id])
			}
			return nil, fmt.Errorf("zone %q is not a zone of region %s in the catalog; its zones are %s (pass the account's zone names with WithZoneNames if they differ)",
				zone, region, strings.Join(known, ", "))
		}
		keep[id] = true
	}
	return keep, nil
}

// zoneIDNumber returns N of a zone ID ending in "-azN".
func zoneIDNumber(zoneID string) (int, error) {
	if i := strings.LastIndex(zoneID, "-az"); i >= 0 {
		if n, err := strconv.Atoi(zoneID[i+len("-az"):]); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("zone ID %q does not end in -az<number>; write zone IDs as EC2 does, e.g. use1-az1", zoneID)
}

// sortZoneIDs sorts zone IDs by their numeric suffix, then by name (zone
// IDs of different prefixes can share a number).
func sortZoneIDs(ids []string) {
	sort.Slice(ids, func(i, j int) bool {
		a, _ := zoneIDNumber(ids[i])
		b, _ := zoneIDNumber(ids[j])
		if a != b {
			return a < b
		}
		return ids[i] < ids[j]
	})
}
