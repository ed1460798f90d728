package solver

import (
	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// nodeState is a node the solver can put pods on: an existing (or in-flight)
// node with fixed labels, or a planned node whose (type, offering) is still a
// set of candidates that shrinks as pods are added.
type nodeState struct {
	existing bool
	name     string
	hostname string
	used     resVec
	// maxAlloc bounds what any remaining candidate offers (existing: allocatable).
	maxAlloc resVec
	// minAlloc is at most every remaining candidate's allocatable, so load
	// within it keeps them all (nil: unknown). Narrowing cands keeps it
	// valid; whatever may widen them must recompute or drop it.
	minAlloc resVec
	ports    []hostPort
	groups   []groupCount
	placed   []*corev1.Pod

	// existing nodes
	src        *Node
	labels     map[string]string
	nodeTaints []corev1.Taint
	boundPods  []*corev1.Pod
	// boundSets counts boundPods by label set (nodeCache.sets) when cached.
	boundSets []setCount
	// boundAnti counts boundPods by anti-affinity rule (nodeCache.antiRules).
	boundAnti []setCount
	classOK   map[int]bool

	// planned nodes
	pool *poolState
	// cands are indexes into pool.cands, price order. owned is false while
	// the slice is shared with the pool's per-class cache.
	cands     []int32
	ownsCands bool
	pins      []pin
	classes   []int
	seq       int
	// suited caches, for recandidate, the pool's offerings that suit the
	// node's classes and pins, as of suitedClasses classes and suitedPins
	// pins (both only grow).
	suited                    []int32
	suitedClasses, suitedPins int
}

type groupCount struct {
	group *podGroup
	count int
}

type pin struct {
	key, value string
}

func (n *nodeState) chosen() *candidate {
	// A planned node with no pods yet contributes nothing to pool usage.
	if n.existing || len(n.cands) == 0 || len(n.groups) == 0 {
		return nil
	}
	return &n.pool.cands[n.cands[0]]
}

func (n *nodeState) pinned(key string) (string, bool) {
	for _, p := range n.pins {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// domain is the node's value for a topology key, if known.
func (n *nodeState) domain(key string) (string, bool) {
	if key == v1alpha1.LabelHostname {
		return n.hostname, true
	}
	if n.existing {
		v, ok := n.labels[key]
		return v, ok
	}
	if v, ok := n.pinned(key); ok {
		return v, true
	}
	if c := n.chosen(); c != nil {
		// Keys every candidate shares (pool labels, nodepool) need no pin.
		v, ok := c.Label(key)
		if !ok {
			return "", false
		}
		for _, i := range n.cands {
			if w, ok2 := n.pool.cands[i].Label(key); !ok2 || w != v {
				return "", false
			}
		}
		return v, true
	}
	return "", false
}

func (n *nodeState) labelGetter() LabelGetter {
	if n.existing {
		return LabelMap(n.labels)
	}
	return plannedLabels{n}
}

// plannedLabels resolves a planned node's labels from its chosen candidate.
type plannedLabels struct{ n *nodeState }

func (p plannedLabels) Label(key string) (string, bool) {
	if key == v1alpha1.LabelHostname {
		return p.n.hostname, true
	}
	if c := p.n.chosen(); c != nil {
		return c.Label(key)
	}
	return "", false
}

func (n *nodeState) taints() []corev1.Taint {
	if n.existing {
		return n.nodeTaints
	}
	return n.pool.taints
}
