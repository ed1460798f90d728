package solver

import (
	"math"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
)

// lowerBound returns a valid lower bound on the price of any set of new
// machines that carries the pods this plan puts on new machines.
//
// A node of type t can only carry a load that is a sum of whole pods, each
// of which fits t on its own. So its usage vector lies in
//
//	P_t = cone{requests of the pods that fit t} ∩ {u ≤ allocatable_t}
//
// (the convex cone of their (cpu, memory, pods) vectors, box bounds for
// other resources). The bound starts from the LP
//
//	min Σ price_t·λ_{t,v}  s.t.  Σ v·λ_{t,v} ≥ demand,  λ ≥ 0
//
// over the vertices v of every P_t (plus a row counting nodes when pods
// pairwise repel on hostname). Any packing maps into it: a node's usage is
// a convex combination of the vertices of its P_t (0 included). Unlike
// "Σ allocatable ≥ demand" it does not buy cpu from one type and memory from
// another as if a pod could be split between them. Types that hold only a
// few pods are priced by whole-pod patterns instead, and a short branch and
// bound on whole node counts follows (see boundLP).
//
// Every number reported comes from dual prices re-checked against every
// column (and every whole-pod pattern) and scaled down if needed, so
// floating point error can only weaken the bound.
func (s *state) lowerBound(plan *Plan) float64 {
	if len(s.planned) == 0 {
		return 0
	}
	R := s.res.size()
	demand := make(resVec, R)
	counts := map[*podGroup]int{}
	classes := map[int]bool{}
	for _, n := range s.planned {
		demand.add(n.used)
		for _, c := range n.classes {
			classes[c] = true
		}
		for _, gc := range n.groups {
			counts[gc.group] += gc.count
		}
	}
	// Columns: per pool and type, cheapest compatible offering and largest
	// allocatable among its offerings. Billed prices: the bound is of what
	// the plan costs (TotalPricePerHour), not of the risk-weighted prices
	// choices compare, which can only be higher.
	var cols []coneColumn
	classList := s.classList()
	for _, ps := range s.pools {
		byType := map[*InstanceType]int{}
		for i := range ps.cands {
			ok := false
			for _, cl := range classList {
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
				byType[c.it] = len(cols)
				cols = append(cols, coneColumn{price: c.billed, alloc: c.alloc.clone()})
				continue
			}
			cols[j].price = math.Min(cols[j].price, c.billed)
			cols[j].alloc.maxWith(c.alloc)
		}
	}
	if len(cols) == 0 {
		return 0
	}
	reqs := make([]resVec, 0, len(counts))
	ns := make([]int, 0, len(counts))
	for g, n := range counts {
		reqs = append(reqs, g.req)
		ns = append(ns, n)
	}
	b := newBoundLP(reqs, ns, cols, demand, s.repellingPodsOnNewNodes())
	if b == nil {
		return 0
	}
	bound := b.branchBound(lbSolves)
	// Both are valid bounds: the cone LP with its whole-pod patterns and
	// node-count branching, and the assignment relaxation that keeps each
	// pod's requests whole and on types its class allows.
	bound = math.Max(bound, s.assignmentBound(counts, bound))
	// Guard floating point: a bound must never exceed the plan it bounds.
	bound *= 1 - 1e-9
	if bound > plan.TotalPricePerHour {
		bound = plan.TotalPricePerHour
	}
	return bound
}

// classList returns the classes by id (cached until a class is added).
func (s *state) classList() []*constraintClass {
	if len(s.classByID) == len(s.classes) {
		return s.classByID
	}
	out := make([]*constraintClass, len(s.classes))
	for _, cl := range s.classes {
		out[cl.id] = cl
	}
	s.classByID = out
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

// lbSolves caps the LPs the bound solves (see branchBound).
const lbSolves = 15
