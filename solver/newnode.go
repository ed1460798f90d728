package solver

import (
	"math"
	"slices"
	"sort"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
)

type evalMode uint8

const (
	// modeGrow may move a planned node to a bigger candidate.
	modeGrow evalMode = iota
	// modeSlack only uses room left in the planned node's current cheapest
	// candidate: pods placed this way cost nothing extra.
	modeSlack
)

const unlimited = math.MaxInt32

// evaluation is the outcome of evaluate: how many pods of the group the node
// takes, the domain pins that requires, and facts for the caller.
type evaluation struct {
	k    int
	pins []pin
	// perPod is the extra $/h per pod placed (0 when it fits in slack).
	perPod float64
	// zoneLimited is set when a non-hostname topology rule capped k, so the
	// caller should revisit other nodes before opening more.
	zoneLimited bool
}

// topoLimit is how many pods of g a domain d of rule t accepts (0: none);
// existing says d is an existing node's domain.
func topoLimit(t *topoGroup, selfSelects, owner, existing bool, d string) int {
	if !owner {
		if t.kind == kindAntiAffinity && !t.preferred && t.owners[d] > 0 {
			return 0
		}
		return unlimited
	}
	switch t.kind {
	case kindSpread:
		c, min := t.counts[d], t.minCount()
		if existing {
			min = t.existingMinCount()
		}
		if !selfSelects {
			if c-min > t.maxSkew {
				return 0
			}
			return unlimited
		}
		room := int(t.maxSkew + min - c)
		if room <= 0 {
			return 0
		}
		return room
	case kindAffinity:
		if t.counts[d] > 0 || (t.total == 0 && selfSelects) {
			return unlimited
		}
		return 0
	default:
		if t.counts[d] > 0 {
			return 0
		}
		if selfSelects {
			return 1
		}
		return unlimited
	}
}

// domainLimit applies every rule of g on key to domain d (of an existing
// node when existing is set).
func (g *podGroup) domainLimit(key, d string, existing bool) int {
	limit := unlimited
	for i, t := range g.owned {
		if t.key == key {
			if l := topoLimit(t, g.ownedSelf(i), true, existing, d); l < limit {
				limit = l
			}
		}
	}
	for _, t := range g.countedBy {
		if t.key == key {
			if l := topoLimit(t, true, false, existing, d); l < limit {
				limit = l
			}
		}
	}
	return limit
}

// perNodeBound bounds how many pods of g one node may take now, whatever
// its domains: a rule of g's own that counts g itself takes one pod per
// domain (anti-affinity) or at most maxSkew over the least loaded domain
// (spread: no domain counts fewer than none), and host ports one.
func (g *podGroup) perNodeBound() int {
	bound := unlimited
	if len(g.ports) > 0 {
		bound = 1
	}
	for i, t := range g.owned {
		if !g.ownedSelf(i) {
			continue
		}
		switch t.kind {
		case kindAntiAffinity:
			bound = 1
		case kindSpread:
			bound = min(bound, int(max(t.maxSkew+t.minCount(), 0)))
		}
	}
	return bound
}

// ownsRuleOn reports whether g owns a rule that needs a present domain on key.
func (g *podGroup) needsDomain(key string) (needs bool, spread bool) {
	for _, t := range g.owned {
		if t.key == key && t.kind != kindAntiAffinity {
			needs = true
			if t.kind == kindSpread {
				spread = true
			}
		}
	}
	return needs, spread
}

func (g *podGroup) ownedSelf(i int) bool { return g.ownedSelects[i] }

// domainCount sums selected pods in d over g's rules on key (balance tie-break).
func (g *podGroup) domainCount(key, d string) int32 {
	var c int32
	for _, t := range g.owned {
		if t.key == key {
			c += t.counts[d]
		}
	}
	for _, t := range g.countedBy {
		if t.key == key {
			c += t.counts[d]
		}
	}
	return c
}

// evaluate decides how many pods of g node n takes now (0: none). It does
// not change anything; commit applies the result.
func (s *state) evaluate(g *podGroup, n *nodeState, mode evalMode) *evaluation {
	ev := &s.eval
	ev.k, ev.pins, ev.perPod, ev.zoneLimited = 0, ev.pins[:0], math.Inf(1), false
	want := g.remaining()
	if want == 0 || !fitsAdd(n.maxAlloc, n.used, g.req) {
		return ev
	}
	var cc *classCands
	classKnown := true
	if n.existing {
		if !s.existingCompatible(n, g.class) {
			return ev
		}
	} else {
		cc = s.forClass(n.pool, g.class)
		if len(cc.idx) == 0 {
			return ev
		}
		classKnown = containsInt(n.classes, g.class.id)
	}
	if len(g.ports) > 0 {
		if portsConflict(g.ports, n.ports) {
			return ev
		}
		want = 1
	}
	limit := want
	// Hostname rules: the node is its own domain.
	if l := g.domainLimit(v1alpha1.LabelHostname, n.hostname, n.existing); l < limit {
		limit = l
		if limit == 0 {
			return ev
		}
	}
	hostLimit := limit
	var c0 *candidate
	if !n.existing {
		c0 = n.chosen()
		// Slack mode skips pools with minValues: only plannedFit keeps them.
		if mode == modeSlack && (c0 == nil || len(n.pool.minValues) > 0 || (!classKnown && !cc.mask[n.cands[0]])) {
			return ev
		}
	}
	for _, key := range s.pinKeysFor(g) {
		if d, ok := n.domain(key); ok {
			if l := g.domainLimit(key, d, n.existing); l < limit {
				limit = l
			}
		} else if n.existing {
			if needs, _ := g.needsDomain(key); needs {
				return ev
			}
			continue
		} else {
			v, l, offered := s.chooseDomain(g, n, cc, classKnown, key, mode, c0)
			if !offered {
				// No candidate that could carry g has the key: the node will
				// have no domain, which only rules g out when g's own spread
				// or affinity needs one. A rule that merely selects g (someone
				// else's constraint) does not bind it.
				if needs, _ := g.needsDomain(key); needs {
					return ev
				}
				continue
			}
			if l == 0 {
				return ev
			}
			ev.pins = append(ev.pins, pin{key, v})
			if l < limit {
				limit = l
			}
		}
		if limit == 0 {
			return ev
		}
	}
	ev.zoneLimited = limit < hostLimit
	kRes := 0
	if n.existing {
		kRes = fitCount(n.maxAlloc, n.used, g.req)
	} else if mode == modeSlack {
		if !matchesPins(c0, ev.pins) || portsConflict(g.ports, c0.dsPorts) {
			return ev
		}
		kRes = fitCount(c0.alloc, n.used, g.req)
		ev.perPod = 0
	} else {
		// Growing a node that already carries pods must beat opening a new one.
		ceiling := math.Inf(1)
		if len(n.groups) > 0 {
			ceiling = g.openCost * (1 + 1e-9)
		}
		kRes = s.plannedFit(g, n, cc, classKnown, limit, ceiling, ev)
		if ev.perPod > ceiling {
			return ev
		}
	}
	if kRes < limit {
		limit = kRes
		ev.zoneLimited = false
	}
	ev.k = limit
	return ev
}

func matchesPins(c *candidate, pins []pin) bool {
	for _, p := range pins {
		if v, ok := c.Label(p.key); !ok || v != p.value {
			return false
		}
	}
	return true
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// usable reports whether candidate i of planned node n can carry g given
// class, pins chosen so far and pool limits.
func (s *state) usable(n *nodeState, cc *classCands, classKnown bool, i int32, pins []pin, contrib *candidate, ports []hostPort) bool {
	if !classKnown && !cc.mask[i] {
		return false
	}
	c := &n.pool.cands[i]
	if len(pins) > 0 && !matchesPins(c, pins) {
		return false
	}
	if len(ports) > 0 && portsConflict(ports, c.dsPorts) {
		return false
	}
	return n.pool.withinLimits(contrib, c)
}

// chooseDomain picks the value of key a planned node commits to for g:
// among values its usable candidates offer, one every rule accepts; spread
// owners take the least loaded domain, everyone else the cheapest.
// offered is false when no usable candidate has the key at all.
func (s *state) chooseDomain(g *podGroup, n *nodeState, cc *classCands, classKnown bool, key string, mode evalMode, c0 *candidate) (v string, limit int, offered bool) {
	vals := s.valScratch[:0]
	prices := s.priceScratch[:0]
	if mode == modeSlack {
		if v, ok := c0.Label(key); ok {
			vals, prices = append(vals, v), append(prices, c0.price)
		}
	} else {
		// Each value keeps its cheapest candidate, so once every value the
		// pool has is found the rest of the candidates cannot change the
		// choice; scanning them all for every group tried on every planned
		// node made the solve quadratic.
		all := n.pool.distinctValues(key)
		for _, i := range n.cands {
			c := &n.pool.cands[i]
			v, ok := c.Label(key)
			if !ok || containsString(vals, v) || !fitsAdd(c.alloc, n.used, g.req) || !s.usable(n, cc, classKnown, i, s.eval.pins, c0, g.ports) {
				continue
			}
			vals, prices = append(vals, v), append(prices, c.price)
			if len(vals) == all {
				break
			}
		}
	}
	s.valScratch, s.priceScratch = vals, prices
	_, spreadOwner := g.needsDomain(key)
	best, bestLimit := -1, 0
	var bestCount int32
	for i, v := range vals {
		l := g.domainLimit(key, v, false)
		if l == 0 {
			continue
		}
		cnt := g.domainCount(key, v)
		if best >= 0 {
			better := false
			if spreadOwner {
				better = cnt < bestCount || (cnt == bestCount && prices[i] < prices[best])
			} else {
				better = prices[i] < prices[best] || (prices[i] == prices[best] && cnt < bestCount)
			}
			if !better && !(cnt == bestCount && prices[i] == prices[best] && v < vals[best]) {
				continue
			}
		}
		best, bestLimit, bestCount = i, l, cnt
	}
	if best < 0 {
		return "", 0, len(vals) > 0
	}
	return vals[best], bestLimit, true
}

// plannedFit picks how many pods of g planned node n takes: for every usable
// candidate c it prices the move as (price_c - price of the node's current
// candidate) / pods c fits (capped by limit), and takes the cheapest per pod,
// preferring more pods on ties. The count is then capped so the surviving
// candidates still satisfy the pool's minValues. A perPod above ceiling is
// one the caller discards: it is reported only as being above ceiling.
func (s *state) plannedFit(g *podGroup, n *nodeState, cc *classCands, classKnown bool, limit int, ceiling float64, ev *evaluation) int {
	mv := n.pool.minValues
	var perValue []map[string]int
	if len(mv) > 0 {
		perValue = make([]map[string]int, len(mv))
		for i := range perValue {
			perValue[i] = map[string]int{}
		}
	}
	contrib := n.chosen()
	base := 0.0
	if contrib != nil {
		base = contrib.price
	}
	bestK, bestCost := 0, math.Inf(1)
	// Candidates come cheapest first and none takes more than kMax pods, so
	// (price - base) / kMax bounds the cost of this one and all after it:
	// once it beats neither the best so far nor the ceiling, the scan is
	// over. Without this a planned node's thousands of candidates were
	// scanned for every group tried on it, which made the solve quadratic.
	// minValues needs every candidate's value, so it scans them all.
	kMax := min(fitCount(n.maxAlloc, n.used, g.req), limit)
	for _, i := range n.cands {
		c := &n.pool.cands[i]
		if len(mv) == 0 && kMax > 0 {
			if lb := (c.price - base) / float64(kMax); lb > bestCost+1e-12 || (lb > ceiling && bestCost > ceiling) {
				break
			}
		}
		if !s.usable(n, cc, classKnown, i, ev.pins, contrib, g.ports) {
			continue
		}
		f := fitCount(c.alloc, n.used, g.req)
		if f == 0 {
			continue
		}
		k := f
		if k > limit {
			k = limit
		}
		cost := (c.price - base) / float64(k)
		if cost < bestCost-1e-12 || (cost <= bestCost+1e-12 && k > bestK) {
			bestK, bestCost = k, cost
		}
		for j, r := range mv {
			if v, ok := c.Label(r.Key); ok && f > perValue[j][v] {
				perValue[j][v] = f
			}
		}
	}
	ev.perPod = bestCost
	for j, r := range mv {
		fits := make([]int, 0, len(perValue[j]))
		for _, f := range perValue[j] {
			fits = append(fits, f)
		}
		if len(fits) < *r.MinValues {
			return 0
		}
		sort.Sort(sort.Reverse(sort.IntSlice(fits)))
		if f := fits[*r.MinValues-1]; f < bestK {
			bestK = f
		}
	}
	return bestK
}

// commit places k pods of g on n with the pins evaluate chose.
func (s *state) commit(g *podGroup, n *nodeState, k int, pins []pin) {
	if !n.existing {
		ps := n.pool
		cc := s.forClass(ps, g.class)
		classKnown := containsInt(n.classes, g.class.id)
		contrib := n.chosen()
		// In place when the node owns its list; otherwise gathered in the
		// state's buffer and copied out at their size (a copy of the
		// whole shared list was a tenth of a 100k-pod solve's bytes).
		var kept []int32
		if n.ownsCands {
			kept = n.cands[:0]
		} else {
			kept = s.candBuf[:0]
		}
		// A candidate takes k pods when it has used + k×req of every
		// resource g asks for (fitCount ≥ k without its divisions); the
		// bound on what the kept ones offer, and what they offer within
		// each of tierSteps of the cheapest (tierRooms, for noteSlack), are
		// taken in the same pass.
		need := s.needScratch
		for r := range need {
			need[r] = math.MinInt64
			if g.req[r] > 0 {
				need[r] = n.used[r] + int64(k)*g.req[r]
			}
		}
		for r := range n.maxAlloc {
			n.maxAlloc[r] = 0
		}
		tiers := s.grownScratch
		if s.slack == nil {
			tiers = nil
		}
		for _, room := range tiers {
			for r := range room {
				room[r] = math.MinInt64
			}
		}
		j, base := 0, 0.0
		for _, i := range n.cands {
			c := &ps.cands[i]
			if !s.usable(n, cc, classKnown, i, pins, contrib, g.ports) || !geVec(c.alloc, need) {
				continue
			}
			kept = append(kept, i)
			n.maxAlloc.maxWith(c.alloc)
			if len(kept) == 1 {
				base = c.price
			}
			for j < len(tiers) && c.price > base+tierSteps[j] {
				if j+1 < len(tiers) {
					copy(tiers[j+1], tiers[j])
				}
				j++
			}
			if j < len(tiers) {
				tiers[j].maxWith(c.alloc)
			}
		}
		for ; j+1 < len(tiers); j++ {
			copy(tiers[j+1], tiers[j])
		}
		if !n.ownsCands {
			s.candBuf = kept
			kept = slices.Clone(kept)
		}
		n.cands, n.ownsCands = kept, true
		var c *candidate
		if len(n.cands) > 0 {
			c = &ps.cands[n.cands[0]]
		}
		ps.swap(contrib, c)
		n.pins = append(n.pins, pins...)
		if !classKnown {
			n.classes = append(n.classes, g.class.id)
		}
	}
	n.used.addScaled(g.req, int64(k))
	for i := 0; i < k; i++ {
		n.ports = append(n.ports, g.ports...)
	}
	if l := len(n.groups); l > 0 && n.groups[l-1].group == g {
		n.groups[l-1].count += k
	} else {
		n.groups = append(n.groups, groupCount{group: g, count: k})
	}
	for _, p := range g.pods[g.placed : g.placed+k] {
		n.placed = append(n.placed, p)
		s.order = append(s.order, Placement{Pod: p, NodeName: n.name, New: !n.existing})
	}
	for _, t := range g.owned {
		if t.kind == kindAntiAffinity {
			if d, ok := n.domain(t.key); ok {
				t.owners[d] += int32(k)
			}
		}
	}
	for _, t := range g.countedBy {
		s.count(t, n, int32(k))
	}
	g.placed += k
	// A node carries one value of each multi-value custom key: fix it now,
	// so later pods see the label they will get and fallbacks keep it.
	if !n.existing {
		before := len(n.cands)
		for _, key := range n.pool.customKeys {
			s.pinToChosen(n, key)
		}
		s.noteSlack(n, len(n.cands) == before)
	}
}

// pinToChosen commits a planned node to its chosen candidate's value of key
// (used when a rule created late must count pods already on the node).
func (s *state) pinToChosen(n *nodeState, key string) {
	if key == v1alpha1.LabelHostname {
		return
	}
	if _, ok := n.pinned(key); ok {
		return
	}
	c := n.chosen()
	if c == nil {
		return
	}
	v, ok := c.Label(key)
	if !ok {
		return
	}
	p := []pin{{key, v}}
	var kept []int32
	for _, i := range n.cands {
		if matchesPins(&n.pool.cands[i], p) {
			kept = append(kept, i)
		}
	}
	n.cands, n.ownsCands = kept, true
	n.pins = append(n.pins, p...)
}
