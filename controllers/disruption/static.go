package disruption

import (
	"fmt"
	"sort"

	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/solver"
)

// MethodStaticScaleDown removes a static pool's surplus Machines after
// spec.replicas went down (Karpenter's pkg/controllers/static/deprovisioning).
const MethodStaticScaleDown = "StaticScaleDown"

// dynamicOnly drops candidates of static pools: their count is the
// user's, so emptiness and consolidation never remove them.
func dynamicOnly(cands []*Candidate) []*Candidate {
	out := cands[:0:0]
	for _, c := range cands {
		if !c.Pool.Static() {
			out = append(out, c)
		}
	}
	return out
}

// staticReplacement is the action replacing a static pool's drifted or
// expired Machine by one new node of the pool, whatever its pods need
// (Karpenter's StaticDrift). Nil while the pool has a surplus the
// scale-down is removing, or when no replacement can be planned (the
// candidate is kept, and why is recorded).
func (r *round) staticReplacement(c *Candidate, method string, reason v1alpha1.DisruptionReason, why string) (*action, error) {
	if len(provisioning.StaticMachines(c.Pool.Name, r.st.Machines)) > int(*c.Pool.Spec.Replicas) {
		r.keep(c, "the static pool has more Machines than spec.replicas; the surplus goes first")
		return nil, nil
	}
	n, err := r.st.StaticReplacement(c.Pool, r.Provisioner.Unavailable().At(r.now))
	if err != nil {
		r.keep(c, method+" is due, but "+err.Error())
		return nil, nil
	}
	return &action{method: method, reason: reason, why: why, candidates: []*Candidate{c}, replacements: []*solver.NewNode{n}}, nil
}

// scaleDownStatic deletes the Machines static pools have beyond
// spec.replicas in this cluster, the least disruptive first: those not
// yet registered, then those whose pods cost least to move, the newest
// first among equals. CAPI's deletion drains them, honouring
// PodDisruptionBudgets. Budgets do not pace it: the user asked for fewer
// nodes, as Karpenter's static deprovisioning.
func (r *round) scaleDownStatic() error {
	for _, pool := range r.st.Pools {
		if !pool.Static() {
			continue
		}
		counted := provisioning.StaticMachines(pool.Name, r.st.Machines)
		surplus := len(counted) - int(*pool.Spec.Replicas)
		if surplus <= 0 {
			continue
		}
		pdbs, err := r.podDisruptionBudgets()
		if err != nil {
			pdbs = nil
		}
		cost := func(m *clusterv1.Machine) (registered, blocked bool, c float64) {
			if !m.Status.NodeRef.IsDefined() || r.st.Nodes[m.Status.NodeRef.Name] == nil {
				return false, false, 0
			}
			node := r.st.Nodes[m.Status.NodeRef.Name]
			pods := MovablePods(r.st.Pods[node.Name])
			blocked = Blocked(&Candidate{Machine: m, Node: node, Pool: pool, Pods: pods}, pdbs) != ""
			return true, blocked, DisruptionCost(pods)
		}
		sort.SliceStable(counted, func(i, j int) bool {
			ri, bi, ci := cost(counted[i])
			rj, bj, cj := cost(counted[j])
			switch {
			case ri != rj:
				return !ri
			case bi != bj:
				return !bi
			case ci != cj:
				return ci < cj
			}
			return counted[j].CreationTimestamp.Before(&counted[i].CreationTimestamp)
		})
		for _, m := range counted[:surplus] {
			why := fmt.Sprintf("%s of %s: NodePool %s has %d Machine(s) in cluster %s and spec.replicas is %d",
				MethodStaticScaleDown, m.Name, pool.Name, len(counted), m.Spec.ClusterName, *pool.Spec.Replicas)
			if err := r.delete(m, pool, MethodStaticScaleDown, why); err != nil {
				return err
			}
		}
	}
	return nil
}
