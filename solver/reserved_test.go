package solver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	. "github.com/joinery-dev/joinery/solver"
)

// Reserved pods are CapacityBuffer headroom: they exist only in planning,
// and consolidation must keep room for them. These follow Karpenter v1.15's
// disruption suite, Context "Buffer Pods" (consolidation_test.go).

func reserved(n int) []*corev1.Pod { return pods(n, "capacity-buffer-web", "1", "1Gi") }

// Follows "should not empty-consolidate a node with only buffer pods": the
// idle node is the headroom; removing it would need a machine as dear as
// itself, so nothing saves money.
func TestConsolidateKeepsTheNodeReservedPodsNeed(t *testing.T) {
	snap := func() *Snapshot {
		s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
		s.Nodes = []*Node{
			existingNode("busy", "zone-a", 4, 16, pods(4, "p", "1", "1Gi"), ofType("m.xlarge")),
			existingNode("idle", "zone-a", 2, 8, nil, ofType("m.large")),
		}
		return s
	}
	cands := []Candidate{cand("idle", 0.10, 0)}
	// Without headroom the idle node goes: the rule below is what keeps it.
	wantRemove(t, consolidateChecked(t, snap(), cands, ConsolidationOptions{}), "idle")

	a, err := Consolidate(snap(), cands, ConsolidationOptions{Reserved: reserved(2)})
	if err != nil {
		t.Fatal(err)
	}
	wantNoAction(t, a)
}

// Follows "should allow consolidation of a node with real pods and buffer
// pods to a cheaper instance": the replacement is sized for the real pod
// and the headroom together.
func TestConsolidateReplacementKeepsRoomForReservedPods(t *testing.T) {
	s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
	s.Nodes = []*Node{existingNode("big", "zone-a", 16, 64, pods(1, "p", "1", "1Gi"), ofType("m.4xlarge"))}
	headroom := reserved(2)
	a, err := Consolidate(s, []Candidate{cand("big", 0.80, 0)}, ConsolidationOptions{Reserved: headroom})
	if err != nil {
		t.Fatal(err)
	}
	wantRemove(t, a, "big")
	if a.Replacement == nil {
		t.Fatalf("want a replacement, got delete: %s", a.Reason)
	}
	if got := a.Replacement.InstanceType.Name; got != "m.xlarge" {
		t.Errorf("replacement %s, want m.xlarge (1 real pod + 2 headroom pods of 1 CPU do not fit m.large)", got)
	}
	for _, p := range headroom {
		if _, isNew := nodeOfPod(a, p.Name); !isNew {
			t.Errorf("headroom pod %s is not on the replacement", p.Name)
		}
	}
}

// Follows "should consolidate a buffer node once buffer pods are cleared"
// the other way round: headroom that fits on the remaining nodes does not
// keep a node.
func TestConsolidateRemovesNodeWhenReservedPodsFitElsewhere(t *testing.T) {
	s := &Snapshot{Pools: []*Pool{testPool("default", mLadder())}}
	s.Nodes = []*Node{
		existingNode("roomy", "zone-a", 8, 32, pods(2, "p", "1", "1Gi"), ofType("m.2xlarge")),
		existingNode("idle", "zone-a", 2, 8, nil, ofType("m.large")),
	}
	a, err := Consolidate(s, []Candidate{cand("idle", 0.10, 0)}, ConsolidationOptions{Reserved: reserved(2)})
	if err != nil {
		t.Fatal(err)
	}
	wantRemove(t, a, "idle")
	wantDeleteOnly(t, a)
}
