package manager

import (
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// lastAppliedAnnotation is kubectl's copy of the whole applied object.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// trimPod keeps what planning, disruption and the pool status read of a
// workload pod: metadata, scheduling constraints and requests (with host
// ports), phase, conditions and the nominated node. Per connected cluster
// the Pod cache is most of the manager's memory; a container's command,
// environment, probes and mounts, the container statuses and the IPs are
// never read and are most of a pod's bytes.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	delete(pod.Annotations, lastAppliedAnnotation)
	for _, containers := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range containers {
			trimContainer(&containers[i])
		}
	}
	pod.Spec.EphemeralContainers = nil
	pod.Status.ContainerStatuses = nil
	pod.Status.InitContainerStatuses = nil
	pod.Status.EphemeralContainerStatuses = nil
	pod.Status.PodIP, pod.Status.PodIPs = "", nil
	pod.Status.HostIP, pod.Status.HostIPs = "", nil
	return pod, nil
}

// trimContainer keeps a container's name, image, requests and limits,
// ports (host ports conflict) and restart policy (sidecars).
func trimContainer(c *corev1.Container) {
	c.Command, c.Args, c.WorkingDir = nil, nil, ""
	c.Env, c.EnvFrom = nil, nil
	c.VolumeMounts, c.VolumeDevices = nil, nil
	c.LivenessProbe, c.ReadinessProbe, c.StartupProbe = nil, nil, nil
	c.Lifecycle = nil
	c.SecurityContext = nil
	c.TerminationMessagePath, c.TerminationMessagePolicy = "", ""
}

// trimNode drops the node's image list (tens of KB on a busy node, never
// read) along with managed fields.
func trimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	node.ManagedFields = nil
	delete(node.Annotations, lastAppliedAnnotation)
	node.Status.Images = nil
	return node, nil
}

// WorkloadCacheByObject are the per-kind transforms of every workload
// cluster's cache; other kinds only lose their managed fields. The fleet
// bench's watch floor caches the same way.
func WorkloadCacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}:  {Transform: toolscache.TransformFunc(trimPod)},
		&corev1.Node{}: {Transform: toolscache.TransformFunc(trimNode)},
	}
}
