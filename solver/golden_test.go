package solver_test

import (
	"bufio"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/joinery-dev/joinery/solver"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden-plans.txt from the current solver")

// planDigest condenses a plan to what a change of placement logic would
// move: every node's offering, price and pods, every placement in order,
// every unschedulable pod and reason, and the totals.
func planDigest(p *Plan) string {
	h := sha256.New()
	for _, n := range p.NewNodes {
		fmt.Fprintf(h, "node %s %s %s %s %s %.6f %d\n", n.Name, n.Pool, n.InstanceType.Name, n.Offering.Zone, n.Offering.CapacityType, n.Offering.PricePerHour, len(n.Fallbacks))
		for _, pod := range n.Pods {
			fmt.Fprintf(h, " %s\n", pod.Name)
		}
	}
	for _, pl := range p.Order {
		fmt.Fprintf(h, "order %s %s %v\n", pl.Pod.Name, pl.NodeName, pl.New)
	}
	for _, u := range p.Unschedulable {
		fmt.Fprintf(h, "unschedulable %s %s\n", u.Pod.Name, u.Reason)
	}
	return fmt.Sprintf("nodes=%d unschedulable=%d usd=%.6f lb=%.6f sha256=%x",
		len(p.NewNodes), len(p.Unschedulable), p.TotalPricePerHour, p.LowerBoundPricePerHour, h.Sum(nil)[:12])
}

func consolidationDigest(a *ConsolidationAction) string {
	if a == nil {
		return "none"
	}
	repl := "-"
	if a.Replacement != nil {
		repl = a.Replacement.InstanceType.Name + "/" + a.Replacement.Offering.Zone
	}
	removed := sha256.Sum256([]byte(strings.Join(a.Remove, ",")))
	return fmt.Sprintf("remove=%d/%x replacement=%s savings=%.6f plan=[%s]", len(a.Remove), removed[:8], repl, a.SavingsPerHour, planDigest(a.Plan))
}

// TestPlansMatchGolden pins the exact plans of seeded workloads, so speeding
// the solver up cannot change a decision unnoticed. A deliberate change of
// placement logic rewrites the file with -update-golden and says why in its
// commit.
func TestPlansMatchGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("solves workloads of thousands of pods")
	}
	cases := []struct {
		name  string
		solve func(t *testing.T) string
	}{
		{"karpenter-diverse-2000", func(t *testing.T) string { return planDigest(solveChecked(t, genericSnapshot(2000, 42))) }},
		{"real-catalog-generic-1000", func(t *testing.T) string { return planDigest(solveChecked(t, realCatalogSnapshot(t, 1000, 1))) }},
		{"real-catalog-constrained-1000", func(t *testing.T) string { return planDigest(solveChecked(t, scaleSnapshot(t, 1000, 1))) }},
		{"real-catalog-constrained-3000", func(t *testing.T) string { return planDigest(solveChecked(t, scaleSnapshot(t, 3000, 2))) }},
		{"consolidate-200-nodes", func(t *testing.T) string {
			snap, cands := consolidationSnapshot(200, 7)
			a, err := Consolidate(snap, cands, ConsolidationOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return consolidationDigest(a)
		}},
	}
	got := map[string]string{}
	for _, c := range cases {
		got[c.name] = c.solve(t)
	}
	path := filepath.Join("testdata", "golden-plans.txt")
	if *updateGolden {
		var b strings.Builder
		for _, c := range cases {
			fmt.Fprintf(&b, "%s %s\n", c.name, got[c.name])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, digest, _ := strings.Cut(sc.Text(), " ")
		want[name] = digest
	}
	for _, c := range cases {
		if got[c.name] != want[c.name] {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got[c.name], want[c.name])
		}
	}
}
