package cloud

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
)

// Columns of each catalog file. LoadDir needs the required ones; an absent
// optional column reads as all cells empty. Other columns (the snapshot's
// provenance columns such as spec_source) are ignored.
var (
	instanceTypeColumns = []string{
		"name", "family", "generation", "size", "category", "arch", "vcpu", "memory_mib",
		"gpu_count", "gpu_manufacturer", "gpu_name", "gpu_memory_mib",
		"accelerator_count", "accelerator_manufacturer", "accelerator_name",
		"cpu_manufacturer", "local_nvme_gb", "max_enis", "default_card_max_enis", "ipv4_per_eni",
		"max_pods_eni", "branch_enis", "bare_metal", "hypervisor", "network_bandwidth_mbps", "efa_count",
	}
	instanceTypeRequired = []string{"name", "vcpu", "memory_mib"}

	onDemandColumns  = []string{"region", "instance_type", "usd_per_hour", "source", "as_of"}
	onDemandRequired = []string{"region", "instance_type", "usd_per_hour"}

	spotColumns  = []string{"region", "instance_type", "spot_min_usd_per_hour", "spot_max_usd_per_hour", "zone_samples", "interruption_frequency"}
	spotRequired = []string{"region", "instance_type", "spot_min_usd_per_hour", "spot_max_usd_per_hour"}

	offeringColumns = []string{"region", "zone_id", "instance_type"}

	zoneColumns = []string{"region", "zone_id", "zone_name"}

	zoneSpotColumns  = []string{"region", "zone_id", "instance_type", "usd_per_hour", "as_of"}
	zoneSpotRequired = []string{"region", "zone_id", "instance_type", "usd_per_hour"}
)

// LoadDir reads a catalog from a directory holding instance-types.csv,
// on-demand-prices.csv, offerings.csv and, optionally,
// spot-prices-sample.csv, zones.csv and spot-prices-zones.csv (the last two
// from a catalog updated from EC2), in the format of the built-in catalog (see
// data/README.md; WriteDir writes it). Errors name the file, line, column
// and what to write instead.
func LoadDir(dir string) (*Catalog, error) {
	return load(os.DirFS(dir), dir)
}

// load parses the catalog files in fsys; name is how errors refer to the
// directory.
func load(fsys fs.FS, name string) (*Catalog, error) {
	var t Tables
	files := []struct {
		file     string
		optional bool
		parse    func(*table) error
	}{
		{InstanceTypesFile, false, func(tb *table) (err error) { t.InstanceTypes, err = parseInstanceTypes(tb); return err }},
		{OnDemandPricesFile, false, func(tb *table) (err error) { t.OnDemandPrices, err = parseOnDemandPrices(tb); return err }},
		{SpotPricesFile, true, func(tb *table) (err error) { t.SpotPrices, err = parseSpotPrices(tb); return err }},
		{OfferingsFile, false, func(tb *table) (err error) { t.Offerings, err = parseOfferings(tb); return err }},
		{ZonesFile, true, func(tb *table) (err error) { t.Zones, err = parseZones(tb); return err }},
		{ZoneSpotPricesFile, true, func(tb *table) (err error) { t.ZoneSpotPrices, err = parseZoneSpotPrices(tb); return err }},
	}
	for _, f := range files {
		display := path.Join(name, f.file)
		b, err := fs.ReadFile(fsys, f.file)
		if errors.Is(err, fs.ErrNotExist) && f.optional {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file; a catalog directory needs %s, %s and %s (%s is optional)",
				display, InstanceTypesFile, OnDemandPricesFile, OfferingsFile, SpotPricesFile)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display, err)
		}
		if err := f.parse(newTable(display, b)); err != nil {
			return nil, err
		}
	}
	c, err := build(t)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	return c, nil
}

// table reads one CSV file row by row and turns bad cells into errors that
// say where they are.
type table struct {
	file    string
	r       *csv.Reader
	columns map[string]int
	record  []string
	rows    int // an upper bound on the data rows, to size slices once
}

func newTable(file string, b []byte) *table {
	r := csv.NewReader(bytes.NewReader(b))
	r.ReuseRecord = true
	return &table{file: file, r: r, rows: bytes.Count(b, []byte("\n"))}
}

// readHeader reads the header line and checks the required columns.
func (t *table) readHeader(required []string) error {
	header, err := t.r.Read()
	if err == io.EOF {
		return fmt.Errorf("%s: file is empty; it needs a header line with at least %s", t.file, strings.Join(required, ","))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", t.file, err)
	}
	t.columns = make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := t.columns[h]; dup {
			return fmt.Errorf("%s:1:%d: column %q appears twice in the header; keep one", t.file, i+1, h)
		}
		t.columns[h] = i
	}
	for _, col := range required {
		if _, ok := t.columns[col]; !ok {
			return fmt.Errorf("%s:1: the header has no %q column; it needs at least %s", t.file, col, strings.Join(required, ","))
		}
	}
	return nil
}

// next advances to the next row; it returns false at the end of the file.
func (t *table) next() (bool, error) {
	rec, err := t.r.Read()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", t.file, err)
	}
	t.record = rec
	return true, nil
}

// column returns the index of a column, -1 if the header lacks it.
func (t *table) column(name string) int {
	if i, ok := t.columns[name]; ok {
		return i
	}
	return -1
}

// cell returns the current row's value in column i ("" for an absent column).
func (t *table) cell(i int) string {
	if i < 0 {
		return ""
	}
	return t.record[i]
}

// errorf reports a bad cell: file:line:column, the column's name, what is
// wrong and the fix.
func (t *table) errorf(i int, name, format string, args ...any) error {
	line, col := t.r.FieldPos(i)
	return fmt.Errorf("%s:%d:%d: column %s: %s", t.file, line, col, name, fmt.Sprintf(format, args...))
}

// intCell parses a whole number >= 0. Empty cells are 0 with known=false;
// an empty cell in a required column is an error.
func (t *table) intCell(i int, name string, required bool) (value int64, known bool, err error) {
	s := t.cell(i)
	if s == "" {
		if required {
			return 0, false, t.errorf(i, name, "is empty; every row needs it")
		}
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, false, t.errorf(i, name, "%q is not a whole number >= 0; write digits only, e.g. 8", s)
	}
	return v, true, nil
}

// priceCell parses a USD amount: a finite number >= 0.
func (t *table) priceCell(i int, name string) (float64, error) {
	s := t.cell(i)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, t.errorf(i, name, "%q is not a price; write USD per hour as a number >= 0, e.g. 0.096", s)
	}
	return v, nil
}

// stringCell returns a cell that every row must fill.
func (t *table) stringCell(i int, name string) (string, error) {
	s := t.cell(i)
	if s == "" {
		return "", t.errorf(i, name, "is empty; every row needs it")
	}
	return s, nil
}

func parseInstanceTypes(t *table) ([]InstanceType, error) {
	if err := t.readHeader(instanceTypeRequired); err != nil {
		return nil, err
	}
	col := make(map[string]int, len(instanceTypeColumns))
	for _, name := range instanceTypeColumns {
		col[name] = t.column(name)
	}
	types := make([]InstanceType, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return types, err
		}
		var it InstanceType
		var parseErr error
		str := func(name string) string { return t.cell(col[name]) }
		// num parses an optional or required whole-number column and
		// remembers the first error, so the row reads as a list of fields.
		num := func(name string, required bool) (int64, bool) {
			v, known, err := t.intCell(col[name], name, required)
			if err != nil && parseErr == nil {
				parseErr = err
			}
			return v, known
		}
		var known bool
		if it.Name, err = t.stringCell(col["name"], "name"); err != nil {
			return nil, err
		}
		it.Family, it.Size = str("family"), str("size")
		if it.Family == "" || it.Size == "" {
			family, size, ok := strings.Cut(it.Name, ".")
			if !ok {
				return nil, t.errorf(col["name"], "name", "%q is not family.size; name types as EC2 does, e.g. m5.large", it.Name)
			}
			it.Family, it.Size = family, size
		}
		g, _ := num("generation", false)
		it.Generation = int(g)
		it.Class = str("category")
		switch it.Arch = str("arch"); it.Arch {
		case "", ArchAMD64, ArchARM64:
		default:
			return nil, t.errorf(col["arch"], "arch", "%q is not an architecture; write amd64 or arm64, or leave it empty when unknown", it.Arch)
		}
		v, _ := num("vcpu", true)
		it.VCPU = int(v)
		it.MemoryMiB, _ = num("memory_mib", true)
		v, _ = num("gpu_count", false)
		it.GPUCount = int(v)
		it.GPUManufacturer, it.GPUName = str("gpu_manufacturer"), str("gpu_name")
		it.GPUMemoryMiB, _ = num("gpu_memory_mib", false)
		v, known = num("accelerator_count", false)
		it.AcceleratorCount = int(v)
		if !known {
			it.Unknown |= AttrAcceleratorCount
		}
		it.AcceleratorManufacturer, it.AcceleratorName = str("accelerator_manufacturer"), str("accelerator_name")
		it.CPUManufacturer = str("cpu_manufacturer")
		it.LocalNVMeGB, _ = num("local_nvme_gb", false)
		v, _ = num("max_enis", false)
		it.MaxENIs = int(v)
		v, _ = num("default_card_max_enis", false)
		it.DefaultCardMaxENIs = int(v)
		v, _ = num("ipv4_per_eni", false)
		it.IPv4PerENI = int(v)
		v, _ = num("max_pods_eni", false)
		it.MaxPodsENI = int(v)
		v, known = num("branch_enis", false)
		it.BranchENIs = int(v)
		if !known {
			it.Unknown |= AttrBranchENIs
		}
		switch s := str("bare_metal"); s {
		case "true":
			it.BareMetal = true
		case "false":
		case "":
			it.Unknown |= AttrBareMetal
		default:
			return nil, t.errorf(col["bare_metal"], "bare_metal", "%q is not a boolean; write true or false, or leave it empty when unknown", s)
		}
		it.Hypervisor = str("hypervisor")
		it.NetworkBandwidthMbps, _ = num("network_bandwidth_mbps", false)
		v, known = num("efa_count", false)
		it.EFACount = int(v)
		if !known {
			it.Unknown |= AttrEFACount
		}
		if parseErr != nil {
			return nil, parseErr
		}
		if it.VCPU == 0 || it.MemoryMiB == 0 {
			return nil, t.errorf(col["vcpu"], "vcpu", "%s has %d vCPUs and %d MiB; both must be above 0", it.Name, it.VCPU, it.MemoryMiB)
		}
		types = append(types, it)
	}
}

func parseOnDemandPrices(t *table) ([]OnDemandPrice, error) {
	if err := t.readHeader(onDemandRequired); err != nil {
		return nil, err
	}
	region, typ, usd := t.column("region"), t.column("instance_type"), t.column("usd_per_hour")
	source, asOf := t.column("source"), t.column("as_of")
	prices := make([]OnDemandPrice, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return prices, err
		}
		p := OnDemandPrice{Source: t.cell(source), AsOf: t.cell(asOf)}
		if p.Region, err = t.stringCell(region, "region"); err != nil {
			return nil, err
		}
		if p.InstanceType, err = t.stringCell(typ, "instance_type"); err != nil {
			return nil, err
		}
		if p.USDPerHour, err = t.priceCell(usd, "usd_per_hour"); err != nil {
			return nil, err
		}
		prices = append(prices, p)
	}
}

func parseSpotPrices(t *table) ([]SpotPrice, error) {
	if err := t.readHeader(spotRequired); err != nil {
		return nil, err
	}
	region, typ := t.column("region"), t.column("instance_type")
	lo, hi := t.column("spot_min_usd_per_hour"), t.column("spot_max_usd_per_hour")
	samples, interruption := t.column("zone_samples"), t.column("interruption_frequency")
	prices := make([]SpotPrice, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return prices, err
		}
		p := SpotPrice{InterruptionFrequency: t.cell(interruption)}
		if p.Region, err = t.stringCell(region, "region"); err != nil {
			return nil, err
		}
		if p.InstanceType, err = t.stringCell(typ, "instance_type"); err != nil {
			return nil, err
		}
		if p.MinUSDPerHour, err = t.priceCell(lo, "spot_min_usd_per_hour"); err != nil {
			return nil, err
		}
		if p.MaxUSDPerHour, err = t.priceCell(hi, "spot_max_usd_per_hour"); err != nil {
			return nil, err
		}
		if p.MaxUSDPerHour < p.MinUSDPerHour {
			return nil, t.errorf(hi, "spot_max_usd_per_hour", "%v is below spot_min_usd_per_hour %v; swap them", p.MaxUSDPerHour, p.MinUSDPerHour)
		}
		n, _, err := t.intCell(samples, "zone_samples", false)
		if err != nil {
			return nil, err
		}
		p.ZoneSamples = int(n)
		prices = append(prices, p)
	}
}

func parseOfferings(t *table) ([]ZoneOffering, error) {
	if err := t.readHeader(offeringColumns); err != nil {
		return nil, err
	}
	region, zone, typ := t.column("region"), t.column("zone_id"), t.column("instance_type")
	offerings := make([]ZoneOffering, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return offerings, err
		}
		var o ZoneOffering
		if o.Region, err = t.stringCell(region, "region"); err != nil {
			return nil, err
		}
		if o.ZoneID, err = t.stringCell(zone, "zone_id"); err != nil {
			return nil, err
		}
		if _, err := zoneIDNumber(o.ZoneID); err != nil {
			return nil, t.errorf(zone, "zone_id", "%v", err)
		}
		if o.InstanceType, err = t.stringCell(typ, "instance_type"); err != nil {
			return nil, err
		}
		offerings = append(offerings, o)
	}
}

func parseZones(t *table) ([]Zone, error) {
	if err := t.readHeader(zoneColumns); err != nil {
		return nil, err
	}
	region, zone, name := t.column("region"), t.column("zone_id"), t.column("zone_name")
	zones := make([]Zone, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return zones, err
		}
		var z Zone
		if z.Region, err = t.stringCell(region, "region"); err != nil {
			return nil, err
		}
		if z.ZoneID, err = t.stringCell(zone, "zone_id"); err != nil {
			return nil, err
		}
		if _, err := zoneIDNumber(z.ZoneID); err != nil {
			return nil, t.errorf(zone, "zone_id", "%v", err)
		}
		if z.ZoneName, err = t.stringCell(name, "zone_name"); err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
}

func parseZoneSpotPrices(t *table) ([]ZoneSpotPrice, error) {
	if err := t.readHeader(zoneSpotRequired); err != nil {
		return nil, err
	}
	region, zone, typ := t.column("region"), t.column("zone_id"), t.column("instance_type")
	usd, asOf := t.column("usd_per_hour"), t.column("as_of")
	prices := make([]ZoneSpotPrice, 0, t.rows)
	for {
		ok, err := t.next()
		if !ok || err != nil {
			return prices, err
		}
		p := ZoneSpotPrice{AsOf: t.cell(asOf)}
		if p.Region, err = t.stringCell(region, "region"); err != nil {
			return nil, err
		}
		if p.ZoneID, err = t.stringCell(zone, "zone_id"); err != nil {
			return nil, err
		}
		if _, err := zoneIDNumber(p.ZoneID); err != nil {
			return nil, t.errorf(zone, "zone_id", "%v", err)
		}
		if p.InstanceType, err = t.stringCell(typ, "instance_type"); err != nil {
			return nil, err
		}
		if p.USDPerHour, err = t.priceCell(usd, "usd_per_hour"); err != nil {
			return nil, err
		}
		prices = append(prices, p)
	}
}
