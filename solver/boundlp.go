package solver

import (
	"math"
	"slices"
	"sort"
)

// boundLP is the covering LP behind lowerBound and the packer:
//
//	min Σ price·λ  s.t.  Σ load·λ ≥ demand,  λ ≥ 0
//
// whose columns are loads one node of a type can carry. For a type that
// holds many pods the loads are the vertices of its cone P_t (see
// lowerBound); for a type that holds few (smallK or less), where rounding
// to whole pods matters, they are whole-pod patterns, generated as cuts: a
// pattern enters when, at the current prices, it is worth more than the
// node costs (an exact knapsack over the pod shapes that fit). Patterns
// also count against a cap row per shape: no more pods of a shape can sit
// on small nodes than there are.
type boundLP struct {
	lp *sparseLP
	// m0 rows come first: one per resource in rows, then the node count
	// when repel > 1; a cap row per shape follows once a pattern uses it.
	m0     int
	rows   []int
	capRow []int32
	demand resVec
	repel  int
	shapes []bShape
	cols   []bCol
	// owner maps an LP column to its bCol (-1: the empty node of the
	// node-count row); pattern holds whole-pod patterns (shape counts,
	// parallel to the bCol's fits) for pattern columns, nil for vertices.
	owner   []int32
	pattern [][]int32
}

type bShape struct {
	req  resVec
	n    int
	x, y float64
}

type bCol struct {
	price float64
	alloc resVec
	// key is the caller's index for this column.
	key int
	// fits lists the shapes a node of it can carry, in shape order.
	fits  []int32
	small bool
	// verts are the cone's vertex loads (scaled, m per vertex), kept for
	// small columns to screen before running a knapsack.
	verts []float64
}

// maxBranchSet caps the alike columns branchBound splits on together.
const maxBranchSet = 8

// smallK is the most pods a node may hold for it to be priced by whole-pod
// patterns, and widerK the most for newBoundLPWith when asked to (see
// lowerBound): variables so tests can make the cone price types that
// small instances use. knapsackBudget caps the search per node type and
// round (past it the fractional knapsack bounds what a pattern is worth:
// weaker, still valid); maxCutRounds caps the rounds that add patterns.
var (
	smallK = 16
	widerK = 32
)

const (
	knapsackBudget = 20000
	maxCutRounds   = 40
)

// newBoundLP builds the LP for pods of the given request shapes (with
// counts) over the given columns. It returns nil when no column carries a pod.
func newBoundLP(reqs []resVec, counts []int, cols []coneColumn, demand resVec, repel int) *boundLP {
	return newBoundLPWith(reqs, counts, cols, demand, repel, nil)
}

// newBoundLPWith is newBoundLP where the columns whose keys are in wider
// are priced by whole-pod patterns when they hold up to widerK pods (not
// only smallK): tighter where those types carry many small pods, at the
// price of a knapsack per such type and round.
func newBoundLPWith(reqs []resVec, counts []int, cols []coneColumn, demand resVec, repel int, wider map[int]bool) *boundLP {
	R := len(demand)
	b := &boundLP{demand: demand, repel: repel}
	for r := 0; r < R; r++ {
		if demand[r] > 0 {
			b.rows = append(b.rows, r)
		}
	}
	m := len(b.rows)
	if repel > 1 {
		m++
	}
	if m == 0 {
		return nil
	}
	b.m0 = m
	b.lp = newSparseLP()
	for i := 0; i < m; i++ {
		b.lp.addRow(1)
	}
	// Distinct shapes, sorted by (cpu, memory, rest).
	b.shapes = make([]bShape, 0, len(reqs))
	for i, req := range reqs {
		b.shapes = append(b.shapes, bShape{req: req, n: counts[i], x: float64(req[resCPU]), y: float64(req[resMemory])})
	}
	sort.Slice(b.shapes, func(i, j int) bool {
		if b.shapes[i].x != b.shapes[j].x {
			return b.shapes[i].x < b.shapes[j].x
		}
		if b.shapes[i].y != b.shapes[j].y {
			return b.shapes[i].y < b.shapes[j].y
		}
		return lessVec(b.shapes[i].req, b.shapes[j].req)
	})
	merged := b.shapes[:0]
	for _, sh := range b.shapes {
		if l := len(merged); l > 0 && equalVec(merged[l-1].req, sh.req) {
			merged[l-1].n += sh.n
			continue
		}
		merged = append(merged, sh)
	}
	b.shapes = merged
	b.capRow = make([]int32, len(b.shapes))
	for i := range b.capRow {
		b.capRow[i] = -1
	}
	// Columns: drop those no pod fits and those another column dominates
	// (no dearer, no smaller anywhere): their constraints are implied.
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return cols[order[i]].price < cols[order[j]].price })
	zero := make(resVec, R)
	var fits []int32
	for _, ci := range order {
		col := &cols[ci]
		dominated := false
		for k := range b.cols {
			if b.cols[k].price <= col.price && geVec(b.cols[k].alloc, col.alloc) {
				dominated = true
				break
			}
		}
		if dominated {
			continue
		}
		bc := bCol{price: col.price, alloc: col.alloc, key: col.key}
		// Gathered in one buffer and copied out at their size: grown one
		// append at a time they cost 2% of a 100k-pod solve.
		fits = fits[:0]
		for si := range b.shapes {
			if fitsAdd(col.alloc, zero, b.shapes[si].req) {
				fits = append(fits, int32(si))
			}
		}
		bc.fits = slices.Clone(fits)
		if len(bc.fits) == 0 {
			continue
		}
		k := b.maxPods(&bc)
		bc.small = k <= smallK || (wider[col.key] && k <= widerK)
		b.cols = append(b.cols, bc)
	}
	if len(b.cols) == 0 {
		return nil
	}
	// Vertex columns for large types; screening vertices for small ones.
	coveredByLarge := make([]bool, len(b.shapes))
	cheapest := math.Inf(1)
	for ci := range b.cols {
		bc := &b.cols[ci]
		cheapest = math.Min(cheapest, bc.price)
		if bc.small {
			b.vertices(bc, func(a []float64) { bc.verts = append(bc.verts, a...) })
			continue
		}
		for _, si := range bc.fits {
			coveredByLarge[si] = true
		}
		b.vertices(bc, func(a []float64) { b.addColumn(int32(ci), bc.price, a, nil) })
	}
	// Shapes only small types carry: a single-shape pattern on each of
	// them keeps the LP feasible from the first round.
	for si := range b.shapes {
		if coveredByLarge[si] {
			continue
		}
		for ci := range b.cols {
			bc := &b.cols[ci]
			if !bc.small {
				continue
			}
			pos := -1
			for p, f := range bc.fits {
				if int(f) == si {
					pos = p
				}
			}
			if pos < 0 {
				continue
			}
			k := fitCount(bc.alloc, zero, b.shapes[si].req)
			if k > b.shapes[si].n {
				k = b.shapes[si].n
			}
			pat := make([]int32, len(bc.fits))
			pat[pos] = int32(k)
			b.addPattern(int32(ci), pat)
		}
	}
	if repel > 1 {
		// A node may carry nothing but a repelling pod's share: the origin
		// of P_t, priced at the cheapest type.
		a := make([]float64, m)
		a[m-1] = 1 / float64(repel)
		b.addColumn(-1, cheapest, a, nil)
	}
	return b
}

func equalVec(a, b resVec) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func geVec(a, b resVec) bool {
	for i := range a {
		if a[i] < b[i] {
			return false
		}
	}
	return true
}

// maxPods bounds how many pods one node of the column can hold.
func (b *boundLP) maxPods(bc *bCol) int {
	k := int(bc.alloc[resPods])
	for r := range bc.alloc {
		if r == resPods {
			continue
		}
		least := int64(math.MaxInt64)
		for _, si := range bc.fits {
			if q := b.shapes[si].req[r]; q < least {
				least = q
			}
		}
		if least > 0 && least != math.MaxInt64 {
			if n := bc.alloc[r] / least; int(n) < k {
				k = int(n)
			}
		}
	}
	return k
}

// addColumn adds a column over the first m0 rows (a is dense there).
func (b *boundLP) addColumn(owner int32, price float64, a []float64, pat []int32) {
	idx := make([]int32, 0, len(a))
	for i := range a {
		idx = append(idx, int32(i))
	}
	b.addSparse(owner, price, idx, a, pat)
}

func (b *boundLP) addSparse(owner int32, price float64, idx []int32, val []float64, pat []int32) {
	b.lp.addColumn(price, idx, val)
	b.owner = append(b.owner, owner)
	b.pattern = append(b.pattern, pat)
}

// addPattern adds a whole-pod pattern of small column ci: its load on the
// resource rows, one node on the count row, and k/n on the cap row of each
// shape it uses (no more pods of a shape sit on small nodes than exist).
func (b *boundLP) addPattern(ci int32, pat []int32) {
	bc := &b.cols[ci]
	a := make([]float64, b.m0, b.m0+len(pat))
	for p, k := range pat {
		if k == 0 {
			continue
		}
		req := b.shapes[bc.fits[p]].req
		for i, r := range b.rows {
			a[i] += float64(k) * float64(req[r]) / float64(b.demand[r])
		}
	}
	if b.repel > 1 {
		a[b.m0-1] = 1 / float64(b.repel)
	}
	idx := make([]int32, 0, b.m0+len(pat))
	for i := range a {
		idx = append(idx, int32(i))
	}
	for p, k := range pat {
		if k == 0 {
			continue
		}
		si := bc.fits[p]
		if b.capRow[si] < 0 {
			b.capRow[si] = int32(b.lp.addRow(-1))
		}
		idx = append(idx, b.capRow[si])
		a = append(a, -float64(k)/float64(b.shapes[si].n))
	}
	b.addSparse(ci, bc.price, idx, a, pat)
}

// vertices emits the scaled vertex loads of the column's cone P_t.
func (b *boundLP) vertices(bc *bCol, emit func(a []float64)) {
	m := b.m0
	pts := make([]lbPoint, 0, len(bc.fits))
	for _, si := range bc.fits {
		p := lbPoint{b.shapes[si].x, b.shapes[si].y}
		if len(pts) > 0 && pts[len(pts)-1] == p {
			continue
		}
		pts = append(pts, p)
	}
	hull := convexHull(pts, nil)
	ac, am, ap := float64(bc.alloc[resCPU]), float64(bc.alloc[resMemory]), float64(bc.alloc[resPods])
	a := make([]float64, m)
	add := func(h lbPoint) {
		sMax := ap
		if h.x > 0 {
			sMax = math.Min(sMax, ac/h.x)
		}
		if h.y > 0 {
			sMax = math.Min(sMax, am/h.y)
		}
		if sMax <= 0 {
			return
		}
		for i, r := range b.rows {
			var v float64
			switch r {
			case resCPU:
				v = sMax * h.x
			case resMemory:
				v = sMax * h.y
			case resPods:
				v = sMax
			default:
				v = float64(bc.alloc[r])
			}
			a[i] = v / float64(b.demand[r])
		}
		if b.repel > 1 {
			a[m-1] = 1 / float64(b.repel)
		}
		emit(a)
	}
	for _, h := range hull {
		add(h)
	}
	if len(hull) > 1 {
		// Where the binding resource changes along the hull's boundary: the
		// ray of the type's cpu:memory ratio, and the lines where the pods
		// limit takes over from cpu or memory.
		for e := range hull {
			if len(hull) == 2 && e == 1 {
				break
			}
			p, q := hull[e], hull[(e+1)%len(hull)]
			for line := 0; line < 3; line++ {
				var fp, fq float64
				switch line {
				case 0:
					fp, fq = p.x*am-p.y*ac, q.x*am-q.y*ac
				case 1:
					if ap <= 0 {
						continue
					}
					fp, fq = p.x-ac/ap, q.x-ac/ap
				case 2:
					if ap <= 0 {
						continue
					}
					fp, fq = p.y-am/ap, q.y-am/ap
				}
				if (fp < 0 && fq > 0) || (fp > 0 && fq < 0) {
					t := fp / (fp - fq)
					add(lbPoint{p.x + t*(q.x-p.x), p.y + t*(q.y-p.y)})
				}
			}
		}
	}
	if ap > 0 {
		if corner := (lbPoint{ac / ap, am / ap}); insideHull(hull, corner) {
			add(corner)
		}
	}
}

// shapeValue is what one pod of shape si is worth at prices pi: its
// resources, less its cap row's price when small is set (on a small node).
func (b *boundLP) shapeValue(pi []float64, si int32, small bool) float64 {
	req := b.shapes[si].req
	v := 0.0
	for i, r := range b.rows {
		v += pi[i] * float64(req[r]) / float64(b.demand[r])
	}
	if small {
		if k := b.capRow[si]; k >= 0 && int(k) < len(pi) {
			v -= pi[k] / float64(b.shapes[si].n)
		}
	}
	return v
}

func (b *boundLP) nodeValue(pi []float64) float64 {
	if b.repel > 1 {
		return pi[b.m0-1] / float64(b.repel)
	}
	return 0
}

// solve runs cut rounds until no whole-pod pattern of a small type is worth
// more than its node, and returns the final prices and primal solution.
func (b *boundLP) solve() (pi, x []float64) {
	pi, x, _ = b.solveWith(nil)
	return pi, x
}

// branch restricts how many nodes of a (large) column a packing uses:
// at most n (down) or at least n (up).
type branch struct {
	cols []int32
	up   bool
	n    float64
}

func (x branch) has(ci int32) bool {
	for _, c := range x.cols {
		if c == ci {
			return true
		}
	}
	return false
}

// withBranches returns the LP with a row per branch appended; an up branch
// also gets an idle column (a node of the type carrying nothing), since
// nodes beyond the loads the LP uses still cost their price.
func (b *boundLP) withBranches(br []branch) (*sparseLP, []int32) {
	if len(br) == 0 {
		return b.lp, nil
	}
	base := b.lp
	lp := &sparseLP{b: append([]float64(nil), base.b...), start: make([]int32, 1, len(base.start)+len(br)),
		cost: make([]float64, 0, len(base.cost)+len(br)), idx: make([]int32, 0, len(base.idx)+len(base.cost)*len(br)),
		val: make([]float64, 0, len(base.val)+len(base.cost)*len(br))}
	rows := make([]int, len(br))
	member := make([][]bool, len(br))
	for i, x := range br {
		if x.up {
			rows[i] = lp.addRow(x.n)
		} else {
			rows[i] = lp.addRow(-x.n)
		}
		member[i] = make([]bool, len(b.cols))
		for _, c := range x.cols {
			member[i][c] = true
		}
	}
	var idx []int32
	var val []float64
	for j := range base.cost {
		ri, rv := base.col(j)
		idx = append(idx[:0], ri...)
		val = append(val[:0], rv...)
		for i, x := range br {
			if o := b.owner[j]; o >= 0 && member[i][o] {
				idx = append(idx, int32(rows[i]))
				if x.up {
					val = append(val, 1)
				} else {
					val = append(val, -1)
				}
			}
		}
		lp.addColumn(base.cost[j], idx, val)
	}
	var idle []int32
	for i, x := range br {
		if x.up {
			cheapest := math.Inf(1)
			for _, c := range x.cols {
				cheapest = math.Min(cheapest, b.cols[c].price)
			}
			// An idle node still counts as a node for the repel row.
			rows, vals := []int32{int32(rows[i])}, []float64{1}
			if b.repel > 1 {
				rows, vals = append(rows, int32(b.m0-1)), append(vals, 1/float64(b.repel))
			}
			lp.addColumn(cheapest, rows, vals)
			idle = append(idle, x.cols[0])
		}
	}
	return lp, idle
}

// solveWith solves the LP under branches, with cut rounds, and returns the
// prices, the primal solution (base columns, then one idle column per up
// branch) and the valid lower bound the prices give.
func (b *boundLP) solveWith(br []branch) (pi, x []float64, bound float64) {
	ub := make([]float64, len(b.cols))
	for round := 0; ; round++ {
		lp, _ := b.withBranches(br)
		var ray []float64
		pi, x, ray = lp.solve()
		if lp.infeasible(ray, b.maxNodes(br)) {
			// The LP has only the whole-pod patterns generated so far: the
			// certificate proves no packing lies in this leaf only if no
			// pattern of a small type could be worth more under it (each is
			// worth at most its type's best cone vertex).
			if b.certifies(lp, ray, b.maxNodes(br)) {
				return pi, nil, math.Inf(1)
			}
			if round < maxCutRounds && b.addRayPatterns(ray) > 0 {
				continue
			}
			// Neither proven empty nor solved: no bound from this leaf but
			// its parent's (the caller keeps the larger).
			return pi, nil, 0
		}
		for k := range pi {
			if pi[k] < 0 || math.IsNaN(pi[k]) {
				pi[k] = 0
			}
		}
		added := 0
		for ci := range b.cols {
			bc := &b.cols[ci]
			if !bc.small {
				continue
			}
			cone := 0.0
			for v := 0; v < len(bc.verts); v += b.m0 {
				s := 0.0
				for k := 0; k < b.m0; k++ {
					s += pi[k] * bc.verts[v+k]
				}
				cone = math.Max(cone, s)
			}
			ub[ci] = cone
			if cone <= bc.price*(1+1e-9) {
				continue
			}
			best, pat, upper := b.knapsack(bc, pi, bc.price*(1+1e-6))
			ub[ci] = math.Min(cone, upper)
			if best > bc.price*(1+1e-7) && round < maxCutRounds {
				b.addPattern(int32(ci), pat)
				added++
			}
		}
		if added == 0 {
			// Valid bound: π·b over the largest ratio of worth to price of
			// any column, and of any whole-pod pattern of a small type.
			value, scale := lp.dualValue(pi)
			for ci := range b.cols {
				if b.cols[ci].small && ub[ci] > 0 {
					if b.cols[ci].price <= 0 {
						return pi, x, 0
					}
					scale = math.Max(scale, ub[ci]/b.cols[ci].price)
				}
			}
			if value <= 0 || math.IsInf(scale, 1) {
				return pi, x, 0
			}
			return pi, x, value / scale
		}
	}
}

// certifies reports whether Farkas ray y (rows of the form a·x ≥ b) proves
// that no packing whose column values sum to at most maxSum meets the rows
// of lp, counting every whole-pod pattern of a small type, generated or
// not: y·b must exceed maxSum times what any column, or any load of a
// small type's cone, is worth under y. Branch and cap rows only lower
// what an ungenerated pattern is worth (they are 0 or negative on it).
func (b *boundLP) certifies(lp *sparseLP, y []float64, maxSum float64) bool {
	yp := make([]float64, len(y))
	for k, v := range y {
		yp[k] = math.Max(v, 0)
	}
	yb := 0.0
	for k, v := range yp {
		yb += v * lp.b[k]
	}
	most := 0.0
	for j := range lp.cost {
		most = math.Max(most, lp.dot(j, yp))
	}
	for ci := range b.cols {
		bc := &b.cols[ci]
		if !bc.small {
			continue
		}
		for v := 0; v < len(bc.verts); v += b.m0 {
			w := 0.0
			for k := 0; k < b.m0; k++ {
				w += yp[k] * bc.verts[v+k]
			}
			most = math.Max(most, w)
		}
	}
	return yb > 1e-9 && yb > maxSum*most*(1+1e-9)+1e-12
}

// addRayPatterns adds, for each small type, the whole-pod pattern worth
// most under ray y (Farkas pricing: the patterns that could make an
// infeasible restricted LP feasible), and returns how many it added.
func (b *boundLP) addRayPatterns(y []float64) int {
	yp := make([]float64, len(y))
	for k, v := range y {
		yp[k] = math.Max(v, 0)
	}
	added := 0
	for ci := range b.cols {
		bc := &b.cols[ci]
		if !bc.small {
			continue
		}
		if best, pat, _ := b.knapsack(bc, yp, 0); best > 1e-12 && nonEmpty(pat) {
			b.addPattern(int32(ci), pat)
			added++
		}
	}
	return added
}

// maxNodes bounds the sum of the LP's column values over any packing the
// LP represents under branches br: one per node carrying pods (at most one
// per pod) plus the idle nodes an up branch may add.
func (b *boundLP) maxNodes(br []branch) float64 {
	n := 0.0
	for _, sh := range b.shapes {
		n += float64(sh.n)
	}
	for _, x := range br {
		if x.up {
			n += x.n
		}
	}
	return n
}

// nodeCounts sums, per column, the nodes a primal solution of
// withBranches(br) uses.
func (b *boundLP) nodeCounts(br []branch, x []float64) []float64 {
	n := make([]float64, len(b.cols))
	base := len(b.lp.cost)
	for j, v := range x {
		if j < base {
			if o := b.owner[j]; o >= 0 {
				n[o] += v
			}
		}
	}
	k := base
	for _, x2 := range br {
		if x2.up {
			if k < len(x) {
				n[x2.cols[0]] += x[k]
			}
			k++
		}
	}
	return n
}

// alike lists the large columns within 25% of ci in price, cpu and memory.
func (b *boundLP) alike(ci int32) []int32 {
	near := func(a, c float64) bool { return a <= 1.25*c && c <= 1.25*a }
	p := &b.cols[ci]
	var out []int32
	for cj := range b.cols {
		q := &b.cols[cj]
		if q.small {
			continue
		}
		if near(q.price, p.price) && near(float64(q.alloc[resCPU]), float64(p.alloc[resCPU])) && near(float64(q.alloc[resMemory]), float64(p.alloc[resMemory])) {
			out = append(out, int32(cj))
		}
	}
	return out
}

// branchBound tightens the LP bound against whole nodes: best first, the
// leaf with the lowest bound is split on a set of alike large columns (size
// and price within 25% of one the LP uses) whose total node count is most
// fractional, weighted by price, into "at most floor" and "at least ceil".
// Every packing uses a whole number of nodes of any set, so it lies in one
// of the leaves, and the lowest leaf bound is a valid bound. solves caps
// the LPs solved.
//
// It also returns the nodes of each column (by bCol) the lowest leaf's
// solution uses (nil when it has none).
func (b *boundLP) branchBound(solves int) (float64, []float64) {
	type leaf struct {
		br    []branch
		x     []float64
		bound float64
	}
	_, x, bound := b.solveWith(nil)
	leaves := []leaf{{x: x, bound: bound}}
	low := bound
	stale := 0
	for used := 1; used+2 <= solves && stale < 2; used += 2 {
		lo := 0
		for i := range leaves {
			if leaves[i].bound < leaves[lo].bound {
				lo = i
			}
		}
		l := leaves[lo]
		if l.x == nil {
			break
		}
		counts := b.nodeCounts(l.br, l.x)
		var pick []int32
		var pickN float64
		// Only a split that could move the bound by a fair amount is worth
		// two more solves.
		score := 2e-3 * l.bound
		for ci, n := range counts {
			if b.cols[ci].small || n <= 1e-9 {
				continue
			}
			set := b.alike(int32(ci))
			if len(set) > maxBranchSet {
				// Many near substitutes: splitting one set moves the
				// fraction to the next, not the bound.
				continue
			}
			total := 0.0
			for _, c := range set {
				total += counts[c]
			}
			f := total - math.Floor(total)
			if sc := b.cols[ci].price * math.Min(f, 1-f); sc > score {
				pick, pickN, score = set, total, sc
			}
		}
		if pick == nil {
			break
		}
		down := append(append([]branch(nil), l.br...), branch{cols: pick, n: math.Floor(pickN)})
		up := append(append([]branch(nil), l.br...), branch{cols: pick, up: true, n: math.Ceil(pickN)})
		_, xd, bd := b.solveWith(down)
		_, xu, bu := b.solveWith(up)
		leaves[lo] = leaf{br: down, x: xd, bound: math.Max(bd, l.bound)}
		leaves = append(leaves, leaf{br: up, x: xu, bound: math.Max(bu, l.bound)})
		// Stop when splits stop raising the lowest leaf.
		m := math.Inf(1)
		for _, l := range leaves {
			m = math.Min(m, l.bound)
		}
		if m > low*(1+1e-4) {
			stale = 0
		} else {
			stale++
		}
		low = math.Max(low, m)
	}
	lo := 0
	for i := range leaves {
		if leaves[i].bound < leaves[lo].bound {
			lo = i
		}
	}
	l := leaves[lo]
	if l.x == nil {
		return l.bound, nil
	}
	return l.bound, b.nodeCounts(l.br, l.x)
}

// knapsack finds the whole-pod pattern worth most on one node of bc at
// prices pi: depth-first over shapes by value, pruned by what the room left
// in each resource could hold at the best remaining value per unit. exact
// is false when the search ran out of budget (best is then only a pattern
// found, not the maximum).
func (b *boundLP) knapsack(bc *bCol, pi []float64, target float64) (best float64, pat []int32, upper float64) {
	type item struct {
		pos  int
		val  float64
		req  resVec
		n    int
		dens []float64 // suffix max of value per unit of each surrogate mix
	}
	var items []item
	for p, si := range bc.fits {
		if v := b.shapeValue(pi, si, true); v > 0 {
			items = append(items, item{pos: p, val: v, req: b.shapes[si].req, n: b.shapes[si].n})
		}
	}
	base := b.nodeValue(pi)
	pat = make([]int32, len(bc.fits))
	if len(items) == 0 {
		return base, pat, base
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].val > items[j].val })
	rows := b.rows
	// Surrogate constraints: nonnegative mixes of the rows, each normalised
	// by the node's allocatable; a pattern's weight under any mix is at most
	// the mix of what is left, so value ≤ (room under the mix) × (best value
	// per unit of the mix among the items left).
	var mixes [][]float64
	for k := range rows {
		m := make([]float64, len(rows))
		m[k] = 1
		mixes = append(mixes, m)
	}
	if len(rows) > 1 {
		for _, w := range [][2]float64{{1, 1}, {3, 1}, {1, 3}} {
			m := make([]float64, len(rows))
			for k, r := range rows {
				switch r {
				case resCPU:
					m[k] = w[0]
				case resMemory:
					m[k] = w[1]
				}
			}
			mixes = append(mixes, m)
		}
		all := make([]float64, len(rows))
		for k := range all {
			all[k] = 1
		}
		mixes = append(mixes, all)
	}
	weight := func(mix []float64, v resVec) float64 {
		w := 0.0
		for k, r := range rows {
			if mix[k] > 0 && bc.alloc[r] > 0 {
				w += mix[k] * float64(v[r]) / float64(bc.alloc[r])
			}
		}
		return w
	}
	for i := len(items) - 1; i >= 0; i-- {
		items[i].dens = make([]float64, len(mixes))
		for k, mix := range mixes {
			d := math.Inf(1)
			if w := weight(mix, items[i].req); w > 0 {
				d = items[i].val / w
			}
			if i+1 < len(items) {
				d = math.Max(d, items[i+1].dens[k])
			}
			items[i].dens[k] = d
		}
	}
	rem := bc.alloc.clone()
	zero := make(resVec, len(rem))
	cur := make([]int32, len(items))
	bestCur := make([]int32, len(items))
	bestVal := 0.0
	// Only patterns worth more than target matter: prune against it.
	floor := target - base
	nodes := 0
	exact := true
	var rec func(i int, val float64)
	rec = func(i int, val float64) {
		if val > bestVal {
			bestVal = val
			copy(bestCur, cur)
		}
		if i == len(items) {
			return
		}
		nodes++
		if nodes > knapsackBudget {
			exact = false
			return
		}
		ub := math.Inf(1)
		for k, mix := range mixes {
			ub = math.Min(ub, weight(mix, rem)*items[i].dens[k])
		}
		if val+ub <= math.Max(bestVal, floor)*(1+1e-12) {
			return
		}
		it := &items[i]
		c := fitCount(rem, zero, it.req)
		if c > it.n {
			c = it.n
		}
		for k := c; k >= 0 && exact; k-- {
			rem.addScaled(it.req, -int64(k))
			cur[i] = int32(k)
			rec(i+1, val+float64(k)*it.val)
			cur[i] = 0
			rem.addScaled(it.req, int64(k))
		}
	}
	rec(0, 0)
	for i, it := range items {
		pat[it.pos] = bestCur[i]
	}
	if exact {
		// Searched everything that could beat target.
		return bestVal + base, pat, math.Max(bestVal+base, target)
	}
	// Out of budget: the fractional knapsack bounds what any pattern is worth.
	val := make([]float64, len(items))
	ubs := make([]float64, len(items))
	a := make([][]float64, len(rows))
	capacity := make([]float64, len(rows))
	for k, r := range rows {
		a[k] = make([]float64, len(items))
		capacity[k] = float64(bc.alloc[r])
		for i := range items {
			a[k][i] = float64(items[i].req[r])
		}
	}
	for i := range items {
		val[i], ubs[i] = items[i].val, float64(items[i].n)
	}
	y := fracKnapsack(val, a, capacity, ubs)
	frac := 0.0
	for i := range y {
		frac += y[i] * val[i]
	}
	// Rounding in the simplex: a little slack keeps it an upper bound.
	return bestVal + base, pat, math.Max(frac*(1+1e-9), bestVal) + base
}

// coneColumn is a kind of new node for the cone LP: a (pool, type) with its
// price and allocatable (daemonset overhead already subtracted).
type coneColumn struct {
	price float64
	alloc resVec
	// key is the caller's index for the column.
	key int
}

type lbPoint struct{ x, y float64 }

func lessVec(a, b resVec) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func cross(o, a, b lbPoint) float64 {
	return (a.x-o.x)*(b.y-o.y) - (a.y-o.y)*(b.x-o.x)
}

// convexHull returns the hull of points sorted by (x, y), counter-clockwise,
// without collinear points (Andrew's monotone chain).
func convexHull(pts []lbPoint, out []lbPoint) []lbPoint {
	if len(pts) <= 2 {
		return append(out, pts...)
	}
	for _, p := range pts {
		for len(out) >= 2 && cross(out[len(out)-2], out[len(out)-1], p) <= 0 {
			out = out[:len(out)-1]
		}
		out = append(out, p)
	}
	lower := len(out) + 1
	for i := len(pts) - 2; i >= 0; i-- {
		p := pts[i]
		for len(out) >= lower && cross(out[len(out)-2], out[len(out)-1], p) <= 0 {
			out = out[:len(out)-1]
		}
		out = append(out, p)
	}
	return out[:len(out)-1]
}

// insideHull reports whether p is strictly inside a counter-clockwise hull
// with at least three vertices.
func insideHull(hull []lbPoint, p lbPoint) bool {
	if len(hull) < 3 {
		return false
	}
	for i := range hull {
		if cross(hull[i], hull[(i+1)%len(hull)], p) <= 0 {
			return false
		}
	}
	return true
}

func nonEmpty(pat []int32) bool {
	for _, k := range pat {
		if k > 0 {
			return true
		}
	}
	return false
}
