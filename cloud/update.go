package cloud

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Zone is one row of zones.csv: the account's name for an Availability
// Zone ID, as EC2's DescribeAvailabilityZones reports it. The mapping
// differs between accounts, so the embedded snapshot has none; a catalog
// updated from EC2 has the account's own.
type Zone struct {
	Region   string
	ZoneID   string // use1-az1
	ZoneName string // us-east-1a in this account
}

// ZoneSpotPrice is one row of spot-prices-zones.csv: the spot price of a
// type in one Availability Zone, as EC2's DescribeSpotPriceHistory last
// reported it (Linux/UNIX).
type ZoneSpotPrice struct {
	Region       string
	ZoneID       string
	InstanceType string
	USDPerHour   float64
	AsOf         string // the price's timestamp, RFC 3339
}

// Source hands out the catalog to decide with. Controllers ask it once per
// pass, not once at start, so a refreshed catalog is used from the next
// pass on; the *Catalog a pass got never changes under it.
type Source interface {
	Current() *Catalog
}

// Current makes a fixed catalog a Source of itself.
func (c *Catalog) Current() *Catalog { return c }

// RegionUpdate is what EC2's API said about one region. A nil field was
// not read (or reading it failed) and leaves the catalog's rows for the
// region as they are; a non-nil one replaces them.
type RegionUpdate struct {
	Region string
	// Zones is the account's zone ID -> name mapping. Once a region has
	// one, RegionOfferings offers only the zones it names: a zone the
	// account does not list cannot be launched into.
	Zones []Zone
	// InstanceTypes are types EC2 knows. Types the catalog lacks are
	// added; a type it has keeps the catalog's row, which spells GPU names
	// and categories as Karpenter's labels do and has figures the API does
	// not give (trunk branch ENIs).
	InstanceTypes []InstanceType
	// Offerings replace the region's offerings.csv rows.
	Offerings []ZoneOffering
	// SpotPrices replace the region's per-zone spot prices. The region's
	// spot-prices-sample.csv rows are derived from them (lowest and
	// highest zone, keeping the interruption frequency), so SpotPrice
	// agrees with what RegionOfferings prices.
	SpotPrices []ZoneSpotPrice
	// CapacityReservations replace the region's capacity reservations.
	CapacityReservations []CapacityReservation
}

// Update returns a new catalog: c with each region's rows replaced by what
// the updates carry. On-demand prices are kept: EC2's API does not give
// them. c itself is not changed.
func (c *Catalog) Update(updates ...RegionUpdate) (*Catalog, error) {
	t := c.Tables()
	known := make(map[string]bool, len(t.InstanceTypes))
	for _, it := range t.InstanceTypes {
		known[it.Name] = true
	}
	for _, u := range updates {
		if u.Region == "" {
			return nil, fmt.Errorf("catalog update: no region; name the region the rows come from")
		}
		for _, it := range u.InstanceTypes {
			if !known[it.Name] {
				known[it.Name] = true
				t.InstanceTypes = append(t.InstanceTypes, it)
			}
		}
		var err error
		if u.Zones != nil {
			if t.Zones, err = replaceRegion(t.Zones, u.Zones, u.Region, func(z *Zone) *string { return &z.Region }); err != nil {
				return nil, err
			}
		}
		if u.Offerings != nil {
			if t.Offerings, err = replaceRegion(t.Offerings, u.Offerings, u.Region, func(o *ZoneOffering) *string { return &o.Region }); err != nil {
				return nil, err
			}
		}
		if u.SpotPrices != nil {
			if t.ZoneSpotPrices, err = replaceRegion(t.ZoneSpotPrices, u.SpotPrices, u.Region, func(p *ZoneSpotPrice) *string { return &p.Region }); err != nil {
				return nil, err
			}
			summary := summarizeSpot(u.Region, u.SpotPrices, t.SpotPrices)
			t.SpotPrices = slices.DeleteFunc(t.SpotPrices, func(p SpotPrice) bool { return p.Region == u.Region })
			t.SpotPrices = append(t.SpotPrices, summary...)
		}
	}
	next, err := build(t)
	if err != nil {
		return nil, err
	}
	next.reservations = maps.Clone(c.reservations)
	for _, u := range updates {
		if u.CapacityReservations != nil {
			if next.reservations == nil {
				next.reservations = map[string][]CapacityReservation{}
			}
			next.reservations[u.Region] = slices.Clone(u.CapacityReservations)
		}
	}
	return next, nil
}

// replaceRegion drops rows of region from rows and appends with, whose
// rows must be of that region (an empty region is filled in).
func replaceRegion[T any](rows, with []T, region string, regionOf func(*T) *string) ([]T, error) {
	rows = slices.DeleteFunc(rows, func(row T) bool { return *regionOf(&row) == region })
	for _, row := range with {
		r := regionOf(&row)
		if *r == "" {
			*r = region
		}
		if *r != region {
			return nil, fmt.Errorf("catalog update of region %s: a row is of region %s; keep each region's rows in its own RegionUpdate", region, *r)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// summarizeSpot derives a region's spot-prices-sample.csv rows from its
// per-zone prices.
func summarizeSpot(region string, zonePrices []ZoneSpotPrice, old []SpotPrice) []SpotPrice {
	frequency := map[string]string{}
	for _, p := range old {
		if p.Region == region {
			frequency[p.InstanceType] = p.InterruptionFrequency
		}
	}
	byType := map[string]*SpotPrice{}
	for _, zp := range zonePrices {
		p, ok := byType[zp.InstanceType]
		if !ok {
			p = &SpotPrice{Region: region, InstanceType: zp.InstanceType, MinUSDPerHour: zp.USDPerHour, MaxUSDPerHour: zp.USDPerHour,
				InterruptionFrequency: frequency[zp.InstanceType]}
			byType[zp.InstanceType] = p
		}
		p.MinUSDPerHour = min(p.MinUSDPerHour, zp.USDPerHour)
		p.MaxUSDPerHour = max(p.MaxUSDPerHour, zp.USDPerHour)
		p.ZoneSamples++
	}
	out := make([]SpotPrice, 0, len(byType))
	for _, p := range byType {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b SpotPrice) int { return strings.Compare(a.InstanceType, b.InstanceType) })
	return out
}

// indexZones checks and indexes zones.csv rows (sorted by region, zone ID).
func (c *Catalog) indexZones(zones []Zone) error {
	for _, run := range regionRuns(zones, func(z Zone) string { return z.Region }) {
		region := run[0].Region
		names := make(map[string]string, len(run))
		owner := make(map[string]string, len(run))
		for i, z := range run {
			if _, err := zoneIDNumber(z.ZoneID); err != nil {
				return fmt.Errorf("%s: region %s: %w", ZonesFile, region, err)
			}
			if z.ZoneName == "" {
				return fmt.Errorf("%s: zone ID %s of region %s has no name; name it as DescribeAvailabilityZones does, e.g. us-east-1a", ZonesFile, z.ZoneID, region)
			}
			if i > 0 && run[i-1].ZoneID == z.ZoneID {
				return fmt.Errorf("%s: zone ID %s of region %s appears twice; keep one row per zone", ZonesFile, z.ZoneID, region)
			}
			if other, dup := owner[z.ZoneName]; dup {
				return fmt.Errorf("%s: zone IDs %s and %s are both named %s; each zone needs its own name", ZonesFile, other, z.ZoneID, z.ZoneName)
			}
			owner[z.ZoneName] = z.ZoneID
			names[z.ZoneID] = z.ZoneName
		}
		c.zoneNames[region] = names
	}
	return nil
}

// indexZoneSpotPrices checks and indexes spot-prices-zones.csv rows
// (sorted by region, zone ID, type).
func (c *Catalog) indexZoneSpotPrices(prices []ZoneSpotPrice) error {
	for _, run := range regionRuns(prices, func(p ZoneSpotPrice) string { return p.Region }) {
		region := run[0].Region
		byType := map[string]map[string]float64{}
		for i, p := range run {
			if _, ok := c.typeIndex[p.InstanceType]; !ok {
				return fmt.Errorf("%s: %s in %s is not in %s; add the type or drop the row", ZoneSpotPricesFile, p.InstanceType, p.ZoneID, InstanceTypesFile)
			}
			if _, err := zoneIDNumber(p.ZoneID); err != nil {
				return fmt.Errorf("%s: region %s: %w", ZoneSpotPricesFile, region, err)
			}
			if i > 0 && run[i-1].ZoneID == p.ZoneID && run[i-1].InstanceType == p.InstanceType {
				return fmt.Errorf("%s: %s in %s is priced twice; keep one row per zone and type", ZoneSpotPricesFile, p.InstanceType, p.ZoneID)
			}
			if byType[p.InstanceType] == nil {
				byType[p.InstanceType] = map[string]float64{}
			}
			byType[p.InstanceType][p.ZoneID] = p.USDPerHour
		}
		c.zoneSpot[region] = byType
	}
	return nil
}

func compareZones(a, b Zone) int {
	return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.ZoneID, b.ZoneID))
}

func compareZoneSpotPrices(a, b ZoneSpotPrice) int {
	return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.ZoneID, b.ZoneID), strings.Compare(a.InstanceType, b.InstanceType))
}

// ZoneSpotPrice returns the spot price of a type in one zone (by ID), if
// the catalog has per-zone prices for it (a catalog updated from EC2).
func (c *Catalog) ZoneSpotPrice(region, zoneID, instanceType string) (float64, bool) {
	p, ok := c.zoneSpot[region][instanceType][zoneID]
	return p, ok
}
