package solver

import (
	"container/heap"
	"math"
	"math/bits"
	"sort"
)

// assignmentBound is the assignment relaxation of placing the pods on new
// machines: every pod's requests go whole to one instance type it is
// compatible with (its class) and fits, and each type is bought in
// fractional machines, just enough for the load it takes:
//
//	min Σ_t p_t·y_t  s.t.  Σ_t x_{s,t} ≥ n_s (every shape s placed),
//	                       Σ_s q_s·x_{s,t} ≤ a_t·y_t (per resource)
//
// where shapes are the distinct (requests, class) of the pods. Any packing
// gives a solution (y_t = machines of t), so its value is a lower bound.
// It is tighter than the cone LP of lowerBound, which pools all pods'
// demand into per-resource totals: there, cheap types that only some pods
// may use (another arch, a zone, a family) or only small pods fit can
// cover the demand of pods that can never run on them.
//
// Eliminating y, a column is one type t with a fractional load x ∈ X_t =
// {x ≥ 0 : Σ_s q_s·x_s ≤ a_t}, priced p_t. Columns are generated: at
// duals π (per shape), the best load of t solves a small LP over X_t (one
// row per resource), whose own duals μ bound it from above (any μ ≥ 0
// with q_s·μ ≥ π_s/n_s prices every load of t at most a_t·μ). Scaling π
// down until no type is worth more than it costs makes π feasible for the
// dual of the whole relaxation (Farley), so every round's number is a
// valid bound whatever the rounding; the best one is kept, and at
// convergence it is the relaxation's value.
//
// With few enough types (relaxMaxTypeRows) the relaxation is solved over
// every shape by decomposition on the types' rows instead (see
// relaxAssignment), whose master does not grow with the shapes; what
// follows is for the rest: hundreds of types.
//
// floor is a bound already known: the restricted LP's value is at least
// the relaxation's, so once it is no higher than floor the relaxation
// cannot improve on it and generation stops.
func (s *state) assignmentBound(counts map[*podGroup]int, floor float64) float64 {
	if !assignBoundAlways && s.fractionalPlanCost() <= floor {
		// The plan, with each type bought in fractional machines for the
		// load it carries, is a solution of the relaxation: no better bound
		// is to be had from it.
		return 0
	}
	shapes := s.boundShapes(counts)
	if len(shapes) == 0 {
		return 0
	}
	cols := s.assignmentColumns(shapes, true)
	if len(cols) == 0 {
		return 0
	}
	rows := activeResources(shapes)
	if len(cols)*len(rows) <= relaxMaxTypeRows {
		// Few enough types for the decomposition's master: the
		// relaxation over every shape as it is.
		b, _ := relaxAssignment(shapes, cols, rows, relaxWork, floor)
		if assignBoundObserved != nil {
			assignBoundObserved(false, b)
		}
		return b
	}
	coarse := len(shapes) > assignMaxShapes
	if coarse {
		if singleClass(shapes) {
			// One class: the relaxation is the cone LP's own root (one
			// class's pods may use the same types), which the cone LP
			// tightens with whole-pod patterns; uncoarsened on 500 generic
			// pods (73 shapes) its restricted LP fell below the cone's bound
			// before converging. Not worth its time.
			return 0
		}
		// What each shape's cpu and memory cost at least, on the types it
		// fits, so that merges lose the least.
		unit := make([]unitPrice, len(shapes))
		for si := range unit {
			unit[si] = unitPrice{cpu: math.Inf(1), mem: math.Inf(1)}
		}
		for _, col := range s.assignmentColumns(shapes, false) {
			for _, si := range col.fits {
				u := &unit[si]
				u.cpu = math.Min(u.cpu, col.price/math.Max(1, float64(col.alloc[resCPU])))
				u.mem = math.Min(u.mem, col.price/math.Max(1, float64(col.alloc[resMemory])))
			}
		}
		for si := range unit {
			if math.IsInf(unit[si].cpu, 1) || math.IsInf(unit[si].mem, 1) {
				unit[si] = unitPrice{}
			}
		}
		shapes = coarsenShapes(shapes, assignMaxShapes, unit)
	}
	if len(shapes) == 0 || len(shapes) > assignMaxShapes {
		return 0
	}
	if coarse {
		// The columns and rows anew, for the coarse shapes.
		if cols = s.assignmentColumns(shapes, true); len(cols) == 0 {
			return 0
		}
		rows = activeResources(shapes)
	}
	ab := &assignBound{shapes: shapes, cols: cols, rows: rows, lp: newSparseLP()}
	for range shapes {
		ab.lp.addRow(1)
	}
	// First loads: per shape, as many of its pods as fit (fractionally)
	// on the initialCols types that carry them for least, and no more
	// than there are. Pricing brings in the other types as they pay; a
	// load per type and shape made the master LP (restarted every round)
	// cost most of the bound's time.
	byShape := make([][]int, len(shapes))
	for ci := range cols {
		for _, si := range cols[ci].fits {
			byShape[si] = append(byShape[si], ci)
		}
	}
	for si, cs := range byShape {
		perPod := func(ci int) float64 { return cols[ci].price / ab.capacity(ci, si) }
		sort.Slice(cs, func(i, j int) bool { return perPod(cs[i]) < perPod(cs[j]) })
		for _, ci := range cs[:min(len(cs), initialCols)] {
			k := math.Min(ab.capacity(ci, si), float64(shapes[si].n))
			ab.lp.addColumn(cols[ci].price, []int32{int32(si)}, []float64{k / float64(shapes[si].n)})
		}
	}
	best := 0.0
	w := make([]float64, len(shapes))
	for round := 0; round < assignRounds; round++ {
		pi, x, _ := ab.lp.solve()
		if pi == nil || x == nil {
			break
		}
		upperLP := 0.0
		for j, v := range x {
			upperLP += ab.lp.cost[j] * v
		}
		if upperLP <= floor && !assignBoundAlways {
			break
		}
		sum := 0.0
		for si := range shapes {
			if pi[si] < 0 || math.IsNaN(pi[si]) {
				pi[si] = 0
			}
			sum += pi[si]
			w[si] = pi[si] / float64(shapes[si].n)
		}
		worst := 1.0
		added := 0
		for ci := range cols {
			load, value, upper := ab.price(ci, w)
			if upper/cols[ci].price > worst {
				worst = upper / cols[ci].price
			}
			if value > cols[ci].price*(1+1e-7) && load != nil {
				idx := make([]int32, 0, len(load))
				val := make([]float64, 0, len(load))
				for _, e := range load {
					idx = append(idx, int32(e.shape))
					val = append(val, e.x/float64(shapes[e.shape].n))
				}
				ab.lp.addColumn(cols[ci].price, idx, val)
				added++
			}
		}
		if math.IsInf(worst, 1) {
			break
		}
		if b := sum / worst; b > best {
			best = b
		}
		if added == 0 || best >= upperLP*(1-1e-6) {
			break
		}
	}
	if assignBoundObserved != nil {
		assignBoundObserved(coarse, best)
	}
	return best
}

// assignBoundObserved, when set (by tests), sees every assignment bound
// computed, and whether its shapes were coarsened; assignBoundAlways (for
// tests too) computes it even where a known bound makes it pointless, so
// that its value can be checked on small instances.
var (
	assignBoundObserved func(coarse bool, bound float64)
	assignBoundAlways   bool
)

// assignRounds caps the column generation rounds; each one's bound is
// valid, so stopping early only loses tightness (20 left mixed-class
// workloads of 500 pods 13% short of convergence; 40 reached it on every
// workload of TestReportGap). assignMaxShapes caps the LP's rows: the
// dual simplex restarts from scratch every round at a cost quadratic in
// them, and past this many distinct (requests, class) shapes (one per
// deployment) the relaxation costs seconds per solve (1.3-3.2 s on 800
// mixed-class pods, 126-158 shapes): past it, shapes of several classes
// are coarsened into this many (see coarsenShapes), and one class is left
// to the cone LP. Variables so tests can force coarsening on instances
// small enough to solve exactly.
var (
	assignRounds    = 50
	assignMaxShapes = 64
)

// initialCols is how many types per shape the master LP starts with.
const initialCols = 4

type boundShape struct {
	req   resVec
	n     int
	class int
	// fits, when set, are the requests of the pods a coarsened shape
	// stands for: it may use a type any of them fits (see coarsenShapes).
	fits []resVec
}

// coarsenShapes relaxes shapes into at most limit, so the relaxation stays
// cheap on workloads of hundreds of deployments. Within a class, shapes
// close in memory per cpu are merged into one shape measured in
// millicpus: a millicpu of it requests, of every other resource, the
// least any of them asks per millicpu, and it may use the types any of
// them fits. What each pod asks beyond that (its memory above the group's
// least ratio, its pod slot, ...) becomes a residual shape per class and
// resource, in units of that resource, which may use the types any of its
// pods fits. A pod on a node is thus one slice per millicpu and its
// residual units, all on that node's type and adding up to exactly its
// requests: any packing of the pods is a solution of the coarse
// relaxation, whose value is still a lower bound. It loses that a slice or
// residual may land on a type another member fits but its own pod does
// not, and on another type than the rest of its pod.
//
// Merges are of neighbours in memory per cpu, the one that loses least
// first, in dollars as unit (cheapest per millicpu and per byte of
// memory among the types each shape fits; nil: no types known, memory
// set loose alone counts): the cpu and memory of each side that may now
// use the other's cheaper types, and the memory set loose. A shape merged
// with none stays whole pods, and so do shapes without cpu. nil when no
// merging fits limit.
func coarsenShapes(shapes []boundShape, limit int, unit []unitPrice) []boundShape {
	if len(shapes) <= limit {
		return shapes
	}
	type group struct {
		class   int
		members []int
		ratio   int64 // least memory per millicpu of the members
		cpu     float64
		mem     float64
		price   unitPrice // the least of the members'
	}
	var whole []int
	order := make([]int, 0, len(shapes))
	for si, sh := range shapes {
		if sh.req[resCPU] <= 0 {
			whole = append(whole, si)
			continue
		}
		order = append(order, si)
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := &shapes[order[a]], &shapes[order[b]]
		if sa.class != sb.class {
			return sa.class < sb.class
		}
		return float64(sa.req[resMemory])/float64(sa.req[resCPU]) < float64(sb.req[resMemory])/float64(sb.req[resCPU])
	})
	groups := make([]group, 0, len(order))
	for _, si := range order {
		sh := &shapes[si]
		g := group{class: sh.class, members: []int{si}, ratio: sh.req[resMemory] / sh.req[resCPU],
			cpu: float64(sh.n) * float64(sh.req[resCPU]), mem: float64(sh.n) * float64(sh.req[resMemory]),
			price: unitPrice{cpu: 0, mem: 1}}
		if unit != nil {
			g.price = unit[si]
		}
		groups = append(groups, g)
	}
	// A class with a merged group has up to one residual per resource
	// other than cpu: merge until groups and residuals fit. Neighbours are
	// a linked list and their merge costs a heap (stale entries skipped),
	// so thousands of shapes coarsen in n log n.
	others := len(activeResources(shapes)) - 1
	next := make([]int, len(groups))
	prev := make([]int, len(groups))
	version := make([]int, len(groups))
	for k := range groups {
		next[k], prev[k] = k+1, k-1
	}
	if len(groups) > 0 {
		next[len(groups)-1] = -1
	}
	h := &mergeHeap{}
	push := func(a int) {
		if a < 0 || next[a] < 0 || groups[a].class != groups[next[a]].class {
			return
		}
		b := next[a]
		ga, gb := &groups[a], &groups[b]
		p := unitPrice{cpu: math.Min(ga.price.cpu, gb.price.cpu), mem: math.Min(ga.price.mem, gb.price.mem)}
		// Merging sets the memory of b's cpu above a's ratio loose, and
		// lets each side's cpu and memory onto the other's cheaper types.
		c := gb.cpu * float64(gb.ratio-min(ga.ratio, gb.ratio)) * p.mem
		for _, g := range []*group{ga, gb} {
			c += g.cpu*(g.price.cpu-p.cpu) + g.mem*(g.price.mem-p.mem)
		}
		heap.Push(h, mergeCand{cost: c, a: a, b: b, va: version[a], vb: version[b]})
	}
	for k := range groups {
		push(k)
	}
	alive := len(groups)
	mergedClasses := map[int]bool{}
	for alive+len(whole)+len(mergedClasses)*others > limit {
		if h.Len() == 0 {
			return nil
		}
		m := heap.Pop(h).(mergeCand)
		if version[m.a] != m.va || version[m.b] != m.vb || next[m.a] != m.b {
			continue
		}
		a, b := &groups[m.a], &groups[m.b]
		a.price = unitPrice{cpu: math.Min(a.price.cpu, b.price.cpu), mem: math.Min(a.price.mem, b.price.mem)}
		a.members = append(a.members, b.members...)
		a.ratio = min(a.ratio, b.ratio)
		a.cpu += b.cpu
		a.mem += b.mem
		b.members = nil
		version[m.a]++
		version[m.b]++
		next[m.a] = next[m.b]
		if next[m.b] >= 0 {
			prev[next[m.b]] = m.a
		}
		alive--
		mergedClasses[a.class] = true
		push(prev[m.a])
		push(m.a)
	}
	var kept []group
	for _, g := range groups {
		if g.members != nil {
			kept = append(kept, g)
		}
	}
	groups = kept
	var out []boundShape
	for _, si := range whole {
		out = append(out, shapes[si])
	}
	type resKey struct{ class, res int }
	type resAcc struct {
		total int64
		pods  int
		fits  []resVec
	}
	residual := map[resKey]*resAcc{}
	var resOrder []resKey
	for _, g := range groups {
		if len(g.members) == 1 {
			out = append(out, shapes[g.members[0]])
			continue
		}
		first := &shapes[g.members[0]]
		per := make(resVec, len(first.req))
		for r := range per {
			per[r] = math.MaxInt64
		}
		per[resCPU] = 1
		var fits []resVec
		n := 0
		for _, si := range g.members {
			sh := &shapes[si]
			for r, q := range sh.req {
				if r != resCPU {
					per[r] = min(per[r], q/sh.req[resCPU])
				}
			}
			fits = append(fits, sh.req)
			n += sh.n * int(sh.req[resCPU])
		}
		out = append(out, boundShape{req: per, n: n, class: first.class, fits: fits})
		for _, si := range g.members {
			sh := &shapes[si]
			for r, q := range sh.req {
				if extra := q - per[r]*sh.req[resCPU]; r != resCPU && extra > 0 {
					k := resKey{first.class, r}
					a := residual[k]
					if a == nil {
						a = &resAcc{}
						residual[k] = a
						resOrder = append(resOrder, k)
					}
					a.total += int64(sh.n) * extra
					a.pods += sh.n
					a.fits = append(a.fits, sh.req)
				}
			}
		}
	}
	for _, k := range resOrder {
		// In units of about the mean extra per pod (a power of two, at
		// most it), not of bytes: a unit's value must stay well above the
		// simplex's tolerances. Rounding the count down only relaxes.
		a := residual[k]
		mean := max(1, a.total/int64(a.pods))
		unit := int64(1) << (63 - bits.LeadingZeros64(uint64(mean)))
		req := make(resVec, len(shapes[0].req))
		req[k.res] = unit
		if n := a.total / unit; n > 0 {
			out = append(out, boundShape{req: req, n: int(n), class: k.class, fits: a.fits})
		}
	}
	if len(out) > limit {
		return nil
	}
	return out
}

type mergeCand struct {
	cost   float64
	a, b   int
	va, vb int
}

type mergeHeap []mergeCand

func (h mergeHeap) Len() int            { return len(h) }
func (h mergeHeap) Less(i, j int) bool  { return h[i].cost < h[j].cost }
func (h mergeHeap) Swap(i, j int)       { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x interface{}) { *h = append(*h, x.(mergeCand)) }
func (h *mergeHeap) Pop() interface{} {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// unitPrice is dollars per hour per millicpu and per byte of memory.
type unitPrice struct{ cpu, mem float64 }

func singleClass(shapes []boundShape) bool {
	for _, sh := range shapes {
		if sh.class != shapes[0].class {
			return false
		}
	}
	return true
}

// fitsOn reports whether a node of allocatable alloc may carry the shape:
// it fits one pod of it, or for a coarse shape, one of its members'.
func (sh *boundShape) fitsOn(alloc, zero resVec) bool {
	if sh.fits == nil {
		return fitsAdd(alloc, zero, sh.req)
	}
	for _, f := range sh.fits {
		if fitsAdd(alloc, zero, f) {
			return true
		}
	}
	return false
}

// boundShapes merges the groups on planned nodes by (class, requests).
func (s *state) boundShapes(counts map[*podGroup]int) []boundShape {
	var out []boundShape
	for g, n := range counts {
		if n == 0 {
			continue
		}
		merged := false
		for i := range out {
			if out[i].class == g.class.id && equalVec(out[i].req, g.req) {
				out[i].n += n
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, boundShape{req: g.req, n: n, class: g.class.id})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].class != out[j].class {
			return out[i].class < out[j].class
		}
		return lessVec(out[i].req, out[j].req)
	})
	return out
}

func activeResources(shapes []boundShape) []int {
	var rows []int
	for r := range shapes[0].req {
		for _, sh := range shapes {
			if sh.req[r] > 0 {
				rows = append(rows, r)
				break
			}
		}
	}
	return rows
}

type assignColumn struct {
	price float64
	alloc resVec
	// fits are the shapes a node of the type may carry (class and size).
	fits []int
}

// assignmentColumns are the types new nodes may be, one per pool and type:
// per set of shapes' classes that allow them, the cheapest of those
// offerings and the largest allocatable among them (both only loosen the
// relaxation). With prune, types another column beats on every resource
// per dollar, for a superset of shapes, are left out: any load they carry
// it carries for less.
func (s *state) assignmentColumns(shapes []boundShape, prune bool) []assignColumn {
	classList := s.classList()
	var classIDs []int
	for _, sh := range shapes {
		if !containsInt(classIDs, sh.class) {
			classIDs = append(classIDs, sh.class)
		}
	}
	sort.Ints(classIDs)
	zero := make(resVec, len(shapes[0].req))
	var cols []assignColumn
	for _, ps := range s.pools {
		type acc struct {
			price   float64
			alloc   resVec
			classes map[int]bool
		}
		// Offerings are grouped by type and by the classes that allow
		// them: an on-demand offering of a type serves classes its spot
		// offering does not, at another price, and merging the two would
		// sell an on-demand-only pod the spot price.
		byKey := map[string]*acc{}
		var order []string
		key := make([]byte, 0, 64)
		for i := range ps.cands {
			c := &ps.cands[i]
			key = append(key[:0], c.it.Name...)
			key = append(key, 0)
			allowed := false
			for _, id := range classIDs {
				if s.forClass(ps, classList[id]).mask[i] {
					key = append(key, 1)
					allowed = true
				} else {
					key = append(key, 0)
				}
			}
			if !allowed {
				continue
			}
			a := byKey[string(key)]
			if a == nil {
				a = &acc{price: c.billed, alloc: c.alloc.clone(), classes: map[int]bool{}}
				for k, id := range classIDs {
					if key[len(c.it.Name)+1+k] == 1 {
						a.classes[id] = true
					}
				}
				byKey[string(key)] = a
				order = append(order, string(key))
			}
			a.price = math.Min(a.price, c.billed)
			a.alloc.maxWith(c.alloc)
		}
		for _, k := range order {
			a := byKey[k]
			col := assignColumn{price: a.price, alloc: a.alloc}
			for si := range shapes {
				if a.classes[shapes[si].class] && shapes[si].fitsOn(a.alloc, zero) {
					col.fits = append(col.fits, si)
				}
			}
			if len(col.fits) > 0 && col.price > 0 {
				cols = append(cols, col)
			}
		}
	}
	if !prune {
		return cols
	}
	// A dominator is at least as good per dollar on every resource, so its
	// normalised sum is no lower: in that order, every type's dominators
	// (or theirs, dominance being transitive) come before it and are kept.
	rows := activeResources(shapes)
	top := make([]float64, len(rows))
	for _, c := range cols {
		for i, r := range rows {
			top[i] = math.Max(top[i], float64(c.alloc[r])/c.price)
		}
	}
	score := make([]float64, len(cols))
	for k, c := range cols {
		for i, r := range rows {
			if top[i] > 0 {
				score[k] += float64(c.alloc[r]) / c.price / top[i]
			}
		}
	}
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		if score[order[i]] != score[order[j]] {
			return score[order[i]] > score[order[j]]
		}
		return len(cols[order[i]].fits) > len(cols[order[j]].fits)
	})
	var kept []assignColumn
	for _, k := range order {
		c := &cols[k]
		dominated := false
		for j := range kept {
			if perDollarCovers(&kept[j], c, rows) && subset(c.fits, kept[j].fits) {
				dominated = true
				break
			}
		}
		if !dominated {
			kept = append(kept, *c)
		}
	}
	return kept
}

// perDollarCovers: a offers at least b's allocatable per dollar on every
// resource in rows, so (fractional machines being allowed) a carries any
// load b can for no more.
func perDollarCovers(a, b *assignColumn, rows []int) bool {
	for _, r := range rows {
		if float64(a.alloc[r])*b.price < float64(b.alloc[r])*a.price {
			return false
		}
	}
	return true
}

// subset reports whether sorted a ⊆ sorted b.
func subset(a, b []int) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

type assignBound struct {
	shapes []boundShape
	cols   []assignColumn
	rows   []int
	lp     *sparseLP
}

// capacity is how many pods of shape si one node of column ci holds,
// fractionally.
func (ab *assignBound) capacity(ci, si int) float64 {
	k := math.Inf(1)
	for _, r := range ab.rows {
		if q := ab.shapes[si].req[r]; q > 0 {
			k = math.Min(k, float64(ab.cols[ci].alloc[r])/float64(q))
		}
	}
	return k
}

type loadEntry struct {
	shape int
	x     float64
}

// price finds the most valuable load of column ci at shape values w:
// max Σ w_s·x_s over x ≥ 0 with Σ q_s·x_s ≤ alloc, by the primal simplex
// on the resource rows. It returns that load, its value, and an upper
// bound on every load's value from the simplex's duals, checked against
// every shape (so rounding can only raise it).
func (ab *assignBound) price(ci int, w []float64) (load []loadEntry, value, upper float64) {
	col := &ab.cols[ci]
	m := len(ab.rows)
	var cand []int
	for _, si := range col.fits {
		if w[si] > 0 {
			cand = append(cand, si)
		}
	}
	if len(cand) == 0 {
		return nil, 0, 0
	}
	n := len(cand)
	width := n + m + 1
	// Tableau rows 0..m-1: constraints [A | I | b]; row m: reduced costs.
	// Rows are in units of the allocatable, each shape's variable in units
	// of the most of a node it can fill, and values in units of the
	// largest: bytes of memory against millicpus would otherwise put
	// memory's reduced costs below the simplex's tolerance.
	rowScale := make([]float64, m)
	for i, r := range ab.rows {
		rowScale[i] = math.Max(1, float64(col.alloc[r]))
	}
	colScale := make([]float64, n)
	objScale := 0.0
	for j, si := range cand {
		for i, r := range ab.rows {
			colScale[j] = math.Max(colScale[j], float64(ab.shapes[si].req[r])/rowScale[i])
		}
		if colScale[j] <= 0 {
			return nil, math.Inf(1), math.Inf(1) // unbounded: a shape that uses no resource
		}
		objScale = math.Max(objScale, w[si]/colScale[j])
	}
	t := make([]float64, (m+1)*width)
	for i, r := range ab.rows {
		row := t[i*width : (i+1)*width]
		for j, si := range cand {
			row[j] = float64(ab.shapes[si].req[r]) / rowScale[i] / colScale[j]
		}
		row[n+i] = 1
		row[width-1] = float64(col.alloc[r]) / rowScale[i]
	}
	obj := t[m*width : (m+1)*width]
	for j, si := range cand {
		obj[j] = -w[si] / colScale[j] / objScale
	}
	basis := make([]int, m)
	for i := range basis {
		basis[i] = n + i
	}
	for iter := 0; iter < 50*(m+1)+4*n; iter++ {
		// Dantzig's rule, then Bland's (the first improving column), which
		// cannot cycle on the degenerate vertices these loads often sit on.
		bland := iter >= 10*(m+1)
		enter := -1
		for j := 0; j < n+m; j++ {
			if obj[j] < -1e-12 && (enter < 0 || obj[j] < obj[enter]) {
				enter = j
				if bland {
					break
				}
			}
		}
		if enter < 0 {
			break
		}
		leave := -1
		best := math.Inf(1)
		for i := 0; i < m; i++ {
			a := t[i*width+enter]
			if a > 1e-12 {
				if ratio := t[i*width+width-1] / a; ratio < best {
					best, leave = ratio, i
				}
			}
		}
		if leave < 0 {
			return nil, math.Inf(1), math.Inf(1) // unbounded: a shape that uses no resource
		}
		pr := t[leave*width : (leave+1)*width]
		p := pr[enter]
		for k := range pr {
			pr[k] /= p
		}
		for i := 0; i <= m; i++ {
			if i == leave {
				continue
			}
			row := t[i*width : (i+1)*width]
			f := row[enter]
			if f == 0 {
				continue
			}
			for k := range row {
				row[k] -= f * pr[k]
			}
		}
		basis[leave] = enter
	}
	for i, b := range basis {
		if b < n {
			if x := t[i*width+width-1] / colScale[b]; x > 0 {
				load = append(load, loadEntry{shape: cand[b], x: x})
				value += w[cand[b]] * x
			}
		}
	}
	// Duals: the reduced costs of the slacks, made non-negative, then
	// raised until they price every shape at its value at least (any such
	// μ bounds every load by μ·alloc). Where one falls short (rounding, or
	// the iteration cap), the resource that covers it for the least is
	// raised; raising never uncovers another shape.
	mu := make([]float64, m)
	for i := range mu {
		mu[i] = math.Max(0, obj[n+i]) * objScale / rowScale[i]
	}
	for _, si := range cand {
		v := 0.0
		for i, r := range ab.rows {
			v += mu[i] * float64(ab.shapes[si].req[r])
		}
		if v >= w[si] {
			continue
		}
		cheapest, cost := -1, math.Inf(1)
		for i, r := range ab.rows {
			if q := float64(ab.shapes[si].req[r]); q > 0 {
				if c := float64(col.alloc[r]) / q; c < cost {
					cheapest, cost = i, c
				}
			}
		}
		if cheapest < 0 {
			return load, value, math.Inf(1)
		}
		mu[cheapest] += (w[si] - v) / float64(ab.shapes[si].req[ab.rows[cheapest]])
	}
	for i, r := range ab.rows {
		upper += mu[i] * float64(col.alloc[r])
	}
	return load, value, upper
}

// fractionalPlanCost is the plan's own assignment priced as the relaxation
// prices it (billed, as the bounds are): per offering chosen, the load of
// its nodes over its allocatable, at the largest ratio of any resource.
func (s *state) fractionalPlanCost() float64 {
	load := map[*candidate]resVec{}
	for _, n := range s.planned {
		c := n.chosen()
		if c == nil {
			continue
		}
		l := load[c]
		if l == nil {
			l = make(resVec, len(n.used))
			load[c] = l
		}
		l.add(n.used)
	}
	total := 0.0
	for c, l := range load {
		y := 0.0
		for r, v := range l {
			if v > 0 {
				if c.alloc[r] <= 0 {
					return math.Inf(1)
				}
				y = math.Max(y, float64(v)/float64(c.alloc[r]))
			}
		}
		total += c.billed * y
	}
	return total
}
