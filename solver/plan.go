package solver

import (
	"fmt"
	"math"
	"sort"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// Plan is the solver's answer.
type Plan struct {
	NewNodes []*NewNode
	// Existing lists pods placed on existing or in-flight nodes.
	Existing []Placement
	// Order lists every placement (on existing and new nodes) in the order
	// the solver made it. Topology spread is a per-pod, order-dependent rule
	// in Kubernetes; replaying Order reproduces the decisions.
	Order         []Placement
	Unschedulable []Unschedulable
	// TotalPricePerHour sums the chosen offerings of NewNodes.
	TotalPricePerHour float64
	// LowerBoundPricePerHour is a valid lower bound on the price of any set of
	// new machines that carries the pods this plan puts on new machines (an LP
	// relaxation that keeps each pod whole on one node, tightened by whole-pod
	// patterns on small types and by branching on whole node counts); it is
	// never above TotalPricePerHour.
	LowerBoundPricePerHour float64
}

// Placement puts one pod on one node (existing or planned).
type Placement struct {
	Pod      *corev1.Pod
	NodeName string
	// New is true when NodeName is a planned node of Plan.NewNodes.
	New bool
}

// NewNode is a machine to launch.
type NewNode struct {
	// Name is deterministic (<pool>-<n>) and is the node's hostname label.
	Name         string
	Pool         string
	InstanceType *InstanceType
	// Offering is the one chosen: the cheapest that fits Pods and every constraint.
	Offering Offering
	// SpotRiskNote is what the offering's price was weighed by.
	SpotRiskNote
	// Fallbacks also fit Pods and every constraint, cheapest first.
	Fallbacks []Fallback
	// Rejected explains the cheaper offerings passed over, by reason
	// (only with Options.RecordRejections).
	Rejected []Rejection
	Pods     []*corev1.Pod
	// Labels the node will carry: pool labels, instance type labels, zone,
	// capacity type, node pool and hostname.
	Labels map[string]string
	Taints []corev1.Taint
	// Requests sums the requests of Pods plus daemonset overhead.
	Requests corev1.ResourceList
}

// Fallback is another (type, offering) for a NewNode.
type Fallback struct {
	InstanceType *InstanceType
	Offering     Offering
	SpotRiskNote
}

// SpotRiskNote is what the solver weighed a spot offering's price by (see
// SpotRisk): zero for other offerings and when nothing is known.
type SpotRiskNote struct {
	// Risk is OfferingRisk of the offering, 0 to 1.
	Risk float64
	// RecentInterruptions is Joinery's decayed count of its recent
	// interruptions.
	RecentInterruptions float64
}

// Unschedulable is a pod that fits nowhere, with why.
type Unschedulable struct {
	Pod    *corev1.Pod
	Reason string
}

func (s *state) buildPlan() *Plan {
	plan := &Plan{Order: s.order}
	for _, p := range s.order {
		if !p.New {
			plan.Existing = append(plan.Existing, p)
		}
	}
	for _, n := range s.planned {
		c := n.chosen()
		if c == nil {
			continue
		}
		req := n.used.clone()
		for _, di := range c.dsPods {
			req.add(s.daemonSets[di].req)
		}
		nn := &NewNode{
			Name:         n.name,
			Pool:         n.pool.pool.Name,
			InstanceType: c.it,
			Offering:     *c.off,
			SpotRiskNote: s.riskNote(c),
			Fallbacks:    s.fallbacks(n),
			Pods:         n.placed,
			Labels:       s.nodeLabels(n, c),
			Taints:       n.pool.pool.Taints,
			Requests:     s.res.list(req),
		}
		if s.opts.RecordRejections {
			nn.Rejected = s.rejections(n, c)
		}
		plan.NewNodes = append(plan.NewNodes, nn)
		plan.TotalPricePerHour += c.off.PricePerHour
	}
	index := make(map[*corev1.Pod]int, len(s.snap.Pods))
	for i, p := range s.snap.Pods {
		index[p] = i
	}
	for _, g := range s.groups {
		if g.remaining() == 0 {
			continue
		}
		reason := s.explain(g)
		for _, p := range g.pods[g.placed:] {
			plan.Unschedulable = append(plan.Unschedulable, Unschedulable{Pod: p, Reason: reason})
		}
	}
	sort.SliceStable(plan.Unschedulable, func(i, j int) bool {
		return index[plan.Unschedulable[i].Pod] < index[plan.Unschedulable[j].Pod]
	})
	return plan
}

// fallbacks lists other candidates of a planned node, cheapest first, capped
// at MaxFallbacks but always keeping enough distinct values for minValues;
// beyond those, only candidates that keep the pool within its limits.
func (s *state) fallbacks(n *nodeState) []Fallback {
	ps := n.pool
	chosen := n.chosen()
	var picked []int // positions in n.cands
	has := func(pos int) bool {
		for _, p := range picked {
			if p == pos {
				return true
			}
		}
		return false
	}
	eligible := func(pos int) bool {
		return pos > 0 && !has(pos) && ps.withinLimits(chosen, &ps.cands[n.cands[pos]])
	}
	// minValues is a launch requirement; it wins over the limit filter,
	// which later nodes of the pool may have tightened.
	eligibleForMinValues := func(pos int) bool { return pos > 0 && !has(pos) }
	for _, r := range ps.minValues {
		values := []string{}
		if v, ok := chosen.Label(r.Key); ok {
			values = append(values, v)
		}
		for _, p := range picked {
			if v, ok := ps.cands[n.cands[p]].Label(r.Key); ok && !containsString(values, v) {
				values = append(values, v)
			}
		}
		for pos := 1; pos < len(n.cands) && len(values) < *r.MinValues; pos++ {
			v, ok := ps.cands[n.cands[pos]].Label(r.Key)
			if ok && !containsString(values, v) && eligibleForMinValues(pos) {
				values = append(values, v)
				picked = append(picked, pos)
			}
		}
	}
	for pos := 1; pos < len(n.cands) && len(picked) < s.opts.maxFallbacks(); pos++ {
		if eligible(pos) {
			picked = append(picked, pos)
		}
	}
	sort.Ints(picked)
	out := make([]Fallback, 0, len(picked))
	for _, pos := range picked {
		c := &ps.cands[n.cands[pos]]
		out = append(out, Fallback{InstanceType: c.it, Offering: *c.off, SpotRiskNote: s.riskNote(c)})
	}
	return out
}

// nodeLabels are the labels the planned node will carry.
func (s *state) nodeLabels(n *nodeState, c *candidate) map[string]string {
	out := map[string]string{}
	for k, v := range n.pool.reqLabels {
		out[k] = v
	}
	for i, k := range n.pool.customKeys {
		out[k] = c.custom[i]
	}
	for k, v := range c.it.Labels {
		out[k] = v
	}
	for k, v := range n.pool.pool.Labels {
		out[k] = v
	}
	out[v1alpha1.LabelInstanceType] = c.it.Name
	if c.off.Zone != "" {
		out[v1alpha1.LabelZone] = c.off.Zone
	}
	if c.off.ZoneID != "" {
		out[v1alpha1.LabelZoneID] = c.off.ZoneID
	}
	if c.off.Region != "" {
		out[v1alpha1.LabelRegion] = c.off.Region
	}
	if c.off.CapacityType != "" {
		out[v1alpha1.LabelCapacityType] = c.off.CapacityType
	}
	if c.off.ReservationID != "" {
		out[v1alpha1.LabelCapacityReservationID] = c.off.ReservationID
		if c.off.ReservationType != "" {
			out[v1alpha1.LabelCapacityReservationType] = c.off.ReservationType
		}
	}
	// The kubelet also sets the deprecated beta labels; pods selecting them
	// (read as the well-known keys) must find them on the node.
	for alias, key := range v1alpha1.NormalizedLabels {
		if v, ok := out[key]; ok && alias != v1alpha1.LabelEBSCSIZone {
			out[alias] = v
		}
	}
	out[v1alpha1.LabelNodePool] = n.pool.pool.Name
	out[v1alpha1.LabelKarpenterNodePool] = n.pool.pool.Name
	out[v1alpha1.LabelHostname] = n.hostname
	return out
}

// explain says, pool by pool, why a group's pods could not be placed.
func (s *state) explain(g *podGroup) string {
	var parts []string
	for _, ps := range s.pools {
		parts = append(parts, fmt.Sprintf("nodepool %q: %s", ps.pool.Name, s.poolReason(g, ps)))
	}
	if len(s.pools) == 0 {
		parts = append(parts, "no nodepools")
	}
	if len(s.existing) > 0 {
		parts = append(parts, fmt.Sprintf("no room on any of %d existing nodes", len(s.existing)))
	}
	if len(g.relaxLog) > 0 {
		parts = append(parts, "relaxed: "+strings.Join(g.relaxLog, ", "))
	}
	return strings.Join(parts, "; ")
}

func (s *state) poolReason(g *podGroup, ps *poolState) string {
	cc := s.forClass(ps, g.class)
	if len(cc.idx) == 0 {
		return cc.reason
	}
	zero := make(resVec, s.res.size())
	fits, inLimits := false, false
	for _, i := range cc.idx {
		c := &ps.cands[i]
		if fitCount(c.alloc, zero, g.req) > 0 {
			fits = true
			if ps.withinLimits(nil, c) {
				inLimits = true
				break
			}
		}
	}
	if !fits {
		msg := "no instance type has room for requests " + s.reqString(g.req)
		if len(s.daemonSets) > 0 {
			msg += " (plus daemonset overhead)"
		}
		return msg
	}
	if !inLimits {
		return "pool limits reached"
	}
	if len(ps.minValues) > 0 {
		v := s.virtualNode(ps, cc, g.class)
		if s.plannedFit(g, v, cc, true, unlimited, math.Inf(1), &evaluation{}) == 0 {
			return "minValues cannot be met by the instance types that fit"
		}
	}
	if len(g.ports) > 0 {
		free := false
		for _, i := range cc.idx {
			if !portsConflict(g.ports, ps.cands[i].dsPorts) {
				free = true
				break
			}
		}
		if !free {
			return "a daemonset takes the pod's host port on every instance type"
		}
		return "host port conflict or topology constraints cannot be met"
	}
	var rules []string
	for _, t := range g.owned {
		rules = append(rules, t.kind.String()+" on "+t.key)
	}
	if len(rules) == 0 {
		return "no new node can take the pod"
	}
	return "cannot satisfy " + strings.Join(rules, ", ")
}

func (s *state) reqString(v resVec) string {
	var parts []string
	for i, x := range v {
		if x == 0 || i == resPods {
			continue
		}
		l := make(resVec, len(v))
		l[i] = x
		for name, qq := range s.res.list(l) {
			parts = append(parts, string(name)+"="+qq.String())
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
