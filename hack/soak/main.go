// Command soak runs Joinery on the testbed under churn and injected faults
// and checks invariants over the whole run (test/soak). `make soak` runs
// it; it prints one line and exits 1 when an invariant broke.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/soak"
)

func main() {
	manager.RunChildIfRequested()
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	def := soak.Long(1)
	profile := flag.String("profile", "long", "long (30 minutes, two clusters) or short (what make test runs)")
	duration := flag.Duration("duration", 0, "how long churn and faults last (default: the profile's)")
	seed := flag.Uint64("seed", 1, "seed of the workload's and the faults' schedule")
	clusters := flag.Int("clusters", 0, "workload clusters (default: the profile's)")
	dir := flag.String("dir", "", "where the clusters, the managers' logs and soak-history.log go (default: a temporary directory)")
	maxCost := flag.Float64("max-cost-ratio", def.MaxCostRatio, "the fleet may cost at most this many times a fresh plan after the quiet period (0: report only)")
	flag.Parse()
	var opts soak.Options
	switch *profile {
	case "long":
		opts = soak.Long(*seed)
	case "short":
		opts = soak.Short(*seed)
	default:
		fmt.Fprintf(os.Stderr, "-profile %q: use long or short\n", *profile)
		os.Exit(2)
	}
	if *duration > 0 {
		opts.Duration = *duration
	}
	if *clusters > 0 {
		opts.Clusters = *clusters
	}
	opts.Dir = *dir
	opts.MaxCostRatio = *maxCost
	opts.Progress = os.Stderr
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	res, err := soak.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(res.Line())
	fmt.Fprintln(os.Stderr, res.Details())
	fmt.Fprintf(os.Stderr, "history: %s\n", res.HistoryPath)
	if len(res.Breaches) > 0 {
		for _, b := range res.Breaches {
			fmt.Fprintln(os.Stderr, b)
		}
		os.Exit(1)
	}
}
