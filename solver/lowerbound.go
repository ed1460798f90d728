package solver

import (
	"math"
	"sync/atomic"

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
				cols = append(cols, coneColumn{price: c.billed, alloc: c.alloc.clone(), key: len(cols)})
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
	repel := s.repellingPodsOnNewNodes()
	b := newBoundLP(reqs, ns, cols, demand, repel)
	if b == nil {
		return 0
	}
	bound, used := b.branchBound(lbSolves)
	// Both are valid bounds: the cone LP with its whole-pod patterns and
	// node-count branching, and the assignment relaxation that keeps each
	// pod's requests whole and on types its class allows.
	assign := s.assignmentBound(counts, bound)
	// Types the cone prices as if they held fractions of pods, though
	// they hold few, weaken the bound most where its best solution buys
	// many of them (a 2-vCPU, 3.5 GiB type carries 19 pods of 100m in the
	// cone, fewer whole). When the cone's bound is the one reported and
	// the plan is more than widerGap above it, those types are priced
	// again by whole-pod patterns (up to widerK pods), and the better of
	// the two bounds (both valid) is kept. On one generic 500-pod workload
	// the gap went from 4.2% to 0.2%. It costs one more branch and bound
	// with a knapsack per such type and round, 2-3x the first's time on
	// workloads of hundreds of shapes, and it measured no gain where those
	// types carried little of the bound: only up to widerMaxShapes, and
	// when they carry widerShare of it or more (the gain above: 18%; no
	// gain measured at 4-12%).
	if plan.TotalPricePerHour > bound*(1+widerGap) && bound >= assign && len(b.shapes) <= widerMaxShapes {
		wider := map[int]bool{}
		share := 0.0
		for ci, n := range used {
			if bc := &b.cols[ci]; n > 1e-9 && !bc.small && b.maxPods(bc) <= widerK {
				wider[bc.key] = true
				share += n * bc.price
			}
		}
		if share >= widerShare*bound {
			if b2 := newBoundLPWith(reqs, ns, cols, demand, repel, wider); b2 != nil {
				v, _ := b2.branchBound(lbSolves)
				bound = math.Max(bound, v)
				widerRuns.Add(1)
			}
		}
	}
	bound = math.Max(bound, assign)
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

// widerGap is the gap between plan and bound above which lowerBound prices
// the types its solution uses by whole-pod patterns up to widerK pods.
var widerGap = 0.03

// widerMaxShapes is the most distinct pod shapes lowerBound tries the
// wider patterns on (see there): the knapsacks grow with them (67 shapes:
// +20 ms; 127: +450 ms, no gain).
const widerMaxShapes = 100

// widerShare is the least share of the bound the types priced again must
// carry in its solution for lowerBound to try (see there); a variable so
// tests can make it always.
var widerShare = 0.15

// widerRuns counts the bounds priced again with wider patterns (tests
// check theirs exercise it).
var widerRuns atomic.Int64

// lbSolves caps the LPs the bound solves (see branchBound).
const lbSolves = 15
