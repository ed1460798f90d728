// Package check independently re-verifies a solver plan against its
// snapshot. It uses Kubernetes' own helpers (component-helpers) for pod
// requests, node affinity and taints, so it does not share the solver's
// logic. Tests and fuzzing use it; the solver never does.
package check

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

type node struct {
	name   string
	node   *corev1.Node
	alloc  corev1.ResourceList
	taints []corev1.Taint
	pods   []*corev1.Pod
	isNew  bool
	nn     *solver.NewNode
	pool   *solver.Pool
	// daemons are the daemonset pods a new node will run (their host ports count).
	daemons []*corev1.Pod
}

// Plan returns every violation it finds (nil: the plan is valid).
func Plan(s *solver.Snapshot, p *solver.Plan) []error {
	c := &checker{s: s, p: p, nodes: map[string]*node{}}
	c.run()
	return c.errs
}

type checker struct {
	s     *solver.Snapshot
	p     *solver.Plan
	nodes map[string]*node
	order []*node
	errs  []error
}

func (c *checker) fail(format string, args ...any) {
	if len(c.errs) < 50 {
		c.errs = append(c.errs, fmt.Errorf(format, args...))
	}
}

func (c *checker) pool(name string) *solver.Pool {
	for _, p := range c.s.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (c *checker) run() {
	c.checkAccounting()
	for _, n := range c.s.Nodes {
		cn := &node{name: n.Node.Name, node: n.Node, alloc: n.Node.Status.Allocatable,
			taints: solver.SchedulingTaints(n, c.s.Pools), pods: append([]*corev1.Pod(nil), n.Pods...)}
		if n.Node.Spec.Unschedulable {
			cn.alloc = corev1.ResourceList{}
		}
		c.add(cn)
	}
	total := 0.0
	for _, nn := range c.p.NewNodes {
		total += nn.Offering.PricePerHour
		c.checkNewNode(nn)
	}
	if math.Abs(total-c.p.TotalPricePerHour) > 1e-6*math.Max(1, total) {
		c.fail("TotalPricePerHour %v != sum of chosen offerings %v", c.p.TotalPricePerHour, total)
	}
	if c.p.LowerBoundPricePerHour > c.p.TotalPricePerHour+1e-9 {
		c.fail("lower bound %v above total %v", c.p.LowerBoundPricePerHour, c.p.TotalPricePerHour)
	}
	c.checkLimits()
	c.checkReservations()
	c.replay()
	for _, n := range c.order {
		c.checkResources(n)
		c.checkPorts(n)
		c.checkVolumes(n)
	}
}

func (c *checker) add(n *node) {
	if _, dup := c.nodes[n.name]; dup {
		c.fail("duplicate node name %s", n.name)
	}
	c.nodes[n.name] = n
	c.order = append(c.order, n)
}

// checkAccounting: every pending pod is placed exactly once or reported.
func (c *checker) checkAccounting() {
	seen := map[*corev1.Pod]int{}
	for _, pl := range c.p.Order {
		seen[pl.Pod]++
	}
	for _, u := range c.p.Unschedulable {
		seen[u.Pod]++
		if u.Reason == "" {
			c.fail("pod %s unschedulable without a reason", u.Pod.Name)
		}
	}
	for _, pod := range c.s.Pods {
		if seen[pod] != 1 {
			c.fail("pod %s/%s accounted %d times", pod.Namespace, pod.Name, seen[pod])
		}
	}
	inNodes := 0
	for _, nn := range c.p.NewNodes {
		inNodes += len(nn.Pods)
		if len(nn.Pods) == 0 {
			c.fail("new node %s carries no pod", nn.Name)
		}
	}
	if inNodes+len(c.p.Existing) != len(c.p.Order) {
		c.fail("order has %d placements, nodes %d + existing %d", len(c.p.Order), inNodes, len(c.p.Existing))
	}
}

func (c *checker) checkNewNode(nn *solver.NewNode) {
	pool := c.pool(nn.Pool)
	if pool == nil {
		c.fail("node %s: unknown pool %s", nn.Name, nn.Pool)
		return
	}
	labelsOf := func(it *solver.InstanceType, off solver.Offering) map[string]string {
		l := map[string]string{}
		for k, v := range nn.Labels {
			l[k] = v
		}
		for k, v := range it.Labels {
			l[k] = v
		}
		for k, v := range pool.Labels {
			l[k] = v
		}
		l[v1alpha1.LabelInstanceType] = it.Name
		l[v1alpha1.LabelZone] = off.Zone
		l[v1alpha1.LabelCapacityType] = off.CapacityType
		if off.ZoneID != "" {
			l[v1alpha1.LabelZoneID] = off.ZoneID
		} else {
			delete(l, v1alpha1.LabelZoneID)
		}
		if off.Region != "" {
			l[v1alpha1.LabelRegion] = off.Region
		}
		for alias, key := range kubeletBetaLabels {
			if v, ok := l[key]; ok {
				l[alias] = v
			}
		}
		return l
	}
	want := labelsOf(nn.InstanceType, nn.Offering)
	for k, v := range want {
		if nn.Labels[k] != v {
			c.fail("node %s: label %s=%q, want %q", nn.Name, k, nn.Labels[k], v)
		}
	}
	if nn.Labels[v1alpha1.LabelHostname] != nn.Name || nn.Labels[v1alpha1.LabelNodePool] != pool.Name {
		c.fail("node %s: hostname/nodepool labels wrong: %v", nn.Name, nn.Labels)
	}
	c.checkOffering(nn, pool, nn.InstanceType, nn.Offering, want, "chosen")
	n := &node{name: nn.Name, isNew: true, nn: nn, pool: pool, taints: pool.Taints,
		node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nn.Name, Labels: nn.Labels}, Spec: corev1.NodeSpec{Taints: pool.Taints}}}
	n.alloc = c.allocAfterDaemonSets(nn.InstanceType, n.node)
	n.daemons = c.daemonPodsOn(n.node)
	c.add(n)
	// Fallbacks: same checks as the chosen one, plus the node's pods must fit
	// and its topology-relevant domains must not move.
	// Spot offerings compete at their price weighed by risk (SpotRisk), so
	// fallbacks come cheapest first at that price.
	weighed := func(price float64, note solver.SpotRiskNote) float64 {
		return price * (1 + c.s.SpotRisk.Weight*note.Risk)
	}
	prices := []float64{weighed(nn.Offering.PricePerHour, nn.SpotRiskNote)}
	for _, fb := range nn.Fallbacks {
		l := labelsOf(fb.InstanceType, fb.Offering)
		c.checkOffering(nn, pool, fb.InstanceType, fb.Offering, l, "fallback "+fb.InstanceType.Name+"/"+fb.Offering.Zone+"/"+fb.Offering.CapacityType)
		fn := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nn.Name, Labels: l}, Spec: corev1.NodeSpec{Taints: pool.Taints}}
		alloc := c.allocAfterDaemonSets(fb.InstanceType, fn)
		c.checkFit(nn.Name+" fallback "+fb.InstanceType.Name, alloc, nn.Pods, nil)
		c.checkPodPorts(nn.Name+" fallback "+fb.InstanceType.Name, append(c.daemonPodsOn(fn), nn.Pods...))
		for _, pod := range nn.Pods {
			if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(fn); !ok {
				c.fail("node %s fallback %s: pod %s node affinity fails", nn.Name, fb.InstanceType.Name, pod.Name)
			}
			for _, key := range topologyKeys(pod) {
				if key != v1alpha1.LabelHostname && l[key] != nn.Labels[key] {
					c.fail("node %s fallback %s moves %s domain of pod %s", nn.Name, fb.InstanceType.Name, key, pod.Name)
				}
			}
		}
		prices = append(prices, weighed(fb.Offering.PricePerHour, fb.SpotRiskNote))
	}
	if !sort.Float64sAreSorted(prices[1:]) {
		c.fail("node %s: fallbacks not cheapest first", nn.Name)
	}
	for _, p := range prices[1:] {
		if p < prices[0]-1e-9 {
			c.fail("node %s: fallback cheaper (%v) than chosen (%v)", nn.Name, p, prices[0])
		}
	}
	for _, r := range pool.Requirements {
		if r.MinValues == nil {
			continue
		}
		vals := map[string]bool{}
		for _, it := range append([]*solver.InstanceType{nn.InstanceType}, fallbackTypes(nn)...) {
			if v, ok := labelsOf(it, nn.Offering)[r.Key]; ok {
				vals[v] = true
			}
		}
		if len(vals) < *r.MinValues {
			c.fail("node %s: %d distinct %s among types, minValues %d", nn.Name, len(vals), r.Key, *r.MinValues)
		}
	}
}

func fallbackTypes(nn *solver.NewNode) []*solver.InstanceType {
	var out []*solver.InstanceType
	for _, f := range nn.Fallbacks {
		out = append(out, f.InstanceType)
	}
	return out
}

func (c *checker) checkOffering(nn *solver.NewNode, pool *solver.Pool, it *solver.InstanceType, off solver.Offering, l map[string]string, what string) {
	inPool := false
	for _, t := range pool.InstanceTypes {
		inPool = inPool || t == it
	}
	if !inPool {
		c.fail("node %s %s: type %s not in pool %s", nn.Name, what, it.Name, pool.Name)
	}
	found := false
	for _, o := range it.Offerings {
		if o == off {
			found = true
		}
	}
	if !found || !off.Available {
		c.fail("node %s %s: offering not available", nn.Name, what)
	}
	if c.s.Unavailable.Has(it.Name, off.Zone, off.CapacityType) {
		c.fail("node %s %s: offering recently unavailable", nn.Name, what)
	}
	ctConstrained := false
	for _, r := range pool.Requirements {
		ctConstrained = ctConstrained || r.Key == v1alpha1.LabelCapacityType
	}
	if !ctConstrained && off.CapacityType != v1alpha1.CapacityTypeOnDemand {
		c.fail("node %s %s: pool without capacity-type requirement must buy on-demand", nn.Name, what)
	}
	for _, r := range pool.Requirements {
		v, ok := l[r.Key]
		if !requirementHolds(r, v, ok) {
			c.fail("node %s %s: pool requirement %s violated (%q)", nn.Name, what, r.String(), v)
		}
	}
}

// requirementHolds is written out here on purpose: the checker does not
// trust the solver's algebra.
func requirementHolds(r solver.Requirement, v string, ok bool) bool {
	in := false
	for _, x := range r.Values {
		in = in || x == v
	}
	switch r.Operator {
	case solver.OpIn:
		return ok && in
	case solver.OpNotIn:
		return !ok || !in
	case solver.OpExists:
		return ok
	case solver.OpDoesNotExist:
		return !ok
	}
	if !ok || len(r.Values) != 1 {
		return false
	}
	a, err1 := strconv.ParseInt(v, 10, 64)
	b, err2 := strconv.ParseInt(r.Values[0], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	switch r.Operator {
	case solver.OpGt:
		return a > b
	case solver.OpLt:
		return a < b
	case solver.OpGte:
		return a >= b
	case solver.OpLte:
		return a <= b
	}
	return false
}

func (c *checker) allocAfterDaemonSets(it *solver.InstanceType, n *corev1.Node) corev1.ResourceList {
	alloc := it.Allocatable.DeepCopy()
	if alloc == nil {
		alloc = corev1.ResourceList{}
	}
	for _, pod := range solver.DaemonSetPods(c.s) {
		if pod == nil {
			continue
		}
		if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(n); !ok {
			continue
		}
		if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, pod.Spec.Tolerations, blocking, true); untolerated {
			continue
		}
		for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
			v := alloc[name]
			v.Sub(q)
			alloc[name] = v
		}
		p := alloc[corev1.ResourcePods]
		if _, ok := it.Allocatable[corev1.ResourcePods]; !ok {
			p = *resource.NewQuantity(110, resource.DecimalSI)
		}
		p.Sub(*resource.NewQuantity(1, resource.DecimalSI))
		alloc[corev1.ResourcePods] = p
	}
	return alloc
}

func blocking(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// checkFit: sum of requests of pods (and a pods count) within alloc.
func (c *checker) checkFit(what string, alloc corev1.ResourceList, pods []*corev1.Pod, bound []*corev1.Pod) {
	sum := corev1.ResourceList{}
	count := int64(0)
	for _, list := range [][]*corev1.Pod{bound, pods} {
		for _, pod := range list {
			if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				continue
			}
			count++
			for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
				v := sum[name]
				v.Add(q)
				sum[name] = v
			}
		}
	}
	for name, q := range sum {
		a, ok := alloc[name]
		if name == corev1.ResourcePods {
			continue
		}
		if q.IsZero() {
			continue
		}
		if !ok || q.Cmp(a) > 0 {
			c.fail("%s: %s requested %s > allocatable %s", what, name, q.String(), a.String())
		}
	}
	maxPods := int64(110)
	if a, ok := alloc[corev1.ResourcePods]; ok {
		maxPods = a.Value()
	}
	if count > maxPods {
		c.fail("%s: %d pods > allocatable %d", what, count, maxPods)
	}
}

func (c *checker) checkResources(n *node) {
	if n.isNew {
		c.checkFit("node "+n.name, n.alloc, n.pods, nil)
		return
	}
	c.checkFit("existing node "+n.name, n.alloc, n.pods, nil)
}

func (c *checker) checkPorts(n *node) {
	c.checkPodPorts("node "+n.name, append(append([]*corev1.Pod(nil), n.daemons...), n.pods...))
}

func (c *checker) checkPodPorts(what string, pods []*corev1.Pod) {
	type port struct {
		proto corev1.Protocol
		ip    string
		port  int32
	}
	var seen []port
	for _, pod := range pods {
		for _, ct := range pod.Spec.Containers {
			for _, p := range ct.Ports {
				if p.HostPort == 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				for _, s := range seen {
					if s.port == p.HostPort && s.proto == proto && (s.ip == p.HostIP || s.ip == "" || p.HostIP == "" || s.ip == "0.0.0.0" || p.HostIP == "0.0.0.0") {
						c.fail("%s: host port %d conflict (pod %s)", what, p.HostPort, pod.Name)
					}
				}
				seen = append(seen, port{proto, p.HostIP, p.HostPort})
			}
		}
	}
}

// daemonPodsOn lists the daemonset pods that would run on a new node.
func (c *checker) daemonPodsOn(n *corev1.Node) []*corev1.Pod {
	var out []*corev1.Pod
	for _, pod := range solver.DaemonSetPods(c.s) {
		if pod == nil {
			continue
		}
		if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(n); !ok {
			continue
		}
		if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, pod.Spec.Tolerations, blocking, true); untolerated {
			continue
		}
		out = append(out, pod)
	}
	return out
}

func (c *checker) checkLimits() {
	for _, pool := range c.s.Pools {
		used := pool.InUse.DeepCopy()
		if used == nil {
			used = corev1.ResourceList{}
		}
		price := pool.InUsePricePerHour
		for _, nn := range c.p.NewNodes {
			if nn.Pool != pool.Name {
				continue
			}
			price += nn.Offering.PricePerHour
			capacity := nn.InstanceType.Capacity
			if len(capacity) == 0 {
				capacity = nn.InstanceType.Allocatable
			}
			for name, q := range capacity {
				v := used[name]
				v.Add(q)
				used[name] = v
			}
		}
		for name, limit := range pool.Limits {
			if u := used[name]; u.Cmp(limit) > 0 {
				c.fail("pool %s: %s %s over limit %s", pool.Name, name, u.String(), limit.String())
			}
		}
		if pool.PricePerHourLimit != nil && price > *pool.PricePerHourLimit+1e-9 {
			c.fail("pool %s: price %v over limit %v", pool.Name, price, *pool.PricePerHourLimit)
		}
	}
}

// checkReservations: no capacity reservation carries more new machines
// than it has room for, whichever pools chose it.
func (c *checker) checkReservations() {
	capacity := map[string]int{}
	for _, pool := range c.s.Pools {
		for _, it := range pool.InstanceTypes {
			for _, o := range it.Offerings {
				if o.ReservationID != "" {
					if v, ok := capacity[o.ReservationID]; !ok || o.ReservationCapacity < v {
						capacity[o.ReservationID] = o.ReservationCapacity
					}
				}
			}
		}
	}
	used := map[string]int{}
	for _, nn := range c.p.NewNodes {
		if id := nn.Offering.ReservationID; id != "" {
			used[id]++
			if nn.Offering.CapacityType != "reserved" || nn.Labels["karpenter.k8s.aws/capacity-reservation-id"] != id {
				c.fail("new node %s in reservation %s is %s, labelled %q", nn.Name, id, nn.Offering.CapacityType, nn.Labels["karpenter.k8s.aws/capacity-reservation-id"])
			}
		}
	}
	for id, n := range used {
		if n > capacity[id] {
			c.fail("capacity reservation %s carries %d new machines, has room for %d", id, n, capacity[id])
		}
	}
}

// replay applies the plan's placements in order, checking each pod against
// the cluster as it stands then, the way kube-scheduler would.
func (c *checker) replay() {
	for _, pl := range c.p.Order {
		n := c.nodes[pl.NodeName]
		if n == nil {
			c.fail("pod %s placed on unknown node %s", pl.Pod.Name, pl.NodeName)
			continue
		}
		if n.isNew != pl.New {
			c.fail("pod %s: placement New=%v on node %s", pl.Pod.Name, pl.New, n.name)
		}
		if n.isNew && !containsPod(n.nn.Pods, pl.Pod) {
			c.fail("pod %s in order on %s but not in its Pods", pl.Pod.Name, n.name)
		}
		c.checkPod(pl.Pod, n)
		n.pods = append(n.pods, pl.Pod)
	}
}

func containsPod(list []*corev1.Pod, p *corev1.Pod) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func (c *checker) checkPod(pod *corev1.Pod, n *node) {
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(n.node); !ok || err != nil {
		c.fail("pod %s: node selector/affinity fails on %s (%v)", pod.Name, n.name, n.node.Labels)
	}
	if t, bad := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.taints, pod.Spec.Tolerations, blocking, true); bad {
		c.fail("pod %s: taint %s not tolerated on %s", pod.Name, t.ToString(), n.name)
	}
	aff := pod.Spec.Affinity
	if aff != nil && aff.PodAntiAffinity != nil {
		for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			d, ok := c.domainOf(n, term.TopologyKey)
			if !ok {
				continue
			}
			if c.countMatching(pod, &term, term.TopologyKey, d) > 0 {
				c.fail("pod %s: anti-affinity on %s violated in %s", pod.Name, term.TopologyKey, d)
			}
		}
	}
	// Inverse: pods already in the cluster that repel this pod.
	for _, other := range c.order {
		for _, q := range other.pods {
			if ignoredForTopology(q) || q.Spec.Affinity == nil || q.Spec.Affinity.PodAntiAffinity == nil {
				continue
			}
			for _, term := range q.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				d1, ok1 := c.domainOf(other, term.TopologyKey)
				d2, ok2 := c.domainOf(n, term.TopologyKey)
				if ok1 && ok2 && d1 == d2 && c.termSelects(&term, q, pod) {
					c.fail("pod %s: repelled by %s's anti-affinity on %s", pod.Name, q.Name, term.TopologyKey)
				}
			}
		}
	}
	if aff != nil && aff.PodAffinity != nil {
		for _, term := range aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			d, ok := c.domainOf(n, term.TopologyKey)
			if !ok {
				c.fail("pod %s: node %s lacks affinity key %s", pod.Name, n.name, term.TopologyKey)
				continue
			}
			if c.countMatching(pod, &term, term.TopologyKey, d) > 0 {
				continue
			}
			if c.countMatching(pod, &term, "", "") == 0 && c.termSelects(&term, pod, pod) {
				continue // first of its kind: allowed anywhere
			}
			c.fail("pod %s: affinity on %s unsatisfied in %s", pod.Name, term.TopologyKey, d)
		}
	}
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		if tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
			continue
		}
		c.checkSpread(pod, n, tsc)
	}
}

func (c *checker) domainOf(n *node, key string) (string, bool) {
	if key == v1alpha1.LabelHostname {
		if v, ok := n.node.Labels[key]; ok {
			return v, true
		}
		return n.name, true
	}
	v, ok := n.node.Labels[key]
	return v, ok
}

func (c *checker) termSelects(term *corev1.PodAffinityTerm, owner, pod *corev1.Pod) bool {
	if !c.inTermNamespaces(term, owner, pod.Namespace) {
		return false
	}
	sel := selector(term.LabelSelector, owner, term.MatchLabelKeys, term.MismatchLabelKeys)
	return sel.Matches(labels.Set(pod.Labels))
}

// inTermNamespaces: term.namespaces plus what namespaceSelector matches
// among the snapshot's Namespaces; the owner's namespace when both are
// empty, or when a selector cannot be evaluated (no Namespace objects).
func (c *checker) inTermNamespaces(term *corev1.PodAffinityTerm, owner *corev1.Pod, ns string) bool {
	sel := term.NamespaceSelector
	if sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return true
	}
	for _, n := range term.Namespaces {
		if n == ns {
			return true
		}
	}
	if sel == nil {
		return len(term.Namespaces) == 0 && ns == owner.Namespace
	}
	if len(c.s.Namespaces) == 0 {
		return ns == owner.Namespace
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	for _, n := range c.s.Namespaces {
		if n.Name == ns && s.Matches(labels.Set(n.Labels)) {
			return true
		}
	}
	return false
}

func selector(ls *metav1.LabelSelector, owner *corev1.Pod, match, mismatch []string) labels.Selector {
	if ls == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing()
	}
	for _, k := range match {
		if v, ok := owner.Labels[k]; ok {
			r, _ := labels.NewRequirement(k, selection.In, []string{v})
			sel = sel.Add(*r)
		}
	}
	for _, k := range mismatch {
		if v, ok := owner.Labels[k]; ok {
			r, _ := labels.NewRequirement(k, selection.NotIn, []string{v})
			sel = sel.Add(*r)
		}
	}
	return sel
}

// countMatching counts pods the term selects in domain d of key ("" = everywhere).
func (c *checker) countMatching(owner *corev1.Pod, term *corev1.PodAffinityTerm, key, d string) int {
	count := 0
	for _, n := range c.order {
		if key != "" {
			if v, ok := c.domainOf(n, key); !ok || v != d {
				continue
			}
		}
		for _, q := range n.pods {
			if !ignoredForTopology(q) && c.termSelects(term, owner, q) {
				count++
			}
		}
	}
	return count
}

func (c *checker) checkSpread(pod *corev1.Pod, n *node, tsc corev1.TopologySpreadConstraint) {
	sel := selector(tsc.LabelSelector, pod, tsc.MatchLabelKeys, nil)
	honorAffinity := tsc.NodeAffinityPolicy == nil || *tsc.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor
	honorTaints := tsc.NodeTaintsPolicy != nil && *tsc.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	counts := map[string]int{}
	for _, other := range c.order {
		// A pod bound to an existing node is bound now, before any new
		// machine joins: for hostname, only existing nodes are domains
		// (kube-scheduler's minimum). Other keys keep the stricter
		// replay, in which pods on new nodes placed earlier count.
		if tsc.TopologyKey == v1alpha1.LabelHostname && !n.isNew && other.isNew {
			continue
		}
		d, ok := c.domainOf(other, tsc.TopologyKey)
		if !ok {
			continue
		}
		if honorAffinity {
			if ok, _ := req.Match(other.node); !ok {
				continue
			}
		}
		if honorTaints {
			if _, bad := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), other.taints, pod.Spec.Tolerations, blocking, true); bad {
				continue
			}
		}
		if _, seen := counts[d]; !seen {
			counts[d] = 0
		}
		for _, q := range other.pods {
			if !ignoredForTopology(q) && q.Namespace == pod.Namespace && sel.Matches(labels.Set(q.Labels)) {
				counts[d]++
			}
		}
	}
	d, ok := c.domainOf(n, tsc.TopologyKey)
	if !ok {
		c.fail("pod %s: node %s lacks spread key %s", pod.Name, n.name, tsc.TopologyKey)
		return
	}
	min := math.MaxInt
	for _, v := range counts {
		if v < min {
			min = v
		}
	}
	if tsc.MinDomains != nil && int32(len(counts)) < *tsc.MinDomains {
		min = 0
	}
	self := 0
	if sel.Matches(labels.Set(pod.Labels)) {
		self = 1
	}
	if counts[d]+self-min > int(tsc.MaxSkew) {
		c.fail("pod %s: spread on %s skew %d in %s (min %d, maxSkew %d)", pod.Name, tsc.TopologyKey, counts[d]+self-min, d, min, tsc.MaxSkew)
	}
}

func topologyKeys(pod *corev1.Pod) []string {
	var keys []string
	for _, t := range pod.Spec.TopologySpreadConstraints {
		keys = append(keys, t.TopologyKey)
	}
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				keys = append(keys, t.TopologyKey)
			}
		}
		if a.PodAntiAffinity != nil {
			for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				keys = append(keys, t.TopologyKey)
			}
		}
	}
	return keys
}

// ignoredForTopology: terminating and finished pods are in no domain, as
// kube-scheduler and Karpenter count them.
func ignoredForTopology(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// kubeletBetaLabels are the deprecated labels the kubelet still sets next to
// the well-known ones.
var kubeletBetaLabels = map[string]string{
	"beta.kubernetes.io/arch":                  v1alpha1.LabelArch,
	"beta.kubernetes.io/os":                    v1alpha1.LabelOS,
	"beta.kubernetes.io/instance-type":         v1alpha1.LabelInstanceType,
	"failure-domain.beta.kubernetes.io/zone":   v1alpha1.LabelZone,
	"failure-domain.beta.kubernetes.io/region": v1alpha1.LabelRegion,
}
