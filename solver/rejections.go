package solver

import (
	"sort"
)

// maxRejectedPerReason caps the offerings recorded for one reason: a person
// reading a decision wants the closest misses, not the whole catalog.
const maxRejectedPerReason = 3

// Rejection groups the offerings cheaper than a new node's chosen one that
// the solver passed over for one reason.
type Rejection struct {
	Reason string
	// Offerings are the cheapest few of them, cheapest first.
	Offerings []Fallback
	// Count is how many offerings were passed over for this reason.
	Count int
}

// rejections explains, for a planned node, every offering of its pool that
// costs less than the chosen one: refused by the cloud, against the pods'
// requirements or topology pins, too small for the pods, or over the pool's
// limits. Offerings the pool's own requirements exclude are the user's
// choice and are not listed.
func (s *state) rejections(n *nodeState, chosen *candidate) []Rejection {
	ps := n.pool
	var out []Rejection
	add := func(reason string, f Fallback) {
		for i := range out {
			if out[i].Reason == reason {
				out[i].Count++
				if len(out[i].Offerings) < maxRejectedPerReason {
					out[i].Offerings = append(out[i].Offerings, f)
				}
				return
			}
		}
		out = append(out, Rejection{Reason: reason, Count: 1, Offerings: []Fallback{f}})
	}

	s.refusedCheaper(ps, chosen, add)

	classes := s.classList()
	needs := s.reqString(n.used)
	for i := range ps.cands {
		c := &ps.cands[i]
		if c.billed >= chosen.billed {
			if ps.risky {
				continue // weighed prices need not follow real ones
			}
			break // price order
		}
		reason := s.rejectedBy(n, c, i, classes, needs)
		if reason == notConsidered && c.price >= chosen.price && c.risk > 0 {
			reason = RejectedForSpotRisk
		}
		if reason != "" {
			add(reason, Fallback{InstanceType: c.it, Offering: *c.off, SpotRiskNote: s.riskNote(c)})
		}
	}
	return out
}

// RejectedForSpotRisk is the reason for cheaper spot offerings that carry
// the pods but whose price, weighed by interruption risk (see SpotRisk),
// is not below the chosen offering's.
const RejectedForSpotRisk = "interruption risk: weighed by it (EC2's placement score, Joinery's recent interruptions), the price is not below the chosen offering's"

// notConsidered is rejectedBy's reason when nothing rules the offering
// out: the packing preferred another.
const notConsidered = "not considered by the packing"

// rejectedBy is the first reason candidate c (at position i of its pool)
// cannot carry n's pods.
func (s *state) rejectedBy(n *nodeState, c *candidate, i int, classes []*constraintClass, needs string) string {
	for _, id := range n.classes {
		cl := classes[id]
		if !s.forClass(n.pool, cl).mask[i] {
			if _, ok := podTolerates(cl.tolerations, n.pool.taints); !ok {
				return "the pods do not tolerate the pool's taints"
			}
			return "does not satisfy the pods' requirements " + cl.reqs.String()
		}
	}
	for _, p := range n.pins {
		if v, ok := c.Label(p.key); !ok || v != p.value {
			return "the pods are pinned to " + p.key + "=" + p.value + " (topology or volume)"
		}
	}
	if !geVec(c.alloc, n.used) {
		msg := "too small for the pods' requests " + needs
		if len(c.dsPods) > 0 {
			msg += " plus daemonset overhead"
		}
		return msg
	}
	if c.resv != nil && !c.resv.room(nil) {
		return "capacity reservation " + c.resv.id + " is used up by other machines of this plan"
	}
	if !n.pool.withinLimits(nil, c) {
		return "would exceed the pool's limits"
	}
	if portsConflict(n.ports, c.dsPorts) {
		return "a daemonset on it takes a host port the pods need"
	}
	if len(n.pool.minValues) > 0 {
		return "left out to keep the pool's minValues"
	}
	return notConsidered
}

// refusedCheaper reports the pool's offerings that the cloud refused
// recently and that would have been cheaper; they never became candidates.
func (s *state) refusedCheaper(ps *poolState, chosen *candidate, add func(string, Fallback)) {
	if len(s.snap.Unavailable) == 0 {
		return
	}
	var refused []Fallback
	for _, it := range ps.pool.InstanceTypes {
		if it == nil {
			continue
		}
		for _, off := range it.Offerings {
			if !off.Available || off.PricePerHour >= chosen.billed || !s.snap.Unavailable.Has(it.Name, off.Zone, off.CapacityType) {
				continue
			}
			c := candidate{pool: ps, it: it, off: &off, price: off.PricePerHour}
			if ps.reqs.Matches(&c) {
				refused = append(refused, Fallback{InstanceType: it, Offering: off})
			}
		}
	}
	sort.SliceStable(refused, func(i, j int) bool { return refused[i].Offering.PricePerHour < refused[j].Offering.PricePerHour })
	for _, f := range refused {
		add("refused by the cloud recently (insufficient capacity)", f)
	}
}
