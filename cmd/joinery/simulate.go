package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/internal/scenario"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

type simulateOptions struct {
	files   []string
	catalog string
	region  string
	output  string
}

func newSimulateCommand() *cobra.Command {
	opts := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate -f FILE... [--catalog DIR] [--region R] [-o json|table]",
		Short: "Plan machines for pending pods offline, as the provisioner would",
		Long: "Reads Pods, Nodes, NodePools, DaemonSets, PersistentVolumes and PersistentVolumeClaims from\n" +
			"multi-document YAML files and prints the machines Joinery would launch (type, zone, capacity\n" +
			"type, price) and where every pending pod lands. Pods with spec.nodeName run on the given\n" +
			"Nodes already. Exit code 2 means the input is wrong; the message names file, object and field.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd.OutOrStdout(), opts) },
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.files, "filename", "f", nil, "YAML file with the objects to plan for (repeatable; - for standard input)")
	f.StringVar(&opts.catalog, "catalog", "", "Directory with a CSV catalog in the embedded catalog's format (default: the embedded EC2 catalog)")
	f.StringVar(&opts.region, "region", "us-east-1", "Region whose offerings (every zone) are used")
	f.StringVarP(&opts.output, "output", "o", "table", "Output format: json or table")
	return cmd
}

// simulateResult is the JSON form; field names are a stable interface.
type simulateResult struct {
	Nodes                  []simulatedNode `json:"nodes"`
	Unschedulable          []unschedulable `json:"unschedulable"`
	TotalPricePerHour      float64         `json:"totalPricePerHour"`
	LowerBoundPricePerHour float64         `json:"lowerBoundPricePerHour"`
	SolveSeconds           float64         `json:"solveSeconds"`
	// OverlaysNotApplied are NodeOverlays left out, and why.
	OverlaysNotApplied []string `json:"overlaysNotApplied,omitempty"`
}

type simulatedNode struct {
	Name         string  `json:"name"`
	NodePool     string  `json:"nodePool"`
	InstanceType string  `json:"instanceType"`
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	PricePerHour float64 `json:"pricePerHour"`
	// PriceOverlay names the NodeOverlay that set a new node's price.
	PriceOverlay string   `json:"priceOverlay,omitempty"`
	Existing     bool     `json:"existing"`
	Pods         []string `json:"pods"`
	// Headroom counts the CapacityBuffer chunks among Pods (planned, never run).
	Headroom int `json:"headroom,omitempty"`
}

type unschedulable struct {
	Pod    string `json:"pod"`
	Reason string `json:"reason"`
}

func runSimulate(out io.Writer, opts *simulateOptions) error {
	if len(opts.files) == 0 {
		return usageError{errors.New("no input: pass -f FILE (YAML with Pods, Nodes, NodePools, ...)")}
	}
	if opts.output != "json" && opts.output != "table" {
		return usageError{fmt.Errorf("-o %q: use json or table", opts.output)}
	}
	objects, err := scenario.LoadFiles(opts.files...)
	if err != nil {
		return usageError{err}
	}
	if len(objects.NodePools) == 0 {
		return usageError{errors.New("no NodePool in the input: new machines come from a NodePool (see config/samples)")}
	}
	catalog, err := loadCatalog(opts.catalog)
	if err != nil {
		return usageError{err}
	}
	offered, err := catalog.RegionOfferings(opts.region)
	if err != nil {
		return usageError{fmt.Errorf("--region: %w", err)}
	}
	headroom, err := objects.Headroom()
	if err != nil {
		return usageError{err}
	}
	snap, err := solverinput.Snapshot(solverinput.Objects{
		Pods:                   append(append([]*corev1.Pod(nil), objects.Pods...), headroom...),
		Nodes:                  objects.Nodes,
		NodePools:              objects.NodePools,
		DaemonSets:             objects.DaemonSets,
		PersistentVolumes:      objects.PersistentVolumes,
		PersistentVolumeClaims: objects.PersistentVolumeClaims,
		Namespaces:             objects.Namespaces,
		StorageClasses:         objects.StorageClasses,
		CSINodes:               objects.CSINodes,
		Overlays:               objects.NodeOverlays,
	}, offered, nil)
	if err != nil {
		return usageError{err}
	}
	// The overlays were applied above; this says which were left out.
	_, conflicts, err := solverinput.Pools(solverinput.Objects{NodePools: objects.NodePools, Overlays: objects.NodeOverlays}, offered)
	if err != nil {
		return usageError{err}
	}
	start := time.Now()
	// Real pods first: CapacityBuffers' chunks never cost a pod its place.
	plan, _, err := capacitybuffer.Solve(snap, solver.Options{})
	if err != nil {
		return err
	}
	result := describePlan(plan, objects.Nodes, solverinput.NewPrices(offered))
	result.SolveSeconds = time.Since(start).Seconds()
	for _, c := range conflicts {
		result.OverlaysNotApplied = append(result.OverlaysNotApplied, "NodeOverlay "+c.Overlay+": "+c.String())
	}
	if opts.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(result)
	}
	return printPlanTable(out, result)
}

func loadCatalog(dir string) (*cloud.Catalog, error) {
	if dir == "" {
		return cloud.Embedded()
	}
	catalog, err := cloud.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--catalog %s: %w", dir, err)
	}
	return catalog, nil
}

func describePlan(plan *solver.Plan, nodes []*corev1.Node, prices solverinput.Prices) simulateResult {
	result := simulateResult{
		Nodes:                  []simulatedNode{},
		Unschedulable:          []unschedulable{},
		TotalPricePerHour:      plan.TotalPricePerHour,
		LowerBoundPricePerHour: plan.LowerBoundPricePerHour,
	}
	placedOnExisting := map[string][]string{}
	headroomOn := map[string]int{}
	for _, p := range plan.Existing {
		placedOnExisting[p.NodeName] = append(placedOnExisting[p.NodeName], podName(p.Pod))
		if capacitybuffer.IsVirtual(p.Pod) {
			headroomOn[p.NodeName]++
		}
	}
	for _, node := range nodes {
		capacityType := node.Labels[v1alpha1.LabelCapacityType]
		if capacityType == "" {
			capacityType = v1alpha1.CapacityTypeOnDemand
		}
		result.Nodes = append(result.Nodes, simulatedNode{
			Name:         node.Name,
			NodePool:     node.Labels[v1alpha1.LabelNodePool],
			InstanceType: node.Labels[v1alpha1.LabelInstanceType],
			Zone:         node.Labels[v1alpha1.LabelZone],
			CapacityType: capacityType,
			PricePerHour: prices.Of(node.Labels),
			Existing:     true,
			Pods:         sortedOrEmpty(placedOnExisting[node.Name]),
			Headroom:     headroomOn[node.Name],
		})
	}
	for _, n := range plan.NewNodes {
		pods := make([]string, 0, len(n.Pods))
		headroom := 0
		for _, p := range n.Pods {
			pods = append(pods, podName(p))
			if capacitybuffer.IsVirtual(p) {
				headroom++
			}
		}
		result.Nodes = append(result.Nodes, simulatedNode{
			Name:         n.Name,
			NodePool:     n.Pool,
			InstanceType: n.InstanceType.Name,
			Zone:         n.Offering.Zone,
			CapacityType: n.Offering.CapacityType,
			PricePerHour: n.Offering.PricePerHour,
			PriceOverlay: n.Offering.PriceOverlay,
			Pods:         sortedOrEmpty(pods),
			Headroom:     headroom,
		})
	}
	for _, u := range plan.Unschedulable {
		result.Unschedulable = append(result.Unschedulable, unschedulable{Pod: podName(u.Pod), Reason: u.Reason})
	}
	return result
}

func printPlanTable(out io.Writer, r simulateResult) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tPOOL\tTYPE\tZONE\tCAPACITY\t$/H\tNEW\tPODS")
	for _, n := range r.Nodes {
		isNew := "yes"
		if n.Existing {
			isNew = "no"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.4f\t%s\t%d\n", n.Name, orDash(n.NodePool), orDash(n.InstanceType), orDash(n.Zone), n.CapacityType, n.PricePerHour, isNew, len(n.Pods))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nnew machines: $%.4f/h (lower bound $%.4f/h), solved in %s\n", r.TotalPricePerHour, r.LowerBoundPricePerHour, time.Duration(r.SolveSeconds*float64(time.Second)).Round(time.Microsecond))
	for _, n := range r.Nodes {
		if n.PriceOverlay != "" {
			fmt.Fprintf(out, "%s: price set by NodeOverlay %s\n", n.Name, n.PriceOverlay)
		}
		if n.Headroom > 0 {
			fmt.Fprintf(out, "headroom: %s holds %d CapacityBuffer chunk(s) of its %d pod(s)\n", n.Name, n.Headroom, len(n.Pods))
		}
	}
	for _, msg := range r.OverlaysNotApplied {
		fmt.Fprintf(out, "not applied: %s\n", msg)
	}
	for _, u := range r.Unschedulable {
		fmt.Fprintf(out, "unschedulable %s: %s\n", u.Pod, u.Reason)
	}
	return nil
}

func podName(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func sortedOrEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	sort.Strings(list)
	return list
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
