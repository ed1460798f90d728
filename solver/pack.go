package solver

import (
	"math"
	"slices"
	"sort"
)

// packable reports whether a group's placement concerns nobody else: it
// owns no topology rule, no rule selects it and it uses no host port. Such
// pods may go on any node their class and requests allow, in any order.
func (g *podGroup) packable() bool {
	return len(g.owned) == 0 && len(g.countedBy) == 0 && len(g.ports) == 0
}

// simple reports whether the packer may open nodes in the pool: no minValues
// to keep among fallbacks, no limit any single node could reach and no
// offering a capacity reservation limits.
func (ps *poolState) simple() bool {
	return len(ps.minValues) == 0 && ps.farFromLimits && !ps.reserved
}

// packType is one (pool, instance type) the packer may open: its cheapest
// offering compatible with the class.
type packType struct {
	ps    *poolState
	cc    *classCands
	it    *InstanceType
	price float64
	alloc resVec
}

// placeFree places packable groups: existing nodes and the free room of
// planned nodes first, then new nodes chosen class by class with the cone
// LP (packClass); whatever is left goes through placeGroup.
func (s *state) placeFree(groups []*podGroup) {
	for _, g := range groups {
		s.fill(g, s.existing, modeGrow)
		s.fillSlack(g)
	}
	var classes []*constraintClass
	byClass := map[*constraintClass][]*podGroup{}
	for _, g := range groups {
		if g.remaining() == 0 {
			continue
		}
		if byClass[g.class] == nil {
			classes = append(classes, g.class)
		}
		byClass[g.class] = append(byClass[g.class], g)
	}
	for _, cl := range classes {
		s.packClass(cl, byClass[cl])
	}
	for _, g := range groups {
		if g.remaining() > 0 {
			s.placeGroup(g)
		}
	}
}

// packTypes lists what the packer may open for a class: every type of the
// highest-weight pools that can take one of the groups. It returns nil when
// one of those pools is not simple (the greedy path handles it).
func (s *state) packTypes(cl *constraintClass, groups []*podGroup) []packType {
	zero := make(resVec, s.res.size())
	var out []packType
	level, found := int32(0), false
	for _, ps := range s.pools {
		if found && ps.pool.Weight < level {
			break
		}
		cc := s.forClass(ps, cl)
		if len(cc.idx) == 0 {
			continue
		}
		fitsSome := false
		for _, g := range groups {
			if fitsAdd(cc.maxAlloc, zero, g.req) {
				fitsSome = true
				break
			}
		}
		if !fitsSome {
			continue
		}
		if !ps.simple() {
			return nil
		}
		found, level = true, ps.pool.Weight
		seen := map[*InstanceType]bool{}
		for _, i := range cc.idx {
			c := &ps.cands[i]
			if seen[c.it] {
				continue
			}
			seen[c.it] = true
			out = append(out, packType{ps: ps, cc: cc, it: c.it, price: c.price, alloc: c.alloc})
		}
	}
	return out
}

// packClass opens new nodes for the packable groups of one class. Each
// round solves the LP of lowerBound over what is left and opens what its
// solution buys: whole-pod patterns of small types as they are, and nodes of
// large types filled by a knapsack at the LP's prices. Columns bought whole
// (x ≥ 1) are opened in one round; once only fractions are left, one node of
// the dearest column per round, until every pod that fits is placed.
func (s *state) packClass(cl *constraintClass, groups []*podGroup) {
	types := s.packTypes(cl, groups)
	if len(types) == 0 {
		return
	}
	all := coneColumns(types)
	zero := make(resVec, s.res.size())
	fitsAny := make([]bool, len(groups))
	for gi, g := range groups {
		for _, t := range types {
			if fitsAdd(t.alloc, zero, g.req) {
				fitsAny[gi] = true
				break
			}
		}
	}
	// Reused each round (newBoundLP keeps none of them).
	live := make([]*podGroup, 0, len(groups))
	reqs := make([]resVec, 0, len(groups))
	counts := make([]int, 0, len(groups))
	for {
		live, reqs, counts = live[:0], reqs[:0], counts[:0]
		demand := make(resVec, s.res.size())
		for gi, g := range groups {
			if g.remaining() > 0 && fitsAny[gi] {
				live = append(live, g)
				reqs = append(reqs, g.req)
				counts = append(counts, g.remaining())
				demand.addScaled(g.req, int64(g.remaining()))
			}
		}
		if len(live) == 0 {
			return
		}
		b := newBoundLP(reqs, counts, all, demand, 0)
		if b == nil {
			return
		}
		pi, x := b.solve()
		if x == nil {
			return
		}
		shapeGroups := make([][]*podGroup, len(b.shapes))
		for _, g := range live {
			si := b.shapeIndex(g.req)
			shapeGroups[si] = append(shapeGroups[si], g)
		}
		var support []int
		for j := range x {
			if x[j] > 1e-9 && b.owner[j] >= 0 {
				support = append(support, j)
			}
		}
		if len(support) == 0 {
			return
		}
		sort.SliceStable(support, func(a, c int) bool {
			return x[support[a]]*b.lp.cost[support[a]] > x[support[c]]*b.lp.cost[support[c]]
		})
		// Whole-pod patterns are opened per column; a large type once per
		// round when its columns add up to a whole node (the LP is solved
		// again before the next).
		opened := 0
		typeTotal := map[int32]float64{}
		for _, j := range support {
			if b.pattern[j] == nil {
				typeTotal[b.owner[j]] += x[j]
			}
		}
		for _, j := range support {
			if b.pattern[j] != nil {
				if copies := int(math.Floor(x[j] + 1e-9)); copies > 0 {
					opened += s.realize(b, pi, j, copies, types, cl, shapeGroups)
				}
				continue
			}
			if typeTotal[b.owner[j]] >= 1-1e-9 {
				typeTotal[b.owner[j]] = 0
				opened += s.realize(b, pi, j, 1, types, cl, shapeGroups)
			}
		}
		if opened == 0 {
			s.packTail(b, pi, types, cl, shapeGroups)
			return
		}
	}
}

// packTail places what the LP only buys fractions of. It compares a few
// complete ways to carry the rest and opens the cheapest:
//
//   - node by node, the type (of the tailMenu most efficient at the LP's
//     prices) whose best fill is worth most per price;
//   - one or two such nodes filled first, then the cheapest single type
//     that takes everything left;
//   - the cheapest single type that takes everything.
func (s *state) packTail(b *boundLP, pi []float64, types []packType, cl *constraintClass, shapeGroups [][]*podGroup) {
	start := make([]int, len(b.shapes))
	for si := range b.shapes {
		for _, g := range shapeGroups[si] {
			start[si] += g.remaining()
		}
	}
	plan, _ := s.tailPlan(b, pi, b.tailMenu(pi, types), start, tailPairs)
	for _, st := range plan {
		bc := &b.cols[st.col]
		if !types[bc.key].ps.simple() {
			return
		}
		s.openNode(types[bc.key], cl, takePods(st.pat, bc, shapeGroups))
	}
}

// tailStep is one node a tail plan opens: a column of the LP and the pods
// of each shape it fits (parallel to the column's fits) it carries.
// tailMode says which choices tailPlan tries: tailPairs the greedy by
// worth per price and one or two filled nodes before one for the rest;
// tailSaturate also nodes of one type as long as they take a pod;
// tailLazy the greedy refilling only the column on top, and pairs of the
// first lazyPairs columns, for loads of many nodes where refilling every
// column at every step is too dear.
type tailMode int

const (
	tailPairs tailMode = iota
	tailSaturate
	tailLazy
)

// lazyPairs caps the columns tailLazy tries one or two filled nodes of.
const lazyPairs = 16

type tailStep struct {
	col int
	pat []int32
}

// tailPlan chooses how packTail carries start[si] pods of each shape si of
// b with the columns of menu, and what that costs (+Inf when no choice
// carries them all); it plans nothing.
func (s *state) tailPlan(b *boundLP, pi []float64, menu []int, start []int, mode tailMode) ([]tailStep, float64) {
	saturate := mode == tailSaturate
	type step = tailStep
	// fill takes one node of col ci out of avail.
	fill := func(ci int, avail []int) ([]int32, float64) {
		pat, value := s.fillOne(b, pi, &b.cols[ci], func(si int32) int { return avail[si] })
		for p, k := range pat {
			avail[b.cols[ci].fits[p]] -= int(k)
		}
		return pat, value
	}
	// rest is the cheapest column that takes all of avail on one node.
	rest := func(avail []int) (int, []int32, bool) {
		load := make(resVec, s.res.size())
		any := false
		for si, n := range avail {
			if n > 0 {
				load.addScaled(b.shapes[si].req, int64(n))
				any = true
			}
		}
		if !any {
			return -1, nil, true
		}
		best := -1
		for ci := range b.cols {
			if geVec(b.cols[ci].alloc, load) && (best < 0 || b.cols[ci].price < b.cols[best].price) {
				best = ci
			}
		}
		if best < 0 {
			return -1, nil, false
		}
		bc := &b.cols[best]
		pat := make([]int32, len(bc.fits))
		for p, si := range bc.fits {
			pat[p] = int32(avail[si])
		}
		return best, pat, true
	}
	var bestPlan []step
	bestCost := math.Inf(1)
	consider := func(plan []step, cost float64) {
		if cost < bestCost-1e-12 {
			bestPlan, bestCost = append([]step(nil), plan...), cost
		}
	}
	finish := func(prefix []step, cost float64, avail []int) {
		if ci, pat, ok := rest(avail); ok {
			if ci < 0 {
				consider(prefix, cost)
			} else {
				consider(append(prefix, step{ci, pat}), cost+b.cols[ci].price)
			}
		}
	}
	// Greedy by worth per price.
	{
		avail := append([]int(nil), start...)
		var plan []step
		cost := 0.0
		// lazy keeps each column's last worth per price as a bound on
		// its next (a node's worth only falls as pods leave), so the
		// greedy refills only the column on top (tailLazy).
		lazy := make([]float64, len(menu))
		for i := range lazy {
			lazy[i] = math.Inf(1)
		}
		for {
			bestEff, bestCol := 0.0, -1
			if mode == tailLazy {
				for {
					top := -1
					for i := range menu {
						if lazy[i] > 0 && (top < 0 || lazy[i] > lazy[top]*(1+1e-12)) {
							top = i
						}
					}
					if top < 0 {
						break
					}
					tmp := append([]int(nil), avail...)
					_, value := fill(menu[top], tmp)
					eff := math.Max(value, 0) / b.cols[menu[top]].price
					stale := lazy[top]
					lazy[top] = eff
					if eff > 0 && eff >= stale*(1-1e-12) || eff > 0 && func() bool {
						for i := range menu {
							if i != top && lazy[i] > eff*(1+1e-12) {
								return false
							}
						}
						return true
					}() {
						bestEff, bestCol = eff, menu[top]
						break
					}
				}
			} else {
				for _, ci := range menu {
					tmp := append([]int(nil), avail...)
					if _, value := fill(ci, tmp); value > 0 {
						if eff := value / b.cols[ci].price; eff > bestEff*(1+1e-12) {
							bestEff, bestCol = eff, ci
						}
					}
				}
			}
			if bestCol < 0 {
				break
			}
			pat, _ := fill(bestCol, avail)
			plan = append(plan, step{bestCol, pat})
			cost += b.cols[bestCol].price
		}
		finish(plan, cost, avail)
	}
	// Nodes of one type as long as they take a pod, then one node for
	// the rest: when the prices favour a large type the tail buys only a
	// fraction of, the greedy fills that one node and the rest with it,
	// where many small nodes of one type carry the same pods for less.
	if saturate {
		for _, c := range menu {
			avail := append([]int(nil), start...)
			var plan []step
			cost := 0.0
			for cost < bestCost {
				pat, _ := fill(c, avail)
				if !nonEmpty(pat) {
					break
				}
				plan = append(plan, step{c, pat})
				cost += b.cols[c].price
			}
			if cost < bestCost {
				finish(plan, cost, avail)
			}
		}
	}
	// One or two filled nodes, then one node for the rest.
	finish(nil, 0, append([]int(nil), start...))
	if mode == tailLazy && len(menu) > lazyPairs {
		menu = menu[:lazyPairs]
	}
	for _, c1 := range menu {
		a1 := append([]int(nil), start...)
		p1, v1 := fill(c1, a1)
		if v1 <= 0 {
			continue
		}
		s1 := []step{{c1, p1}}
		finish(s1, b.cols[c1].price, a1)
		for _, c2 := range menu {
			a2 := append([]int(nil), a1...)
			p2, v2 := fill(c2, a2)
			if v2 <= 0 {
				continue
			}
			finish(append(s1, step{c2, p2}), b.cols[c1].price+b.cols[c2].price, a2)
		}
	}
	return bestPlan, bestCost
}

// tailMenu lists the columns most worth their price at prices pi (by their
// best vertex or pattern), at most tailMenuSize.
func (b *boundLP) tailMenu(pi []float64, types []packType) []int {
	rate := make([]float64, len(b.cols))
	for j, o := range b.owner {
		if o < 0 {
			continue
		}
		if r := b.lp.dot(j, pi) / b.cols[o].price; r > rate[o] {
			rate[o] = r
		}
	}
	for ci := range b.cols {
		bc := &b.cols[ci]
		for v := 0; v < len(bc.verts); v += b.m0 {
			sum := 0.0
			for k := 0; k < b.m0; k++ {
				sum += pi[k] * bc.verts[v+k]
			}
			if r := sum / bc.price; r > rate[ci] {
				rate[ci] = r
			}
		}
	}
	var menu []int
	for ci := range b.cols {
		if rate[ci] > 0 && types[b.cols[ci].key].ps.simple() {
			menu = append(menu, ci)
		}
	}
	sort.SliceStable(menu, func(i, j int) bool { return rate[menu[i]] > rate[menu[j]] })
	if len(menu) > tailMenuSize {
		menu = menu[:tailMenuSize]
	}
	return menu
}

const tailMenuSize = 16

// fillOne fills one node of bc from what is left: the fractional knapsack
// at prices pi rounded down, topped up greedily. It returns the pattern and
// its value.
func (s *state) fillOne(b *boundLP, pi []float64, bc *bCol, avail func(int32) int) ([]int32, float64) {
	n := len(bc.fits)
	val := make([]float64, n)
	ub := make([]float64, n)
	var rows []int
	for r := range bc.alloc {
		for _, si := range bc.fits {
			if b.shapes[si].req[r] > 0 {
				rows = append(rows, r)
				break
			}
		}
	}
	a := make([][]float64, len(rows))
	capacity := make([]float64, len(rows))
	for i, r := range rows {
		a[i] = make([]float64, n)
		capacity[i] = float64(bc.alloc[r])
	}
	dens := make([]float64, n)
	order := make([]int, 0, n)
	any := false
	for p, si := range bc.fits {
		val[p] = math.Max(b.shapeValue(pi, si, false), 0)
		ub[p] = float64(avail(si))
		any = any || ub[p] > 0
		share := 0.0
		for i, r := range rows {
			q := b.shapes[si].req[r]
			a[i][p] = float64(q)
			share = math.Max(share, float64(q)/float64(bc.alloc[r]))
		}
		if share > 0 && ub[p] > 0 {
			dens[p] = val[p] / share
			order = append(order, p)
		}
	}
	pat := make([]int32, n)
	if !any {
		return pat, 0
	}
	sort.SliceStable(order, func(i, j int) bool { return dens[order[i]] > dens[order[j]] })
	y := fracKnapsack(val, a, capacity, ub)
	used := make(resVec, len(bc.alloc))
	value := 0.0
	for p := range pat {
		if k := int32(math.Floor(y[p] + 1e-9)); k > 0 {
			pat[p] = k
			used.addScaled(b.shapes[bc.fits[p]].req, int64(k))
			value += float64(k) * val[p]
		}
	}
	for _, p := range order {
		si := bc.fits[p]
		left := avail(si) - int(pat[p])
		if left <= 0 {
			continue
		}
		if k := min(fitCount(bc.alloc, used, b.shapes[si].req), left); k > 0 {
			pat[p] += int32(k)
			used.addScaled(b.shapes[si].req, int64(k))
			value += float64(k) * val[p]
		}
	}
	return pat, value
}

// shapeIndex finds the shape of a request (shapes are sorted).
func (b *boundLP) shapeIndex(req resVec) int {
	x, y := float64(req[resCPU]), float64(req[resMemory])
	i := sort.Search(len(b.shapes), func(i int) bool {
		sh := &b.shapes[i]
		if sh.x != x {
			return sh.x > x
		}
		if sh.y != y {
			return sh.y > y
		}
		return !lessVec(sh.req, req)
	})
	return i
}

// realize opens up to copies nodes for LP column j and returns how many.
func (s *state) realize(b *boundLP, pi []float64, j, copies int, types []packType, cl *constraintClass, shapeGroups [][]*podGroup) int {
	bc := &b.cols[b.owner[j]]
	t := types[bc.key]
	avail := func(si int32) int {
		n := 0
		for _, g := range shapeGroups[si] {
			n += g.remaining()
		}
		return n
	}
	if b.pattern[j] == nil {
		// One node at a time: the LP is solved again before the next, so
		// what is left stays balanced.
		pat, _ := s.fillOne(b, pi, bc, avail)
		if !t.ps.simple() || !s.openNode(t, cl, takePods(pat, bc, shapeGroups)) {
			return 0
		}
		return 1
	}
	pat := b.pattern[j]
	// As many copies as the pods left allow.
	for p, k := range pat {
		if k > 0 {
			if c := avail(bc.fits[p]) / int(k); c < copies {
				copies = c
			}
		}
	}
	opened := 0
	for c := 0; c < copies; c++ {
		if !t.ps.simple() || !s.openNode(t, cl, takePods(pat, bc, shapeGroups)) {
			break
		}
		opened++
	}
	return opened
}

// takePods lists which groups give the pods of a pattern.
func takePods(pat []int32, bc *bCol, shapeGroups [][]*podGroup) []groupCount {
	var load []groupCount
	for p, k := range pat {
		need := int(k)
		for _, g := range shapeGroups[bc.fits[p]] {
			if need == 0 {
				break
			}
			if take := min(need, g.remaining()); take > 0 {
				load = append(load, groupCount{group: g, count: take})
				need -= take
			}
		}
	}
	return load
}

// openNode plans a new node of t's pool carrying load; its candidates are
// every offering of the class that fits it, cheapest first. It reports
// false (and plans nothing) when no offering can take the load.
func (s *state) openNode(t packType, cl *constraintClass, load []groupCount) bool {
	total := make(resVec, s.res.size())
	for _, gc := range load {
		total.addScaled(gc.group.req, int64(gc.count))
	}
	zero := make(resVec, s.res.size())
	ps := t.ps
	n := s.virtualNode(ps, t.cc, cl)
	// Gathered in the state's buffer and copied out at their size: grown
	// one append at a time they cost 5% of a 100k-pod solve.
	cands := s.candBuf[:0]
	for _, i := range t.cc.idx {
		if fitsAdd(ps.cands[i].alloc, zero, total) && ps.withinLimits(nil, &ps.cands[i]) {
			cands = append(cands, i)
		}
	}
	s.candBuf = cands
	if len(cands) == 0 || len(load) == 0 {
		return false
	}
	n.cands, n.ownsCands = slices.Clone(cands), true
	n.name = s.nextName(ps)
	n.hostname = n.name
	n.seq = len(s.planned)
	s.planned = append(s.planned, n)
	for _, gc := range load {
		s.commit(gc.group, n, gc.count, nil)
	}
	return true
}
