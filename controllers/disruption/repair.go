package disruption

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/cluster-api/util/patch"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/solver"
)

// MethodRepair replaces unhealthy Machines (Karpenter's Repair method,
// pkg/controllers/disruption/repair.go), budgeted under reason Unhealthy.
const MethodRepair = "Repair"

// RepairUnhealthyThreshold stops repair in a pool (per cluster) when more
// than this share of its nodes is unhealthy, rounded up so one unhealthy
// node in a small pool is still repaired: a correlated failure (a zone, a
// bad image, the network) is not fixed by replacing everything at once,
// and replacing would only add load. Karpenter's repairUnhealthyThreshold.
const RepairUnhealthyThreshold = "20%"

// RepairPolicy makes a node unhealthy when its condition ConditionType has
// had ConditionStatus for Toleration: Karpenter's cloud provider repair
// policies, used when no MachineHealthCheck judges the Machine.
type RepairPolicy struct {
	ConditionType   corev1.NodeConditionType
	ConditionStatus corev1.ConditionStatus
	Toleration      time.Duration
}

// DefaultRepairPolicies are the AWS provider's (karpenter-provider-aws
// CloudProvider.RepairPolicies): a kubelet that stopped reporting or says
// NotReady for 30 minutes, and the node monitoring agent's conditions.
func DefaultRepairPolicies() []RepairPolicy {
	return []RepairPolicy{
		{ConditionType: corev1.NodeReady, ConditionStatus: corev1.ConditionFalse, Toleration: 30 * time.Minute},
		{ConditionType: corev1.NodeReady, ConditionStatus: corev1.ConditionUnknown, Toleration: 30 * time.Minute},
		{ConditionType: "AcceleratedHardwareReady", ConditionStatus: corev1.ConditionFalse, Toleration: 10 * time.Minute},
		{ConditionType: "StorageReady", ConditionStatus: corev1.ConditionFalse, Toleration: 30 * time.Minute},
		{ConditionType: "NetworkingReady", ConditionStatus: corev1.ConditionFalse, Toleration: 30 * time.Minute},
		{ConditionType: "KernelReady", ConditionStatus: corev1.ConditionFalse, Toleration: 30 * time.Minute},
		{ConditionType: "ContainerRuntimeReady", ConditionStatus: corev1.ConditionFalse, Toleration: 30 * time.Minute},
	}
}

// Reasons of the OwnerRemediated condition Joinery writes on Machines a
// MachineHealthCheck asked it to remediate, as CAPI's MachineSet does for
// its own (machineset_controller.go reconcileUnhealthyMachines).
const (
	// RemediationDeferredReason: Joinery will replace the Machine but not
	// now; the message says what it waits for.
	RemediationDeferredReason = clusterv1.MachineSetMachineRemediationDeferredReason
	// RemediationReplacingReason: a replacement is being launched; the
	// Machine is deleted once it is Ready.
	RemediationReplacingReason = "ReplacementLaunching"
	// RemediationMachineDeletingReason: the Machine is being deleted.
	RemediationMachineDeletingReason = clusterv1.MachineSetMachineRemediationMachineDeletingReason
)

// Health is what repair found about one Machine.
type Health struct {
	// Unhealthy counts the Machine against RepairUnhealthyThreshold,
	// whether or not it may be repaired yet.
	Unhealthy bool
	// Eligible: repair may replace it now (a MachineHealthCheck asked its
	// owner to remediate, or a policy's toleration passed).
	Eligible bool
	// ByHealthCheck: a MachineHealthCheck judged it (its conditions are
	// the contract then).
	ByHealthCheck bool
	// Cause is what made it unhealthy, for the metric: "MachineHealthCheck"
	// or the node condition ("Ready=False").
	Cause string
	// Why says it in words; Since is when it became unhealthy.
	Why   string
	Since time.Time
}

// MachineHealth judges a Machine. A MachineHealthCheck's verdict wins: it
// sets HealthCheckSucceeded=False, and OwnerRemediated=False only when its
// own unhealthy cap (remediation.triggerIf) lets remediation start; CAPI
// remediates only Machines of MachineSets and control planes, so a
// standalone Machine's owner (Joinery) must act on it. Without one, the
// node's conditions are matched against policies.
func MachineHealth(m *clusterv1.Machine, node *corev1.Node, policies []RepairPolicy, now time.Time) Health {
	if c := conditions.Get(m, clusterv1.MachineHealthCheckSucceededCondition); c != nil && c.Status == metav1.ConditionFalse {
		h := Health{Unhealthy: true, ByHealthCheck: true, Cause: "MachineHealthCheck", Since: c.LastTransitionTime.Time,
			Why: fmt.Sprintf("a MachineHealthCheck marked it unhealthy (%s: %s)", c.Reason, strings.TrimSpace(c.Message))}
		h.Eligible = conditions.IsFalse(m, clusterv1.MachineOwnerRemediatedCondition)
		return h
	}
	if node == nil {
		return Health{}
	}
	var best Health
	for _, p := range policies {
		for _, c := range node.Status.Conditions {
			if c.Type != p.ConditionType || c.Status != p.ConditionStatus {
				continue
			}
			eligibleAt := c.LastTransitionTime.Add(p.Toleration)
			h := Health{Unhealthy: true, Eligible: !now.Before(eligibleAt), Since: c.LastTransitionTime.Time,
				Cause: fmt.Sprintf("%s=%s", c.Type, c.Status),
				Why: fmt.Sprintf("node %s has had %s=%s since %s (tolerated for %s)", node.Name, c.Type, c.Status,
					c.LastTransitionTime.UTC().Format(time.RFC3339), p.Toleration)}
			// The one eligible first decides, as Karpenter resolves
			// several matching policies by the earliest eligibleAt.
			if !best.Unhealthy || (h.Eligible && !best.Eligible) || (h.Eligible == best.Eligible && h.Since.Add(p.Toleration).Before(best.Since)) {
				best = h
			}
		}
	}
	return best
}

// RepairTripped reports whether more than RepairUnhealthyThreshold of
// total nodes are unhealthy (rounded up, as Karpenter's breaker).
func RepairTripped(unhealthy, total int) bool {
	if total == 0 {
		return false
	}
	v := intstr.FromString(RepairUnhealthyThreshold)
	threshold, _ := intstr.GetScaledValueFromIntOrPercent(&v, total, true)
	return unhealthy > threshold
}

// unhealthyMachine is a repair candidate.
type unhealthyMachine struct {
	machine *clusterv1.Machine
	node    *corev1.Node
	pool    *v1alpha1.NodePool
	health  Health
}

// repair replaces at most one unhealthy Machine of the cluster per round,
// the longest unhealthy first, within its pool's Unhealthy budget and
// never in a pool past RepairUnhealthyThreshold. It reports whether it
// started one.
func (r *round) repair() (bool, error) {
	total, unhealthy := map[string]int{}, map[string]int{}
	var eligible []*unhealthyMachine
	for i := range r.st.Machines {
		m := &r.st.Machines[i]
		if !m.DeletionTimestamp.IsZero() || m.Annotations[AnnotationReplacedBy] != "" {
			continue
		}
		pool := r.pool(m.Labels[v1alpha1.LabelNodePool])
		if pool == nil {
			continue
		}
		var node *corev1.Node
		if m.Status.NodeRef.IsDefined() {
			node = r.st.Nodes[m.Status.NodeRef.Name]
		}
		// Node conditions carry the cluster's times: how long one has held
		// is read on the apiserver's clock, not a drifted manager's.
		h := MachineHealth(m, node, r.Options.RepairPolicies, r.apiNow)
		if node != nil || h.Unhealthy {
			total[pool.Name]++
		}
		if !h.Unhealthy {
			if err := r.recovered(m); err != nil {
				return false, err
			}
			continue
		}
		unhealthy[pool.Name]++
		if h.Eligible {
			eligible = append(eligible, &unhealthyMachine{machine: m, node: node, pool: pool, health: h})
		}
	}
	sort.Slice(eligible, func(i, j int) bool {
		if !eligible[i].health.Since.Equal(eligible[j].health.Since) {
			return eligible[i].health.Since.Before(eligible[j].health.Since)
		}
		return eligible[i].machine.Name < eligible[j].machine.Name
	})
	for _, u := range eligible {
		if RepairTripped(unhealthy[u.pool.Name], total[u.pool.Name]) {
			why := fmt.Sprintf("%s; not repaired: %d of the %d nodes of NodePool %s in this cluster are unhealthy, more than %s, which looks like a correlated failure that replacing nodes would not fix",
				u.health.Why, unhealthy[u.pool.Name], total[u.pool.Name], u.pool.Name, RepairUnhealthyThreshold)
			if err := r.repairBlocked(u, "RepairBlocked", why); err != nil {
				return false, err
			}
			continue
		}
		started, err := r.repairOne(u)
		if err != nil || started {
			return started, err
		}
	}
	return false, nil
}

// repairOne starts the replacement of one unhealthy Machine, or says why
// not.
func (r *round) repairOne(u *unhealthyMachine) (bool, error) {
	c := &Candidate{Machine: u.machine, Node: u.node, Pool: u.pool}
	if d, err := provisioning.ReadDecision(u.machine); err == nil {
		c.Decision = d
	}
	if u.node == nil {
		// Never registered (a MachineHealthCheck's node startup timeout):
		// nothing runs there, nothing to drain or to move.
		if len(r.allowed([]*Candidate{c}, v1alpha1.DisruptionReasonUnhealthy)) == 0 {
			return false, r.repairBlocked(u, "RepairDeferred", u.health.Why+"; waiting for the pool's disruption budgets to allow an Unhealthy disruption")
		}
		countRepair(u.machine, u.pool, u.health.Cause)
		return true, r.delete(u.machine, u.pool, MethodRepair, fmt.Sprintf("%s of %s: %s", MethodRepair, u.machine.Name, u.health.Why))
	}
	c.Pods = MovablePods(r.st.Pods[u.node.Name])
	if len(r.allowed([]*Candidate{c}, v1alpha1.DisruptionReasonUnhealthy)) == 0 {
		return false, r.repairBlocked(u, "RepairDeferred", u.health.Why+"; waiting for the pool's disruption budgets to allow an Unhealthy disruption")
	}
	if why := r.blocked(c); why != "" {
		return false, r.repairBlocked(u, "RepairDeferred", u.health.Why+"; waiting: "+why)
	}
	a := &action{method: MethodRepair, reason: v1alpha1.DisruptionReasonUnhealthy, why: u.health.Why, candidates: []*Candidate{c}, decidedAt: r.now}
	if u.pool.Static() {
		// A static pool's node is replaced by a node of the pool, not by
		// what its pods need (Karpenter: repair mirrors StaticDrift),
		// unless the pool has a surplus the scale-down is removing.
		if len(provisioning.StaticMachines(u.pool.Name, r.st.Machines)) <= int(*u.pool.Spec.Replicas) {
			n, err := r.st.StaticReplacement(u.pool, r.Provisioner.Unavailable().At(r.now))
			if err != nil {
				return false, r.repairBlocked(u, "RepairDeferred", u.health.Why+"; waiting: "+err.Error())
			}
			a.replacements = []*solver.NewNode{n}
		}
	} else {
		plan, err := r.simulate([]*Candidate{c})
		if err != nil {
			return false, err
		}
		if plan == nil {
			return false, r.repairBlocked(u, "RepairDeferred", u.health.Why+"; waiting: its pods would have nowhere to go")
		}
		a.replacements = plan.NewNodes
	}
	msg := "Joinery replaces the Machine: " + a.describe()
	reason := RemediationReplacingReason
	if len(a.replacements) == 0 {
		reason, msg = RemediationMachineDeletingReason, "Machine is deleting"
	}
	if err := r.ownerRemediated(u.machine, reason, msg); err != nil {
		return false, err
	}
	if err := r.execute(a); err != nil {
		return false, err
	}
	countRepair(u.machine, u.pool, u.health.Cause)
	r.log.Info("repairing", "machine", u.machine.Name, "why", u.health.Why, "replacements", len(a.replacements))
	if len(a.replacements) > 0 {
		r.event(a, corev1.EventTypeNormal, "Repairing", a.describe())
	}
	return true, nil
}

// repairBlocked says, once per change, why an unhealthy Machine is not
// repaired now: an Event on the Machine and its NodePool, and the
// OwnerRemediated condition when a MachineHealthCheck asked for it.
func (r *round) repairBlocked(u *unhealthyMachine, reason, why string) error {
	r.mu.Lock()
	if r.repairNoted == nil {
		r.repairNoted = map[string]string{}
	}
	key := u.machine.Namespace + "/" + u.machine.Name
	changed := r.repairNoted[key] != why
	r.repairNoted[key] = why
	r.mu.Unlock()
	if changed {
		r.log.Info("unhealthy Machine not repaired now", "machine", u.machine.Name, "why", why)
		r.Recorder.Event(u.machine, corev1.EventTypeWarning, reason, why)
		r.Recorder.Eventf(u.pool, corev1.EventTypeWarning, reason, "Machine %s in cluster %s: %s", u.machine.Name, u.machine.Spec.ClusterName, why)
	}
	if u.health.ByHealthCheck {
		return r.ownerRemediated(u.machine, RemediationDeferredReason, why)
	}
	return nil
}

// recovered removes the OwnerRemediated condition from a Machine the
// MachineHealthCheck finds healthy again before it was remediated, as
// CAPI's MachineSet does, so that a later failure starts afresh.
func (r *round) recovered(m *clusterv1.Machine) error {
	if !conditions.IsTrue(m, clusterv1.MachineHealthCheckSucceededCondition) || !conditions.Has(m, clusterv1.MachineOwnerRemediatedCondition) {
		return nil
	}
	helper, err := patch.NewHelper(m, r.Client)
	if err != nil {
		return err
	}
	conditions.Delete(m, clusterv1.MachineOwnerRemediatedCondition)
	return helper.Patch(r.ctx, m, patch.WithOwnedConditions{Conditions: []string{clusterv1.MachineOwnerRemediatedCondition}})
}

// ownerRemediated sets the OwnerRemediated condition on a Machine a
// MachineHealthCheck asked Joinery to remediate (the owner's side of
// CAPI's remediation contract); other Machines are left alone.
func (r *round) ownerRemediated(m *clusterv1.Machine, reason, msg string) error {
	if !conditions.IsFalse(m, clusterv1.MachineHealthCheckSucceededCondition) || !conditions.Has(m, clusterv1.MachineOwnerRemediatedCondition) {
		return nil
	}
	if c := conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition); c.Status == metav1.ConditionFalse && c.Reason == reason && c.Message == msg {
		return nil
	}
	helper, err := patch.NewHelper(m, r.Client)
	if err != nil {
		return err
	}
	conditions.Set(m, metav1.Condition{Type: clusterv1.MachineOwnerRemediatedCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg})
	return helper.Patch(r.ctx, m, patch.WithOwnedConditions{Conditions: []string{clusterv1.MachineOwnerRemediatedCondition}})
}
