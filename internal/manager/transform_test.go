package manager

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A pod as a Deployment with a sidecar makes it, with everything the
// cache keeps and everything it drops.
func realisticPod() *corev1.Pod {
	container := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example.com/team/" + name + ":v1.2.3",
			Command: []string{"/bin/server"}, Args: []string{"--port=8080", "--log-level=info", "--config=/etc/app/config.yaml"},
			Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "DATABASE_URL", Value: "postgres://db.internal:5432/app?sslmode=require"}, {Name: "FEATURE_FLAGS", Value: "a,b,c,d,e,f"}},
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolTCP}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			VolumeMounts:           []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "data", MountPath: "/data"}},
			LivenessProbe:          &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}, PeriodSeconds: 10},
			ReadinessProbe:         &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz"}}, PeriodSeconds: 5},
			SecurityContext:        &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(true)},
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}
	}
	sidecar := container("proxy")
	sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d9f8b6c5d-x2x4z", Namespace: "shop", UID: "0b5c1a1e-1111-2222-3333-444455556666",
			Labels:          map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5d"},
			Annotations:     map[string]string{"karpenter.sh/do-not-disrupt": "true", lastAppliedAnnotation: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"registry.example.com/team/app:v1.2.3"}]}}`},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8b6c5d", UID: "r1", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar},
			Containers:     []corev1.Container{container("app")},
			NodeSelector:   map[string]string{"kubernetes.io/arch": "amd64"},
			Tolerations:    []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, TopologyKey: "kubernetes.io/hostname"}}}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "web-data"}}}},
			PriorityClassName: "high", Priority: ptr.To[int32](1000),
			Overhead: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodPending,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"}},
			NominatedNodeName: "node-1",
			PodIP:             "10.0.1.17", PodIPs: []corev1.PodIP{{IP: "10.0.1.17"}}, HostIP: "10.0.0.5", HostIPs: []corev1.HostIP{{IP: "10.0.0.5"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "registry.example.com/team/app:v1.2.3", ImageID: "sha256:0123456789abcdef0123456789abcdef", ContainerID: "containerd://abcdef"}},
		},
	}
}

// What Joinery reads of a pod survives the cache's transform untouched;
// the rest is dropped, and the pod is much smaller.
func TestTrimPodKeepsWhatPlanningReads(t *testing.T) {
	orig := realisticPod()
	out, err := trimPod(orig.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	pod := out.(*corev1.Pod)
	kept := []struct {
		field     string
		got, want any
	}{
		{"labels", pod.Labels, orig.Labels},
		{"do-not-disrupt annotation", pod.Annotations["karpenter.sh/do-not-disrupt"], "true"},
		{"owner references", pod.OwnerReferences, orig.OwnerReferences},
		{"node selector", pod.Spec.NodeSelector, orig.Spec.NodeSelector},
		{"tolerations", pod.Spec.Tolerations, orig.Spec.Tolerations},
		{"affinity", pod.Spec.Affinity, orig.Spec.Affinity},
		{"topology spread", pod.Spec.TopologySpreadConstraints, orig.Spec.TopologySpreadConstraints},
		{"volumes", pod.Spec.Volumes, orig.Spec.Volumes},
		{"priority", pod.Spec.Priority, orig.Spec.Priority},
		{"overhead", pod.Spec.Overhead, orig.Spec.Overhead},
		{"container requests", pod.Spec.Containers[0].Resources, orig.Spec.Containers[0].Resources},
		{"host ports", pod.Spec.Containers[0].Ports, orig.Spec.Containers[0].Ports},
		{"sidecar requests", pod.Spec.InitContainers[0].Resources, orig.Spec.InitContainers[0].Resources},
		{"sidecar restart policy", pod.Spec.InitContainers[0].RestartPolicy, orig.Spec.InitContainers[0].RestartPolicy},
		{"phase", pod.Status.Phase, orig.Status.Phase},
		{"conditions", pod.Status.Conditions, orig.Status.Conditions},
		{"nominated node", pod.Status.NominatedNodeName, orig.Status.NominatedNodeName},
	}
	for _, k := range kept {
		if !equality.Semantic.DeepEqual(k.got, k.want) {
			t.Errorf("%s changed: %v, want %v", k.field, k.got, k.want)
		}
	}
	if pod.ManagedFields != nil || pod.Annotations[lastAppliedAnnotation] != "" || pod.Spec.Containers[0].Env != nil ||
		pod.Spec.Containers[0].LivenessProbe != nil || pod.Status.ContainerStatuses != nil || pod.Status.PodIP != "" {
		t.Error("fields never read are still cached")
	}
	before, _ := json.Marshal(orig)
	after, _ := json.Marshal(pod)
	t.Logf("pod: %d bytes before, %d after", len(before), len(after))
	if len(after)*2 > len(before) {
		t.Errorf("the trimmed pod is %d of %d bytes: expected at most half", len(after), len(before))
	}
}

func TestTrimNodeDropsImagesOnly(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"}},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-1", Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			Images:      []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 1}},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	want := node.DeepCopy()
	want.Status.Images = nil
	out, err := trimNode(node)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(out, want) {
		t.Errorf("trimmed node %v, want %v", out, want)
	}
}

// Objects of other kinds pass through (the transform is per kind, but a
// tombstone or another type must not crash the informer).
func TestTrimPassesOtherObjectsThrough(t *testing.T) {
	svc := &corev1.Service{}
	for _, f := range []func(any) (any, error){trimPod, trimNode} {
		if out, err := f(svc); err != nil || out != svc {
			t.Errorf("got %v, %v", out, err)
		}
	}
}
