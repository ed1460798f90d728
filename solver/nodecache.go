package solver

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// nodeCache keeps what a solve derives from the existing nodes of one
// snapshot, for many solves of snapshots that keep most of them
// (consolidation simulates removing different sets of nodes): the resource
// index, each node's usage and ports, and its bound pods grouped by
// (namespace, labels), so a topology rule counts bound pods per label set
// instead of per pod. Nothing in it is modified by a solve.
type nodeCache struct {
	res   *resourceIndex
	nodes map[*Node]*cachedNode
	// sets are the distinct (namespace, labels) of bound pods.
	sets []boundLabels
	// antiRules are the distinct required anti-affinity rules of bound
	// pods, templates a solve copies (ensureTopology owns what it is given).
	antiRules []*topoGroup
}

type cachedNode struct {
	maxAlloc, used resVec
	ports          []hostPort
	sets           []setCount
	// anti counts bound pods per rule of nodeCache.antiRules.
	anti []setCount
}

type boundLabels struct {
	ns     string
	labels map[string]string
}

type setCount struct {
	set, count int32
}

// newNodeCache indexes snap; every snapshot solved with the cache must
// mention no resource snap does not (its nodes a subset of snap's, its pods
// from snap's pending pods and nodes).
func newNodeCache(snap *Snapshot) (*nodeCache, error) {
	c := &nodeCache{res: newResourceIndex(), nodes: make(map[*Node]*cachedNode, len(snap.Nodes))}
	if err := observeSnapshot(c.res, snap); err != nil {
		return nil, err
	}
	nsLabels := snap.namespaceLabels()
	setIndex := map[string]int32{}
	ruleIndex := map[string]int32{}
	var key strings.Builder
	for _, n := range snap.Nodes {
		cn := &cachedNode{}
		cn.maxAlloc, cn.used, cn.ports = nodeUsage(c.res, n)
		for _, p := range n.Pods {
			if p == nil || ignoredForTopology(p) {
				continue
			}
			key.Reset()
			key.WriteString(p.Namespace)
			key.WriteByte(0)
			writeSortedMap(&key, p.Labels)
			id, ok := setIndex[key.String()]
			if !ok {
				id = int32(len(c.sets))
				setIndex[key.String()] = id
				c.sets = append(c.sets, boundLabels{ns: p.Namespace, labels: p.Labels})
			}
			cn.sets = addCount(cn.sets, id)
			for _, rule := range requiredAntiAffinityRules(p, nsLabels) {
				rid, ok := ruleIndex[rule.identity()]
				if !ok {
					rid = int32(len(c.antiRules))
					ruleIndex[rule.identity()] = rid
					c.antiRules = append(c.antiRules, rule)
				}
				cn.anti = addCount(cn.anti, rid)
			}
		}
		c.nodes[n] = cn
	}
	return c, nil
}

// nodeUsage is what an existing node offers and what its bound pods take.
func nodeUsage(res *resourceIndex, n *Node) (maxAlloc, used resVec, ports []hostPort) {
	maxAlloc = res.allocatableVec(n.Node.Status.Allocatable)
	used = make(resVec, res.size())
	for _, p := range n.Pods {
		if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		used.add(res.podRequests(p))
		ports = append(ports, podHostPorts(p)...)
	}
	res.nodeVolumes(n, maxAlloc, used)
	if n.Node.Spec.Unschedulable {
		// A cordoned node takes nothing: make it look full.
		maxAlloc = make(resVec, res.size())
	}
	return maxAlloc, used, ports
}

func (ri *resourceIndex) clone() *resourceIndex {
	out := &resourceIndex{names: append([]corev1.ResourceName(nil), ri.names...), index: make(map[corev1.ResourceName]int, len(ri.index)),
		vols: ri.vols, drivers: ri.drivers}
	for k, v := range ri.index {
		out.index[k] = v
	}
	return out
}

// countBound adds the pods bound to existing nodes that t selects.
func (s *state) countBound(t *topoGroup) {
	if s.cache == nil {
		for _, n := range s.existing {
			for _, p := range n.boundPods {
				if !ignoredForTopology(p) && t.selects(p.Namespace, p.Labels) {
					s.count(t, n, 1)
				}
			}
		}
		return
	}
	selected := make([]bool, len(s.cache.sets))
	for i, b := range s.cache.sets {
		selected[i] = t.selects(b.ns, b.labels)
	}
	for _, n := range s.existing {
		for _, sc := range n.boundSets {
			if selected[sc.set] {
				s.count(t, n, sc.count)
			}
		}
	}
}

func addCount(counts []setCount, id int32) []setCount {
	for i := range counts {
		if counts[i].set == id {
			counts[i].count++
			return counts
		}
	}
	return append(counts, setCount{set: id, count: 1})
}

// countBoundOwners registers the required anti-affinity of bound pods: it
// holds for new pods too.
func (s *state) countBoundOwners() {
	if s.cache == nil {
		for _, n := range s.existing {
			for _, p := range n.boundPods {
				if ignoredForTopology(p) {
					continue
				}
				for _, rule := range requiredAntiAffinityRules(p, s.nsLabels) {
					t := s.ensureTopology(rule)
					if d, ok := n.domain(t.key); ok {
						t.owners[d]++
					}
				}
			}
		}
		return
	}
	rules := make([]*topoGroup, len(s.cache.antiRules))
	for _, n := range s.existing {
		for _, rc := range n.boundAnti {
			t := rules[rc.set]
			if t == nil {
				tmpl := *s.cache.antiRules[rc.set]
				t = s.ensureTopology(&tmpl)
				rules[rc.set] = t
			}
			if d, ok := n.domain(t.key); ok {
				t.owners[d] += rc.count
			}
		}
	}
}

// ignoredForTopology: a terminating or finished pod is in no topology domain
// (Karpenter's IgnoredForTopology; kube-scheduler skips them too). Its
// requests still count until it is gone.
func ignoredForTopology(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
