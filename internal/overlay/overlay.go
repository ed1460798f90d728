// Package overlay applies NodeOverlays to the offerings and instance types
// the solver plans with. It is the one place overlays change a price or a
// capacity: provisioning, consolidation and `joinery simulate` all build
// their pools through solverinput, which calls Apply, and the NodeOverlay
// status controller calls Apply too to find conflicts, so what it reports
// is what planning does.
//
// The semantics are Karpenter's (pkg/controllers/nodeoverlay): overlays
// are taken highest weight first (equal weights: name later in the
// alphabet first); the first overlay selecting an offering sets its price,
// as an absolute price or an adjustment of the catalog's price (never
// below 0); capacity is merged per resource, the first overlay to set a
// resource keeping it. An overlay that conflicts with one of the same
// weight on any offering of any pool is not applied at all, so no pool
// sees it half applied. One difference: two overlays of equal weight that
// ask for exactly the same change do not conflict here (either order gives
// the same result), where Karpenter reports them too.
package overlay

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

// Overlay is a NodeOverlay read for application.
type Overlay struct {
	Name         string
	Weight       int32
	Requirements solver.Requirements
	// Change is spec.price or spec.priceAdjustment ("" when neither).
	Change   string
	Capacity corev1.ResourceList
}

// Set is the overlays in the order they apply.
type Set struct {
	overlays []Overlay
}

// Len is the number of overlays in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.overlays)
}

// Compile reads overlays into a Set. Overlays being deleted are left out,
// and so are invalid ones, returned by name with an error naming the
// overlay and the field: the CRD's schema already refuses them, so one
// means an object written around it, and it must not stop planning.
func Compile(list []*v1alpha1.NodeOverlay) (*Set, map[string]error) {
	ordered := make([]*v1alpha1.NodeOverlay, 0, len(list))
	for _, o := range list {
		if o.DeletionTimestamp != nil {
			continue
		}
		ordered = append(ordered, o)
	}
	v1alpha1.OrderOverlays(ordered)
	set := &Set{overlays: make([]Overlay, 0, len(ordered))}
	var invalid map[string]error
	for _, o := range ordered {
		c, err := compile(o)
		if err != nil {
			if invalid == nil {
				invalid = map[string]error{}
			}
			invalid[o.Name] = err
			continue
		}
		set.overlays = append(set.overlays, c)
	}
	return set, invalid
}

func compile(o *v1alpha1.NodeOverlay) (Overlay, error) {
	c := Overlay{Name: o.Name, Capacity: o.Spec.Capacity}
	if o.Spec.Weight != nil {
		c.Weight = *o.Spec.Weight
	}
	switch {
	case o.Spec.Price != nil && o.Spec.PriceAdjustment != nil:
		return Overlay{}, fmt.Errorf("NodeOverlay %s: spec: set either price or priceAdjustment, not both", o.Name)
	case o.Spec.Price != nil:
		if _, err := AdjustedPrice(0, *o.Spec.Price); err != nil || strings.HasPrefix(*o.Spec.Price, "+") || strings.HasPrefix(*o.Spec.Price, "-") {
			return Overlay{}, fmt.Errorf("NodeOverlay %s: spec.price %q: want an unsigned USD amount per hour such as \"0.042\"", o.Name, *o.Spec.Price)
		}
		c.Change = *o.Spec.Price
	case o.Spec.PriceAdjustment != nil:
		a := *o.Spec.PriceAdjustment
		if _, err := AdjustedPrice(1, a); err != nil || !(strings.HasPrefix(a, "+") || strings.HasPrefix(a, "-")) {
			return Overlay{}, fmt.Errorf("NodeOverlay %s: spec.priceAdjustment %q: want a signed USD amount (\"-0.05\") or percentage (\"-40%%\")", o.Name, a)
		}
		c.Change = a
	}
	for name := range o.Spec.Capacity {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods:
			return Overlay{}, fmt.Errorf("NodeOverlay %s: spec.capacity.%s: cpu, memory, ephemeral-storage and pods cannot be overlaid; add only extended resources", o.Name, name)
		}
	}
	for _, r := range o.Spec.Requirements {
		c.Requirements = append(c.Requirements, solver.Requirement{Key: normalizeKey(r.Key), Operator: solver.Operator(r.Operator), Values: r.Values})
	}
	return c, nil
}

func normalizeKey(key string) string {
	if k, ok := v1alpha1.NormalizedLabels[key]; ok {
		return k
	}
	return key
}

// AdjustedPrice is Karpenter's cloudprovider.AdjustedPrice: a change
// without a sign is the new price, "+N"/"-N" adds USD, "+N%"/"-N%" scales;
// the result is never below 0.
func AdjustedPrice(price float64, change string) (float64, error) {
	if change == "" {
		return price, nil
	}
	if !strings.HasPrefix(change, "+") && !strings.HasPrefix(change, "-") {
		return strconv.ParseFloat(change, 64)
	}
	var adjusted float64
	if pct, ok := strings.CutSuffix(change, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil {
			return 0, err
		}
		adjusted = price * (1 + v/100)
	} else {
		v, err := strconv.ParseFloat(change, 64)
		if err != nil {
			return 0, err
		}
		adjusted = price + v
	}
	return max(adjusted, 0), nil
}

// Conflict is an overlay left out because another of the same weight
// already changes the same thing differently.
type Conflict struct {
	Overlay, With string
	Pool          string
	InstanceType  string
	// Zone and CapacityType name the offering of a price conflict;
	// Resource the capacity resource of a capacity conflict.
	Zone, CapacityType string
	Resource           corev1.ResourceName
}

func (c Conflict) String() string {
	what := fmt.Sprintf("the price of %s %s in %s", c.CapacityType, c.InstanceType, c.Zone)
	if c.Resource != "" {
		what = fmt.Sprintf("capacity %s of %s", c.Resource, c.InstanceType)
	}
	return fmt.Sprintf("conflicts with NodeOverlay %s (same weight) on %s in NodePool %s; it is not applied: give one a higher spec.weight or make their requirements disjoint",
		c.With, what, c.Pool)
}

// Apply changes the pools' offering prices and instance type capacity in
// place and returns the overlays it left out for a conflict (at most one
// Conflict per overlay: the first found). The pools must own their
// InstanceTypes and Offerings (solverinput.Pool builds fresh ones);
// Capacity and Allocatable lists are replaced, never modified, since the
// sizing memo shares them between pools.
func (s *Set) Apply(pools []*solver.Pool) []Conflict {
	if s.Len() == 0 {
		return nil
	}
	st := newState(pools)
	var conflicts []Conflict
	for i := range s.overlays {
		o := &s.overlays[i]
		matches := st.matches(o)
		if c, ok := st.conflict(o, matches); ok {
			conflicts = append(conflicts, c)
			continue
		}
		st.store(o, matches)
	}
	st.write()
	return conflicts
}

// state is what the overlays applied so far decided, per pool, type and
// offering (indices into the pools), written to the pools at the end.
type state struct {
	pools []*solver.Pool
	price map[offeringRef]*priceEntry
	cap   map[typeRef]map[corev1.ResourceName]*capEntry
}

type typeRef struct{ pool, typ int }
type offeringRef struct{ pool, typ, off int }

type priceEntry struct {
	// by set the price; last is the first overlay of the lowest weight
	// seen so far to select the offering, against which an overlay of
	// the same weight conflicts.
	by, change       string
	last, lastChange string
	lastWeight       int32
}

// capEntry is one capacity resource of a type: quantity is the first
// (highest) overlay's; last is as in priceEntry.
type capEntry struct {
	quantity           resource.Quantity
	last, lastQuantity string
	lastWeight         int32
}

// match is one type an overlay selects, and which of its offerings.
type match struct {
	ref       typeRef
	offerings []int
}

func newState(pools []*solver.Pool) *state {
	return &state{pools: pools, price: map[offeringRef]*priceEntry{}, cap: map[typeRef]map[corev1.ResourceName]*capEntry{}}
}

func (st *state) matches(o *Overlay) []match {
	var out []match
	for p, pool := range st.pools {
		for t, it := range pool.InstanceTypes {
			m := match{ref: typeRef{p, t}}
			for f := range it.Offerings {
				if o.Requirements.Matches(&labels{pool: pool, it: it, off: &it.Offerings[f]}) {
					m.offerings = append(m.offerings, f)
				}
			}
			if len(m.offerings) > 0 {
				out = append(out, m)
			}
		}
	}
	return out
}

func (st *state) conflict(o *Overlay, matches []match) (Conflict, bool) {
	for _, m := range matches {
		pool, it := st.pools[m.ref.pool], st.pools[m.ref.pool].InstanceTypes[m.ref.typ]
		if o.Change != "" {
			for _, f := range m.offerings {
				e := st.price[offeringRef{m.ref.pool, m.ref.typ, f}]
				if e != nil && e.lastWeight == o.Weight && e.lastChange != o.Change {
					off := it.Offerings[f]
					return Conflict{Overlay: o.Name, With: e.last, Pool: pool.Name, InstanceType: it.Name, Zone: off.Zone, CapacityType: off.CapacityType}, true
				}
			}
		}
		for _, name := range sortedNames(o.Capacity) {
			e := st.cap[m.ref][name]
			q := o.Capacity[name]
			if e != nil && e.lastWeight == o.Weight && e.lastQuantity != q.String() {
				return Conflict{Overlay: o.Name, With: e.last, Pool: pool.Name, InstanceType: it.Name, Resource: name}, true
			}
		}
	}
	return Conflict{}, false
}

func (st *state) store(o *Overlay, matches []match) {
	for _, m := range matches {
		if o.Change != "" {
			for _, f := range m.offerings {
				ref := offeringRef{m.ref.pool, m.ref.typ, f}
				e := st.price[ref]
				if e == nil {
					st.price[ref] = &priceEntry{by: o.Name, change: o.Change, last: o.Name, lastChange: o.Change, lastWeight: o.Weight}
					continue
				}
				if e.lastWeight != o.Weight {
					e.last, e.lastChange, e.lastWeight = o.Name, o.Change, o.Weight
				}
			}
		}
		for name, q := range o.Capacity {
			byName := st.cap[m.ref]
			if byName == nil {
				byName = map[corev1.ResourceName]*capEntry{}
				st.cap[m.ref] = byName
			}
			e := byName[name]
			switch {
			case e == nil:
				byName[name] = &capEntry{quantity: q, last: o.Name, lastQuantity: q.String(), lastWeight: o.Weight}
			case e.lastWeight != o.Weight:
				e.last, e.lastQuantity, e.lastWeight = o.Name, q.String(), o.Weight
			}
		}
	}
}

func (st *state) write() {
	for ref, e := range st.price {
		off := &st.pools[ref.pool].InstanceTypes[ref.typ].Offerings[ref.off]
		price, err := AdjustedPrice(off.PricePerHour, e.change)
		if err != nil {
			continue // Compile checked every change
		}
		off.ListPricePerHour, off.PricePerHour, off.PriceOverlay = off.PricePerHour, price, e.by
	}
	for ref, byName := range st.cap {
		it := st.pools[ref.pool].InstanceTypes[ref.typ]
		capacity, allocatable := it.Capacity.DeepCopy(), it.Allocatable.DeepCopy()
		if capacity == nil {
			capacity = corev1.ResourceList{}
		}
		if allocatable == nil {
			allocatable = corev1.ResourceList{}
		}
		// Extended resources have no kubelet reservation: what the node
		// advertises is what pods may request.
		for name, e := range byName {
			capacity[name] = e.quantity.DeepCopy()
			allocatable[name] = e.quantity.DeepCopy()
		}
		it.Capacity, it.Allocatable = capacity, allocatable
	}
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// labels are the labels a node of an offering of a pool would carry: the
// offering's place and purchase option, the type's attributes, the pool's
// template labels and its name.
type labels struct {
	pool *solver.Pool
	it   *solver.InstanceType
	off  *solver.Offering
}

func (l *labels) Label(key string) (string, bool) {
	switch key {
	case v1alpha1.LabelZone:
		return l.off.Zone, l.off.Zone != ""
	case v1alpha1.LabelZoneID:
		return l.off.ZoneID, l.off.ZoneID != ""
	case v1alpha1.LabelRegion:
		return l.off.Region, l.off.Region != ""
	case v1alpha1.LabelCapacityType:
		return l.off.CapacityType, true
	case v1alpha1.LabelNodePool, v1alpha1.LabelKarpenterNodePool:
		return l.pool.Name, true
	}
	if v, ok := l.it.Labels[key]; ok {
		return v, true
	}
	v, ok := l.pool.Labels[key]
	return v, ok
}
