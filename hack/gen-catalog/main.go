// Command gen-catalog copies the EC2 facts snapshot (shared/data/ec2) into
// cloud/data, where package cloud embeds it. It runs from `go generate` in
// cloud/ (see cloud/catalog.go).
//
// The copy is byte for byte, so re-running it produces identical files and
// hack/verify-generated.sh stays quiet. Before writing, it checks that every
// file starts with the header package cloud parses, so a renamed column fails
// here, where the cause is obvious, rather than at first use of the catalog.
//
// The snapshot lives outside the repository. Where it is absent (a checkout
// without shared/), the committed copies are kept and the command says so:
// the committed files are then the source of truth.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// files lists what is copied and the header each must start with. Columns
// after these are allowed (the snapshot carries provenance columns) but the
// leading ones are what package cloud reads. on-demand-prices-cny.csv is
// deliberately not copied: it is priced in yuan and the catalog is USD only.
var files = []struct {
	name   string
	header string // "" for files that are not CSV
}{
	{"README.md", ""},
	{"instance-types.csv", "name,family,generation,size,category,arch,vcpu,memory_mib,gpu_count,gpu_manufacturer,gpu_name,gpu_memory_mib,accelerator_count,accelerator_manufacturer,accelerator_name,cpu_manufacturer,local_nvme_gb,max_enis,default_card_max_enis,ipv4_per_eni,max_pods_eni,branch_enis,bare_metal,hypervisor,network_bandwidth_mbps,efa_count"},
	{"on-demand-prices.csv", "region,instance_type,usd_per_hour,source,as_of"},
	{"spot-prices-sample.csv", "region,instance_type,spot_min_usd_per_hour,spot_max_usd_per_hour,zone_samples,interruption_frequency"},
	{"offerings.csv", "region,zone_id,instance_type"},
}

func main() {
	src := flag.String("src", "", "directory holding the EC2 snapshot (shared/data/ec2)")
	dst := flag.String("dst", "", "directory to write the embedded copies to (cloud/data)")
	flag.Parse()
	if *src == "" || *dst == "" {
		fmt.Fprintln(os.Stderr, "gen-catalog: both -src and -dst are required, e.g. -src ../../shared/data/ec2 -dst data")
		os.Exit(2)
	}
	if err := run(*src, *dst); err != nil {
		fmt.Fprintln(os.Stderr, "gen-catalog:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "gen-catalog: %s not found; keeping the committed copies in %s\n", src, dst)
		return nil
	}
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			return err
		}
		if f.header != "" {
			firstLine, _, _ := bytes.Cut(b, []byte("\n"))
			got := strings.TrimSuffix(string(firstLine), "\r")
			if got != f.header && !strings.HasPrefix(got, f.header+",") {
				return fmt.Errorf("%s: header is %q, want it to start with %q; update package cloud's parser and this list together",
					filepath.Join(src, f.name), got, f.header)
			}
		}
		contents[i] = b
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		if err := writeIfChanged(filepath.Join(dst, f.name), contents[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeIfChanged leaves identical files untouched so their mtime does not
// change, which keeps make and editors from seeing a spurious edit.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}
