package solver

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DaemonSetPods returns, for each of the snapshot's daemonsets (same
// order), the pod whose requests a new node must keep free for it. Like
// Karpenter (getDaemonSetPods), that is the newest running pod the
// daemonset controls when there is one: mutating webhooks inject sidecars
// and requests the template does not have. Otherwise it is a pod made from
// the template. Where the pod may land (node selector, affinity,
// tolerations) is always the template's: the daemonset controller adds a
// per-node affinity to every pod it makes.
// Exported so validity checkers apply the same rule.
func DaemonSetPods(snap *Snapshot) []*corev1.Pod {
	out := make([]*corev1.Pod, len(snap.DaemonSets))
	if len(snap.DaemonSets) == 0 {
		return out
	}
	byUID := make(map[string]int, len(snap.DaemonSets))
	for i, ds := range snap.DaemonSets {
		if ds != nil && ds.UID != "" {
			byUID[string(ds.UID)] = i
		}
	}
	live := make([]*corev1.Pod, len(snap.DaemonSets))
	for _, n := range snap.Nodes {
		if n == nil {
			continue
		}
		for _, p := range n.Pods {
			if p == nil || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			ref := metav1.GetControllerOfNoCopy(p)
			if ref == nil || ref.Kind != "DaemonSet" {
				continue
			}
			i, ok := byUID[string(ref.UID)]
			if !ok || snap.DaemonSets[i].Namespace != p.Namespace {
				continue
			}
			if cur := live[i]; cur == nil || p.CreationTimestamp.After(cur.CreationTimestamp.Time) {
				live[i] = p
			}
		}
	}
	for i, ds := range snap.DaemonSets {
		if ds == nil {
			continue
		}
		out[i] = daemonSetPod(ds, live[i])
	}
	return out
}

func daemonSetPod(ds *appsv1.DaemonSet, live *corev1.Pod) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: ds.Name, Namespace: ds.Namespace}, Spec: ds.Spec.Template.Spec}
	if live != nil {
		pod.Spec.Containers = live.Spec.Containers
		pod.Spec.InitContainers = live.Spec.InitContainers
		pod.Spec.Overhead = live.Spec.Overhead
		pod.Spec.Resources = live.Spec.Resources
	}
	return pod
}
