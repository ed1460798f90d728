package solver

import (
	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// ephemeralTaints are set while a node boots; an in-flight machine is
// expected to lose them, so they do not block planning (as in Karpenter).
var ephemeralTaints = map[string]bool{
	corev1.TaintNodeNotReady:                         true,
	corev1.TaintNodeUnreachable:                      true,
	"node.cloudprovider.kubernetes.io/uninitialized": true,
	"karpenter.sh/unregistered":                      true,
	// CAPI's kubeadm bootstrap registers nodes with it and removes it once
	// the Machine's labels are on the Node.
	"node.cluster.x-k8s.io/uninitialized": true,
}

// SchedulingTaints returns the taints of an existing node that block new
// pods: for in-flight machines, boot-time taints and the pool's startup
// taints are dropped. Exported so validity checkers apply the same rule.
func SchedulingTaints(n *Node, pools []*Pool) []corev1.Taint {
	var out []corev1.Taint
	var startup []corev1.Taint
	if n.InFlight {
		for _, p := range pools {
			if p != nil && p.Name == n.Pool {
				startup = p.StartupTaints
			}
		}
	}
	for _, t := range n.Node.Spec.Taints {
		if n.InFlight {
			if ephemeralTaints[t.Key] {
				continue
			}
			skip := false
			for _, st := range startup {
				if st.Key == t.Key && st.Effect == t.Effect {
					skip = true
				}
			}
			if skip {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// NodeHostname is the hostname topology domain of an existing node.
func NodeHostname(n *corev1.Node) string {
	if h, ok := n.Labels[v1alpha1.LabelHostname]; ok {
		return h
	}
	return n.Name
}

func (s *state) buildExisting(n *Node) *nodeState {
	ns := &nodeState{
		existing:   true,
		src:        n,
		name:       n.Node.Name,
		hostname:   NodeHostname(n.Node),
		labels:     n.Node.Labels,
		nodeTaints: SchedulingTaints(n, s.snap.Pools),
		boundPods:  n.Pods,
		classOK:    map[int]bool{},
	}
	if cn := s.cacheOf(n); cn != nil {
		ns.maxAlloc, ns.used = cn.maxAlloc.clone(), cn.used.clone()
		ns.ports = append([]hostPort(nil), cn.ports...)
		ns.boundSets, ns.boundAnti = cn.sets, cn.anti
		return ns
	}
	ns.maxAlloc, ns.used, ns.ports = nodeUsage(s.res, n)
	return ns
}

func (s *state) cacheOf(n *Node) *cachedNode {
	if s.cache == nil {
		return nil
	}
	return s.cache.nodes[n]
}

// existingCompatible checks labels and taints of an existing node against a
// constraint class, cached per node and class.
func (s *state) existingCompatible(n *nodeState, cl *constraintClass) bool {
	if ok, seen := n.classOK[cl.id]; seen {
		return ok
	}
	ok := cl.reqs.Matches(LabelMap(n.labels))
	if ok {
		// PreferNoSchedule does not block here, unlike on new nodes: a
		// pending pod that fits an existing node is kube-scheduler's to
		// place, and it only scores PreferNoSchedule. (Karpenter blocks it
		// on existing nodes too, and then launches a node the pod may never use.)
		_, ok = tolerates(cl.tolerations, n.nodeTaints)
	}
	n.classOK[cl.id] = ok
	return ok
}
