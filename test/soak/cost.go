package soak

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
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
		np := &pools.Items[i]
		arch, err := k.templateArch(ctx, np)
		if err != nil {
			return 0, 0, err
		}
		// The pool's nodes boot its template's AMI, so only types of that
		// architecture can serve it: a fresh plan must not use the others
		// (the soak found it planning arm64 types for an amd64 AMI).
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, v1alpha1.NodeSelectorRequirementWithMinValues{
			Key: v1alpha1.LabelArch, Operator: v1alpha1.OpIn, Values: []string{arch}})
		poolPtrs = append(poolPtrs, np)
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

// templateArch is the Kubernetes architecture of the AMI a pool's
// AWSMachineTemplate names, as the simulated EC2 registered the image:
// the cloud's record, not Joinery's reading of it.
func (k *checker) templateArch(ctx context.Context, np *v1alpha1.NodePool) (string, error) {
	ref := np.Spec.Template.Spec.InfrastructureTemplateRef
	var t infrav1.AWSMachineTemplate
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: np.Namespace, Name: ref.Name}, &t); err != nil {
		return "", fmt.Errorf("pool %s's AWSMachineTemplate: %w", np.Name, err)
	}
	ami := t.Spec.Template.Spec.AMI.ID
	if ami == nil {
		return "", fmt.Errorf("pool %s's AWSMachineTemplate %s names no AMI id", np.Name, t.Name)
	}
	img, ok := k.tb.Cloud.Image(*ami)
	if !ok {
		return "", fmt.Errorf("pool %s's AMI %s is not an image of the simulated EC2", np.Name, *ami)
	}
	if img.Architecture == cloudsim.ArchitectureARM64 {
		return "arm64", nil
	}
	return "amd64", nil
}
