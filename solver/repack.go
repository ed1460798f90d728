package solver

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// repack replaces planned nodes by new ones that carry the same pods for
// less. Placement fills node by node, and what the packer cannot buy whole
// (packTail) or a group placed alone opens is often a node of a type dear
// for what it carries: on a generic 500-pod workload an r5.4xlarge at
// $0.44/h whose pods seven 2-vCPU, 16 GiB nodes and one larger carry for
// $0.41/h. Emptying (tryEmpty) cannot find those: it only moves pods into
// room other nodes have. Here each such node's pods are packed alone, with
// the packer's LP over every type of their class and its tail plan (types
// ranked by what whole nodes of each alone would cost, and saturated one
// at a time), and the node is replaced when that costs repackMargin less.
// It runs after every other improvement, so each replacement lowers the
// plan's price (run before them, the moves they chose after it cost more
// than it saved on one golden workload).
//
// Only nodes of simple pools carrying packable pods of one class take
// part (as in improve, moving them changes no topology count or port).
// Which are tried is decided cheaply: a node is a candidate when its load,
// bought as fractional machines of a single type, costs repackMargin less
// than the node (no type can do that for a full node of a type cheapest
// for what it carries); the largest such saving first, at most
// repackTries per class.
func (s *state) repack(podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	classes, byClass := s.repackable()
	for _, cl := range classes {
		s.repackClass(cl, byClass[cl], podGroupOf, moved)
	}
	if repackHoods == 0 {
		return
	}
	classes, byClass = s.repackable()
	for _, cl := range classes {
		s.repackHoods(cl, byClass[cl], podGroupOf, moved)
	}
	if !repackToBound {
		return
	}
	classes, byClass = s.repackable()
	for _, cl := range classes {
		s.repackClassToBound(cl, byClass[cl], podGroupOf, moved)
	}
}

// repackToBound turns repackClassToBound on (a variable so tests can turn
// it off); boundPods and boundShapes cap the classes it packs anew, so the
// work stays bounded however large the plan (one branch and bound over
// the class's pods, as lowerBound solves, and a fill per node of the
// bound's mix); boundGap is the gap between a class's nodes and the bound
// on their pods below which it does not try.
var repackToBound = true

const (
	boundPods   = 5000
	boundShapes = 250
	boundGap    = 0.03
)

// repackClassToBound packs every pod of the class anew onto the type mix
// of the lower bound's own solution. Local repacks (one node, or one
// neighbourhood) keep the plan's large nodes; the bound's best whole-node
// solution can be a different mix altogether (a generic 2000-pod
// workload: 10 m6a.metal, 1 f2.48xlarge and 17 small r-family nodes at
// $20.61/h where the plan bought 9 m6a.metal and 2 f2.48xlarge at
// $21.25/h). The whole nodes of that mix are filled first, dearest type
// first, at the LP's prices; the tail planner packs what is left; the
// class's nodes are replaced only when that costs less than they do.
func (s *state) repackClassToBound(cl *constraintClass, nodes []*nodeState, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	if len(nodes) < 2 {
		return
	}
	pods := 0
	price := 0.0
	for _, n := range nodes {
		pods += len(n.placed)
		price += n.chosen().price
	}
	if pods > boundPods {
		return
	}
	types := s.nodesPackTypes(cl, nodes)
	if len(types) == 0 {
		return
	}
	all := coneColumns(types)
	// The nodes of the class, seed first as repackNodes expects: the
	// dearest, then the rest cheapest first.
	vs := append([]*nodeState(nil), nodes...)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].chosen().price < vs[j].chosen().price })
	vs = append([]*nodeState{vs[len(vs)-1]}, vs[:len(vs)-1]...)
	s.repackNodesMix(vs, price, true, cl, types, all, podGroupOf, moved)
}

// repackable lists, by class, the planned nodes repack may replace: nodes
// of simple pools carrying packable pods of one class.
func (s *state) repackable() ([]*constraintClass, map[*constraintClass][]*nodeState) {
	var classes []*constraintClass
	byClass := map[*constraintClass][]*nodeState{}
	for _, n := range s.planned {
		if n.chosen() == nil || !n.pool.simple() || len(n.groups) == 0 {
			continue
		}
		cl := n.groups[0].group.class
		one := true
		for _, gc := range n.groups {
			one = one && gc.group.packable() && gc.group.class == cl
		}
		if !one {
			continue
		}
		if byClass[cl] == nil {
			classes = append(classes, cl)
		}
		byClass[cl] = append(byClass[cl], n)
	}
	return classes, byClass
}

// repackTries caps the nodes of a class repack packs anew (a variable so
// tests can turn it off), and repackMargin is the least saving, as a share
// of a node's price, worth a try (and worth a replacement).
var repackTries = 16

// repackHoods caps the neighbourhoods of a class repackHoods packs anew (a
// variable so tests can turn it off); hoodNodes and hoodPods cap how many
// nodes and pods beside its seed one takes, so the work stays bounded
// however large the plan; hoodMargin is the least saving, as a share of
// the neighbourhood's price, worth a replacement.
var repackHoods = 2

const (
	hoodNodes  = 48
	hoodPods   = 256
	hoodMargin = 0.005
	hoodKeep   = 3
)

const repackMargin = 0.02

func (s *state) repackClass(cl *constraintClass, nodes []*nodeState, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	types := s.nodesPackTypes(cl, nodes)
	if len(types) == 0 {
		return
	}
	type cand struct {
		n    *nodeState
		save float64
	}
	var cands []cand
	for _, n := range nodes {
		price := n.chosen().price
		alt := math.Inf(1)
		for _, t := range types {
			share := 0.0
			for _, r := range []int{resCPU, resMemory, resPods} {
				if n.used[r] > 0 {
					share = math.Max(share, float64(n.used[r])/math.Max(1, float64(t.alloc[r])))
				}
			}
			alt = math.Min(alt, t.price*share)
		}
		if alt < price*(1-repackMargin) {
			cands = append(cands, cand{n, price - alt})
		}
	}
	if len(cands) == 0 {
		return
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].save > cands[j].save })
	if len(cands) > repackTries {
		cands = cands[:repackTries]
	}
	all := coneColumns(types)
	for _, c := range cands {
		s.repackNode(c.n, cl, types, all, podGroupOf, moved)
	}
}

// repackNode packs v's pods alone and, when the new nodes cost less than
// v by repackMargin, moves them there and empties v.
func (s *state) repackNode(v *nodeState, cl *constraintClass, types []packType, all []coneColumn, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	s.repackNodes([]*nodeState{v}, v.chosen().price*(1-repackMargin), cl, types, all, podGroupOf, moved)
}

// repackNodes packs the pods of vs together and, when the new nodes cost
// less than below, moves them there and empties every node of vs. It
// reports whether it did.
func (s *state) repackNodes(vs []*nodeState, below float64, cl *constraintClass, types []packType, all []coneColumn, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) bool {
	return s.repackNodesMix(vs, below, false, cl, types, all, podGroupOf, moved)
}

// repackNodesMix is repackNodes; with mix it also fills, before the tail
// plan, the whole nodes of the lower bound's solution over these pods
// (see repackClassToBound), and tries nothing when the nodes of vs cost
// within boundGap of that bound.
func (s *state) repackNodesMix(vs []*nodeState, below float64, mix bool, cl *constraintClass, types []packType, all []coneColumn, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) bool {
	var reqs []resVec
	var counts []int
	demand := make(resVec, s.res.size())
	at := map[*podGroup]int{}
	for _, v := range vs {
		for _, gc := range v.groups {
			if i, ok := at[gc.group]; ok {
				counts[i] += gc.count
			} else {
				at[gc.group] = len(reqs)
				reqs = append(reqs, gc.group.req)
				counts = append(counts, gc.count)
			}
			demand.addScaled(gc.group.req, int64(gc.count))
		}
	}
	b := newBoundLP(reqs, counts, all, demand, 0)
	if b == nil {
		return false
	}
	var mixN []float64
	if mix {
		if len(b.shapes) > boundShapes {
			return false
		}
		bound, c := b.branchBound(lbSolves)
		if c == nil || !(bound*(1+boundGap) < below) {
			return false
		}
		mixN = c
	}
	pi, x, lb := b.solveWith(nil)
	if x == nil || !(lb < below) {
		// No packing of these pods beats the LP, a lower bound on them.
		return false
	}
	start := make([]int, len(b.shapes))
	for si := range b.shapes {
		start[si] = b.shapes[si].n
	}
	menu := b.repackMenu(demand)
	if len(vs) > 1 {
		// Several nodes' pods are what packTail sees: the types the LP's
		// prices favour (the bound's own choice) come first.
		menu = mergeMenus(b.tailMenu(pi, types), menu)
	}
	mode := tailSaturate
	if len(vs) > 1 {
		mode = tailLazy
	}
	plan, cost := s.tailPlan(b, pi, menu, start, mode)
	if len(vs) > 1 {
		// Or keep the types of the hood's dearest nodes (vs is seed first,
		// then cheapest first: its last ones and the seed), each filled
		// anew at the LP's prices, and pack the rest: the tail plans
		// above open large nodes only where the load alone fills them.
		keep := []*nodeState{vs[0]}
		for i := len(vs) - 1; i > 0 && len(keep) < hoodKeep; i-- {
			keep = append(keep, vs[i])
		}
		avail := append([]int(nil), start...)
		var prefix []tailStep
		spent := 0.0
		for _, k := range keep {
			ci := b.colOf(types, k.chosen())
			if ci < 0 {
				break
			}
			step, ok := s.takeNode(b, pi, ci, avail)
			if !ok {
				break
			}
			prefix = append(prefix, step)
			spent += b.cols[ci].price
			rest, restCost := s.tailPlan(b, pi, menu, avail, tailLazy)
			if spent+restCost < cost {
				plan, cost = append(append([]tailStep(nil), prefix...), rest...), spent+restCost
			}
		}
	}
	if mixN != nil {
		// The bound's whole nodes, each type's nodes filled at the LP's
		// prices, dearest type first and then cheapest first; after each
		// type, the tail planner packs the rest.
		var mixCols []int
		for ci, n := range mixN {
			if n >= 1-1e-6 {
				mixCols = append(mixCols, ci)
			}
		}
		sort.SliceStable(mixCols, func(i, j int) bool { return b.cols[mixCols[i]].price > b.cols[mixCols[j]].price })
		for order := 0; order < 2; order++ {
			if order == 1 {
				for i, j := 0, len(mixCols)-1; i < j; i, j = i+1, j-1 {
					mixCols[i], mixCols[j] = mixCols[j], mixCols[i]
				}
			}
			avail := append([]int(nil), start...)
			var prefix []tailStep
			spent := 0.0
			for _, ci := range mixCols {
				for k := 0; k < int(math.Floor(mixN[ci]+1e-6)); k++ {
					step, ok := s.takeNode(b, pi, ci, avail)
					if !ok {
						break
					}
					prefix = append(prefix, step)
					spent += b.cols[ci].price
				}
				if spent >= cost {
					break
				}
				rest, restCost := s.tailPlan(b, pi, menu, avail, tailLazy)
				if spent+restCost < cost {
					plan, cost = append(append([]tailStep(nil), prefix...), rest...), spent+restCost
				}
			}
		}
	}
	if len(plan) == 0 || !(cost < below) {
		return false
	}
	// Every new node must have an offering within the pool's limits
	// before anything moves.
	zero := make(resVec, s.res.size())
	offerings := make([][]int32, len(plan))
	for i, st := range plan {
		bc := &b.cols[st.col]
		t := types[bc.key]
		load := make(resVec, s.res.size())
		for p, k := range st.pat {
			load.addScaled(b.shapes[bc.fits[p]].req, int64(k))
		}
		for _, ci := range t.cc.idx {
			if fitsAdd(t.ps.cands[ci].alloc, zero, load) && t.ps.withinLimits(nil, &t.ps.cands[ci]) {
				offerings[i] = append(offerings[i], ci)
			}
		}
		if len(offerings[i]) == 0 {
			return false
		}
	}
	// Pool limits after the swap: the new nodes may add up to more than vs.
	if !s.repackWithinLimits(vs, plan, b, types, offerings) {
		return false
	}
	// The pods of vs by shape, in placement order.
	byShape := make([][]*corev1.Pod, len(b.shapes))
	for _, v := range vs {
		for _, p := range v.placed {
			si := b.shapeIndex(podGroupOf[p].req)
			byShape[si] = append(byShape[si], p)
		}
	}
	for _, v := range vs {
		v.pool.swap(v.chosen(), nil)
		v.groups, v.placed = nil, nil
		for i := range v.used {
			v.used[i] = 0
		}
	}
	for i, st := range plan {
		bc := &b.cols[st.col]
		t := types[bc.key]
		n := s.virtualNode(t.ps, t.cc, cl)
		n.cands, n.ownsCands = offerings[i], true
		n.name = s.nextName(t.ps)
		n.hostname = n.name
		n.seq = len(s.planned)
		s.planned = append(s.planned, n)
		for p, k := range st.pat {
			si := bc.fits[p]
			pods := byShape[si][:k]
			byShape[si] = byShape[si][k:]
			// Runs of one group at a time.
			for len(pods) > 0 {
				g := podGroupOf[pods[0]]
				j := 1
				for j < len(pods) && podGroupOf[pods[j]] == g {
					j++
				}
				s.addToNode(n, g, pods[:j])
				for _, pod := range pods[:j] {
					moved[pod] = n
				}
				pods = pods[j:]
			}
		}
	}
	return true
}

// repackMenu lists the columns that carry load (the pods of one node) for
// least as whole nodes of that column alone, at most tailMenuSize: for a
// node's worth of pods, whole nodes are what the LP's prices miss.
func (b *boundLP) repackMenu(load resVec) []int {
	cost := make([]float64, len(b.cols))
	var menu []int
	for ci := range b.cols {
		bc := &b.cols[ci]
		share := 0.0
		for _, r := range []int{resCPU, resMemory, resPods} {
			if load[r] > 0 {
				share = math.Max(share, float64(load[r])/math.Max(1, float64(bc.alloc[r])))
			}
		}
		cost[ci] = math.Ceil(share-1e-9) * bc.price
		menu = append(menu, ci)
	}
	sort.SliceStable(menu, func(i, j int) bool { return cost[menu[i]] < cost[menu[j]] })
	if len(menu) > tailMenuSize {
		menu = menu[:tailMenuSize]
	}
	return menu
}

// repackWithinLimits checks the limits of every pool involved for
// replacing v by the plan's nodes, each on its cheapest offering.
func (s *state) repackWithinLimits(vs []*nodeState, plan []tailStep, b *boundLP, types []packType, offerings [][]int32) bool {
	deltas := s.newPoolDeltas()
	for _, v := range vs {
		deltas.remove(v.pool, v.chosen())
	}
	for i, st := range plan {
		ps := types[b.cols[st.col].key].ps
		deltas.add(ps, &ps.cands[offerings[i][0]])
	}
	return deltas.withinLimits()
}

// takeNode fills one node of column ci at the prices pi with the pods left
// in avail, takes them from avail, and says whether the node holds any.
func (s *state) takeNode(b *boundLP, pi []float64, ci int, avail []int) (tailStep, bool) {
	bc := &b.cols[ci]
	pat, _ := s.fillOne(b, pi, bc, func(si int32) int { return avail[si] })
	if !nonEmpty(pat) {
		return tailStep{}, false
	}
	for p, k := range pat {
		avail[bc.fits[p]] -= int(k)
	}
	return tailStep{ci, pat}, true
}

// coneColumns are the columns of the cone LP over types, keyed by their
// index in types.
func coneColumns(types []packType) []coneColumn {
	all := make([]coneColumn, len(types))
	for i, t := range types {
		all[i] = coneColumn{price: t.price, alloc: t.alloc, key: i}
	}
	return all
}

// nodesPackTypes lists the types the pod groups on nodes (of class cl)
// can be packed onto.
func (s *state) nodesPackTypes(cl *constraintClass, nodes []*nodeState) []packType {
	var groups []*podGroup
	seen := map[*podGroup]bool{}
	for _, n := range nodes {
		for _, gc := range n.groups {
			if !seen[gc.group] {
				seen[gc.group] = true
				groups = append(groups, gc.group)
			}
		}
	}
	return s.packTypes(cl, groups)
}

// mergeMenus lists a's columns, then b's not in a.
func mergeMenus(a, b []int) []int {
	in := make(map[int]bool, len(a))
	out := append([]int(nil), a...)
	for _, c := range a {
		in[c] = true
	}
	for _, c := range b {
		if !in[c] {
			out = append(out, c)
		}
	}
	return out
}

// repackHoods repacks neighbourhoods of several nodes together. A node
// full in one resource and idle in another (an m6a.metal whose memory its
// pods take, a sixth of its vCPUs unused) is the cheapest carrier of its
// own pods, so repackNode keeps it; what lowers the plan is moving pods
// across nodes: its memory-heavy pods onto small memory-optimised nodes
// and, in their place, the CPU-heavy pods of the small nodes the tail
// opened. Each neighbourhood is a seed, the node idling the most dollars
// (price times its least-used share of CPU or memory), with the cheaper
// nodes of its class, smallest first, up to hoodNodes nodes and hoodPods
// pods; their pods are packed together as repackNode packs one node's and
// replace them when that costs hoodMargin less. Seeds are tried in that
// order, at most repackHoods per class, each node once.
func (s *state) repackHoods(cl *constraintClass, nodes []*nodeState, podGroupOf map[*corev1.Pod]*podGroup, moved map[*corev1.Pod]*nodeState) {
	types := s.nodesPackTypes(cl, nodes)
	if len(types) == 0 {
		return
	}
	all := coneColumns(types)
	idle := func(n *nodeState) float64 {
		c := n.chosen()
		free := 0.0
		for _, r := range []int{resCPU, resMemory} {
			if c.alloc[r] > 0 {
				free = math.Max(free, 1-float64(n.used[r])/float64(c.alloc[r]))
			}
		}
		return c.price * free
	}
	tried := map[*nodeState]bool{}
	for try := 0; try < repackHoods; try++ {
		var alive []*nodeState
		for _, n := range nodes {
			if n.chosen() != nil && len(n.groups) > 0 {
				alive = append(alive, n)
			}
		}
		var seed *nodeState
		best := 0.0
		for _, n := range alive {
			if w := idle(n); !tried[n] && w > best {
				seed, best = n, w
			}
		}
		if seed == nil || len(alive) < 2 {
			return
		}
		tried[seed] = true
		var others []*nodeState
		for _, n := range alive {
			if n != seed && n.chosen().price <= seed.chosen().price {
				others = append(others, n)
			}
		}
		sort.SliceStable(others, func(i, j int) bool { return others[i].chosen().price < others[j].chosen().price })
		hood := []*nodeState{seed}
		price, pods := seed.chosen().price, 0
		for _, n := range others {
			if len(hood) > hoodNodes || pods+len(n.placed) > hoodPods {
				break
			}
			hood = append(hood, n)
			price += n.chosen().price
			pods += len(n.placed)
		}
		if len(hood) < 2 {
			continue
		}
		if s.repackNodes(hood, price*(1-hoodMargin), cl, types, all, podGroupOf, moved) {
			// The new nodes may seed or join later neighbourhoods.
			_, byClass := s.repackable()
			nodes = byClass[cl]
		}
	}
}

// colOf is the column of b for c's instance type in c's pool, -1 when none.
func (b *boundLP) colOf(types []packType, c *candidate) int {
	for ci := range b.cols {
		if t := &types[b.cols[ci].key]; t.ps == c.pool && t.it == c.it {
			return ci
		}
	}
	return -1
}
