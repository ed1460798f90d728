package soak

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// costs are the fleet's $/h (the ledger's running instances of Joinery's
// Machines) and a fresh plan's: every pod the workload runs now, planned
// from nothing on the pools' offerings, per cluster as the pools serve
// each cluster separately.
func (k *checker) costs(ctx context.Context) (fleet, fresh float64, err error) {
	for _, i := range k.tb.Cloud.Instances() {
		if i.State == cloudsim.StateRunning && i.Tags["joinery.dev/nodepool"] != "" {
			fleet += i.PricePerHour
			k.hist.Printf("cost: fleet has %s %s in %s of pool %s at $%.4f/h (node %s)", i.CapacityType, i.InstanceType, i.Zone, i.Tags["joinery.dev/nodepool"], i.PricePerHour, i.NodeName)
		}
	}
	var pools v1alpha1.NodePoolList
	if err := k.c.List(ctx, &pools, client.InNamespace(k.tb.Namespace)); err != nil {
		return 0, 0, err
	}
	poolPtrs := make([]*v1alpha1.NodePool, 0, len(pools.Items))
	for i := range pools.Items {
		poolPtrs = append(poolPtrs, &pools.Items[i])
	}
	catalog, err := cloud.Embedded()
	if err != nil {
		return 0, 0, err
	}
	offered, err := catalog.RegionOfferings(k.tb.Cloud.Region(), cloud.WithZones(k.tb.Zones()...))
	if err != nil {
		return 0, 0, err
	}
	for _, w := range k.tb.Workloads {
		var list corev1.PodList
		if err := w.Client.List(ctx, &list, client.InNamespace("default"), client.MatchingLabels{"soak": "true"}); err != nil {
			return 0, 0, err
		}
		var pods []*corev1.Pod
		for i := range list.Items {
			p := list.Items[i].DeepCopy()
			if p.DeletionTimestamp != nil || p.Spec.NodeName == "" {
				continue
			}
			p.Spec.NodeName = ""
			p.Status = corev1.PodStatus{Phase: corev1.PodPending}
			pods = append(pods, p)
		}
		snap, err := solverinput.Snapshot(solverinput.Objects{Pods: pods, NodePools: poolPtrs}, offered, nil)
		if err != nil {
			return 0, 0, err
		}
		plan, err := solver.Solve(snap, solver.Options{})
		if err != nil {
			return 0, 0, err
		}
		if len(plan.Unschedulable) > 0 {
			return 0, 0, fmt.Errorf("a fresh plan of cluster %s's %d pods leaves %d unschedulable: %s", w.Name, len(pods), len(plan.Unschedulable), plan.Unschedulable[0].Reason)
		}
		for _, n := range plan.NewNodes {
			k.hist.Printf("cost: a fresh plan of %s has %s %s in %s of pool %s at $%.4f/h for %d pods", w.Name, n.Offering.CapacityType, n.InstanceType.Name, n.Offering.Zone, n.Pool, n.Offering.PricePerHour, len(n.Pods))
		}
		fresh += plan.TotalPricePerHour
	}
	return fleet, fresh, nil
}
