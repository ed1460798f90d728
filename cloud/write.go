package cloud

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// WriteDir writes the catalog as CSV files LoadDir reads back into an equal
// catalog: instance-types.csv, on-demand-prices.csv, spot-prices-sample.csv
// (header only when there are no spot prices) and offerings.csv, plus
// zones.csv and spot-prices-zones.csv when the catalog was updated from EC2
// (otherwise it removes them, so a directory written twice never mixes two
// catalogs). Output is deterministic: rows in canonical order, numbers in
// their shortest exact form. It creates dir if needed and overwrites those
// files.
func (c *Catalog) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing catalog: %w", err)
	}
	files := []struct {
		name string
		rows func(w *csv.Writer) error
		// skip leaves out an optional file with no rows.
		skip bool
	}{
		{InstanceTypesFile, c.writeInstanceTypes, false},
		{OnDemandPricesFile, c.writeOnDemandPrices, false},
		{SpotPricesFile, c.writeSpotPrices, false},
		{OfferingsFile, c.writeOfferings, false},
		{ZonesFile, c.writeZones, len(c.tables.Zones) == 0},
		{ZoneSpotPricesFile, c.writeZoneSpotPrices, len(c.tables.ZoneSpotPrices) == 0},
	}
	for _, f := range files {
		if f.skip {
			if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("writing catalog: %w", err)
			}
			continue
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := f.rows(w); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing catalog: %w", err)
		}
	}
	return nil
}

func (c *Catalog) writeInstanceTypes(w *csv.Writer) error {
	if err := w.Write(instanceTypeColumns); err != nil {
		return err
	}
	// Zero means "unknown" (or "none") for these, and the source leaves
	// such cells empty; write them back the same way.
	orEmpty := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	ifKnown := func(it InstanceType, a Attribute, n int) string {
		if !it.Known(a) {
			return ""
		}
		return strconv.Itoa(n)
	}
	for _, it := range c.tables.InstanceTypes {
		bareMetal := strconv.FormatBool(it.BareMetal)
		if !it.Known(AttrBareMetal) {
			bareMetal = ""
		}
		// Same order as instanceTypeColumns.
		err := w.Write([]string{
			it.Name, it.Family, orEmpty(int64(it.Generation)), it.Size, it.Class, it.Arch,
			strconv.Itoa(it.VCPU), strconv.FormatInt(it.MemoryMiB, 10),
			strconv.Itoa(it.GPUCount), it.GPUManufacturer, it.GPUName, orEmpty(it.GPUMemoryMiB),
			ifKnown(it, AttrAcceleratorCount, it.AcceleratorCount), it.AcceleratorManufacturer, it.AcceleratorName,
			it.CPUManufacturer, orEmpty(it.LocalNVMeGB),
			orEmpty(int64(it.MaxENIs)), orEmpty(int64(it.DefaultCardMaxENIs)), orEmpty(int64(it.IPv4PerENI)),
			orEmpty(int64(it.MaxPodsENI)), ifKnown(it, AttrBranchENIs, it.BranchENIs), bareMetal, it.Hypervisor,
			orEmpty(it.NetworkBandwidthMbps), ifKnown(it, AttrEFACount, it.EFACount),
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func formatPrice(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (c *Catalog) writeOnDemandPrices(w *csv.Writer) error {
	if err := w.Write(onDemandColumns); err != nil {
		return err
	}
	for _, p := range c.tables.OnDemandPrices {
		if err := w.Write([]string{p.Region, p.InstanceType, formatPrice(p.USDPerHour), p.Source, p.AsOf}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) writeSpotPrices(w *csv.Writer) error {
	if err := w.Write(spotColumns); err != nil {
		return err
	}
	for _, p := range c.tables.SpotPrices {
		samples := ""
		if p.ZoneSamples > 0 {
			samples = strconv.Itoa(p.ZoneSamples)
		}
		if err := w.Write([]string{p.Region, p.InstanceType, formatPrice(p.MinUSDPerHour), formatPrice(p.MaxUSDPerHour), samples, p.InterruptionFrequency}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) writeOfferings(w *csv.Writer) error {
	if err := w.Write(offeringColumns); err != nil {
		return err
	}
	for _, o := range c.tables.Offerings {
		if err := w.Write([]string{o.Region, o.ZoneID, o.InstanceType}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) writeZones(w *csv.Writer) error {
	if err := w.Write(zoneColumns); err != nil {
		return err
	}
	for _, z := range c.tables.Zones {
		if err := w.Write([]string{z.Region, z.ZoneID, z.ZoneName}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) writeZoneSpotPrices(w *csv.Writer) error {
	if err := w.Write(zoneSpotColumns); err != nil {
		return err
	}
	for _, p := range c.tables.ZoneSpotPrices {
		if err := w.Write([]string{p.Region, p.ZoneID, p.InstanceType, formatPrice(p.USDPerHour), p.AsOf}); err != nil {
			return err
		}
	}
	return nil
}
