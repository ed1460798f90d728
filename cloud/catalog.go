// Package cloud is Joinery's knowledge of EC2: instance types, their labels
// and allocatable resources, on-demand and spot prices, and which types are
// offered in which Availability Zone. It is the only package that knows AWS.
//
// The built-in catalog (Embedded) is a snapshot of public machine-generated
// tables copied into data/ by `go generate` from shared/data/ec2; its
// README.md (embedded as data/README.md) names every source. LoadDir reads a
// directory of CSVs in the same format, WriteDir writes one, so benchmarks
// and `joinery simulate --catalog DIR` can use synthetic catalogs.
//
// Update overlays what EC2's API says of a region (instance types,
// offerings per zone, spot prices per zone, the account's zone names) on a
// catalog; package cloud/live keeps one current that way. On-demand prices
// always come from the snapshot: EC2's API does not give them.
//
// Prices are USD per hour. cn-north-1 is priced in yuan in the snapshot
// (on-demand-prices-cny.csv); that file is not embedded, so the catalog has
// no cn-north-1 prices and offers nothing there, rather than mixing currencies.
package cloud

import (
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

//go:generate go run ../hack/gen-catalog -src ../../shared/data/ec2 -dst data

//go:embed data/*
var embeddedData embed.FS

// File names inside a catalog directory.
const (
	InstanceTypesFile  = "instance-types.csv"
	OnDemandPricesFile = "on-demand-prices.csv"
	SpotPricesFile     = "spot-prices-sample.csv" // optional in LoadDir
	OfferingsFile      = "offerings.csv"
	// Written only for a catalog updated from EC2; optional in LoadDir.
	ZonesFile          = "zones.csv"
	ZoneSpotPricesFile = "spot-prices-zones.csv"
)

// OnDemandPrice is one row of on-demand-prices.csv: the Linux,
// shared-tenancy on-demand price of a type in a region (or Local Zone /
// Wavelength key such as us-east-1-dfw-1).
type OnDemandPrice struct {
	Region       string
	InstanceType string
	USDPerHour   float64
	Source       string // which table the price came from, e.g. karpenter-pricing
	AsOf         string // date of that table, YYYY-MM-DD
}

// SpotPrice is one row of spot-prices-sample.csv: a one-time snapshot of
// the lowest and highest per-zone spot price of a type in a region. The
// zones behind the samples are not named.
type SpotPrice struct {
	Region                string
	InstanceType          string
	MinUSDPerHour         float64
	MaxUSDPerHour         float64
	ZoneSamples           int
	InterruptionFrequency string // Spot Instance Advisor bucket: <5%, 5-10%, 10-15%, 15-20%, >20%
}

// ZoneOffering is one row of offerings.csv: the type is offered in the
// Availability Zone with this zone ID (use1-az1; IDs, unlike names, are the
// same in every account).
type ZoneOffering struct {
	Region       string
	ZoneID       string
	InstanceType string
}

// Tables is a catalog's raw content, one slice per file. New builds a
// Catalog from it; Catalog.Tables returns a copy, which is how a benchmark
// derives a synthetic catalog from the built-in one.
type Tables struct {
	InstanceTypes  []InstanceType
	OnDemandPrices []OnDemandPrice
	SpotPrices     []SpotPrice
	Offerings      []ZoneOffering
	Zones          []Zone
	ZoneSpotPrices []ZoneSpotPrice
}

// Catalog is an immutable, indexed set of Tables. It is safe for concurrent use.
type Catalog struct {
	tables Tables

	typeIndex map[string]int                  // name -> index in tables.InstanceTypes
	onDemand  map[string]map[string]float64   // region -> type -> USD/h
	spot      map[string]map[string]SpotPrice // region -> type -> prices
	zoneIDs   map[string][]string             // region -> zone IDs, sorted by numeric suffix
	// zonesOf lists, per region and type, the zone IDs offering it, in
	// zoneIDs order.
	zonesOf map[string]map[string][]string
	// zoneNames is the account's zone ID -> name mapping per region, for
	// regions updated from EC2 (Zones).
	zoneNames map[string]map[string]string
	// zoneSpot is region -> type -> zone ID -> USD/h, for regions whose
	// spot prices were updated from EC2 (ZoneSpotPrices).
	zoneSpot map[string]map[string]map[string]float64
	// scores are spot placement scores per region (WithPlacementScores).
	scores map[string]map[scoreKey]int
	// reservations are the capacity reservations per region, as EC2 last
	// reported them (cloud/live); never part of tables.
	reservations map[string][]CapacityReservation
}

// New indexes tables into a Catalog. It rejects what would make lookups
// ambiguous: duplicate type names, duplicate price or offering rows, and
// offering or spot rows naming a type the catalog does not have.
// On-demand prices for unknown types are kept (the snapshot prices
// i3p.16xlarge, which has no shape) but never offered. New works on a copy
// of tables, sorted into a canonical order (by name, region, zone) so that
// WriteDir output does not depend on input order.
func New(tables Tables) (*Catalog, error) {
	return build(tables.clone())
}

// build is New on tables the caller hands over.
func build(tables Tables) (*Catalog, error) {
	tables = tables.withNilForEmpty()
	sortTables(&tables)
	c := &Catalog{
		tables:    tables,
		typeIndex: make(map[string]int, len(tables.InstanceTypes)),
		onDemand:  map[string]map[string]float64{},
		spot:      map[string]map[string]SpotPrice{},
		zoneIDs:   map[string][]string{},
		zonesOf:   map[string]map[string][]string{},
		zoneNames: map[string]map[string]string{},
		zoneSpot:  map[string]map[string]map[string]float64{},
	}
	for i := range tables.InstanceTypes {
		it := &tables.InstanceTypes[i]
		if err := normalize(it); err != nil {
			return nil, fmt.Errorf("%s: %w", InstanceTypesFile, err)
		}
		if _, dup := c.typeIndex[it.Name]; dup {
			return nil, fmt.Errorf("%s: instance type %q appears twice; keep one row per type", InstanceTypesFile, it.Name)
		}
		c.typeIndex[it.Name] = i
	}
	// Before the spot sample: for a region updated from EC2 the sample is
	// derived from these rows, and an error should name the rows' own file.
	if err := c.indexZoneSpotPrices(tables.ZoneSpotPrices); err != nil {
		return nil, err
	}
	if err := c.indexZones(tables.Zones); err != nil {
		return nil, err
	}
	// Rows are sorted by region, so each region is one run of rows and a
	// duplicate is always next to its twin.
	for _, run := range regionRuns(tables.OnDemandPrices, func(p OnDemandPrice) string { return p.Region }) {
		byType := make(map[string]float64, len(run))
		for i, p := range run {
			if i > 0 && run[i-1].InstanceType == p.InstanceType {
				return nil, fmt.Errorf("%s: %s in %s is priced twice; keep one row per region and type", OnDemandPricesFile, p.InstanceType, p.Region)
			}
			byType[p.InstanceType] = p.USDPerHour
		}
		c.onDemand[run[0].Region] = byType
	}
	for _, run := range regionRuns(tables.SpotPrices, func(p SpotPrice) string { return p.Region }) {
		byType := make(map[string]SpotPrice, len(run))
		for i, p := range run {
			if _, ok := c.typeIndex[p.InstanceType]; !ok {
				return nil, fmt.Errorf("%s: %s in %s is not in %s; add the type or drop the row", SpotPricesFile, p.InstanceType, p.Region, InstanceTypesFile)
			}
			if i > 0 && run[i-1].InstanceType == p.InstanceType {
				return nil, fmt.Errorf("%s: %s in %s is priced twice; keep one row per region and type", SpotPricesFile, p.InstanceType, p.Region)
			}
			byType[p.InstanceType] = p
		}
		c.spot[run[0].Region] = byType
	}
	for _, run := range regionRuns(tables.Offerings, func(o ZoneOffering) string { return o.Region }) {
		region := run[0].Region
		// Within a region rows are sorted by zone ID, then type.
		zoneRuns := regionRuns(run, func(o ZoneOffering) string { return o.ZoneID })
		ids := make([]string, len(zoneRuns))
		for i, zr := range zoneRuns {
			if _, err := zoneIDNumber(zr[0].ZoneID); err != nil {
				return nil, fmt.Errorf("%s: region %s: %w", OfferingsFile, region, err)
			}
			ids[i] = zr[0].ZoneID
		}
		sortZoneIDs(ids)
		c.zoneIDs[region] = ids
		// Visit zones in numeric order (az10 after az9) so each type's
		// zone list comes out in the region's zone order.
		slices.SortFunc(zoneRuns, func(a, b []ZoneOffering) int {
			return slices.Index(ids, a[0].ZoneID) - slices.Index(ids, b[0].ZoneID)
		})
		byType := map[string][]string{}
		for _, zr := range zoneRuns {
			for i, o := range zr {
				if _, ok := c.typeIndex[o.InstanceType]; !ok {
					return nil, fmt.Errorf("%s: %s in %s is not in %s; add the type or drop the row", OfferingsFile, o.InstanceType, o.ZoneID, InstanceTypesFile)
				}
				if i > 0 && zr[i-1].InstanceType == o.InstanceType {
					return nil, fmt.Errorf("%s: %s in %s appears twice; keep one row per zone and type", OfferingsFile, o.InstanceType, o.ZoneID)
				}
				byType[o.InstanceType] = append(byType[o.InstanceType], o.ZoneID)
			}
		}
		c.zonesOf[region] = byType
	}
	return c, nil
}

// normalize fills what is derived from the name (Category; Family, Size
// and Generation when empty) and rejects what no node could be: no vCPUs or
// memory, an unknown architecture.
func normalize(it *InstanceType) error {
	if it.Name == "" {
		return fmt.Errorf("an instance type has no name; name it as EC2 does, e.g. m5.large")
	}
	it.Category = karpenterCategory(it.Name)
	if it.Generation == 0 {
		// Types EC2 announced after the snapshot come without one; for
		// every snapshot row the name's digits are its generation.
		it.Generation = karpenterGeneration(it.Name)
	}
	if it.Family == "" || it.Size == "" {
		family, size, ok := strings.Cut(it.Name, ".")
		if !ok {
			return fmt.Errorf("%q is not family.size and has no Family and Size; name it as EC2 does, e.g. m5.large", it.Name)
		}
		it.Family, it.Size = family, size
	}
	if it.VCPU <= 0 || it.MemoryMiB <= 0 {
		return fmt.Errorf("%s has %d vCPUs and %d MiB of memory; both must be above 0", it.Name, it.VCPU, it.MemoryMiB)
	}
	if it.Arch != "" && it.Arch != ArchAMD64 && it.Arch != ArchARM64 {
		return fmt.Errorf("%s has arch %q; use amd64 or arm64, or leave it empty when unknown", it.Name, it.Arch)
	}
	return nil
}

// sortTables puts rows in canonical order. The snapshot is already in that
// order, so each table is only checked, not sorted.
func sortTables(t *Tables) {
	sortIfNeeded(t.InstanceTypes, func(a, b InstanceType) int { return strings.Compare(a.Name, b.Name) })
	sortIfNeeded(t.OnDemandPrices, func(a, b OnDemandPrice) int {
		return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.InstanceType, b.InstanceType))
	})
	sortIfNeeded(t.SpotPrices, func(a, b SpotPrice) int {
		return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.InstanceType, b.InstanceType))
	})
	sortIfNeeded(t.Offerings, func(a, b ZoneOffering) int {
		return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.ZoneID, b.ZoneID), strings.Compare(a.InstanceType, b.InstanceType))
	})
	sortIfNeeded(t.Zones, compareZones)
	sortIfNeeded(t.ZoneSpotPrices, compareZoneSpotPrices)
}

// regionRuns splits rows sorted by key into runs of equal key.
func regionRuns[T any](rows []T, key func(T) string) [][]T {
	var runs [][]T
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && key(rows[end]) == key(rows[start]) {
			end++
		}
		runs = append(runs, rows[start:end])
		start = end
	}
	return runs
}

func sortIfNeeded[T any](rows []T, compare func(a, b T) int) {
	if !slices.IsSortedFunc(rows, compare) {
		slices.SortStableFunc(rows, compare)
	}
}

var embedded struct {
	once    sync.Once
	catalog *Catalog
	err     error
}

// Embedded returns the built-in catalog. It is parsed on first use (about
// 30 ms; see BenchmarkParseEmbedded) and shared afterwards: treat it as
// read-only.
func Embedded() (*Catalog, error) {
	embedded.once.Do(func() {
		sub, err := fs.Sub(embeddedData, "data")
		if err != nil {
			embedded.err = err
			return
		}
		embedded.catalog, embedded.err = load(sub, "cloud/data")
	})
	return embedded.catalog, embedded.err
}

// Tables returns a deep copy of the catalog's content, in canonical order.
func (c *Catalog) Tables() Tables { return c.tables.clone() }

// withNilForEmpty makes empty tables nil, so catalogs built from code and
// read from files compare equal.
func (t Tables) withNilForEmpty() Tables {
	if len(t.InstanceTypes) == 0 {
		t.InstanceTypes = nil
	}
	if len(t.OnDemandPrices) == 0 {
		t.OnDemandPrices = nil
	}
	if len(t.SpotPrices) == 0 {
		t.SpotPrices = nil
	}
	if len(t.Offerings) == 0 {
		t.Offerings = nil
	}
	if len(t.Zones) == 0 {
		t.Zones = nil
	}
	if len(t.ZoneSpotPrices) == 0 {
		t.ZoneSpotPrices = nil
	}
	return t
}

func (t Tables) clone() Tables {
	return Tables{
		InstanceTypes:  slices.Clone(t.InstanceTypes),
		OnDemandPrices: slices.Clone(t.OnDemandPrices),
		SpotPrices:     slices.Clone(t.SpotPrices),
		Offerings:      slices.Clone(t.Offerings),
		Zones:          slices.Clone(t.Zones),
		ZoneSpotPrices: slices.Clone(t.ZoneSpotPrices),
	}
}

// InstanceTypes returns every type, sorted by name. The slice is the
// catalog's own: do not modify it.
func (c *Catalog) InstanceTypes() []InstanceType { return c.tables.InstanceTypes }

// InstanceType returns the type with this name.
func (c *Catalog) InstanceType(name string) (InstanceType, bool) {
	i, ok := c.typeIndex[name]
	if !ok {
		return InstanceType{}, false
	}
	return c.tables.InstanceTypes[i], true
}

// OnDemandPrice returns the on-demand USD price per hour of a type in a
// region (or Local Zone key), if the catalog has one.
func (c *Catalog) OnDemandPrice(region, instanceType string) (float64, bool) {
	p, ok := c.onDemand[region][instanceType]
	return p, ok
}

// SpotPrice returns the spot price sample of a type in a region, if any.
// For a region updated from EC2 it summarizes the per-zone prices.
func (c *Catalog) SpotPrice(region, instanceType string) (SpotPrice, bool) {
	p, ok := c.spot[region][instanceType]
	return p, ok
}

// Regions returns the regions that have offerings, sorted.
func (c *Catalog) Regions() []string { return sortedKeys(c.zoneIDs) }

// PriceRegions returns every region key with an on-demand price, sorted.
// It includes Local Zone and Wavelength keys (us-east-1-dfw-1), which have
// prices but no offerings.
func (c *Catalog) PriceRegions() []string { return sortedKeys(c.onDemand) }

// ZoneIDs returns the zone IDs of a region that offer anything, sorted by
// their numeric suffix (use1-az1, use1-az2, ..., use1-az10).
func (c *Catalog) ZoneIDs(region string) []string { return slices.Clone(c.zoneIDs[region]) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func knownList(values []string) string {
	const max = 20
	if len(values) > max {
		return strings.Join(values[:max], ", ") + fmt.Sprintf(", ... (%d in all)", len(values))
	}
	return strings.Join(values, ", ")
}
