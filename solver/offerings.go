package solver

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// candidate is one launchable (pool, instance type, offering). Each pool's
// candidates are built once per solve and sorted by price, so "cheapest that
// fits" is the first survivor of a filter.
type candidate struct {
	pool *poolState
	it   *InstanceType
	// off points into it.Offerings: a copy in each of a pool's thousands
	// of candidates was half of a candidate's size.
	off *Offering
	// price is what choices compare: the offering's price, weighed by its
	// interruption risk for spot (see spotrisk.go). billed is the price
	// itself, what counts against a pool's pricePerHour limit.
	price  float64
	billed float64
	// risk is a spot offering's interruption risk in [0, 1] (0 for the
	// other capacity types and when nothing is known).
	risk float64
	// alloc is the type's allocatable minus the overhead of the daemonsets
	// that would land on this node.
	alloc    resVec
	capacity resVec
	// custom are this candidate's values of pool.customKeys.
	custom []string
	dsPods []int // indexes of state.daemonSets landing here
	// dsPorts are the host ports those daemonsets take on the node.
	dsPorts []hostPort
	// resv is the capacity reservation of a reserved offering (nil: none,
	// or unlimited).
	resv *reservation
}

// reservation counts the planned machines a capacity reservation carries
// in this solve, against how many more it takes. Pools that select the
// same reservation share it.
type reservation struct {
	id       string
	capacity int
	used     int
}

// room reports whether a planned node whose chosen candidate is contrib
// may move onto the reservation: it has a slot free, or the node holds
// one of it already.
func (r *reservation) room(contrib *candidate) bool {
	return r.used < r.capacity || (contrib != nil && contrib.resv == r)
}

// Label resolves a label of the node this candidate would become.
func (c *candidate) Label(key string) (string, bool) {
	switch key {
	case v1alpha1.LabelZone:
		return c.off.Zone, c.off.Zone != ""
	case v1alpha1.LabelCapacityType:
		return c.off.CapacityType, c.off.CapacityType != ""
	case v1alpha1.LabelCapacityReservationID:
		return c.off.ReservationID, c.off.ReservationID != ""
	case v1alpha1.LabelCapacityReservationType:
		return c.off.ReservationType, c.off.ReservationType != ""
	case v1alpha1.LabelZoneID:
		if c.off.ZoneID != "" {
			return c.off.ZoneID, true
		}
	case v1alpha1.LabelRegion:
		if c.off.Region != "" {
			return c.off.Region, true
		}
	case v1alpha1.LabelNodePool, v1alpha1.LabelKarpenterNodePool:
		return c.pool.pool.Name, true
	case v1alpha1.LabelInstanceType:
		return c.it.Name, true
	}
	if v, ok := c.pool.pool.Labels[key]; ok {
		return v, true
	}
	for i, k := range c.pool.customKeys {
		if k == key {
			return c.custom[i], true
		}
	}
	if v, ok := c.it.Labels[key]; ok {
		return v, true
	}
	if v, ok := c.pool.reqLabels[key]; ok {
		return v, true
	}
	// A deprecated alias (a topology key such as
	// failure-domain.beta.kubernetes.io/zone) has its well-known key's value.
	if k, ok := v1alpha1.NormalizedLabels[key]; ok && key != v1alpha1.LabelEBSCSIZone {
		return c.Label(k)
	}
	return "", false
}

// maxCustomCombos caps how many candidates one (type, offering) becomes
// through multi-value custom keys.
const maxCustomCombos = 16

// poolState is a pool indexed for the solve.
type poolState struct {
	pool  *Pool
	order int
	// reqLabels are labels the pool's requirements imply (single-value In).
	reqLabels map[string]string
	// customKeys are keys of the pool's own (not instance or offering) In
	// requirements with several values: each value is a candidate of its
	// own, so a node carries the one value its pods need.
	customKeys []string
	// taints block scheduling (startup taints excluded).
	taints []corev1.Taint
	cands  []candidate
	// minValues are the pool requirements with MinValues > 1.
	minValues []Requirement
	// reqs are the pool's requirements as candidates are matched against
	// them (capacity type defaulted).
	reqs Requirements

	hasLimits   bool
	limits      resVec
	limited     []int // resource indexes with a limit
	priceLimit  float64
	hasPriceLim bool
	used        resVec
	usedPrice   float64

	// byClass caches, per constraint class id, the compatible candidate
	// indexes (price order) and their element-wise max allocatable.
	byClass map[int]*classCands
	nextID  int

	// maxCapacity and maxPrice bound any candidate; farFromLimits caches
	// "no single candidate can push the pool over a limit" so the hot path
	// skips the check for pools with generous limits.
	maxCapacity   resVec
	maxPrice      float64
	farFromLimits bool

	// risky: some candidate's price is weighed by spot risk, so price
	// order is not the order of real prices.
	risky bool

	// valueCounts caches distinctValues.
	valueCounts map[string]int

	// reserved: some candidate is limited by a capacity reservation. The
	// packer and the improvement passes, which take offerings as unlimited,
	// leave such a pool to the greedy placement, which counts.
	reserved bool
}

// swap replaces a planned node's contribution to the pool's usage (its
// chosen candidate, or nil) with now's: capacity and price for the pool's
// limits, and the reservation slot each holds.
func (ps *poolState) swap(old, now *candidate) {
	if old == now {
		return
	}
	if old != nil {
		ps.used.sub(old.capacity)
		ps.usedPrice -= old.billed
		if old.resv != nil {
			old.resv.used--
		}
	}
	if now != nil {
		ps.used.add(now.capacity)
		ps.usedPrice += now.billed
		if now.resv != nil {
			now.resv.used++
		}
	}
	ps.updateLimitSlack()
}

// distinctValues is how many values of key the pool's candidates have.
func (ps *poolState) distinctValues(key string) int {
	if n, ok := ps.valueCounts[key]; ok {
		return n
	}
	seen := map[string]bool{}
	for i := range ps.cands {
		if v, ok := ps.cands[i].Label(key); ok {
			seen[v] = true
		}
	}
	if ps.valueCounts == nil {
		ps.valueCounts = map[string]int{}
	}
	ps.valueCounts[key] = len(seen)
	return len(seen)
}

// updateLimitSlack recomputes farFromLimits after pool usage changed.
func (ps *poolState) updateLimitSlack() {
	far := true
	if ps.hasLimits {
		for _, r := range ps.limited {
			if ps.used[r]+ps.maxCapacity[r] > ps.limits[r] {
				far = false
			}
		}
	}
	if ps.hasPriceLim && ps.usedPrice+ps.maxPrice > ps.priceLimit {
		far = false
	}
	ps.farFromLimits = far
}

type classCands struct {
	idx      []int32
	mask     []bool
	maxAlloc resVec
	// reason explains an empty idx.
	reason string
}

// permute puts s[from[k]] at s[k] for every k, moving each element once
// (along the permutation's cycles); from is used up.
func permute[T any](s []T, from []int32) {
	for start := range s {
		if from[start] < 0 {
			continue
		}
		held := s[start]
		at := start
		for {
			next := int(from[at])
			from[at] = -1
			if next == start {
				s[at] = held
				break
			}
			s[at] = s[next]
			at = next
		}
	}
}

// compareCandidates orders a pool's candidates cheapest first; at one
// price on-demand before the other capacity types, then by type, zone and
// custom label values.
func compareCandidates(a, b *candidate) int {
	if a.price != b.price {
		return cmp.Compare(a.price, b.price)
	}
	if a.off.CapacityType != b.off.CapacityType {
		switch {
		case a.off.CapacityType == v1alpha1.CapacityTypeOnDemand:
			return -1
		case b.off.CapacityType == v1alpha1.CapacityTypeOnDemand:
			return 1
		}
		return 0
	}
	if c := strings.Compare(a.it.Name, b.it.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.off.Zone, b.off.Zone); c != 0 {
		return c
	}
	for k := range a.custom {
		if c := strings.Compare(a.custom[k], b.custom[k]); c != 0 {
			return c
		}
	}
	return 0
}

// buildPool indexes a pool: candidates that satisfy the pool requirements,
// are available and not recently refused, sorted by price (on-demand first
// on ties: equal price, more reliable).
func (s *state) buildPool(p *Pool, order int) *poolState {
	ps := &poolState{pool: p, order: order, reqLabels: map[string]string{}, byClass: map[int]*classCands{}}
	combos := 1
	var customVals [][]string
	for _, r := range p.Requirements {
		if r.Operator != OpIn || len(r.Values) == 0 {
			continue
		}
		if _, ok := p.Labels[r.Key]; ok || isOfferingKey(r.Key) {
			continue
		}
		definedByType := false
		for _, it := range p.InstanceTypes {
			if _, ok := it.Labels[r.Key]; ok {
				definedByType = true
				break
			}
		}
		if definedByType {
			continue
		}
		vals := append([]string(nil), r.Values...)
		sort.Strings(vals)
		if len(vals) == 1 || combos*len(vals) > maxCustomCombos {
			// One value (or too many keys to expand): the node gets the first.
			ps.reqLabels[r.Key] = vals[0]
			continue
		}
		combos *= len(vals)
		ps.customKeys = append(ps.customKeys, r.Key)
		customVals = append(customVals, vals)
	}
	ps.taints = append(ps.taints, p.Taints...)
	ps.minValues = p.Requirements.minValuesKeys()
	reqs := make(Requirements, 0, len(p.Requirements))
	for _, r := range p.Requirements {
		reqs = append(reqs, Requirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
	}
	if !hasKey(reqs, v1alpha1.LabelCapacityType) {
		// Like Karpenter, a pool that says nothing about capacity type buys on-demand.
		reqs = append(reqs, Requirement{Key: v1alpha1.LabelCapacityType, Operator: OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}})
	}
	ps.reqs = reqs
	// One allocation for every candidate there can be: growing the slice
	// by appends copied its large elements again and again (a fifth of a
	// small plan's time with the whole catalog in a pool).
	offerings := 0
	for _, it := range p.InstanceTypes {
		if it != nil {
			offerings += len(it.Offerings)
		}
	}
	ps.cands = make([]candidate, 0, offerings*combos)
	for _, it := range p.InstanceTypes {
		if it == nil {
			continue
		}
		alloc := s.res.allocatableVec(it.Allocatable)
		capacity := s.res.vec(it.Capacity)
		if len(it.Capacity) == 0 {
			capacity = alloc.clone()
		}
		if len(s.res.drivers) > 0 {
			s.res.setTypeVolumeLimits(alloc, it.VolumeLimits)
			s.res.setTypeVolumeLimits(capacity, it.VolumeLimits)
		}
		for oi := range it.Offerings {
			off := &it.Offerings[oi]
			if !off.Available || s.snap.Unavailable.Has(it.Name, off.Zone, off.CapacityType) {
				continue
			}
			var resv *reservation
			if off.ReservationID != "" {
				if off.ReservationCapacity <= 0 {
					continue // used up
				}
				resv = s.reservation(*off)
			}
			for combo := 0; combo < combos; combo++ {
				// Built where it is kept (taken back if it does not
				// qualify): a candidate built aside escaped to the heap
				// and was copied in.
				ps.cands = append(ps.cands, candidate{pool: ps, it: it, off: off, capacity: capacity, resv: resv})
				c := &ps.cands[len(ps.cands)-1]
				c.price, c.billed, c.risk = s.snap.SpotRisk.weigh(it.Name, *off)
				if len(customVals) > 0 {
					c.custom = make([]string, len(customVals))
					rest := combo
					for k, vals := range customVals {
						c.custom[k] = vals[rest%len(vals)]
						rest /= len(vals)
					}
				}
				if !reqs.Matches(c) {
					ps.cands = ps.cands[:len(ps.cands)-1]
					continue
				}
				c.alloc = alloc.clone()
				for di, ds := range s.daemonSets {
					if ds.landsOn(c, ps.taints) {
						c.alloc.sub(ds.req)
						c.dsPods = append(c.dsPods, di)
						c.dsPorts = append(c.dsPorts, ds.ports...)
					}
				}
				if !nonNegative(c.alloc) {
					ps.cands = ps.cands[:len(ps.cands)-1]
					continue // daemonsets alone overflow this type
				}
				ps.reserved = ps.reserved || resv != nil
			}
		}
	}
	// Sorted through their indexes, then each moved once to its place: a
	// stable sort of the candidates themselves moved each large element
	// many times.
	byPrice := make([]int32, len(ps.cands))
	for i := range byPrice {
		byPrice[i] = int32(i)
	}
	slices.SortStableFunc(byPrice, func(i, j int32) int { return compareCandidates(&ps.cands[i], &ps.cands[j]) })
	permute(ps.cands, byPrice)
	ps.used = s.res.vec(p.InUse)
	ps.usedPrice = p.InUsePricePerHour
	if len(p.Limits) > 0 {
		ps.hasLimits = true
		ps.limits = s.res.vec(p.Limits)
		for n := range p.Limits {
			if i, ok := s.res.index[n]; ok {
				ps.limited = append(ps.limited, i)
			}
		}
		sort.Ints(ps.limited)
	}
	if p.PricePerHourLimit != nil {
		ps.hasPriceLim = true
		ps.priceLimit = *p.PricePerHourLimit
	}
	ps.maxCapacity = make(resVec, s.res.size())
	for i := range ps.cands {
		ps.maxCapacity.maxWith(ps.cands[i].capacity)
		ps.maxPrice = math.Max(ps.maxPrice, ps.cands[i].billed)
		ps.risky = ps.risky || ps.cands[i].risk > 0
	}
	ps.updateLimitSlack()
	return ps
}

// reservation is the solve's count of a reserved offering's reservation.
// Its capacity is the offering's (every offering of one reservation says
// the same; the smallest wins if not).
func (s *state) reservation(off Offering) *reservation {
	r := s.reservations[off.ReservationID]
	if r == nil {
		if s.reservations == nil {
			s.reservations = map[string]*reservation{}
		}
		r = &reservation{id: off.ReservationID, capacity: off.ReservationCapacity}
		s.reservations[off.ReservationID] = r
	}
	r.capacity = min(r.capacity, off.ReservationCapacity)
	return r
}

func isOfferingKey(key string) bool {
	switch key {
	case v1alpha1.LabelZone, v1alpha1.LabelCapacityType, v1alpha1.LabelZoneID, v1alpha1.LabelRegion, v1alpha1.LabelNodePool,
		v1alpha1.LabelKarpenterNodePool, v1alpha1.LabelInstanceType, v1alpha1.LabelHostname,
		v1alpha1.LabelCapacityReservationID, v1alpha1.LabelCapacityReservationType:
		return true
	}
	return false
}

// forClass returns the pool's candidates compatible with a constraint class.
func (s *state) forClass(ps *poolState, cl *constraintClass) *classCands {
	if cc := ps.byClass[cl.id]; cc != nil {
		return cc
	}
	cc := &classCands{mask: make([]bool, len(ps.cands)), maxAlloc: make(resVec, s.res.size())}
	ps.byClass[cl.id] = cc
	if t, ok := podTolerates(cl.tolerations, ps.taints); !ok {
		cc.reason = "taint " + taintString(t) + " not tolerated"
		return cc
	}
	for i := range ps.cands {
		c := &ps.cands[i]
		if cl.reqs.Matches(c) {
			cc.mask[i] = true
			cc.idx = append(cc.idx, int32(i))
			cc.maxAlloc.maxWith(c.alloc)
		}
	}
	if len(cc.idx) == 0 {
		if missing := s.missingCapacityTypes(ps, cl); missing != "" {
			cc.reason = missing
		} else if len(ps.cands) == 0 {
			cc.reason = "no available offering satisfies the pool requirements"
		} else {
			cc.reason = "no instance type satisfies requirements " + cl.reqs.String()
		}
	}
	return cc
}

// wellKnownCapacityTypes are the capacity types a pool may allow, in the
// order a reason names them.
var wellKnownCapacityTypes = []string{v1alpha1.CapacityTypeOnDemand, v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeReserved}

// missingCapacityTypes explains an empty candidate list when the cause is a
// purchase option: the pool and the pods agree on capacity types that no
// available offering of the pool's types has (a pool allowing only reserved
// before any capacity reservation is known, spot on a spot-less catalog).
// A requirement mismatch elsewhere would read as a generic misfit, which
// sends people looking at requests and labels instead. "" when not the cause.
func (s *state) missingCapacityTypes(ps *poolState, cl *constraintClass) string {
	offered := map[string]bool{}
	for _, it := range ps.pool.InstanceTypes {
		if it == nil {
			continue
		}
		for _, off := range it.Offerings {
			if off.Available && !s.snap.Unavailable.Has(it.Name, off.Zone, off.CapacityType) && (off.ReservationID == "" || off.ReservationCapacity > 0) {
				offered[off.CapacityType] = true
			}
		}
	}
	admits := func(ct string) bool { return allowsCapacityType(ps.reqs, ct) && allowsCapacityType(cl.reqs, ct) }
	for ct := range offered {
		if admits(ct) {
			return "" // the gap is elsewhere: an allowed capacity type is on offer
		}
	}
	var allowed []string
	for _, ct := range wellKnownCapacityTypes {
		if admits(ct) {
			allowed = append(allowed, ct)
		}
	}
	if len(allowed) == 0 {
		return ""
	}
	msg := "no " + strings.Join(allowed, " or ") + " offering: none of the pool's instance types is available as " + strings.Join(allowed, " or ")
	if containsString(allowed, v1alpha1.CapacityTypeReserved) {
		msg += " (no capacity reservation the pool selects has room; allow on-demand in " + v1alpha1.LabelCapacityType + " to fall back to it)"
	}
	return msg
}

// allowsCapacityType reports whether the capacity-type requirements among
// rs admit ct.
func allowsCapacityType(rs Requirements, ct string) bool {
	for i := range rs {
		if rs[i].Key == v1alpha1.LabelCapacityType && !rs[i].Matches(ct, true) {
			return false
		}
	}
	return true
}

func taintString(t corev1.Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}

// withinLimits reports whether swapping the node's current contribution
// (capacity and price of its chosen candidate, or nothing) for c keeps the
// pool within its limits.
//
// A reserved candidate also needs a slot of its reservation.
func (ps *poolState) withinLimits(contrib *candidate, c *candidate) bool {
	if c.resv != nil && !c.resv.room(contrib) {
		return false
	}
	if ps.farFromLimits {
		return true
	}
	if ps.hasLimits {
		for _, r := range ps.limited {
			v := ps.used[r] + c.capacity[r]
			if contrib != nil {
				v -= contrib.capacity[r]
			}
			if v > ps.limits[r] {
				return false
			}
		}
	}
	if ps.hasPriceLim {
		v := ps.usedPrice + c.billed
		if contrib != nil {
			v -= contrib.billed
		}
		if v > ps.priceLimit+1e-9 {
			return false
		}
	}
	return true
}

// daemonSetOverhead is a daemonset's pod template, reduced to what decides
// where it lands and what it takes.
type daemonSetOverhead struct {
	name        string
	req         resVec
	selector    Requirements
	terms       []Requirements
	tolerations []corev1.Toleration
	// ports are the template's host ports: a pending pod wanting one of
	// them can never run on a node the daemonset lands on.
	ports []hostPort
}

func (d *daemonSetOverhead) landsOn(c *candidate, taints []corev1.Taint) bool {
	if _, ok := tolerates(d.tolerations, taints); !ok {
		return false
	}
	if !d.selector.Matches(c) {
		return false
	}
	if len(d.terms) == 0 {
		return true
	}
	for _, t := range d.terms {
		if t.Matches(c) {
			return true
		}
	}
	return false
}

func nonNegative(v resVec) bool {
	for _, x := range v {
		if x < 0 {
			return false
		}
	}
	return true
}

func hasKey(rs Requirements, key string) bool {
	for _, r := range rs {
		if r.Key == key {
			return true
		}
	}
	return false
}
