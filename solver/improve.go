package solver

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// improve lowers the plan's price after placement by moving packable pods
// (see podGroup.packable) between planned nodes: a node whose packable pods
// all fit into room other nodes have, or gain for less than the node costs,
// is emptied and dropped. Only nodes of pools that are simple (no
// minValues, far from limits) take part, and pool limits are re-checked.
// Moving such pods changes no topology count and no port, so the placement
// order stays valid with only the node names of the moved pods changed.
func (s *state) improve() {
	podGroupOf := map[*corev1.Pod]*podGroup{}
	for _, g := range s.groups {
		for _, p := range g.pods[:g.placed] {
			podGroupOf[p] = g
		}
	}
	var nodes []*nodeState
	for _, n := range s.planned {
		if n.chosen() != nil && n.pool.simple() {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) < 2 {
		return
	}
	moved := map[*corev1.Pod]*nodeState{}
	defer s.finishMoves(moved)
	// Victims: nodes carrying only packable pods, least used first.
	var victims []*nodeState
	for _, n := range nodes {
		all := true
		for _, gc := range n.groups {
			all = all && gc.group.packable()
		}
		if all {
			victims = append(victims, n)
		}
	}
	util := func(n *nodeState) float64 {
		c := n.chosen()
		u := 0.0
		for _, r := range []int{resCPU, resMemory} {
			if c.alloc[r] > 0 {
				u = math.Max(u, float64(n.used[r])/float64(c.alloc[r]))
			}
		}
		return u
	}
	sort.SliceStable(victims, func(i, j int) bool { return util(victims[i]) < util(victims[j]) })
	removed := map[*nodeState]bool{}
	for _, v := range victims {
		if removed[v] || v.chosen() == nil {
			continue
		}
		if s.tryEmpty(v, nodes, removed, podGroupOf, moved, v.chosen().price) {
			removed[v] = true
		}
	}
	s.rebalance(moved)
}

// finishMoves drops planned nodes left empty and points the placement
// order at the nodes pods moved to.
func (s *state) finishMoves(moved map[*corev1.Pod]*nodeState) {
	if len(moved) == 0 {
		return
	}
	kept := s.planned[:0]
	for _, n := range s.planned {
		if len(n.groups) > 0 {
			kept = append(kept, n)
		}
	}
	s.planned = kept
	for i := range s.order {
		if n, ok := moved[s.order[i].Pod]; ok {
			s.order[i].NodeName = n.name
		}
	}
}

// move is one tentative batch of a planned move.
type move struct {
	g     *podGroup
	to    *nodeState
	count int
}

// tryEmpty plans moving every pod of v elsewhere; it applies the moves and
// reports true when they cost less than budget (v's price to save money,
// +Inf to save a machine at any price).
func (s *state) tryEmpty(v *nodeState, nodes []*nodeState, removed map[*nodeState]bool, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState, budget float64) bool {
	extra := map[*nodeState]resVec{}
	cost := map[*nodeState]float64{} // current tentative extra cost per target
	total := 0.0
	var moves []move
	batches := append([]groupCount(nil), v.groups...)
	sort.SliceStable(batches, func(i, j int) bool {
		a, b := batches[i].group.req, batches[j].group.req
		if a[resCPU] != b[resCPU] {
			return a[resCPU] > b[resCPU]
		}
		return a[resMemory] > b[resMemory]
	})
	for _, gc := range batches {
		g := gc.group
		left := gc.count
		for left > 0 {
			// Best target: the least extra cost per pod, more pods on ties.
			var best *nodeState
			bestPer, bestK, bestDelta := math.Inf(1), 0, 0.0
			for _, n := range nodes {
				if n == v || removed[n] {
					continue
				}
				e := extra[n]
				used := n.used
				if e != nil {
					used = addVec(n.used, e)
				}
				if !fitsAdd(n.maxAlloc, used, g.req) {
					continue
				}
				// Only a per-pod cost within bestPer+1e-12 can win; the other
				// 1e-12 absorbs rounding base differently from delta below.
				k, p := s.cheapestFit(n, g, used, left, n.chosen().price+cost[n], bestPer+2e-12)
				if k == 0 {
					continue
				}
				delta := p - n.chosen().price - cost[n]
				per := delta / float64(k)
				if per < bestPer-1e-12 || (per <= bestPer+1e-12 && k > bestK) {
					best, bestPer, bestK, bestDelta = n, per, k, delta
				}
				// No move costs less than nothing (up to rounding far below
				// 1e-12), and none takes more than all the pods left: later
				// nodes cannot win, and scanning them for every batch of
				// every victim made improve quadratic in the nodes.
				if bestK == left && bestPer <= 0 {
					break
				}
			}
			if best == nil {
				return false
			}
			total += bestDelta
			if total >= budget-1e-9 {
				return false
			}
			if extra[best] == nil {
				extra[best] = make(resVec, len(g.req))
			}
			extra[best].addScaled(g.req, int64(bestK))
			cost[best] += bestDelta
			moves = append(moves, move{g: g, to: best, count: bestK})
			left -= bestK
		}
	}
	// Pool limits after the change.
	if !s.limitsAllow(v, extra) {
		return false
	}
	s.applyMoves(v, moves, podGroupOf, moved)
	return true
}

func addVec(a, b resVec) resVec {
	out := a.clone()
	out.add(b)
	return out
}

// cheapestFit returns how many pods of g (up to want, at least one) node n
// can take beside used at the price of its cheapest candidate that still
// fits, and that price: as many as fit in the cheapest candidate that
// takes one more pod. It returns 0 as soon as the answer's (price - base)
// per pod would exceed above: candidates come cheapest first and none
// takes more pods than the node's largest.
func (s *state) cheapestFit(n *nodeState, g *podGroup, used resVec, want int, base, above float64) (int, float64) {
	cc := s.forClass(n.pool, g.class)
	known := containsInt(n.classes, g.class.id)
	kMax := float64(min(fitCount(n.maxAlloc, used, g.req), want))
	for _, i := range n.cands {
		c := &n.pool.cands[i]
		if d := c.price - base; d >= 0 && d/kMax > above {
			return 0, 0
		}
		if !known && !cc.mask[i] {
			continue
		}
		if k := fitCount(c.alloc, used, g.req); k > 0 {
			return min(k, want), c.price
		}
	}
	return 0, 0
}

// limitsAllow checks pool limits for emptying v with extra load on targets.
func (s *state) limitsAllow(v *nodeState, extra map[*nodeState]resVec) bool {
	type delta struct {
		res   resVec
		price float64
	}
	deltas := map[*poolState]*delta{}
	get := func(ps *poolState) *delta {
		d := deltas[ps]
		if d == nil {
			d = &delta{res: make(resVec, s.res.size())}
			deltas[ps] = d
		}
		return d
	}
	c := v.chosen()
	d := get(v.pool)
	d.res.sub(c.capacity)
	d.price -= c.price
	for n, e := range extra {
		old := n.chosen()
		var nc *candidate
		used := addVec(n.used, e)
		for _, i := range n.cands {
			if geVec(n.pool.cands[i].alloc, used) {
				nc = &n.pool.cands[i]
				break
			}
		}
		if nc == nil {
			return false
		}
		d := get(n.pool)
		d.res.sub(old.capacity)
		d.res.add(nc.capacity)
		d.price += nc.price - old.price
	}
	for ps, d := range deltas {
		if ps.hasLimits {
			for _, r := range ps.limited {
				if ps.used[r]+d.res[r] > ps.limits[r] && d.res[r] > 0 {
					return false
				}
			}
		}
		if ps.hasPriceLim && ps.usedPrice+d.price > ps.priceLimit+1e-9 && d.price > 0 {
			return false
		}
	}
	return true
}

// applyMoves moves the pods of v as planned and drops v's contribution.
func (s *state) applyMoves(v *nodeState, moves []move, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	ps := v.pool
	ps.swap(v.chosen(), nil)
	// Pods of v by group, in placement order.
	byGroup := map[*podGroup][]*corev1.Pod{}
	for _, p := range v.placed {
		g := podGroupOf[p]
		byGroup[g] = append(byGroup[g], p)
	}
	for _, mv := range moves {
		pods := byGroup[mv.g][:mv.count]
		byGroup[mv.g] = byGroup[mv.g][mv.count:]
		s.addToNode(mv.to, mv.g, pods)
		for _, p := range pods {
			moved[p] = mv.to
		}
	}
	v.groups, v.placed = nil, nil
	for i := range v.used {
		v.used[i] = 0
	}
}

// addToNode puts pods of packable group g on planned node n, narrowing its
// candidates to those that still fit (and suit g's class).
func (s *state) addToNode(n *nodeState, g *podGroup, pods []*corev1.Pod) {
	ps := n.pool
	old := n.chosen()
	k := len(pods)
	n.used.addScaled(g.req, int64(k))
	cc := s.forClass(ps, g.class)
	known := containsInt(n.classes, g.class.id)
	// Rebalancing moves pods one at a time onto nodes with thousands of
	// candidates; while the load stays within every candidate, none drops
	// and the pass below would rebuild the same list.
	if !known || n.minAlloc == nil || !geVec(n.minAlloc, n.used) {
		kept := make([]int32, 0, len(n.cands))
		for _, i := range n.cands {
			if (known || cc.mask[i]) && geVec(ps.cands[i].alloc, n.used) {
				kept = append(kept, i)
			}
		}
		if len(kept) == 0 {
			// Over capacity halfway through a swap: the other half brings the
			// node back within its offering; keep what it has meanwhile.
			kept = append(kept, n.cands...)
		}
		n.cands, n.ownsCands = kept, true
		n.recomputeAllocBounds()
	}
	if !known {
		n.classes = append(n.classes, g.class.id)
	}
	merged := false
	for i := range n.groups {
		if n.groups[i].group == g {
			n.groups[i].count += k
			merged = true
			break
		}
	}
	if !merged {
		n.groups = append(n.groups, groupCount{group: g, count: k})
	}
	n.placed = append(n.placed, pods...)
	ps.swap(old, n.chosen())
}

// recomputeAllocBounds sets maxAlloc and minAlloc from a planned node's
// candidates.
func (n *nodeState) recomputeAllocBounds() {
	cands := n.pool.cands
	if n.minAlloc == nil {
		n.minAlloc = make(resVec, len(n.maxAlloc))
	}
	for i := range n.maxAlloc {
		n.maxAlloc[i], n.minAlloc[i] = 0, math.MaxInt64
	}
	for _, i := range n.cands {
		n.maxAlloc.maxWith(cands[i].alloc)
		n.minAlloc.minWith(cands[i].alloc)
	}
}
