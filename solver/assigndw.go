package solver

import (
	"math"
	"sort"
	"sync/atomic"
)

// relaxAssignment solves the assignment relaxation (see assignmentBound)
// over every shape as it is, however many there are, by Dantzig-Wolfe
// decomposition on the types' resource rows. Written per type t and
// resource r, with c_{s,t,r} = p_t·q_{s,r}/a_{t,r} the price of one pod
// of shape s on t were r the only resource,
//
//	min Σ_t z_t  s.t.  z_t ≥ Σ_s c_{s,t,r}·x_{s,t}   (every t, r)
//	                   Σ_t x_{s,t} = n_s, x ≥ 0       (t among those s fits)
//
// The second set is a product of simplices, one per shape. Shapes are
// cut into blocks (per class, runs of similar requests; see assignBlocks),
// and the master LP mixes each block's vertices, whole assignments of its
// shapes (each on one type): one row per type and resource and one per
// block, so its size is the types' and not the shapes' (which the
// shape-row master of assignmentBound is: it cost seconds per solve past
// a hundred shapes), and the blocks let it combine their assignments
// apart, which one block for all (one convexity row) converged too slowly
// to do on workloads of several classes. A new assignment is cheap to
// find: at the master's duals π, each shape on the type that prices it
// least. The master holds only the types that pay: at its optimum, a type
// outside it comes in when it carries a load worth more than it costs at
// the shapes' prices (a small LP per type over the shapes it fits).
//
// Every bound it takes is valid whatever the master's rounding: with
// π ≥ 0 scaled so that Σ_r π_{t,r} ≤ 1 for every t,
//
//	Σ_t z_t ≥ Σ_{t,r} π_{t,r}·z_t ≥ Σ_s n_s·min_t Σ_r π_{t,r}·c_{s,t,r}
//
// for every solution (Lagrangian duality), and the types outside the
// master cannot lower it once the shapes' prices are scaled down by the
// most any of them is worth per dollar (Farley). The best is kept, and at
// convergence it is the relaxation's value.
//
// work caps the pricing (shape-type pairs priced, summed over rounds):
// stopping early only loses tightness. floor is a bound already known:
// once the master's value (at least the relaxation's) is no higher, the
// relaxation cannot improve on it and generation stops. It returns the
// bound and whether it converged.
func relaxAssignment(shapes []boundShape, cols []assignColumn, rows []int, work int, floor float64) (bound float64, converged bool) {
	T, R := len(cols), len(rows)
	if T == 0 || R == 0 || len(shapes) == 0 {
		return 0, false
	}
	// Per shape, the types it fits and its per-pod prices on them.
	type fit struct {
		t int32
		c []float64 // per row
	}
	fits := make([][]fit, len(shapes))
	pairs := 0
	for t := range cols {
		pairs += len(cols[t].fits)
	}
	prices := make([]float64, pairs*R) // every pair's, in one piece
	for t := range cols {
		col := &cols[t]
		for _, si := range col.fits {
			c := prices[:R:R]
			prices = prices[R:]
			for i, r := range rows {
				if q := shapes[si].req[r]; q > 0 {
					c[i] = col.price * float64(q) / float64(col.alloc[r])
				}
			}
			fits[si] = append(fits[si], fit{t: int32(t), c: c})
		}
	}
	for si := range fits {
		if len(fits[si]) == 0 {
			return 0, false // a shape no type carries: no bound from here
		}
	}
	blocks := assignBlocks(shapes)
	// The master holds the types some assignment may use (pos[t] is t's
	// place in it, -1 for none): at first the cheapest for each shape,
	// all its resources counted or one at a time. The others come in
	// when, at the master's optimum, one would carry a load worth more
	// than it costs (below).
	pos := make([]int, T)
	for t := range pos {
		pos[t] = -1
	}
	var act []int
	enter := func(t int) {
		if pos[t] < 0 {
			pos[t] = len(act)
			act = append(act, t)
		}
	}
	for _, fs := range fits {
		for i := -1; i < R && (i < 0 || relaxFirstByRow); i++ {
			best, bt := math.Inf(1), -1
			for k := range fs {
				v := dearest(fs[k].c)
				if i >= 0 {
					v = fs[k].c[i]
				}
				if v < best {
					best, bt = v, k
				}
			}
			enter(int(fs[bt].t))
		}
	}
	// price puts each shape of a block on the master's type that prices
	// it least at π (per row of the master, per pod), or with max, at the
	// dearest of its rows; u gets each shape's price per pod.
	u := make([]float64, len(shapes))
	price := func(block []int, pi []float64, max bool) (value float64, g []float64) {
		g = make([]float64, len(act)*R)
		for _, si := range block {
			fs := fits[si]
			best, bt := math.Inf(1), -1
			for k := range fs {
				p := pos[fs[k].t]
				if p < 0 {
					continue
				}
				v := 0.0
				if max {
					v = dearest(fs[k].c)
				} else {
					for i, c := range fs[k].c {
						v += pi[p*R+i] * c
					}
				}
				if v < best {
					best, bt = v, k
				}
			}
			n := float64(shapes[si].n)
			u[si] = best
			value += n * best
			base := pos[fs[bt].t] * R
			for i, c := range fs[bt].c {
				g[base+i] += n * c
			}
		}
		return value, g
	}
	// The first assignments: every shape on the type that carries it for
	// least, all its resources counted.
	dw := newDWMaster(len(act), R, len(blocks))
	first := make([][]float64, len(blocks))
	for b, block := range blocks {
		_, first[b] = price(block, nil, true)
	}
	if !dw.start(first) {
		return 0, false
	}
	ab := &assignBound{shapes: shapes, cols: cols, rows: rows}
	var pi []float64
	for spent := 0; spent < work; spent += pairs {
		upper, ok := dw.solve()
		if !ok {
			return bound, false
		}
		if upper <= floor && !assignBoundAlways {
			return bound, false
		}
		y := dw.y
		pi = append(pi[:0], y[:len(act)*R]...)
		for p := range act {
			sum := 0.0
			for i := 0; i < R; i++ {
				if v := pi[p*R+i]; v < 0 || math.IsNaN(v) {
					pi[p*R+i] = 0
				}
				sum += pi[p*R+i]
			}
			if sum > 1 {
				for i := 0; i < R; i++ {
					pi[p*R+i] /= sum
				}
			}
		}
		total, added := 0.0, 0
		for b, block := range blocks {
			value, g := price(block, pi, false)
			total += value
			// The assignment's reduced cost at the master's own duals.
			d := -y[len(act)*R+b]
			for i, v := range g {
				d += y[i] * v
			}
			if d < -1e-9*math.Max(1, upper) {
				dw.add(b, g)
				added++
			}
		}
		if added > 0 && total < upper*(1-1e-7) {
			continue
		}
		// The master is at its own optimum (or the shapes' prices u match
		// it): the types outside it. Each prices out when no load of it
		// is worth more at u than it costs; otherwise u scaled down by
		// the most any is worth per dollar still bounds (Farley), and the
		// types worth more come in.
		worst := 1.0
		var more []int
		for t := range cols {
			if pos[t] >= 0 {
				continue
			}
			load, value, up := ab.price(t, u)
			worst = math.Max(worst, up/cols[t].price)
			if value > cols[t].price*(1+1e-7) && load != nil {
				more = append(more, t)
			}
		}
		if math.IsInf(worst, 1) {
			return bound, false
		}
		bound = math.Max(bound, total/worst)
		if len(more) == 0 || bound >= upper*(1-1e-7) {
			return bound, true
		}
		for _, t := range more {
			enter(t)
		}
		relaxGrown.Add(1)
		if !dw.grow(len(act)) {
			return bound, false
		}
	}
	return bound, false
}

// dearest is a shape's price per pod on a type, all its resources
// counted: that of the resource it takes the largest share of.
func dearest(c []float64) float64 {
	v := 0.0
	for _, x := range c {
		v = math.Max(v, x)
	}
	return v
}

// relaxMaxTypeRows caps the type rows (types × resources) for which
// assignmentBound decomposes the relaxation: the types come into the
// master as they pay, but each round prices every type outside it by a
// small LP over the shapes it fits. The mixed-class workloads have 181-193
// types (each class its own column per type); Karpenter's benchmark 400
// fake ones and a distinct shape per pod, where the cone's bound is the
// larger anyway. Past it, the shape-row master, coarsened. relaxWork caps
// the pricing: about a second's worth on a shared core, reached only by
// thousands of shapes. (Variables, so tests can send instances down
// either path.)
var (
	relaxMaxTypeRows = 768
	relaxWork        = 20_000_000
)

// relaxGrown counts the times a master took types in (tests read it);
// relaxFirstByRow starts it with each shape's cheapest type per row too
// (tests turn it off so that more types come in by pricing).
var (
	relaxGrown      atomic.Int64
	relaxFirstByRow = true
)

// blockShapes is the fewest shapes a block of relaxAssignment takes;
// maxBlocks caps their number (each is a row of the master).
const (
	blockShapes = 16
	maxBlocks   = 48
)

// assignBlocks cuts the shapes into blocks: per class, runs in the order
// of their requests, of blockShapes or more so that there are at most
// about maxBlocks.
func assignBlocks(shapes []boundShape) [][]int {
	size := max(blockShapes, (len(shapes)+maxBlocks-1)/maxBlocks)
	order := make([]int, len(shapes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := &shapes[order[i]], &shapes[order[j]]
		if a.class != b.class {
			return a.class < b.class
		}
		return lessVec(a.req, b.req)
	})
	var blocks [][]int
	for i, si := range order {
		if i == 0 || shapes[order[i-1]].class != shapes[si].class || len(blocks[len(blocks)-1]) == size {
			blocks = append(blocks, nil)
		}
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], si)
	}
	return blocks
}

// dwMaster is the master LP of relaxAssignment, solved by the revised
// primal simplex with an explicit basis inverse, warm from one round to
// the next (new columns leave the basis feasible):
//
//	min Σ_t z_t  s.t.  z_t − Σ_k g_k[t,r]·μ_k − s_{t,r} = 0,
//	                   Σ_{k of block b} μ_k = 1  (every block b)
//
// over z, s, μ ≥ 0. Variables are numbered z (T), then s (T·R), then μ.
type dwMaster struct {
	T, R, m int
	// The assignments' loads (sparse: a block's shapes use few types),
	// per type and row, and their blocks.
	gIdx    [][]int32
	gVal    [][]float64
	block   []int
	basis   []int
	isBasic []bool
	binv    []float64 // m×m, row-major
	xb      []float64
	y       []float64 // the duals, c_B·B⁻¹
	w       []float64
}

func newDWMaster(T, R, blocks int) *dwMaster {
	m := T*R + blocks
	return &dwMaster{T: T, R: R, m: m, basis: make([]int, m), binv: make([]float64, m*m), xb: make([]float64, m), y: make([]float64, m), w: make([]float64, m)}
}

func (d *dwMaster) nvars() int { return d.T + d.T*d.R + len(d.block) }

func (d *dwMaster) add(block int, g []float64) {
	var idx []int32
	var val []float64
	for i, a := range g {
		if a != 0 {
			idx = append(idx, int32(i))
			val = append(val, a)
		}
	}
	d.gIdx = append(d.gIdx, idx)
	d.gVal = append(d.gVal, val)
	d.block = append(d.block, block)
	d.isBasic = append(d.isBasic, false)
}

// start makes first[b] block b's first assignment and the basis those,
// every z_t, and every slack but the one of t's most loaded row, which
// is feasible: μ = 1 each, z_t = max_r Σ_b first[b][t,r], the slacks the
// rest.
func (d *dwMaster) start(first [][]float64) bool {
	T, R := d.T, d.R
	d.gIdx, d.gVal, d.block = nil, nil, nil
	d.isBasic = make([]bool, T+T*R)
	load := make([]float64, T*R)
	for b, g := range first {
		d.add(b, g)
		for i, v := range g {
			load[i] += v
		}
	}
	p := 0
	setBasic := func(v int) {
		d.basis[p] = v
		d.isBasic[v] = true
		p++
	}
	for b := range first {
		setBasic(T + T*R + b)
	}
	for t := 0; t < T; t++ {
		setBasic(t)
		top := 0
		for i := 1; i < R; i++ {
			if load[t*R+i] > load[t*R+top] {
				top = i
			}
		}
		for i := 0; i < R; i++ {
			if i != top {
				setBasic(T + t*R + i)
			}
		}
	}
	return d.reinvert()
}

// grow takes types T..T2-1 into the master: their rows, machines z and
// slacks, at no load (the assignments so far put none on them), with z
// and every slack but the first of each basic. The old basis stays.
func (d *dwMaster) grow(T2 int) bool {
	T, R := d.T, d.R
	blocks := d.m - T*R
	renum := func(v int) int {
		switch {
		case v < T:
			return v
		case v < T+T*R:
			return v - T + T2
		}
		return v - T - T*R + T2 + T2*R
	}
	basis := make([]int, 0, T2*R+blocks)
	for _, v := range d.basis {
		basis = append(basis, renum(v))
	}
	for t := T; t < T2; t++ {
		basis = append(basis, t)
		for i := 1; i < R; i++ {
			basis = append(basis, T2+t*R+i)
		}
	}
	d.T, d.m = T2, T2*R+blocks
	m := d.m
	d.basis = basis
	d.isBasic = make([]bool, T2+T2*R+len(d.block))
	for _, v := range basis {
		d.isBasic[v] = true
	}
	d.binv = make([]float64, m*m)
	d.xb, d.y, d.w = make([]float64, m), make([]float64, m), make([]float64, m)
	return d.reinvert()
}

// column calls f with the nonzero entries of variable v's column.
func (d *dwMaster) column(v int, f func(i int, a float64)) {
	T, R := d.T, d.R
	switch {
	case v < T:
		for i := 0; i < R; i++ {
			f(v*R+i, 1)
		}
	case v < T+T*R:
		f(v-T, -1)
	default:
		k := v - T - T*R
		for j, i := range d.gIdx[k] {
			f(int(i), -d.gVal[k][j])
		}
		f(T*R+d.block[k], 1)
	}
}

// reducedCost is c_v − y·a_v.
func (d *dwMaster) reducedCost(v int, y []float64) float64 {
	T, R := d.T, d.R
	switch {
	case v < T:
		rc := 1.0
		for _, yi := range y[v*R : (v+1)*R] {
			rc -= yi
		}
		return rc
	case v < T+T*R:
		return y[v-T]
	default:
		k := v - T - T*R
		rc := -y[T*R+d.block[k]]
		val := d.gVal[k]
		for j, i := range d.gIdx[k] {
			rc += y[i] * val[j]
		}
		return rc
	}
}

func (d *dwMaster) cost(v int) float64 {
	if v < d.T {
		return 1
	}
	return 0
}

// refresh recomputes the basic values from the inverse (b is 1 on the
// blocks' rows, 0 on the rest).
func (d *dwMaster) refresh() {
	m, first := d.m, d.T*d.R
	for i := 0; i < m; i++ {
		v := 0.0
		for _, a := range d.binv[i*m+first : (i+1)*m] {
			v += a
		}
		d.xb[i] = v
	}
}

// duals returns y = c_B·B⁻¹ (one per row; the blocks' rows come last),
// computed anew.
func (d *dwMaster) duals() []float64 {
	m := d.m
	y := d.y
	for i := range y {
		y[i] = 0
	}
	for p, v := range d.basis {
		if c := d.cost(v); c != 0 {
			row := d.binv[p*m : (p+1)*m]
			for i := range y {
				y[i] += c * row[i]
			}
		}
	}
	return y
}

// solve runs the primal simplex to optimality from the current basis and
// returns the objective. Dantzig's rule, then Bland's after a run of
// degenerate pivots (zero-load types make many), which cannot cycle.
func (d *dwMaster) solve() (float64, bool) {
	m := d.m
	stall, reinverted := 0, 0
	y := d.y
	for iter := 0; iter < 50*m+1000; iter++ {
		bland := stall > 2*m
		enter, best := -1, -1e-9
		for v := 0; v < d.nvars(); v++ {
			if d.isBasic[v] {
				continue
			}
			if rc := d.reducedCost(v, y); rc < best {
				enter, best = v, rc
				if bland {
					break
				}
			}
		}
		if enter < 0 && !d.accurate(y) {
			if reinverted == 3 || !d.reinvert() {
				return 0, false
			}
			reinverted++
			continue
		}
		if enter < 0 {
			obj := 0.0
			for p, v := range d.basis {
				obj += d.cost(v) * d.xb[p]
			}
			return obj, true
		}
		for i := range d.w {
			d.w[i] = 0
		}
		d.column(enter, func(i int, a float64) {
			for p := 0; p < m; p++ {
				d.w[p] += d.binv[p*m+i] * a
			}
		})
		// Harris' two passes: the largest pivot among the rows whose ratio
		// is within a small tolerance of the least, so that no tiny pivot
		// (they ruin the inverse) is taken to break a near tie.
		const pivTol, feasTol = 1e-7, 1e-9
		theta := math.Inf(1)
		for p := 0; p < m; p++ {
			if d.w[p] > pivTol {
				theta = math.Min(theta, (math.Max(d.xb[p], 0)+feasTol)/d.w[p])
			}
		}
		leave, ratio := -1, 0.0
		for p := 0; p < m; p++ {
			if w := d.w[p]; w > pivTol {
				if r := math.Max(d.xb[p], 0) / w; r <= theta && (leave < 0 || w > d.w[leave] || (bland && w == d.w[leave] && d.basis[p] < d.basis[leave])) {
					leave, ratio = p, r
				}
			}
		}
		if leave < 0 {
			return 0, false // unbounded: cannot happen with z, μ ≥ 0 and costs ≥ 0
		}
		if ratio > 0 {
			stall = 0
		} else {
			stall++
		}
		// The pivot: the inverse's rows, the basic values (the entering
		// variable at ratio, the rest less ratio·w) and the duals (y plus
		// the entering reduced cost times the inverse's new pivot row).
		pivotInverse(d.binv, m, leave, d.w, 1)
		for p := range d.xb {
			d.xb[p] -= ratio * d.w[p]
		}
		d.xb[leave] = ratio
		lr := d.binv[leave*m : (leave+1)*m]
		for k := range y {
			y[k] += best * lr[k]
		}
		d.isBasic[d.basis[leave]] = false
		d.basis[leave] = enter
		d.isBasic[enter] = true
	}
	return 0, false
}

// accurate reports whether the duals price every basic variable at its
// cost, as they do but for rounding: pivots on a drifting inverse
// compound its error, which shows there first.
func (d *dwMaster) accurate(y []float64) bool {
	for _, v := range d.basis {
		rc := d.cost(v)
		d.column(v, func(i int, a float64) { rc -= y[i] * a })
		if math.Abs(rc) > 1e-9 {
			return false
		}
	}
	return true
}

// reinvert computes the basis inverse anew from the basis' columns, and
// the basic values and duals from it.
func (d *dwMaster) reinvert() bool {
	m := d.m
	B := make([]float64, m*m)
	for p, v := range d.basis {
		d.column(v, func(i int, a float64) { B[i*m+p] = a })
	}
	if !invert(B, d.binv, m) {
		return false
	}
	d.refresh()
	d.duals()
	return true
}

// invert writes the inverse of the m×m matrix a (destroyed) into inv by
// Gauss-Jordan elimination with partial pivoting; false when singular.
func invert(a, inv []float64, m int) bool {
	for i := range inv {
		inv[i] = 0
	}
	for i := 0; i < m; i++ {
		inv[i*m+i] = 1
	}
	for c := 0; c < m; c++ {
		p := c
		for r := c + 1; r < m; r++ {
			if math.Abs(a[r*m+c]) > math.Abs(a[p*m+c]) {
				p = r
			}
		}
		if math.Abs(a[p*m+c]) < 1e-12 {
			return false
		}
		if p != c {
			for k := 0; k < m; k++ {
				a[p*m+k], a[c*m+k] = a[c*m+k], a[p*m+k]
				inv[p*m+k], inv[c*m+k] = inv[c*m+k], inv[p*m+k]
			}
		}
		f := a[c*m+c]
		for k := 0; k < m; k++ {
			a[c*m+k] /= f
			inv[c*m+k] /= f
		}
		for r := 0; r < m; r++ {
			if r == c || a[r*m+c] == 0 {
				continue
			}
			f := a[r*m+c]
			for k := 0; k < m; k++ {
				a[r*m+k] -= f * a[c*m+k]
				inv[r*m+k] -= f * inv[c*m+k]
			}
		}
	}
	return true
}
