package main

// A compact, independent validity check of a Joinery plan for this
// workload. solver/internal/check exists but is internal to the solver
// package tree, so this module cannot import it.
//
// It replays plan.Order (topology spread and pod (anti-)affinity are rules
// checked when a pod is placed, so the order matters) against the final set
// of planned nodes, as kube-scheduler would see them once they all exist:
//
//   - every pod is placed exactly once, on a node of the plan, and the plan's
//     node pod lists agree with Order;
//   - each node's chosen offering is one of its type's available offerings,
//     in a capacity type the pool allows, and the prices add up;
//   - the summed requests (component-helpers PodRequests) and pod count of
//     each node fit its type's allocatable;
//   - DoNotSchedule topology spread: count in the pod's domain (+1 if the pod
//     matches its own selector) minus the minimum over the domains is at most
//     maxSkew; the domains are the pool's zones for topology.kubernetes.io/zone
//     (as Karpenter counts them) and every planned node for hostname;
//   - required anti-affinity: no selected pod already in the domain, and no
//     pod already in the domain whose anti-affinity selects this pod;
//   - required affinity: a selected pod is already in the domain, unless
//     none exists anywhere yet and the pod selects itself (the first of a
//     self-affine group may go anywhere).

import (
	"fmt"
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

type checkNode struct {
	nn    *solver.NewNode
	zone  string
	host  string
	pods  []*corev1.Pod
	ready bool
}

type planChecker struct {
	snap  *solver.Snapshot
	plan  *solver.Plan
	nodes map[string]*checkNode
	list  []*checkNode
	zones []string
	// counts caches, per (namespace, selector, topology key), the number of
	// placed pods it selects per domain; updated on every placement.
	counts map[string]*selCount
	errs   []string
	// anti indexes the required anti-affinity terms of placed pods by
	// topology key and domain.
	anti     map[string][]antiEntry
	antiKeys map[string]bool
	// stats
	spreadChecks, affinityChecks, antiChecks int
}

type antiEntry struct {
	pod *corev1.Pod
	sel labels.Selector
}

type selCount struct {
	ns    string
	sel   labels.Selector
	key   string
	byDom map[string]int
	total int
}

func (c *planChecker) fail(format string, args ...any) {
	if len(c.errs) < 20 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	} else if len(c.errs) == 20 {
		c.errs = append(c.errs, "... (more)")
	}
}

// checkPlan returns the violations it finds and a one-line summary.
func checkPlan(snap *solver.Snapshot, plan *solver.Plan) ([]string, string) {
	c := &planChecker{snap: snap, plan: plan, nodes: map[string]*checkNode{}, counts: map[string]*selCount{},
		anti: map[string][]antiEntry{}, antiKeys: map[string]bool{}}
	pool := snap.Pools[0]
	zoneSet := map[string]bool{}
	for _, it := range pool.InstanceTypes {
		for _, o := range it.Offerings {
			if o.Available && requirementsAllow(pool.Requirements, v1alpha1.LabelCapacityType, o.CapacityType) {
				zoneSet[o.Zone] = true
			}
		}
	}
	for z := range zoneSet {
		c.zones = append(c.zones, z)
	}
	sort.Strings(c.zones)

	for _, u := range plan.Unschedulable {
		c.fail("pod %s unschedulable: %s", u.Pod.Name, u.Reason)
	}
	if len(plan.Existing) > 0 {
		c.fail("%d pods placed on existing nodes, but the snapshot has none", len(plan.Existing))
	}
	total := 0.0
	for _, nn := range plan.NewNodes {
		c.checkNewNode(nn, pool)
		total += nn.Offering.PricePerHour
		n := &checkNode{nn: nn, zone: nn.Offering.Zone, host: nn.Name}
		if h, ok := nn.Labels[v1alpha1.LabelHostname]; ok {
			n.host = h
		}
		if _, dup := c.nodes[nn.Name]; dup {
			c.fail("node name %s used twice", nn.Name)
		}
		c.nodes[nn.Name] = n
		c.list = append(c.list, n)
	}
	if math.Abs(total-plan.TotalPricePerHour) > 1e-6*math.Max(1, total) {
		c.fail("TotalPricePerHour %.6f but offerings add up to %.6f", plan.TotalPricePerHour, total)
	}

	seen := make(map[*corev1.Pod]bool, len(snap.Pods))
	for _, pl := range plan.Order {
		n := c.nodes[pl.NodeName]
		if n == nil || !pl.New {
			c.fail("pod %s placed on %s, not a new node of the plan", pl.Pod.Name, pl.NodeName)
			continue
		}
		if seen[pl.Pod] {
			c.fail("pod %s placed twice", pl.Pod.Name)
			continue
		}
		seen[pl.Pod] = true
		c.checkPlacement(pl.Pod, n)
		n.pods = append(n.pods, pl.Pod)
		c.indexAnti(pl.Pod, n)
		for _, sc := range c.counts {
			c.record(sc, pl.Pod, n)
		}
	}
	for _, p := range snap.Pods {
		if !seen[p] {
			c.fail("pod %s is not in plan.Order", p.Name)
		}
	}
	for _, n := range c.list {
		if len(n.pods) != len(n.nn.Pods) {
			c.fail("node %s lists %d pods, Order puts %d there", n.nn.Name, len(n.nn.Pods), len(n.pods))
		}
		for _, p := range n.nn.Pods {
			if !containsPod(n.pods, p) {
				c.fail("node %s lists pod %s that Order puts elsewhere", n.nn.Name, p.Name)
			}
		}
		c.checkFit(n)
	}
	summary := fmt.Sprintf("%d pods on %d nodes in %d zones; %d spread, %d affinity, %d anti-affinity placements replayed",
		len(seen), len(c.list), len(c.zones), c.spreadChecks, c.affinityChecks, c.antiChecks)
	return c.errs, summary
}

func containsPod(list []*corev1.Pod, p *corev1.Pod) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

func requirementsAllow(rs solver.Requirements, key, value string) bool {
	for i := range rs {
		if rs[i].Key == key && !rs[i].Matches(value, true) {
			return false
		}
	}
	return true
}

func (c *planChecker) checkNewNode(nn *solver.NewNode, pool *solver.Pool) {
	if nn.Pool != pool.Name {
		c.fail("node %s from unknown pool %q", nn.Name, nn.Pool)
	}
	found := false
	for _, it := range pool.InstanceTypes {
		if it != nn.InstanceType {
			continue
		}
		for _, o := range it.Offerings {
			if o == nn.Offering && o.Available {
				found = true
			}
		}
	}
	if !found {
		c.fail("node %s: offering %+v is not an available offering of %s", nn.Name, nn.Offering, nn.InstanceType.Name)
	}
	if !requirementsAllow(pool.Requirements, v1alpha1.LabelCapacityType, nn.Offering.CapacityType) {
		c.fail("node %s: capacity type %s not allowed by the pool", nn.Name, nn.Offering.CapacityType)
	}
}

func (c *planChecker) checkFit(n *checkNode) {
	sum := corev1.ResourceList{}
	for _, p := range n.pods {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			t := sum[name]
			t.Add(q)
			sum[name] = t
		}
	}
	sum[corev1.ResourcePods] = *resource.NewQuantity(int64(len(n.pods)), resource.DecimalSI)
	alloc := n.nn.InstanceType.Allocatable
	for name, q := range sum {
		a, ok := alloc[name]
		if (!ok && !q.IsZero()) || q.Cmp(a) > 0 {
			c.fail("node %s (%s): %s requests %s > allocatable %s", n.nn.Name, n.nn.InstanceType.Name, name, q.String(), a.String())
		}
	}
}

func (n *checkNode) domain(key string) (string, bool) {
	switch key {
	case v1alpha1.LabelHostname:
		return n.host, true
	case v1alpha1.LabelZone:
		return n.zone, n.zone != ""
	}
	v, ok := n.nn.Labels[key]
	return v, ok
}

// counter returns the live per-domain count of placed pods in ns that sel selects.
func (c *planChecker) counter(ns string, ls *metav1.LabelSelector, key string) *selCount {
	id := ns + "|" + metav1.FormatLabelSelector(ls) + "|" + key
	if sc := c.counts[id]; sc != nil {
		return sc
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || ls == nil {
		sel = labels.Nothing()
	}
	sc := &selCount{ns: ns, sel: sel, key: key, byDom: map[string]int{}}
	for _, n := range c.list {
		for _, p := range n.pods {
			c.record(sc, p, n)
		}
	}
	c.counts[id] = sc
	return sc
}

func (c *planChecker) record(sc *selCount, p *corev1.Pod, n *checkNode) {
	if p.Namespace != sc.ns || !sc.sel.Matches(labels.Set(p.Labels)) {
		return
	}
	sc.total++
	if d, ok := n.domain(sc.key); ok {
		sc.byDom[d]++
	}
}

func (c *planChecker) checkPlacement(p *corev1.Pod, n *checkNode) {
	for _, tsc := range p.Spec.TopologySpreadConstraints {
		if tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
			continue
		}
		c.spreadChecks++
		d, ok := n.domain(tsc.TopologyKey)
		if !ok {
			c.fail("pod %s: node %s has no %s", p.Name, n.nn.Name, tsc.TopologyKey)
			continue
		}
		sc := c.counter(p.Namespace, tsc.LabelSelector, tsc.TopologyKey)
		min := math.MaxInt
		if tsc.TopologyKey == v1alpha1.LabelZone {
			for _, z := range c.zones {
				min = minInt(min, sc.byDom[z])
			}
		} else {
			for _, m := range c.list {
				if dm, ok := m.domain(tsc.TopologyKey); ok {
					min = minInt(min, sc.byDom[dm])
				}
			}
		}
		self := 0
		if sc.sel.Matches(labels.Set(p.Labels)) {
			self = 1
		}
		if skew := sc.byDom[d] + self - min; skew > int(tsc.MaxSkew) {
			c.fail("pod %s: spread on %s has skew %d in %s (maxSkew %d)", p.Name, tsc.TopologyKey, skew, d, tsc.MaxSkew)
		}
	}
	aff := p.Spec.Affinity
	if aff != nil && aff.PodAntiAffinity != nil {
		for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			c.antiChecks++
			if d, ok := n.domain(term.TopologyKey); ok && c.counter(p.Namespace, term.LabelSelector, term.TopologyKey).byDom[d] > 0 {
				c.fail("pod %s: anti-affinity on %s violated in %s", p.Name, term.TopologyKey, d)
			}
		}
	}
	// Pods already placed whose anti-affinity repels this one (same namespace
	// only: the workload's terms name no namespaces).
	for key := range c.antiKeys {
		dp, ok := n.domain(key)
		if !ok {
			continue
		}
		for _, e := range c.anti[key+"|"+dp] {
			if e.pod.Namespace == p.Namespace && e.sel.Matches(labels.Set(p.Labels)) {
				c.fail("pod %s: repelled by %s's anti-affinity on %s in %s", p.Name, e.pod.Name, key, dp)
			}
		}
	}
	if aff != nil && aff.PodAffinity != nil {
		for _, term := range aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			c.affinityChecks++
			d, ok := n.domain(term.TopologyKey)
			if !ok {
				c.fail("pod %s: node %s has no %s", p.Name, n.nn.Name, term.TopologyKey)
				continue
			}
			sc := c.counter(p.Namespace, term.LabelSelector, term.TopologyKey)
			if sc.byDom[d] > 0 {
				continue
			}
			if sc.total == 0 && sc.sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			c.fail("pod %s: affinity on %s unsatisfied in %s", p.Name, term.TopologyKey, d)
		}
	}
}

func (c *planChecker) indexAnti(p *corev1.Pod, n *checkNode) {
	if p.Spec.Affinity == nil || p.Spec.Affinity.PodAntiAffinity == nil {
		return
	}
	for _, term := range p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		d, ok := n.domain(term.TopologyKey)
		if !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil || term.LabelSelector == nil {
			continue
		}
		c.antiKeys[term.TopologyKey] = true
		c.anti[term.TopologyKey+"|"+d] = append(c.anti[term.TopologyKey+"|"+d], antiEntry{pod: p, sel: sel})
	}
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
