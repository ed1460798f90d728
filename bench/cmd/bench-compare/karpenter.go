package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	fakecr "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/cloudprovider/fake"
	"sigs.k8s.io/karpenter/pkg/controllers/provisioning/scheduling"
	"sigs.k8s.io/karpenter/pkg/controllers/state"
	"sigs.k8s.io/karpenter/pkg/events"
	"sigs.k8s.io/karpenter/pkg/operator/injection"
	"sigs.k8s.io/karpenter/pkg/operator/logging"
	"sigs.k8s.io/karpenter/pkg/operator/options"
	"sigs.k8s.io/karpenter/pkg/test"
)

func init() {
	// As the benchmark's init.
	log.SetLogger(logging.NopLogger)
}

// result is one scheduler's answer to one round.
type result struct {
	elapsed      time.Duration
	nodes        int
	usdPerHour   float64
	unscheduled  int
	firstProblem string
}

// runKarpenter builds a fresh scheduler exactly as setupScheduler in
// scheduling_benchmark_test.go does (not timed, as in Karpenter's benchmark,
// which calls b.ResetTimer after setup) and times scheduler.Solve alone.
//
// A fresh scheduler per round: Karpenter's benchmark reuses one scheduler for
// all b.N iterations, but Solve appends to the scheduler's NodeClaims, so
// iterations after the first schedule into a different state.
func runKarpenter(w *workload) (result, error) {
	ctx := options.ToContext(injection.WithControllerName(context.Background(), "provisioner"), test.Options())
	scheduler, err := setupScheduler(ctx, w, scheduling.NumConcurrentReconciles(5))
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	results, err := scheduler.Solve(ctx, w.pods)
	elapsed := time.Since(start)
	if err != nil {
		return result{}, fmt.Errorf("karpenter Solve: %w", err)
	}
	res := result{elapsed: elapsed, nodes: len(results.NewNodeClaims), unscheduled: len(results.PodErrors)}
	for p, e := range results.PodErrors {
		res.firstProblem = fmt.Sprintf("%s/%s: %v", p.Namespace, p.Name, e)
		break
	}
	for _, nc := range results.NewNodeClaims {
		price, ok := cheapestLaunchPrice(nc)
		if !ok {
			return result{}, fmt.Errorf("karpenter NodeClaim with %d pods has no compatible available offering", len(nc.Pods))
		}
		res.usdPerHour += price
	}
	return res, nil
}

// cheapestLaunchPrice is the cost rule for a Karpenter NodeClaim: the
// cheapest available offering, among its InstanceTypeOptions, compatible
// with its requirements (zone and capacity type included) -- what a
// lowest-price fleet request for the NodeClaim would launch.
func cheapestLaunchPrice(nc *scheduling.NodeClaim) (float64, bool) {
	best := math.Inf(1)
	for _, it := range nc.InstanceTypeOptions {
		if o := it.Offerings.Available().Compatible(nc.Requirements).Cheapest(); o != nil && o.Price < best {
			best = o.Price
		}
	}
	return best, !math.IsInf(best, 1)
}

// setupScheduler is setupScheduler from scheduling_benchmark_test.go, with the
// workload's NodePool and instance types passed in instead of built inline.
func setupScheduler(ctx context.Context, w *workload, opts ...scheduling.Options) (*scheduling.Scheduler, error) {
	nodePool := w.nodePool
	cloudProvider := fake.NewCloudProvider()
	instanceTypes := w.instanceTypes
	cloudProvider.InstanceTypes = instanceTypes

	client := fakecr.NewFakeClient()
	clk := &clock.RealClock{}
	cluster := state.NewCluster(clk, client, cloudProvider)
	topology, err := scheduling.NewTopology(ctx, client, cluster, nil, []*v1.NodePool{nodePool}, map[string][]*cloudprovider.InstanceType{
		nodePool.Name: instanceTypes,
	}, w.pods, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating topology, %w", err)
	}
	return scheduling.NewScheduler(
		ctx,
		client,
		[]*v1.NodePool{nodePool},
		cluster,
		nil,
		topology,
		map[string][]*cloudprovider.InstanceType{nodePool.Name: instanceTypes},
		nil,
		events.NewRecorder(&record.FakeRecorder{}),
		clk,
		nil, // volumeReqsByPod
		nil, // allocator
		opts...,
	), nil
}
