package solver

import (
	"math"
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
// floor is a bound already known: the restricted LP's value is at least
// the relaxation's, so once it is no higher than floor the relaxation
// cannot improve on it and generation stops.
func (s *state) assignmentBound(counts map[*podGroup]int, floor float64) float64 {
	if s.fractionalPlanCost() <= floor {
		// The plan, with each type bought in fractional machines for the
		// load it carries, is a solution of the relaxation: no better bound
		// is to be had from it.
		return 0
	}
	shapes := s.boundShapes(counts)
	if len(shapes) == 0 || len(shapes) > assignMaxShapes {
		return 0
	}
	cols := s.assignmentColumns(shapes)
	if len(cols) == 0 {
		return 0
	}
	rows := activeResources(shapes)
	ab := &assignBound{shapes: shapes, cols: cols, rows: rows, lp: newSparseLP()}
	for range shapes {
		ab.lp.addRow(1)
	}
	// A first load per type and shape: as many pods of the shape as fit
	// (fractionally) and no more than there are.
	for ci := range cols {
		for _, si := range cols[ci].fits {
			k := ab.capacity(ci, si)
			if k > float64(shapes[si].n) {
				k = float64(shapes[si].n)
			}
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
		if upperLP <= floor {
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
	return best
}

// assignRounds caps the column generation rounds; each one's bound is
// valid, so stopping early only loses tightness. assignMaxShapes caps the
// LP's rows: the dual simplex restarts from scratch every round at a cost
// quadratic in them, and past this many distinct (requests, class) shapes
// (microservice workloads of thousands of pods, one shape per deployment)
// the relaxation cost seconds per solve; the cone LP alone bounds those.
const (
	assignRounds    = 20
	assignMaxShapes = 64
)

type boundShape struct {
	req   resVec
	n     int
	class int
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
// the cheapest offering any shape's class allows, the largest allocatable
// among them (both only loosen the relaxation). Types another column
// beats on every resource per dollar, for a superset of shapes, are left
// out: any load they carry it carries for less.
func (s *state) assignmentColumns(shapes []boundShape) []assignColumn {
	classList := s.classList()
	classes := map[int]bool{}
	for _, sh := range shapes {
		classes[sh.class] = true
	}
	zero := make(resVec, len(shapes[0].req))
	var cols []assignColumn
	for _, ps := range s.pools {
		type acc struct {
			price   float64
			alloc   resVec
			classes map[int]bool
		}
		byType := map[*InstanceType]*acc{}
		var order []*InstanceType
		for i := range ps.cands {
			c := &ps.cands[i]
			for id := range classes {
				if !s.forClass(ps, classList[id]).mask[i] {
					continue
				}
				a := byType[c.it]
				if a == nil {
					a = &acc{price: c.price, alloc: c.alloc.clone(), classes: map[int]bool{}}
					byType[c.it] = a
					order = append(order, c.it)
				}
				a.price = math.Min(a.price, c.price)
				a.alloc.maxWith(c.alloc)
				a.classes[id] = true
			}
		}
		for _, it := range order {
			a := byType[it]
			col := assignColumn{price: a.price, alloc: a.alloc}
			for si := range shapes {
				if a.classes[shapes[si].class] && fitsAdd(a.alloc, zero, shapes[si].req) {
					col.fits = append(col.fits, si)
				}
			}
			if len(col.fits) > 0 && col.price > 0 {
				cols = append(cols, col)
			}
		}
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
	t := make([]float64, (m+1)*width)
	for i, r := range ab.rows {
		row := t[i*width : (i+1)*width]
		for j, si := range cand {
			row[j] = float64(ab.shapes[si].req[r])
		}
		row[n+i] = 1
		row[width-1] = float64(col.alloc[r])
	}
	obj := t[m*width : (m+1)*width]
	for j, si := range cand {
		obj[j] = -w[si]
	}
	basis := make([]int, m)
	for i := range basis {
		basis[i] = n + i
	}
	for iter := 0; iter < 50*(m+1); iter++ {
		enter := -1
		for j := 0; j < n+m; j++ {
			if obj[j] < -1e-12 && (enter < 0 || obj[j] < obj[enter]) {
				enter = j
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
			if x := t[i*width+width-1]; x > 0 {
				load = append(load, loadEntry{shape: cand[b], x: x})
				value += w[cand[b]] * x
			}
		}
	}
	// Duals: the reduced costs of the slacks, made non-negative, then
	// scaled up until every shape's value is covered.
	mu := make([]float64, m)
	for i := range mu {
		mu[i] = math.Max(0, obj[n+i])
	}
	scale := 1.0
	for _, si := range cand {
		v := 0.0
		for i, r := range ab.rows {
			v += mu[i] * float64(ab.shapes[si].req[r])
		}
		if v <= 0 {
			return load, value, math.Inf(1)
		}
		if f := w[si] / v; f > scale {
			scale = f
		}
	}
	for i, r := range ab.rows {
		upper += mu[i] * float64(col.alloc[r])
	}
	return load, value, upper * scale
}

// fractionalPlanCost is the plan's own assignment priced as the relaxation
// prices it: per offering chosen, the load of its nodes over its
// allocatable, at the largest ratio of any resource.
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
		total += c.price * y
	}
	return total
}
