package solver

import (
	"math"
	"sort"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// rebalance pairs planned nodes that run out of cpu with nodes that run out
// of memory and trades pods between them (a cpu-heavy pod one way, a
// memory-heavy one the other), each node staying within its chosen
// offering, until both are balanced; then each takes the cheapest offering
// that still fits. No node gets dearer. Every pod moved keeps its place in
// the placement order and is checked by canMove against everything that
// order implies.
func (s *state) rebalance(moved map[*corev1.Pod]*nodeState) {
	var cpuBound, memBound []*nodeState
	for _, n := range s.planned {
		c := n.chosen()
		if c == nil || !n.pool.simple() || c.alloc[resCPU] == 0 || c.alloc[resMemory] == 0 {
			continue
		}
		switch d := n.skew(); {
		case d > rebalanceSkew:
			cpuBound = append(cpuBound, n)
		case d < -rebalanceSkew:
			memBound = append(memBound, n)
		}
	}
	if len(cpuBound) == 0 || len(memBound) == 0 {
		return
	}
	dearest := func(list []*nodeState) {
		sort.SliceStable(list, func(i, j int) bool { return list[i].chosen().price > list[j].chosen().price })
	}
	dearest(cpuBound)
	dearest(memBound)
	for _, a := range cpuBound {
		for _, b := range memBound {
			if a.pool != b.pool || a.chosen() == nil || b.chosen() == nil {
				continue
			}
			if a.skew() <= rebalanceSkew/2 {
				break
			}
			if b.skew() >= -rebalanceSkew/2 {
				continue
			}
			if s.trade(a, b, moved) {
				s.recandidate(a)
				s.recandidate(b)
			}
		}
	}
}

// rebalanceSkew is how much more of one resource than the other (as shares
// of the chosen offering) makes a node worth rebalancing.
const rebalanceSkew = 0.1

// skew is the node's cpu share minus its memory share of its offering.
func (n *nodeState) skew() float64 {
	c := n.chosen()
	return float64(n.used[resCPU])/float64(c.alloc[resCPU]) - float64(n.used[resMemory])/float64(c.alloc[resMemory])
}

// trade moves cpu-heavy pods from a (short of cpu) to b and memory-heavy
// pods from b to a, a single move when the other side has room, else a
// swap, each node staying within its chosen offering, until one of them is
// no longer skewed its way. It reports whether anything moved.
func (s *state) trade(a, b *nodeState, moved map[*corev1.Pod]*nodeState) bool {
	ratio := func(g *podGroup) float64 {
		return float64(g.req[resCPU]+1) / float64(g.req[resMemory]+1)
	}
	any := false
	for steps := 0; steps < 4*(len(a.placed)+len(b.placed)); steps++ {
		if a.chosen() == nil || b.chosen() == nil || a.skew() <= 0 || b.skew() >= 0 {
			break
		}
		ga := s.heaviest(a, b, ratio, true)
		gb := s.heaviest(b, a, ratio, false)
		done := false
		switch {
		case ga != nil && fitsAdd(b.chosen().alloc, b.used, ga.req) && s.classFits(ga, b):
			s.movePod(ga, a, b, moved)
			done = true
		case gb != nil && fitsAdd(a.chosen().alloc, a.used, gb.req) && s.classFits(gb, a):
			s.movePod(gb, b, a, moved)
			done = true
		case ga != nil && gb != nil && ratio(ga) > ratio(gb) && s.classFits(ga, b) && s.classFits(gb, a):
			ua := addVec(a.used, gb.req)
			ua.sub(ga.req)
			ub := addVec(b.used, ga.req)
			ub.sub(gb.req)
			if geVec(a.chosen().alloc, ua) && geVec(b.chosen().alloc, ub) && nonNegative(ua) && nonNegative(ub) {
				s.movePod(ga, a, b, moved)
				if s.canMove(gb, b, a) {
					s.movePod(gb, b, a, moved)
					done = true
				} else {
					s.movePod(ga, b, a, moved) // undo
				}
			}
		}
		if !done {
			break
		}
		any = true
	}
	return any
}

// heaviest returns the group on from, among those that may move to to,
// whose pods lean most to cpu (cpu) or to memory (!cpu).
func (s *state) heaviest(from, to *nodeState, ratio func(*podGroup) float64, cpu bool) *podGroup {
	var best *podGroup
	for _, gc := range from.groups {
		g := gc.group
		if gc.count == 0 || (best != nil && (cpu && ratio(g) <= ratio(best) || !cpu && ratio(g) >= ratio(best))) {
			continue
		}
		if s.canMove(g, from, to) {
			best = g
		}
	}
	return best
}

// classFits reports whether node n's chosen offering suits g's class.
func (s *state) classFits(g *podGroup, n *nodeState) bool {
	return containsInt(n.classes, g.class.id) || s.forClass(n.pool, g.class).mask[n.cands[0]]
}

// canMove reports whether one pod of g may move from planned node a to
// planned node b of the same pool, keeping its place in the placement order,
// without breaking any rule for it or for any other pod at any point of the
// order:
//
//   - rules on keys other than hostname, of g or selecting g: a and b have
//     the same domain, so no count the order sees changes;
//   - g's own hostname rules, checked against everything on b in the end
//     (at least what the pod saw when it was placed): spread within maxSkew
//     taking the global minimum as 0, as placement does (a new node is
//     always possible); no pod of an anti-affinity selector on b; no
//     hostname affinity;
//   - other groups' hostname rules that select g: no anti-affinity owner
//     on b, spread owners on b keep within maxSkew, no affinity owner on a
//     (it may need this very pod);
//   - host ports do not clash on b; rules with node filters do not move.
//
// Room and class compatibility are the caller's.
func (s *state) canMove(g *podGroup, a, b *nodeState) bool {
	if a.existing || b.existing || a.pool != b.pool || a == b {
		return false
	}
	if len(g.ports) > 0 && portsConflict(g.ports, b.ports) {
		return false
	}
	for i, t := range g.owned {
		if !ruleAllowsMove(t, true, g.ownedSelects[i], a, b) {
			return false
		}
	}
	for _, t := range g.countedBy {
		if !ruleAllowsMove(t, false, true, a, b) {
			return false
		}
	}
	return true
}

// ruleAllowsMove applies one rule to moving a pod from a to b (see
// canMove): own says the pod's group owns the rule, else the rule selects
// it; selects says the rule counts the pod itself.
func ruleAllowsMove(t *topoGroup, own, selects bool, a, b *nodeState) bool {
	if t.key != v1alpha1.LabelHostname {
		return sameDomains(a, b, t)
	}
	if t.filter != nil {
		return false
	}
	switch t.kind {
	case kindSpread:
		c := t.counts[b.hostname]
		if selects {
			c++
		}
		return c <= t.maxSkew || !own && !ownsRule(b, t)
	case kindAntiAffinity:
		if own {
			return t.counts[b.hostname] <= 0
		}
		return t.owners[b.hostname] <= 0 && !ownsRule(b, t)
	default:
		// Hostname affinity: its owner may need this very pod where it is.
		return !own && !ownsRule(a, t)
	}
}

func sameDomains(a, b *nodeState, t *topoGroup) bool {
	same := func(key string) bool {
		va, oka := a.domain(key)
		vb, okb := b.domain(key)
		return oka && okb && va == vb
	}
	if !same(t.key) {
		return false
	}
	for _, k := range t.filter.keys() {
		if !same(k) {
			return false
		}
	}
	return true
}

func ownsRule(n *nodeState, t *topoGroup) bool {
	for _, gc := range n.groups {
		for _, o := range gc.group.owned {
			if o == t {
				return true
			}
		}
	}
	return false
}

// movePod moves one pod of g from a to b (the caller checked canMove, room
// and class) and keeps counts, candidates and pool usage in step.
func (s *state) movePod(g *podGroup, a, b *nodeState, moved map[*corev1.Pod]*nodeState) {
	from := a.chosen()
	var pod *corev1.Pod
	for i := len(a.placed) - 1; i >= 0; i-- {
		if s.groupOf(a.placed[i]) == g {
			pod = a.placed[i]
			a.placed = append(a.placed[:i], a.placed[i+1:]...)
			break
		}
	}
	for i := range a.groups {
		if a.groups[i].group == g {
			a.groups[i].count--
			if a.groups[i].count == 0 {
				a.groups = append(a.groups[:i], a.groups[i+1:]...)
			}
			break
		}
	}
	a.used.sub(g.req)
	if len(a.groups) == 0 {
		// a is empty: it leaves the plan and the pool's usage.
		a.pool.swap(from, nil)
	}
	for _, p := range g.ports {
		for i, q := range a.ports {
			if q == p {
				a.ports = append(a.ports[:i], a.ports[i+1:]...)
				break
			}
		}
	}
	for _, t := range g.countedBy {
		if t.key == v1alpha1.LabelHostname {
			t.counts[a.hostname]--
			t.counts[b.hostname]++
		}
	}
	for _, t := range g.owned {
		if t.kind == kindAntiAffinity && t.key == v1alpha1.LabelHostname {
			t.owners[a.hostname]--
			t.owners[b.hostname]++
		}
	}
	b.ports = append(b.ports, g.ports...)
	s.addToNode(b, g, []*corev1.Pod{pod})
	moved[pod] = b
}

// groupOf returns the group of a pending pod.
func (s *state) groupOf(p *corev1.Pod) *podGroup {
	if s.podGroup == nil {
		s.podGroup = map[*corev1.Pod]*podGroup{}
		for _, g := range s.groups {
			for _, q := range g.pods {
				s.podGroup[q] = g
			}
		}
	}
	return s.podGroup[p]
}

// recandidate recomputes a planned node's candidates after its load
// changed: every offering of the pool that suits all its classes and pins
// and fits what it carries, cheapest first. Domains its pods count on are
// pinned first, so the node cannot move out of them.
func (s *state) recandidate(n *nodeState) {
	ps := n.pool
	old := n.chosen()
	if old == nil {
		return
	}
	for _, gc := range n.groups {
		for _, key := range s.pinKeysFor(gc.group) {
			if _, ok := n.pinned(key); ok {
				continue
			}
			if v, ok := n.domain(key); ok {
				n.pins = append(n.pins, pin{key, v})
			}
		}
	}
	classes := s.classList()
	var masks []*classCands
	for _, id := range n.classes {
		masks = append(masks, s.forClass(ps, classes[id]))
	}
	if len(masks) == 0 {
		return
	}
	// Bounds are gathered in the same pass: rebalancing recandidates two
	// nodes per trade over thousands of offerings. Which offerings suit
	// the node's classes and pins changes far less often than its load:
	// in a pool far from its limits (every offering within them) that
	// list is kept on the node until a class or pin is added.
	kept := s.keptScratch[:0]
	hi, lo := s.hiScratch, s.loScratch
	for r := range hi {
		hi[r], lo[r] = 0, math.MaxInt64
	}
	suits := func(i int32) bool {
		for _, m := range masks[1:] {
			if !m.mask[i] {
				return false
			}
		}
		return matchesPins(&ps.cands[i], n.pins)
	}
	if ps.farFromLimits {
		if n.suited == nil || n.suitedClasses != len(n.classes) || n.suitedPins != len(n.pins) {
			n.suited = n.suited[:0]
			for _, i := range masks[0].idx {
				if suits(i) {
					n.suited = append(n.suited, i)
				}
			}
			n.suitedClasses, n.suitedPins = len(n.classes), len(n.pins)
		}
		for _, i := range n.suited {
			if c := &ps.cands[i]; geVec(c.alloc, n.used) {
				kept = append(kept, i)
				hi.maxWith(c.alloc)
				lo.minWith(c.alloc)
			}
		}
	} else {
		for _, i := range masks[0].idx {
			c := &ps.cands[i]
			if geVec(c.alloc, n.used) && suits(i) && ps.withinLimits(old, c) {
				kept = append(kept, i)
				hi.maxWith(c.alloc)
				lo.minWith(c.alloc)
			}
		}
	}
	s.keptScratch = kept
	if len(kept) == 0 {
		return // what it has still fits
	}
	n.cands, n.ownsCands = append(make([]int32, 0, len(kept)), kept...), true
	if n.minAlloc == nil {
		n.minAlloc = make(resVec, len(n.maxAlloc))
	}
	copy(n.maxAlloc, hi)
	copy(n.minAlloc, lo)
	ps.swap(old, n.chosen())
}
