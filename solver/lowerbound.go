package solver

import (
	"math"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// lowerBound returns a valid lower bound on the price of any set of new
// machines that carries the pods this plan puts on new machines:
//
//	min Σ price_t·x_t  s.t.  Σ alloc_t,r·x_t ≥ demand_r (every resource r),
//	                         Σ x_t ≥ pods that pairwise repel on hostname,
//	                         x ≥ 0
//
// over the (pool, type) columns compatible with some constraint class on a
// planned node, each at its cheapest offering and largest allocatable — a
// relaxation of every integral packing, so never above the plan's price.
func (s *state) lowerBound(plan *Plan) float64 {
	if len(s.planned) == 0 {
		return 0
	}
	R := s.res.size()
	demand := make(resVec, R)
	classes := map[int]bool{}
	for _, n := range s.planned {
		demand.add(n.used)
		for _, c := range n.classes {
			classes[c] = true
		}
	}
	// Columns: per pool and type, cheapest price and largest allocatable.
	type column struct {
		price float64
		alloc []float64
	}
	var cols []column
	for _, ps := range s.pools {
		byType := map[*InstanceType]int{}
		for i := range ps.cands {
			ok := false
			for _, cl := range s.classList() {
				if classes[cl.id] && s.forClass(ps, cl).mask[i] {
					ok = true
					break
				}
			}
			if !ok {
				continue
			}
			c := &ps.cands[i]
			j, seen := byType[c.it]
			if !seen {
				j = len(cols)
				byType[c.it] = j
				cols = append(cols, column{price: c.price, alloc: make([]float64, R)})
				for r := range c.alloc {
					cols[j].alloc[r] = float64(c.alloc[r])
				}
				continue
			}
			cols[j].price = math.Min(cols[j].price, c.price)
			for r := range c.alloc {
				cols[j].alloc[r] = math.Max(cols[j].alloc[r], float64(c.alloc[r]))
			}
		}
	}
	if len(cols) == 0 {
		return 0
	}
	// Rows, each scaled so its right-hand side is 1 (conditioning).
	var rows [][]float64
	for r := 0; r < R; r++ {
		if demand[r] <= 0 {
			continue
		}
		row := make([]float64, len(cols))
		for j := range cols {
			row[j] = cols[j].alloc[r] / float64(demand[r])
		}
		rows = append(rows, row)
	}
	if nodes := s.repellingPodsOnNewNodes(); nodes > 1 {
		row := make([]float64, len(cols))
		for j := range row {
			row[j] = 1 / float64(nodes)
		}
		rows = append(rows, row)
	}
	// Simple bound (always valid): each row alone, by its cheapest column.
	simple := 0.0
	for _, row := range rows {
		best := math.Inf(1)
		for j := range cols {
			if row[j] > 0 {
				best = math.Min(best, cols[j].price/row[j])
			}
		}
		if !math.IsInf(best, 1) {
			simple = math.Max(simple, best)
		}
	}
	bound := simple
	// Standard form: [A -I][x; slack] = 1.
	m, nc := len(rows), len(cols)
	A := mat.NewDense(m, nc+m, nil)
	b := make([]float64, m)
	c := make([]float64, nc+m)
	for i, row := range rows {
		for j := range cols {
			A.Set(i, j, row[j])
		}
		A.Set(i, nc+i, -1)
		b[i] = 1
	}
	for j := range cols {
		c[j] = cols[j].price
	}
	if opt, _, err := lp.Simplex(c, A, b, 1e-10, nil); err == nil && opt > bound && opt <= plan.TotalPricePerHour*(1+1e-6) {
		bound = opt
	}
	// Guard floating point: a bound must never exceed the plan it bounds.
	bound *= 1 - 1e-9
	if bound > plan.TotalPricePerHour {
		bound = plan.TotalPricePerHour
	}
	return bound
}

func (s *state) classList() []*constraintClass {
	out := make([]*constraintClass, len(s.classes))
	for _, cl := range s.classes {
		out[cl.id] = cl
	}
	return out
}

// repellingPodsOnNewNodes is the largest set of pods on planned nodes that
// pairwise cannot share a host (a self-selecting hostname anti-affinity),
// so at least that many new machines are needed.
func (s *state) repellingPodsOnNewNodes() int {
	best := 0
	for _, t := range s.topos {
		if t.kind != kindAntiAffinity || t.key != v1alpha1.LabelHostname {
			continue
		}
		count := 0
		for _, n := range s.planned {
			for _, gc := range n.groups {
				for i, o := range gc.group.owned {
					if o == t && gc.group.ownedSelects[i] {
						count += gc.count
					}
				}
			}
		}
		if count > best {
			best = count
		}
	}
	return best
}
