// Package soak runs Joinery for a while on the testbed under churn and
// injected faults, and checks invariants over the whole history with a
// checker of its own: what it knows comes from watches of the clusters and
// from the simulated cloud's ledger, never from Joinery's code.
//
// The workload (Deployments with PodDisruptionBudgets, do-not-disrupt
// pods, zone spread, spot-only pods, scaled on a random schedule) and the
// faults (kill -9 of the leading manager replica, capacity errors, throttled
// RunInstances, out-of-band terminations, spot interruptions, slow boots,
// instances that never join) both follow one seed, so a run can be
// repeated; timings still vary with the machine.
package soak

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// Options say how long, how big and how rough a soak is.
type Options struct {
	Duration time.Duration
	Seed     uint64
	// Clusters is how many workload clusters the pools serve.
	Clusters int
	// Dir keeps the clusters' data and logs, the managers' logs and the
	// history file (default: a temporary directory).
	Dir string
	// FaultEvery is the mean time between two injected faults, KillEvery
	// between two kill -9s of the leading manager replica, ScaleEvery
	// between two workload changes.
	FaultEvery time.Duration
	KillEvery  time.Duration
	ScaleEvery time.Duration
	// Quiet is the calm at the end (no faults, no scaling) after which the
	// fleet's cost is compared with a fresh plan.
	Quiet time.Duration
	// PendingBound is how long a pod may stay pending while some pool
	// can serve it.
	PendingBound time.Duration
	// MaxCostRatio, when positive, makes a fleet dearer than this many
	// times a fresh plan of its pods a breach; zero only reports the ratio.
	MaxCostRatio float64
	// MaxHeapMB bounds each manager replica's Go heap.
	MaxHeapMB float64
	// Progress receives a line per phase (nil: discarded).
	Progress io.Writer
	// Log receives the testbed's own logs (default: discarded).
	Log logr.Logger
}

// Short is the profile `make test` runs: one cluster, a few minutes.
func Short(seed uint64) Options {
	return Options{Duration: 3 * time.Minute, Seed: seed, Clusters: 1, FaultEvery: 12 * time.Second, KillEvery: 20 * time.Second, ScaleEvery: 15 * time.Second,
		Quiet: 90 * time.Second, PendingBound: 5 * time.Minute, MaxHeapMB: 400}
}

// Long is `make soak`'s default profile.
func Long(seed uint64) Options {
	return Options{Duration: 30 * time.Minute, Seed: seed, Clusters: 2, FaultEvery: 10 * time.Second, KillEvery: 15 * time.Second, ScaleEvery: 20 * time.Second,
		Quiet: 3 * time.Minute, PendingBound: 5 * time.Minute, MaxCostRatio: 1.5, MaxHeapMB: 400}
}

// Result is what a soak saw; Breaches lists every invariant broken.
type Result struct {
	Seed            uint64
	DurationS       float64
	Kills           int
	LeaderChanges   int
	ICE             int
	Throttles       int
	OOBTerminations int
	Interruptions   int
	SlowBoots       int
	NeverJoins      int
	UnreachableS    float64
	PodsServed      int
	MaxPendingS     float64
	PDBViolations   int
	BudgetViolation int
	DNDViolations   int
	Orphans         int
	Duplicates      int
	PendingTooLong  int
	CostRatio       float64
	FleetPerHour    float64
	FreshPerHour    float64
	HeapMaxMB       float64
	Breaches        []string
	HistoryPath     string
}

// Line is the one line the issue asks for.
func (r Result) Line() string {
	return fmt.Sprintf("soak: duration_s=%.0f kills=%d leader_changes=%d ice=%d oob_terminations=%d interruptions=%d unreachable_s=%.0f pods_served=%d max_pending_s=%.1f pdb_violations=%d budget_violations=%d dnd_violations=%d orphans=%d duplicates=%d cost_ratio=%.2f heap_max_mb=%.1f",
		r.DurationS, r.Kills, r.LeaderChanges, r.ICE, r.OOBTerminations, r.Interruptions, r.UnreachableS, r.PodsServed, r.MaxPendingS,
		r.PDBViolations, r.BudgetViolation, r.DNDViolations, r.Orphans, r.Duplicates, r.CostRatio, r.HeapMaxMB)
}

// Details is a second line with what the line leaves out: the
// other faults injected, the pods pending past the bound, and the two
// costs behind cost_ratio.
func (r Result) Details() string {
	return fmt.Sprintf("soak details: seed=%d throttles=%d slow_boots=%d never_joins=%d pending_too_long=%d fleet_per_hour=%.4f fresh_plan_per_hour=%.4f",
		r.Seed, r.Throttles, r.SlowBoots, r.NeverJoins, r.PendingTooLong, r.FleetPerHour, r.FreshPerHour)
}

// Run starts a testbed and two manager replicas, drives the workload and
// the faults for opts.Duration, lets the fleet settle for opts.Quiet, and
// returns what the checker found. An error is a soak that could not run;
// broken invariants are in Result.Breaches.
func Run(ctx context.Context, opts Options) (Result, error) {
	res := Result{Seed: opts.Seed}
	if opts.Clusters < 1 {
		opts.Clusters = 1
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "joinery-soak-")
		if err != nil {
			return res, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	hist, err := newHistory(filepath.Join(dir, "soak-history.log"))
	if err != nil {
		return res, err
	}
	defer hist.Close()
	res.HistoryPath = hist.path
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))

	fmt.Fprintf(progress, "soak: starting a testbed with %d workload cluster(s) in %s (seed %d)\n", opts.Clusters, dir, opts.Seed)
	faulted := newFaultLog()
	tb, err := testbed.Start(ctx, testbed.Options{
		Dir: filepath.Join(dir, "clusters"), WorkloadClusters: opts.Clusters, ClusterLabels: map[string]string{"env": "soak"},
		Log: opts.Log, ProxyAPIServers: true,
		Cloud: cloudsim.Options{
			BootDelay: time.Second, JoinDelay: 200 * time.Millisecond, ShutdownDelay: time.Millisecond,
			SpotInterruptionWarning: 5 * time.Second, SQSQueue: interruptionQueue,
			OnSpotInterruption: func(i cloudsim.Interruption) { faulted.add(i.InstanceID, "spot interruption") },
		},
	})
	if err != nil {
		return res, fmt.Errorf("starting the testbed: %w", err)
	}
	defer func() { _ = tb.Stop() }()

	if err := createPools(ctx, tb); err != nil {
		return res, err
	}
	managers, err := startManagers(ctx, tb, dir)
	if err != nil {
		return res, err
	}
	defer managers.stop()
	fmt.Fprintln(progress, "soak: managers up; starting the workload, the faults and the checker")

	checker, err := newChecker(ctx, tb, opts, hist, faulted, managers)
	if err != nil {
		return res, err
	}
	wl := newWorkload(tb, rng, hist)
	if err := wl.create(ctx); err != nil {
		return res, err
	}
	inj := newInjector(tb, managers, rng, hist, faulted)

	start := time.Now()
	checkCtx, stopChecking := context.WithCancel(ctx)
	defer stopChecking()
	checked := make(chan struct{})
	go func() { defer close(checked); checker.run(checkCtx) }()
	churnCtx, stopChurn := context.WithTimeout(ctx, opts.Duration)
	defer stopChurn()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); wl.churn(churnCtx, opts.ScaleEvery) }()
	go func() { defer wg.Done(); inj.run(churnCtx, opts.FaultEvery) }()
	go func() { defer wg.Done(); inj.killLoop(churnCtx, opts.KillEvery) }()
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	fmt.Fprintf(progress, "soak: %s of churn and faults done; %s of quiet\n", opts.Duration, opts.Quiet)
	hist.Printf("quiet period starts: faults healed, workload left at its last scale")
	inj.heal(ctx)
	wl.calm(ctx)
	select {
	case <-time.After(opts.Quiet):
	case <-ctx.Done():
	}
	stopChecking()
	<-checked
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	checker.final(ctx)
	res.DurationS = time.Since(start).Seconds()
	inj.fill(&res)
	checker.fill(&res)
	if opts.MaxCostRatio > 0 && res.CostRatio > opts.MaxCostRatio {
		hist.Printf("BREACH cost ratio %.2f above %.2f", res.CostRatio, opts.MaxCostRatio)
		res.Breaches = append(res.Breaches, fmt.Sprintf("cost: the fleet costs $%.4f/h, %.2f times a fresh plan of its pods ($%.4f/h); the bound is %.2f",
			res.FleetPerHour, res.CostRatio, res.FreshPerHour, opts.MaxCostRatio))
	}
	hist.Printf("%s", res.Line())
	if len(res.Breaches) > 0 {
		fmt.Fprintf(progress, "soak: %d invariant(s) broken; the history is %s\n", len(res.Breaches), hist.path)
		for _, b := range res.Breaches {
			fmt.Fprintf(progress, "  %s\n", firstLine(b))
		}
	}
	return res, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

const interruptionQueue = "joinery-interruptions"
