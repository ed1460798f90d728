package overlay

import (
	"math"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

// The cases follow Karpenter v1.15's pkg/controllers/nodeoverlay tests
// (suite_test.go "Validation" and "Instance Type Controller", store_test.go
// "Store Apply Correctness" / "Isolation Between NodePools"); each names
// the Karpenter test it ports. Their instance types are
// default-instance-type, small-instance-type and gpu-vendor-instance-type
// with spot and on-demand offerings in two zones; so are ours.

var typeNames = []string{"default-instance-type", "small-instance-type", "gpu-vendor-instance-type"}

func pools(names ...string) []*solver.Pool {
	var out []*solver.Pool
	for _, n := range names {
		p := &solver.Pool{Name: n, Labels: map[string]string{"team": n}}
		for i, t := range typeNames {
			it := &solver.InstanceType{
				Name:        t,
				Labels:      map[string]string{v1alpha1.LabelInstanceType: t, v1alpha1.AWSLabelPrefix + "instance-family": strings.Split(t, "-")[0]},
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3900m")},
			}
			for _, z := range []string{"zone-a", "zone-b"} {
				for _, ct := range []string{"spot", "on-demand"} {
					price := float64(i+1) * 1.0
					if ct == "spot" {
						price /= 2
					}
					it.Offerings = append(it.Offerings, solver.Offering{Zone: z, CapacityType: ct, PricePerHour: price, Available: true})
				}
			}
			p.InstanceTypes = append(p.InstanceTypes, it)
		}
		out = append(out, p)
	}
	return out
}

type ov struct {
	name   string
	weight int32
	reqs   []v1alpha1.NodeOverlayRequirement
	price  string
	adjust string
	cap    corev1.ResourceList
}

func (o ov) object() *v1alpha1.NodeOverlay {
	obj := &v1alpha1.NodeOverlay{ObjectMeta: metav1.ObjectMeta{Name: o.name}, Spec: v1alpha1.NodeOverlaySpec{Requirements: o.reqs, Capacity: o.cap}}
	if o.weight != 0 {
		w := o.weight
		obj.Spec.Weight = &w
	}
	if o.price != "" {
		obj.Spec.Price = &o.price
	}
	if o.adjust != "" {
		obj.Spec.PriceAdjustment = &o.adjust
	}
	return obj
}

func in(key string, values ...string) v1alpha1.NodeOverlayRequirement {
	return v1alpha1.NodeOverlayRequirement{Key: key, Operator: v1alpha1.OpIn, Values: values}
}

func types(vs ...string) v1alpha1.NodeOverlayRequirement {
	return in(v1alpha1.LabelInstanceType, vs...)
}

// priceKey identifies an offering in expectations: pool/type/zone/capacity type.
type priceKey struct{ pool, typ, zone, ct string }

type want struct {
	// prices are the offerings whose price changes (others keep it).
	prices map[priceKey]float64
	// by names the overlay expected to set each price in prices.
	by map[priceKey]string
	// capacity are extended resources expected per pool/type.
	capacity map[[2]string]corev1.ResourceList
	// conflicts are the overlays expected to be left out.
	conflicts []string
}

func apply(t *testing.T, overlays []ov, ps []*solver.Pool) []Conflict {
	t.Helper()
	objs := make([]*v1alpha1.NodeOverlay, 0, len(overlays))
	for _, o := range overlays {
		objs = append(objs, o.object())
	}
	set, invalid := Compile(objs)
	if len(invalid) > 0 {
		t.Fatal(invalid)
	}
	return set.Apply(ps)
}

func check(t *testing.T, ps []*solver.Pool, conflicts []Conflict, w want) {
	t.Helper()
	base := pools(poolNames(ps)...)
	for p, pool := range ps {
		for i, it := range pool.InstanceTypes {
			for f, off := range it.Offerings {
				k := priceKey{pool.Name, it.Name, off.Zone, off.CapacityType}
				list := base[p].InstanceTypes[i].Offerings[f].PricePerHour
				expected, changed := w.prices[k]
				if !changed {
					expected = list
				}
				if math.Abs(off.PricePerHour-expected) > 1e-9 {
					t.Errorf("%v: price %.4f, want %.4f", k, off.PricePerHour, expected)
				}
				if changed {
					if off.PriceOverlay != w.by[k] || off.ListPricePerHour != list {
						t.Errorf("%v: set by %q from list %.4f, want %q from %.4f", k, off.PriceOverlay, off.ListPricePerHour, w.by[k], list)
					}
				} else if off.PriceOverlay != "" {
					t.Errorf("%v: overlay %q applied, want none", k, off.PriceOverlay)
				}
			}
			ext := corev1.ResourceList{}
			for name, q := range it.Allocatable {
				if name != corev1.ResourceCPU {
					ext[name] = q
					if c := it.Capacity[name]; c.Cmp(q) != 0 {
						t.Errorf("%s/%s: capacity %s %s, allocatable %s", pool.Name, it.Name, name, c.String(), q.String())
					}
				}
			}
			wantExt := w.capacity[[2]string{pool.Name, it.Name}]
			if len(ext) != len(wantExt) {
				t.Errorf("%s/%s: extended resources %v, want %v", pool.Name, it.Name, ext, wantExt)
			}
			for name, q := range wantExt {
				if got := ext[name]; got.Cmp(q) != 0 {
					t.Errorf("%s/%s: %s = %s, want %s", pool.Name, it.Name, name, got.String(), q.String())
				}
			}
		}
	}
	var got []string
	for _, c := range conflicts {
		got = append(got, c.Overlay)
	}
	if strings.Join(got, ",") != strings.Join(w.conflicts, ",") {
		t.Errorf("conflicts %v, want %v", conflicts, w.conflicts)
	}
}

func poolNames(ps []*solver.Pool) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// every offering of the given pool and type, with price f(list).
func every(pool, typ string, price float64, by string, w *want) {
	for _, z := range []string{"zone-a", "zone-b"} {
		for _, ct := range []string{"spot", "on-demand"} {
			p := price
			if ct == "spot" {
				p = price / 2
			}
			set(w, priceKey{pool, typ, z, ct}, p, by)
		}
	}
}

func set(w *want, k priceKey, price float64, by string) {
	if w.prices == nil {
		w.prices, w.by = map[priceKey]float64{}, map[priceKey]string{}
	}
	w.prices[k], w.by[k] = price, by
}

func build(f func(w *want)) want {
	w := want{}
	f(&w)
	return w
}

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestApply(t *testing.T) {
	const fuse = "smarter-devices/fuse"
	for _, tc := range []struct {
		name     string
		pools    []string
		overlays []ov
		want     want
	}{
		{
			name:  "should return the same instance type when zero overlay are applied",
			pools: []string{"default"},
		},
		{
			name:     "should pass with a single overlay (a -40% discount on one type)",
			pools:    []string{"default"},
			overlays: []ov{{name: "discount", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, adjust: "-40%"}},
			want:     build(func(w *want) { every("default", "small-instance-type", 2*0.6, "discount", w) }),
		},
		{
			name:     "an absolute price replaces the list price of every selected offering",
			pools:    []string{"default"},
			overlays: []ov{{name: "fixed", reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type")}, price: "0.25"}},
			want: build(func(w *want) {
				for _, z := range []string{"zone-a", "zone-b"} {
					set(w, priceKey{"default", "default-instance-type", z, "spot"}, 0.25, "fixed")
					set(w, priceKey{"default", "default-instance-type", z, "on-demand"}, 0.25, "fixed")
				}
			}),
		},
		{
			name:     "a dollar adjustment adds to the price and never takes it below 0",
			pools:    []string{"default"},
			overlays: []ov{{name: "credit", reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, adjust: "-1.5"}},
			want: build(func(w *want) {
				for _, z := range []string{"zone-a", "zone-b"} {
					set(w, priceKey{"default", "small-instance-type", z, "spot"}, 0, "credit")
					set(w, priceKey{"default", "small-instance-type", z, "on-demand"}, 0.5, "credit")
				}
			}),
		},
		{
			name:     "should correctly apply price overlay to specific offerings (zone and capacity type)",
			pools:    []string{"default"},
			overlays: []ov{{name: "spot-a", reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelZone, "zone-a"), in(v1alpha1.LabelCapacityType, "spot")}, adjust: "+10%"}},
			want: build(func(w *want) {
				for i, typ := range typeNames {
					set(w, priceKey{"default", typ, "zone-a", "spot"}, float64(i+1)/2*1.1, "spot-a")
				}
			}),
		},
		{
			name:  "should apply higher weight overlay when multiple overlays match the same instance type",
			pools: []string{"default"},
			overlays: []ov{
				{name: "low", weight: 1, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type")}, price: "9"},
				{name: "high", weight: 100, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, adjust: "-50%"},
			},
			want: build(func(w *want) {
				every("default", "default-instance-type", 0.5, "high", w)
				every("default", "small-instance-type", 1, "high", w)
			}),
		},
		{
			name:  "should fail when requirements overlays overlap (same weight: the name later in the alphabet applies)",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, adjust: "-10%"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "gpu-vendor-instance-type")}, adjust: "+10%"},
			},
			want: build(func(w *want) {
				every("default", "default-instance-type", 1.1, "overlay-b", w)
				every("default", "gpu-vendor-instance-type", 3.3, "overlay-b", w)
				w.conflicts = []string{"overlay-a"}
			}),
		},
		{
			name:  "should succeed with requirements overlays don't overlap",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, adjust: "-10%"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("gpu-vendor-instance-type")}, adjust: "+10%"},
			},
			want: build(func(w *want) {
				every("default", "small-instance-type", 1.8, "overlay-a", w)
				every("default", "gpu-vendor-instance-type", 3.3, "overlay-b", w)
			}),
		},
		{
			name:  "should fail with requirements overlays overlap on zone",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type"), in(v1alpha1.LabelZone, "zone-a")}, price: "1"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelZone, "zone-a", "zone-b"), in(v1alpha1.LabelCapacityType, "on-demand")}, price: "2"},
			},
			want: build(func(w *want) {
				for _, typ := range typeNames {
					for _, z := range []string{"zone-a", "zone-b"} {
						set(w, priceKey{"default", typ, z, "on-demand"}, 2, "overlay-b")
					}
				}
				w.conflicts = []string{"overlay-a"}
			}),
		},
		{
			name:  "should succeed with offering requirements that don't overlap (zone)",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type"), in(v1alpha1.LabelZone, "zone-a")}, price: "1"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type"), in(v1alpha1.LabelZone, "zone-b")}, price: "2"},
			},
			want: build(func(w *want) {
				for _, ct := range []string{"spot", "on-demand"} {
					set(w, priceKey{"default", "small-instance-type", "zone-a", ct}, 1, "overlay-a")
					set(w, priceKey{"default", "small-instance-type", "zone-b", ct}, 2, "overlay-b")
				}
			}),
		},
		{
			name:  "should fail with requirements overlays overlap on capacity type",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelCapacityType, "spot")}, price: "1"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, price: "2"},
			},
			want: build(func(w *want) {
				every("default", "small-instance-type", 2, "overlay-b", w)
				for _, z := range []string{"zone-a", "zone-b"} {
					set(w, priceKey{"default", "small-instance-type", z, "spot"}, 2, "overlay-b")
				}
				w.conflicts = []string{"overlay-a"}
			}),
		},
		{
			name:  "equal weights asking for the same change do not conflict (a deliberate difference from Karpenter)",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, adjust: "-10%"},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type")}, adjust: "-10%"},
			},
			want: build(func(w *want) {
				every("default", "default-instance-type", 0.9, "overlay-b", w)
				every("default", "small-instance-type", 1.8, "overlay-a", w)
			}),
		},
		{
			name:  "should that there is not a partial application for nodepools",
			pools: []string{"blue", "green"},
			overlays: []ov{
				// overlay-b only reaches green's small type; overlay-a
				// conflicts there, so it is applied to neither pool.
				{name: "overlay-a", weight: 5, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, price: "7"},
				{name: "overlay-b", weight: 5, reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelKarpenterNodePool, "green"), types("small-instance-type")}, price: "8"},
			},
			want: build(func(w *want) {
				for _, z := range []string{"zone-a", "zone-b"} {
					for _, ct := range []string{"spot", "on-demand"} {
						set(w, priceKey{"green", "small-instance-type", z, ct}, 8, "overlay-b")
					}
				}
				w.conflicts = []string{"overlay-a"}
			}),
		},
		{
			name:     "should only apply override for nodepool that defined in the overlay requirements",
			pools:    []string{"blue", "green"},
			overlays: []ov{{name: "green-fuse", reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelNodePool, "green")}, cap: rl(fuse, "54")}},
			want: build(func(w *want) {
				w.capacity = map[[2]string]corev1.ResourceList{}
				for _, typ := range typeNames {
					w.capacity[[2]string{"green", typ}] = rl(fuse, "54")
				}
			}),
		},
		{
			name:     "should only apply price adjustments for nodepool template labels that defined in the overlay requirements",
			pools:    []string{"blue", "green"},
			overlays: []ov{{name: "team-blue", reqs: []v1alpha1.NodeOverlayRequirement{in("team", "blue"), types("gpu-vendor-instance-type")}, adjust: "+1"}},
			want: build(func(w *want) {
				every("blue", "gpu-vendor-instance-type", 3+1, "team-blue", w)
				fixSpotDollar(w, "blue", "gpu-vendor-instance-type", 1.5+1)
			}),
		},
		{
			name:  "should update capacity for instance types from multiple overlays (merged per resource, highest weight first)",
			pools: []string{"default"},
			overlays: []ov{
				{name: "hugepages", weight: 1, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, cap: rl("hugepages-2Mi", "100Mi", fuse, "1")},
				{name: "fuse", weight: 50, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type")}, cap: rl(fuse, "54")},
			},
			want: want{capacity: map[[2]string]corev1.ResourceList{
				{"default", "default-instance-type"}: rl("hugepages-2Mi", "100Mi", fuse, "54"),
				{"default", "small-instance-type"}:   rl("hugepages-2Mi", "100Mi", fuse, "1"),
			}},
		},
		{
			name:  "should fail with conflicting capacity overlays with overlapping requirements",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, cap: rl(fuse, "1")},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "gpu-vendor-instance-type")}, cap: rl(fuse, "2")},
			},
			want: want{
				capacity: map[[2]string]corev1.ResourceList{
					{"default", "default-instance-type"}:    rl(fuse, "2"),
					{"default", "gpu-vendor-instance-type"}: rl(fuse, "2"),
				},
				conflicts: []string{"overlay-a"},
			},
		},
		{
			name:  "should pass with conflicting capacity overlays with mutually exclusive weights",
			pools: []string{"default"},
			overlays: []ov{
				{name: "overlay-a", weight: 20, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "small-instance-type")}, cap: rl(fuse, "1")},
				{name: "overlay-b", weight: 10, reqs: []v1alpha1.NodeOverlayRequirement{types("default-instance-type", "gpu-vendor-instance-type")}, cap: rl(fuse, "2")},
			},
			want: want{capacity: map[[2]string]corev1.ResourceList{
				{"default", "default-instance-type"}:    rl(fuse, "1"),
				{"default", "small-instance-type"}:      rl(fuse, "1"),
				{"default", "gpu-vendor-instance-type"}: rl(fuse, "2"),
			}},
		},
		{
			name:  "should apply pricing and capacity adjustment from two overlays on the same instance type",
			pools: []string{"default"},
			overlays: []ov{
				{name: "price", reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, price: "0.1"},
				{name: "capacity", reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, cap: rl(fuse, "3")},
			},
			want: build(func(w *want) {
				for _, z := range []string{"zone-a", "zone-b"} {
					for _, ct := range []string{"spot", "on-demand"} {
						set(w, priceKey{"default", "small-instance-type", z, ct}, 0.1, "price")
					}
				}
				w.capacity = map[[2]string]corev1.ResourceList{{"default", "small-instance-type"}: rl(fuse, "3")}
			}),
		},
		{
			name:     "should not apply capacity adjustments for instances types that do not overlap",
			pools:    []string{"default"},
			overlays: []ov{{name: "none", reqs: []v1alpha1.NodeOverlayRequirement{types("no-such-type")}, cap: rl(fuse, "3"), price: "0.01"}},
		},
		{
			name:     "NotIn and DoesNotExist select by absence, as on a node",
			pools:    []string{"default"},
			overlays: []ov{{name: "not-small", reqs: []v1alpha1.NodeOverlayRequirement{{Key: v1alpha1.LabelInstanceType, Operator: v1alpha1.OpNotIn, Values: []string{"small-instance-type", "gpu-vendor-instance-type"}}, {Key: "no-such-label", Operator: v1alpha1.OpDoesNotExist}}, adjust: "+100%"}},
			want:     build(func(w *want) { every("default", "default-instance-type", 2, "not-small", w) }),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := pools(tc.pools...)
			conflicts := apply(t, tc.overlays, ps)
			check(t, ps, conflicts, tc.want)
		})
	}
}

// fixSpotDollar corrects every()'s halving for spot prices, which a dollar
// adjustment does not halve.
func fixSpotDollar(w *want, pool, typ string, spot float64) {
	for _, z := range []string{"zone-a", "zone-b"} {
		w.prices[priceKey{pool, typ, z, "spot"}] = spot
	}
}

// Karpenter: "Store Apply Selective Copy" — the shared lists the sizing
// memo hands to every pool are never modified.
func TestApplyDoesNotModifySharedCapacity(t *testing.T) {
	ps := pools("a", "b")
	shared := ps[0].InstanceTypes[0].Capacity
	ps[1].InstanceTypes[0].Capacity = shared
	apply(t, []ov{{name: "fuse", reqs: []v1alpha1.NodeOverlayRequirement{in(v1alpha1.LabelNodePool, "a")}, cap: rl("smarter-devices/fuse", "1")}}, ps)
	if _, ok := shared["smarter-devices/fuse"]; ok {
		t.Fatal("the shared capacity list was modified")
	}
	if _, ok := ps[1].InstanceTypes[0].Capacity["smarter-devices/fuse"]; ok {
		t.Fatal("pool b got pool a's overlay")
	}
}

func TestConflictSaysWhatToDo(t *testing.T) {
	ps := pools("default")
	conflicts := apply(t, []ov{
		{name: "overlay-a", weight: 3, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, price: "1"},
		{name: "overlay-b", weight: 3, reqs: []v1alpha1.NodeOverlayRequirement{types("small-instance-type")}, price: "2"},
	}, ps)
	if len(conflicts) != 1 {
		t.Fatalf("conflicts %v", conflicts)
	}
	msg := conflicts[0].String()
	for _, want := range []string{"NodeOverlay overlay-b", "small-instance-type", "NodePool default", "spec.weight"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func TestCompileLeavesOutInvalidOverlaysNamingTheField(t *testing.T) {
	bad, p := "ten%", "0"
	now := metav1.Now()
	set, invalid := Compile([]*v1alpha1.NodeOverlay{
		{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: v1alpha1.NodeOverlaySpec{PriceAdjustment: &bad}},
		{ObjectMeta: metav1.ObjectMeta{Name: "y"}, Spec: v1alpha1.NodeOverlaySpec{Capacity: rl("memory", "1Gi")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "gone", DeletionTimestamp: &now}, Spec: v1alpha1.NodeOverlaySpec{Price: &p}},
		{ObjectMeta: metav1.ObjectMeta{Name: "fine"}, Spec: v1alpha1.NodeOverlaySpec{Price: &p}},
	})
	if err := invalid["x"]; err == nil || !strings.Contains(err.Error(), "NodeOverlay x: spec.priceAdjustment") {
		t.Errorf("x: %v", err)
	}
	if err := invalid["y"]; err == nil || !strings.Contains(err.Error(), "NodeOverlay y: spec.capacity.memory") {
		t.Errorf("y: %v", err)
	}
	if len(invalid) != 2 || set.Len() != 1 {
		t.Errorf("invalid %v, %d applied; want x and y left out, gone ignored, fine applied", invalid, set.Len())
	}
}

// Karpenter's cloudprovider AdjustedPrice cases.
func TestAdjustedPrice(t *testing.T) {
	for _, tc := range []struct {
		change string
		want   float64
	}{
		{"", 2}, {"0.5", 0.5}, {"+1", 3}, {"-0.5", 1.5}, {"-3", 0}, {"+10%", 2.2}, {"-40%", 1.2}, {"-100%", 0}, {"+150%", 5},
	} {
		got, err := AdjustedPrice(2, tc.change)
		if err != nil || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("AdjustedPrice(2, %q) = %v, %v; want %v", tc.change, got, err, tc.want)
		}
	}
}
