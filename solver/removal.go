package solver

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Reschedulable reports whether a pod on a removed node has to be placed
// elsewhere, as Karpenter's pod.IsReschedulable decides: it is active (or a
// terminating StatefulSet pod, whose replacement waits for it) and is neither
// a DaemonSet pod (the DaemonSet follows the nodes) nor a static mirror pod.
// do-not-disrupt annotations and PodDisruptionBudgets are the controller's
// concern, not the simulation's.
func Reschedulable(pod *corev1.Pod) bool {
	if pod == nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	statefulSet := false
	for _, ref := range pod.OwnerReferences {
		switch {
		case ref.Kind == "DaemonSet" && isAPIGroup(ref.APIVersion, "apps"):
			return false
		case ref.Kind == "Node" && ref.APIVersion == "v1":
			return false
		case ref.Kind == "StatefulSet" && isAPIGroup(ref.APIVersion, "apps"):
			statefulSet = true
		}
	}
	return pod.DeletionTimestamp == nil || statefulSet
}

func isAPIGroup(apiVersion, group string) bool {
	return len(apiVersion) > len(group) && apiVersion[:len(group)] == group && apiVersion[len(group)] == '/'
}

// RemovalSnapshot is the world after the named nodes are gone: they leave
// Nodes (so their pods no longer count for topology or repel anyone), and
// their reschedulable pods join the pending pods, after snap.Pods, in node
// then pod order. The pods are the same objects as in snap.
func RemovalSnapshot(snap *Snapshot, remove []string) (*Snapshot, error) {
	if snap == nil {
		return nil, errors.New("solver: nil snapshot")
	}
	gone := make(map[string]bool, len(remove))
	for _, name := range remove {
		if gone[name] {
			return nil, fmt.Errorf("solver: node %q is listed twice for removal", name)
		}
		gone[name] = true
	}
	idx := make([]int, 0, len(remove))
	for i, n := range snap.Nodes {
		if n == nil || n.Node == nil {
			return nil, errors.New("solver: node without a Node object")
		}
		if gone[n.Node.Name] {
			idx = append(idx, i)
		}
	}
	if len(idx) != len(gone) {
		for _, name := range remove {
			if !hasNodeNamed(snap.Nodes, idx, name) {
				return nil, fmt.Errorf("solver: node %q to remove is not in the snapshot", name)
			}
		}
	}
	return removalSnapshot(snap, idx), nil
}

func hasNodeNamed(nodes []*Node, idx []int, name string) bool {
	for _, i := range idx {
		if nodes[i].Node.Name == name {
			return true
		}
	}
	return false
}

// removalSnapshot is RemovalSnapshot for node indexes (ascending, valid).
func removalSnapshot(snap *Snapshot, remove []int) *Snapshot {
	out := *snap
	out.Nodes = make([]*Node, 0, len(snap.Nodes)-len(remove))
	moved := 0
	next := 0
	for i, n := range snap.Nodes {
		if next < len(remove) && remove[next] == i {
			next++
			moved += len(n.Pods)
			continue
		}
		out.Nodes = append(out.Nodes, n)
	}
	out.Pods = make([]*corev1.Pod, 0, len(snap.Pods)+moved)
	out.Pods = append(out.Pods, snap.Pods...)
	for _, i := range remove {
		for _, p := range snap.Nodes[i].Pods {
			if Reschedulable(p) {
				out.Pods = append(out.Pods, p)
			}
		}
	}
	return &out
}

// SimulateRemoval plans the cluster without the named nodes: their
// reschedulable pods (see Reschedulable) and the pending pods are placed on
// the remaining nodes, in-flight ones included, and on new machines. Call
// RemovalSnapshot for the snapshot the plan refers to.
func SimulateRemoval(snap *Snapshot, remove []string, opts Options) (*Plan, error) {
	derived, err := RemovalSnapshot(snap, remove)
	if err != nil {
		return nil, err
	}
	return Solve(derived, opts)
}
