package main

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"

	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/scheduling"
)

// joinerySnapshot converts the workload into the solver's input (not timed).
func joinerySnapshot(w *workload) *solver.Snapshot {
	types := make([]*solver.InstanceType, 0, len(w.instanceTypes))
	for _, it := range w.instanceTypes {
		types = append(types, convertInstanceType(it))
	}
	return &solver.Snapshot{Pods: w.pods, Pools: []*solver.Pool{convertNodePool(w.nodePool, w.instanceTypes, types)}}
}

// convertInstanceType: labels are the instance type's single-valued In
// requirements (node.kubernetes.io/instance-type, kubernetes.io/arch, size,
// integer, and special on the large types); zone and capacity type are
// per-offering. kubernetes.io/os is multi-valued on the fake types (linux,
// windows, darwin), so it is not a label here; no pod of the workload
// selects it. Allocatable is Karpenter's: capacity minus the 100m/10Mi
// kube-reserved overhead.
func convertInstanceType(it *cloudprovider.InstanceType) *solver.InstanceType {
	labels := map[string]string{}
	for key, req := range it.Requirements {
		if key == corev1.LabelTopologyZone || key == v1.CapacityTypeLabelKey {
			continue
		}
		if req.Operator() == corev1.NodeSelectorOpIn && req.Len() == 1 {
			labels[key] = req.Any()
		}
	}
	out := &solver.InstanceType{
		Name:        it.Name,
		Labels:      labels,
		Capacity:    it.Capacity.DeepCopy(),
		Allocatable: it.Allocatable().DeepCopy(),
	}
	for _, o := range it.Offerings {
		out.Offerings = append(out.Offerings, solver.Offering{
			Zone:         o.Zone(),
			CapacityType: o.CapacityType(),
			PricePerHour: o.Price,
			Available:    o.Available,
		})
	}
	return out
}

// convertNodePool maps the NodePool onto one solver.Pool. Karpenter core
// applies no capacity-type default: a NodePool that names none may launch
// every capacity type its compatible instance types offer
// (NodeClaimTemplate.ToNodeClaim collects them from the launchable offerings),
// here spot and on-demand. The solver, like Karpenter's AWS provider, would
// default such a pool to on-demand, so the allowed set is spelled out.
func convertNodePool(np *v1.NodePool, its []*cloudprovider.InstanceType, types []*solver.InstanceType) *solver.Pool {
	pool := &solver.Pool{Name: np.Name, Labels: map[string]string{}, InstanceTypes: types}
	if np.Spec.Weight != nil {
		pool.Weight = *np.Spec.Weight
	}
	for k, v := range np.Spec.Template.Labels {
		pool.Labels[k] = v
	}
	hasCapacityType := false
	for _, r := range np.Spec.Template.Spec.Requirements {
		pool.Requirements = append(pool.Requirements, solver.Requirement{
			Key: r.Key, Operator: solver.Operator(r.Operator), Values: r.Values, MinValues: r.MinValues,
		})
		hasCapacityType = hasCapacityType || r.Key == v1.CapacityTypeLabelKey
	}
	if !hasCapacityType {
		reqs := scheduling.NewNodeSelectorRequirementsWithMinValues(np.Spec.Template.Spec.Requirements...)
		seen := map[string]bool{}
		for _, it := range its {
			for _, o := range it.Offerings.Launchable().Compatible(reqs) {
				seen[o.CapacityType()] = true
			}
		}
		var cts []string
		for ct := range seen {
			cts = append(cts, ct)
		}
		sort.Strings(cts)
		pool.Requirements = append(pool.Requirements, solver.Requirement{Key: v1alpha1.LabelCapacityType, Operator: solver.OpIn, Values: cts})
	}
	for name, q := range np.Spec.Limits {
		if pool.Limits == nil {
			pool.Limits = corev1.ResourceList{}
		}
		pool.Limits[name] = q
	}
	return pool
}

// runJoinery times solver.Solve, which includes all of the solver's own
// setup (indexing pools and offerings, grouping pods); the conversion above
// is done once, outside.
func runJoinery(snap *solver.Snapshot) (result, *solver.Plan, error) {
	start := time.Now()
	plan, err := solver.Solve(snap, solver.Options{})
	elapsed := time.Since(start)
	if err != nil {
		return result{}, nil, fmt.Errorf("joinery Solve: %w", err)
	}
	res := result{elapsed: elapsed, nodes: len(plan.NewNodes), usdPerHour: plan.TotalPricePerHour, unscheduled: len(plan.Unschedulable)}
	if len(plan.Unschedulable) > 0 {
		u := plan.Unschedulable[0]
		res.firstProblem = fmt.Sprintf("%s/%s: %s", u.Pod.Namespace, u.Pod.Name, u.Reason)
	}
	return res, plan, nil
}
