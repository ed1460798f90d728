package solver_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/solver/internal/check"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type consolidationCase struct {
	name       string
	snap       func() *Snapshot
	candidates []Candidate
	opts       ConsolidationOptions
	expect     func(t *testing.T, s *Snapshot, a *ConsolidationAction)
}

func cand(name string, price, cost float64) Candidate {
	return Candidate{Name: name, PricePerHour: price, CapacityType: v1alpha1.CapacityTypeOnDemand, DisruptionCost: cost}
}

func spotCand(name string, price, cost float64) Candidate {
	c := cand(name, price, cost)
	c.CapacityType = v1alpha1.CapacityTypeSpot
	return c
}

func ofType(name string) func(*Node) {
	return func(n *Node) { n.Node.Labels[v1alpha1.LabelInstanceType] = name }
}

func onSpot(n *Node) { n.Node.Labels[v1alpha1.LabelCapacityType] = v1alpha1.CapacityTypeSpot }

func inFlight(n *Node) { n.InFlight, n.Pool = true, "default" }

func withClaim(claim string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: claim, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	}
}

func ownedBy(apiVersion, kind string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: "owner"})
	}
}

// mLadder is a pool of one family only, so a replacement of the same type
// as the removed nodes is the only option.
func mLadder() []*InstanceType {
	return []*InstanceType{itype("m.large", 2, 8, 0.10), itype("m.xlarge", 4, 16, 0.20), itype("m.2xlarge", 8, 32, 0.40), itype("m.4xlarge", 16, 64, 0.80)}
}

// consolidateChecked runs Consolidate and checks what every action must
// satisfy: its plan is valid for the snapshot without the removed nodes,
// every moved pod lands, at most one machine is launched and every offering
// of it is cheaper than the removed nodes, and the savings add up.
func consolidateChecked(t *testing.T, s *Snapshot, cands []Candidate, opts ConsolidationOptions) *ConsolidationAction {
	t.Helper()
	a, err := Consolidate(s, cands, opts)
	if err != nil {
		t.Fatalf("Consolidate: %v", err)
	}
	if a == nil {
		return nil
	}
	derived, err := RemovalSnapshot(s, a.Remove)
	if err != nil {
		t.Fatalf("RemovalSnapshot: %v", err)
	}
	for _, err := range check.Plan(derived, a.Plan) {
		t.Errorf("invalid plan: %v", err)
	}
	pending := map[*corev1.Pod]bool{}
	for _, p := range s.Pods {
		pending[p] = true
	}
	for _, u := range a.Plan.Unschedulable {
		if !pending[u.Pod] {
			t.Errorf("moved pod %s unschedulable: %s", u.Pod.Name, u.Reason)
		}
	}
	price := 0.0
	for _, name := range a.Remove {
		for _, c := range cands {
			if c.Name == name {
				price += c.PricePerHour
			}
		}
	}
	switch len(a.Plan.NewNodes) {
	case 0:
		if a.Replacement != nil {
			t.Errorf("replacement without a new node in the plan")
		}
	case 1:
		r := a.Replacement
		if r == nil || r != a.Plan.NewNodes[0] {
			t.Fatalf("replacement is not the plan's new node")
		}
		if r.Offering.PricePerHour >= price {
			t.Errorf("replacement costs %v, removed nodes %v", r.Offering.PricePerHour, price)
		}
		for _, fb := range r.Fallbacks {
			if fb.Offering.PricePerHour >= price {
				t.Errorf("fallback %s costs %v, removed nodes %v", fb.InstanceType.Name, fb.Offering.PricePerHour, price)
			}
		}
		price -= r.Offering.PricePerHour
	default:
		t.Fatalf("action launches %d machines", len(a.Plan.NewNodes))
	}
	if a.SavingsPerHour <= 0 || math.Abs(a.SavingsPerHour-price) > 1e-9 {
		t.Errorf("savings %v, want %v > 0", a.SavingsPerHour, price)
	}
	if a.Reason == "" {
		t.Errorf("action without a reason")
	}
	t.Logf("%v: %s", a.Remove, a.Reason)
	return a
}

func wantRemove(t *testing.T, a *ConsolidationAction, names ...string) {
	t.Helper()
	if a == nil {
		t.Fatalf("no action, want to remove %v", names)
	}
	if !reflect.DeepEqual(a.Remove, names) {
		t.Fatalf("remove %v, want %v", a.Remove, names)
	}
}

func wantNoAction(t *testing.T, a *ConsolidationAction) {
	t.Helper()
	if a != nil {
		t.Fatalf("want no action, got %v: %s", a.Remove, a.Reason)
	}
}

func wantDeleteOnly(t *testing.T, a *ConsolidationAction) {
	t.Helper()
	if a.Replacement != nil {
		t.Fatalf("want delete only, got replacement %s", a.Replacement.InstanceType.Name)
	}
}

func nodeOfPod(a *ConsolidationAction, name string) (node string, isNew bool) {
	for _, pl := range a.Plan.Order {
		if pl.Pod.Name == name {
			return pl.NodeName, pl.New
		}
	}
	return "", false
}

var consolidationCases = []consolidationCase{
	{name: "empty node is deleted",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("busy", "zone-a", 4, 16, pods(2, "p", "1", "1Gi")), existingNode("idle", "zone-a", 4, 16, nil)}
			return s
		},
		candidates: []Candidate{cand("idle", 0.2, 0)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "idle")
			wantDeleteOnly(t, a)
		}},
	{name: "pods that are not rescheduled do not keep a node",
		snap: func() *Snapshot {
			s := onePool(nil)
			mirror := testPod("static", "1", "1Gi")
			mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
			done := testPod("job", "1", "1Gi")
			done.Status.Phase = corev1.PodSucceeded
			ds := testPod("logs", "1", "1Gi", ownedBy("apps/v1", "DaemonSet"))
			s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, []*corev1.Pod{mirror, done, ds})}
			return s
		},
		candidates: []Candidate{cand("n1", 0.2, 0)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n1")
			wantDeleteOnly(t, a)
		}},
	{name: "two half-empty nodes merge into one",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 4, 16, pods(2, "a", "1", "1Gi"), ofType("m.xlarge")),
				existingNode("n2", "zone-a", 4, 16, pods(2, "b", "1", "1Gi"), ofType("m.xlarge")),
			}
			return s
		},
		// Replacing both with one m.xlarge costs what keeping n2 costs, so
		// multi-node declines and single-node deletes the cheaper to disrupt.
		candidates: []Candidate{cand("n2", 0.2, 2), cand("n1", 0.2, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n1")
			wantDeleteOnly(t, a)
			for _, p := range []string{"a-0", "a-1"} {
				if n, _ := nodeOfPod(a, p); n != "n2" {
					t.Fatalf("pod %s on %q, want n2", p, n)
				}
			}
		}},
	{name: "several nodes are replaced by one cheaper node",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 8, 32, pods(1, "a", "1", "1Gi"), ofType("m.2xlarge")),
				existingNode("n2", "zone-b", 8, 32, pods(1, "b", "1", "1Gi"), ofType("m.2xlarge")),
				existingNode("n3", "zone-c", 8, 32, pods(1, "c", "1", "1Gi"), ofType("m.2xlarge")),
			}
			return s
		},
		candidates: []Candidate{cand("n1", 0.4, 1), cand("n2", 0.4, 1), cand("n3", 0.4, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n1", "n2", "n3")
			if a.Replacement == nil || a.Replacement.InstanceType.Name != "c.xlarge" {
				t.Fatalf("want one c.xlarge, got %+v", a.Replacement)
			}
		}},
	{name: "oversized node is replaced by a cheaper smaller one",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("big", "zone-a", 16, 64, pods(2, "p", "500m", "1Gi"), ofType("m.4xlarge"))}
			return s
		},
		candidates: []Candidate{cand("big", 0.8, 2)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "big")
			if a.Replacement == nil || a.Replacement.InstanceType.Name != "c.large" {
				t.Fatalf("want c.large, got %+v", a.Replacement)
			}
			if math.Abs(a.SavingsPerHour-0.715) > 1e-9 {
				t.Fatalf("savings %v", a.SavingsPerHour)
			}
		}},
	{name: "nothing cheaper means no action",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("small", "zone-a", 2, 4, pods(2, "p", "900m", "1Gi"), ofType("c.large"))}
			return s
		},
		candidates: []Candidate{cand("small", 0.085, 2)},
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantNoAction(t, a) }},
	{name: "moving pods that need several machines is no action",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("big", "zone-a", 16, 64, pods(3, "p", "100m", "100Mi", withHostPort(80)), ofType("m.4xlarge"))}
			return s
		},
		candidates: []Candidate{cand("big", 0.8, 3)},
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantNoAction(t, a) }},
	{name: "hostname anti-affinity still separates moved pods",
		snap: func() *Snapshot {
			db := func(name string) []*corev1.Pod {
				return []*corev1.Pod{testPod(name, "100m", "100Mi", withLabels("app", "db"), withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": "db"}))}
			}
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 4, 16, db("db-1"), ofType("m.xlarge")),
				existingNode("n2", "zone-a", 4, 16, db("db-2"), ofType("m.xlarge")),
				existingNode("n3", "zone-a", 4, 16, db("db-3"), ofType("m.xlarge")),
				existingNode("spare", "zone-a", 4, 16, nil, ofType("m.xlarge")),
			}
			return s
		},
		candidates: []Candidate{cand("n1", 0.2, 1), cand("n2", 0.2, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n1", "n2")
			n1, _ := nodeOfPod(a, "db-1")
			n2, _ := nodeOfPod(a, "db-2")
			if n1 == n2 || n1 == "n3" || n2 == "n3" {
				t.Fatalf("db pods on %s and %s", n1, n2)
			}
		}},
	{name: "zonal topology spread still holds after the move",
		snap: func() *Snapshot {
			web := func(name string) []*corev1.Pod {
				return []*corev1.Pod{testPod(name, "500m", "1Gi", withLabels("app", "web"),
					withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "web"}))}
			}
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("a1", "zone-a", 4, 16, web("web-a"), ofType("m.xlarge")),
				existingNode("b1", "zone-b", 16, 64, web("web-b"), ofType("m.4xlarge")),
				existingNode("c1", "zone-c", 16, 64, append(web("web-c1"), web("web-c2")...), ofType("m.4xlarge")),
				existingNode("a2", "zone-a", 2, 4, nil, ofType("c.large")),
			}
			return s
		},
		// Without a1, zone-a holds none of the 3 other web pods: the moved
		// pod must stay in zone-a (on a2), not on the roomier b1 or c1.
		candidates: []Candidate{cand("a1", 0.2, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "a1")
			wantDeleteOnly(t, a)
			if n, _ := nodeOfPod(a, "web-a"); n != "a2" {
				t.Fatalf("web-a on %q, want a2", n)
			}
		}},
	{name: "bound volume keeps the moved pod in its zone",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("big", "zone-b", 16, 64, []*corev1.Pod{testPod("db", "1", "1Gi", withClaim("data"))}, ofType("m.4xlarge")),
				existingNode("roomy", "zone-a", 16, 64, nil, ofType("m.4xlarge")),
			}
			pvc := &corev1.PersistentVolumeClaim{}
			pvc.Name, pvc.Namespace, pvc.Spec.VolumeName = "data", "default", "pv-1"
			pv := &corev1.PersistentVolume{}
			pv.Name = "pv-1"
			pv.Labels = map[string]string{v1alpha1.LabelZone: "zone-b"}
			s.PersistentVolumeClaims = []*corev1.PersistentVolumeClaim{pvc}
			s.PersistentVolumes = []*corev1.PersistentVolume{pv}
			return s
		},
		candidates: []Candidate{cand("big", 0.8, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "big")
			r := a.Replacement
			if r == nil || r.Offering.Zone != "zone-b" {
				t.Fatalf("want a replacement in zone-b, got %+v", r)
			}
			for _, fb := range r.Fallbacks {
				if fb.Offering.Zone != "zone-b" {
					t.Fatalf("fallback in %s", fb.Offering.Zone)
				}
			}
		}},
	{name: "on-demand node is replaced by spot when the pool allows it",
		snap: func() *Snapshot {
			s := onePool(nil, func(p *Pool) { p.Requirements = onDemandAndSpot() })
			s.Nodes = []*Node{existingNode("big", "zone-a", 16, 64, pods(1, "p", "1", "1Gi"), ofType("m.4xlarge"))}
			return s
		},
		candidates: []Candidate{cand("big", 0.8, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "big")
			if a.Replacement == nil || a.Replacement.Offering.CapacityType != v1alpha1.CapacityTypeSpot {
				t.Fatalf("want a spot replacement, got %+v", a.Replacement)
			}
		}},
	{name: "spot node is not replaced when spot-to-spot is off",
		snap:       spotSnapshot,
		candidates: []Candidate{spotCand("big", 0.56, 1)},
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantNoAction(t, a) }},
	{name: "spot-to-spot needs MinSpotTypes cheaper types",
		snap:       spotSnapshot,
		candidates: []Candidate{spotCand("big", 0.56, 1)},
		opts:       ConsolidationOptions{SpotToSpot: true}, // 7 cheaper spot types < 15
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantNoAction(t, a) }},
	{name: "spot-to-spot offers only the cheapest MinSpotTypes spot types",
		snap:       spotSnapshot,
		candidates: []Candidate{spotCand("big", 0.56, 1)},
		opts:       ConsolidationOptions{SpotToSpot: true, MinSpotTypes: 3},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "big")
			r := a.Replacement
			if r == nil {
				t.Fatalf("want a replacement")
			}
			types := map[string]bool{r.InstanceType.Name: true}
			for _, o := range append([]Fallback{{InstanceType: r.InstanceType, Offering: r.Offering}}, r.Fallbacks...) {
				types[o.InstanceType.Name] = true
				if o.Offering.CapacityType != v1alpha1.CapacityTypeSpot {
					t.Fatalf("%s offered %s", o.InstanceType.Name, o.Offering.CapacityType)
				}
			}
			if len(types) != 3 || !types["c.large"] || !types["a.large"] || !types["m.large"] {
				t.Fatalf("types %v, want the 3 cheapest", types)
			}
		}},
	{name: "spot node is still deleted when spot-to-spot is off",
		snap: func() *Snapshot {
			s := spotSnapshot()
			s.Nodes = append(s.Nodes, existingNode("roomy", "zone-a", 16, 64, nil, ofType("m.4xlarge")))
			return s
		},
		candidates: []Candidate{spotCand("big", 0.56, 1)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "big")
			wantDeleteOnly(t, a)
		}},
	{name: "in-flight nodes are never removed but take pods",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("launching", "zone-a", 4, 16, nil, ofType("m.xlarge"), inFlight),
				existingNode("n1", "zone-a", 4, 16, pods(2, "p", "1", "1Gi"), ofType("m.xlarge")),
			}
			return s
		},
		candidates: []Candidate{cand("launching", 0.2, 0), cand("n1", 0.2, 2)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n1")
			wantDeleteOnly(t, a)
			if n, _ := nodeOfPod(a, "p-0"); n != "launching" {
				t.Fatalf("p-0 on %q", n)
			}
		}},
	{name: "multi-node removes the largest consolidatable prefix",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("roomy", "zone-a", 16, 64, nil, ofType("m.4xlarge"))}
			for i, name := range []string{"n1", "n2", "n3", "n4", "n5"} {
				ps := pods(1, name+"-p", "2", "2Gi")
				if i >= 3 {
					// Pinned to its node: it cannot move.
					ps[0].Spec.NodeSelector = map[string]string{v1alpha1.LabelHostname: name}
				}
				s.Nodes = append(s.Nodes, existingNode(name, "zone-a", 4, 16, ps, ofType("m.xlarge")))
			}
			return s
		},
		// Given out of order: Remove keeps the given order, the prefix
		// follows DisruptionCost.
		candidates: []Candidate{cand("n5", 0.2, 5), cand("n3", 0.2, 3), cand("n1", 0.2, 1), cand("n4", 0.2, 4), cand("n2", 0.2, 2)},
		expect: func(t *testing.T, _ *Snapshot, a *ConsolidationAction) {
			wantRemove(t, a, "n3", "n1", "n2")
			wantDeleteOnly(t, a)
		}},
	{name: "MaxCandidates bounds the multi-node prefix",
		snap: func() *Snapshot {
			s := onePool(nil)
			s.Nodes = []*Node{existingNode("roomy", "zone-a", 16, 64, nil, ofType("m.4xlarge"))}
			for _, name := range []string{"n1", "n2", "n3"} {
				s.Nodes = append(s.Nodes, existingNode(name, "zone-a", 4, 16, pods(1, name+"-p", "1", "1Gi"), ofType("m.xlarge")))
			}
			return s
		},
		candidates: []Candidate{cand("n1", 0.2, 1), cand("n2", 0.2, 2), cand("n3", 0.2, 3)},
		opts:       ConsolidationOptions{MaxCandidates: 2},
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantRemove(t, a, "n1", "n2") }},
	{name: "pending pods compete for the room",
		snap: func() *Snapshot {
			s := onePool(pods(1, "pending", "3", "3Gi"))
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 4, 16, pods(1, "a", "3", "3Gi"), ofType("m.xlarge")),
				existingNode("n2", "zone-a", 4, 16, nil, ofType("m.xlarge")),
			}
			return s
		},
		// n1's pod would fit on n2, but so must the pending pod: deleting n1
		// needs a new machine costing what n1 costs.
		candidates: []Candidate{cand("n1", 0.17, 1)},
		expect:     func(t *testing.T, _ *Snapshot, a *ConsolidationAction) { wantNoAction(t, a) }},
}

// spotSnapshot: one spot m.4xlarge with a small pod, a pool allowing spot.
func spotSnapshot() *Snapshot {
	s := onePool(nil, func(p *Pool) { p.Requirements = onDemandAndSpot() })
	s.Nodes = []*Node{existingNode("big", "zone-a", 16, 64, pods(1, "p", "1", "1Gi"), ofType("m.4xlarge"), onSpot)}
	return s
}

func TestConsolidate(t *testing.T) {
	for _, tc := range consolidationCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			tc.expect(t, s, consolidateChecked(t, s, tc.candidates, tc.opts))
		})
	}
}

func TestConsolidateRejectsUnknownCandidates(t *testing.T) {
	s := onePool(nil)
	s.Nodes = []*Node{existingNode("n1", "zone-a", 4, 16, nil)}
	if _, err := Consolidate(s, []Candidate{cand("ghost", 1, 0)}, ConsolidationOptions{}); err == nil {
		t.Fatalf("want an error for a candidate that is not a node")
	}
	if _, err := Consolidate(s, []Candidate{cand("n1", 1, 0), cand("n1", 1, 0)}, ConsolidationOptions{}); err == nil {
		t.Fatalf("want an error for a duplicate candidate")
	}
}

func TestSimulateRemoval(t *testing.T) {
	s := onePool(pods(1, "pending", "1", "1Gi"))
	ds := testPod("logs", "100m", "100Mi", ownedBy("apps/v1", "DaemonSet"))
	s.Nodes = []*Node{
		existingNode("n1", "zone-a", 4, 16, append(pods(2, "a", "1", "1Gi"), ds)),
		existingNode("n2", "zone-a", 4, 16, pods(1, "b", "1", "1Gi")),
	}
	plan, err := SimulateRemoval(s, []string{"n1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	derived, _ := RemovalSnapshot(s, []string{"n1"})
	if len(derived.Nodes) != 1 || len(derived.Pods) != 3 {
		t.Fatalf("derived snapshot: %d nodes, %d pods; want 1 and 3 (the daemonset pod stays behind)", len(derived.Nodes), len(derived.Pods))
	}
	for _, err := range check.Plan(derived, plan) {
		t.Errorf("invalid plan: %v", err)
	}
	wantAllPlaced(t, plan)
	if len(plan.Existing) != 3 || len(plan.NewNodes) != 0 {
		t.Fatalf("want all 3 pods on n2, got %d there and %d new nodes", len(plan.Existing), len(plan.NewNodes))
	}
	if _, err := SimulateRemoval(s, []string{"ghost"}, Options{}); err == nil {
		t.Fatalf("want an error for an unknown node")
	}
}

func TestReschedulable(t *testing.T) {
	terminating := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{} }
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"running pod moves", testPod("p", "1", "1Gi"), true},
		{"pod without owner moves", testPod("p", "1", "1Gi"), true},
		{"replicaset pod moves", testPod("p", "1", "1Gi", ownedBy("apps/v1", "ReplicaSet")), true},
		{"daemonset pod stays", testPod("p", "1", "1Gi", ownedBy("apps/v1", "DaemonSet")), false},
		{"static pod stays", testPod("p", "1", "1Gi", ownedBy("v1", "Node")), false},
		{"terminating pod stays", testPod("p", "1", "1Gi", terminating), false},
		{"terminating statefulset pod moves", testPod("p", "1", "1Gi", terminating, ownedBy("apps/v1", "StatefulSet")), true},
		{"finished pod stays", testPod("p", "1", "1Gi", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reschedulable(tc.pod); got != tc.want {
				t.Fatalf("Reschedulable = %v, want %v", got, tc.want)
			}
		})
	}
}

// The simulations share an index of the existing nodes (resources, usage,
// bound pods by label set); their plans must be valid and the same a fresh
// Solve of the removal makes.
func TestConsolidateClusterMatchesFreshSolve(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		snap, cands := consolidationSnapshot(120, seed)
		a := consolidateChecked(t, snap, cands, ConsolidationOptions{})
		if a == nil {
			t.Fatalf("seed %d: no action", seed)
		}
		fresh, err := SimulateRemoval(snap, a.Remove, Options{SkipLowerBound: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(fresh.Order) != len(a.Plan.Order) {
			t.Fatalf("seed %d: %d placements, fresh solve %d", seed, len(a.Plan.Order), len(fresh.Order))
		}
		for i, pl := range a.Plan.Order {
			if f := fresh.Order[i]; f.Pod != pl.Pod || f.NodeName != pl.NodeName {
				t.Fatalf("seed %d: placement %d is %s on %s, fresh solve %s on %s", seed, i, pl.Pod.Name, pl.NodeName, f.Pod.Name, f.NodeName)
			}
		}
	}
}

func TestConsolidateWithReasons(t *testing.T) {
	for _, tc := range []struct {
		name       string
		snap       func() *Snapshot
		candidates []Candidate
		opts       ConsolidationOptions
		want       []Kept // Reason is a substring
	}{
		{name: "a full node on the cheapest type",
			snap: func() *Snapshot {
				s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
				s.Nodes = []*Node{existingNode("n1", "zone-a", 2, 8, pods(1, "a", "1500m", "6Gi"), ofType("m.large"))}
				return s
			},
			candidates: []Candidate{cand("n1", 0.10, 1)},
			want:       []Kept{{Name: "n1", Reason: "no machine cheaper than $0.100/h covers the rest"}}},
		{name: "a pod bound by its node selector to the candidate's zone",
			snap: func() *Snapshot {
				s := &Snapshot{Pools: []*Pool{testPool("default", mLadder(), func(p *Pool) {
					p.Requirements = append(p.Requirements, Requirement{Key: v1alpha1.LabelZone, Operator: OpIn, Values: []string{"zone-b"}})
				})}}
				pinned := pods(1, "a", "1", "1Gi", withNodeSelector(v1alpha1.LabelZone, "zone-a"))
				s.Nodes = []*Node{
					existingNode("n1", "zone-a", 4, 16, pinned, ofType("m.xlarge")),
					existingNode("n2", "zone-b", 4, 16, nil, ofType("m.xlarge")),
				}
				return s
			},
			candidates: []Candidate{cand("n1", 0.20, 1)},
			want:       []Kept{{Name: "n1", Reason: "pod default/a-0 would have nowhere to go"}}},
		{name: "a spot node with spot-to-spot off",
			snap:       spotSnapshot,
			candidates: []Candidate{spotCand("big", 0.56, 1)},
			want:       []Kept{{Name: "big", Reason: "spot-to-spot consolidation is off"}}},
		{name: "a spot node with too few cheaper spot types",
			snap:       spotSnapshot,
			candidates: []Candidate{spotCand("big", 0.56, 1)},
			opts:       ConsolidationOptions{SpotToSpot: true},
			want:       []Kept{{Name: "big", Reason: "spot instance types are cheaper; replacing a spot node needs 15"}}},
		{name: "reasons come in the given order",
			snap: func() *Snapshot {
				s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
				s.Nodes = []*Node{
					existingNode("n1", "zone-a", 2, 8, pods(1, "a", "1500m", "6Gi"), ofType("m.large")),
					existingNode("n2", "zone-a", 2, 8, pods(1, "b", "1500m", "6Gi"), ofType("m.large")),
				}
				return s
			},
			candidates: []Candidate{cand("n2", 0.10, 5), cand("n1", 0.10, 1)},
			want:       []Kept{{Name: "n2", Reason: "cheaper than $0.100/h"}, {Name: "n1", Reason: "cheaper than $0.100/h"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, kept, err := ConsolidateWithReasons(tc.snap(), tc.candidates, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if a != nil {
				t.Fatalf("want no action, got %s", a.Reason)
			}
			if len(kept) != len(tc.want) {
				t.Fatalf("kept %+v, want %+v", kept, tc.want)
			}
			for i, w := range tc.want {
				if kept[i].Name != w.Name || !strings.Contains(kept[i].Reason, w.Reason) {
					t.Errorf("kept[%d] = %+v, want %s: ...%s...", i, kept[i], w.Name, w.Reason)
				}
			}
		})
	}
	t.Run("no reasons when an action is found", func(t *testing.T) {
		s := onePool(nil)
		s.Nodes = []*Node{existingNode("idle", "zone-a", 4, 16, nil)}
		a, kept, err := ConsolidateWithReasons(s, []Candidate{cand("idle", 0.2, 0)}, ConsolidationOptions{})
		if err != nil || a == nil || kept != nil {
			t.Fatalf("action %v, kept %v, err %v", a, kept, err)
		}
	})
}
