package capacitybuffer

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
)

func cpuSpec(cpus ...string) corev1.PodSpec {
	var s corev1.PodSpec
	for i, c := range cpus {
		s.Containers = append(s.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(c)}}})
	}
	return s
}

func buffer(mod func(*autoscalingv1beta1.CapacityBufferSpec)) *autoscalingv1beta1.CapacityBuffer {
	cb := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "cb-uid", Generation: 3}}
	mod(&cb.Spec)
	return cb
}

func podTemplateRef(s *autoscalingv1beta1.CapacityBufferSpec) {
	s.PodTemplateRef = &autoscalingv1beta1.LocalObjectRef{Name: "web"}
}

func deploymentRef(s *autoscalingv1beta1.CapacityBufferSpec) {
	s.ScalableRef = &autoscalingv1beta1.ScalableRef{Kind: "Deployment", Name: "web"}
}

// Follows Karpenter's capacitybuffer helpers_test.go, Context
// "calculateLimitReplicas".
func TestLimitReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits corev1.ResourceList
		spec   corev1.PodSpec
		want   int32
		ok     bool
	}{
		{"should calculate replicas based on CPU limits", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10")}, cpuSpec("2"), 5, true},
		{"should take the minimum across multiple resources", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10"), corev1.ResourceMemory: resource.MustParse("4Gi")},
			corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}}, 4, true},
		{"should sum requests across multiple containers", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("9")}, cpuSpec("1", "2"), 3, true},
		{"should use init container max if larger than sum of containers", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")},
			func() corev1.PodSpec {
				s := cpuSpec("1")
				s.InitContainers = cpuSpec("4").Containers
				return s
			}(), 2, true},
		{"should return false when pod has no resource requests", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}, corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}, 0, false},
		{"should return false when no limit resources match pod requests", corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi")}, cpuSpec("1"), 0, false},
		{"should floor divide (no rounding up)", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5")}, cpuSpec("2"), 2, true},
		{"should handle millicore-level precision", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}, cpuSpec("300m"), 3, true},
		{"should return 0 when limit is smaller than a single pod request", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}, cpuSpec("1"), 0, true},
		{"should sum sidecar init containers with regular containers", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("6")},
			func() corev1.PodSpec {
				s := cpuSpec("1")
				s.InitContainers = cpuSpec("1").Containers
				s.InitContainers[0].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
				return s
			}(), 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := LimitReplicas(tc.limits, &tc.spec)
			if got != tc.want || ok != tc.ok {
				t.Errorf("LimitReplicas = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Follows Karpenter's helpers_test.go, Context "calculatePercentageReplicas".
func TestPercentageReplicas(t *testing.T) {
	for _, tc := range []struct {
		name                string
		replicas, pct, want int32
	}{
		{"should calculate percentage and ceil", 10, 20, 2},
		{"should ceil fractional results", 10, 25, 3},
		{"should return at least 1 when percentage > 0 and replicas > 0", 3, 1, 1},
		{"should return 0 when scalable has 0 replicas", 0, 50, 0},
		{"should return 0 when percentage is 0", 10, 0, 0},
		{"should handle 100 percent", 7, 100, 7},
		{"should handle large percentages (>100)", 10, 250, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PercentageReplicas(tc.replicas, tc.pct); got != tc.want {
				t.Errorf("PercentageReplicas(%d, %d) = %d, want %d", tc.replicas, tc.pct, got, tc.want)
			}
		})
	}
}

// Follows Karpenter's capacitybuffer suite_test.go, DescribeTable "should
// resolve buffer replicas from replicas, percentage, and limits".
func TestResolveReplicas(t *testing.T) {
	cpu := func(s string) autoscalingv1beta1.Limits {
		return autoscalingv1beta1.Limits{corev1.ResourceCPU: resource.MustParse(s)}
	}
	for _, tc := range []struct {
		name     string
		spec     func(*autoscalingv1beta1.CapacityBufferSpec)
		workload int32 // the scalableRef's replicas
		want     int32
	}{
		{"fixed replicas only", func(s *autoscalingv1beta1.CapacityBufferSpec) { podTemplateRef(s); s.Replicas = ptr.To[int32](7) }, 0, 7},
		{"replicas capped by binding limit", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			podTemplateRef(s)
			s.Replicas, s.Limits = ptr.To[int32](10), cpu("3")
		}, 0, 3},
		{"non-binding limit does not reduce (podTemplateRef)", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			podTemplateRef(s)
			s.Replicas, s.Limits = ptr.To[int32](3), cpu("10")
		}, 0, 3},
		{"limits only", func(s *autoscalingv1beta1.CapacityBufferSpec) { podTemplateRef(s); s.Limits = cpu("5") }, 0, 5},
		{"percentage only", func(s *autoscalingv1beta1.CapacityBufferSpec) { deploymentRef(s); s.Percentage = ptr.To[int32](20) }, 10, 2},
		{"replicas > percentage", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			deploymentRef(s)
			s.Replicas, s.Percentage = ptr.To[int32](5), ptr.To[int32](20)
		}, 10, 5},
		{"percentage > replicas", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			deploymentRef(s)
			s.Replicas, s.Percentage = ptr.To[int32](5), ptr.To[int32](80)
		}, 10, 8},
		{"max of replicas and percentage capped by limit", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			deploymentRef(s)
			s.Replicas, s.Percentage, s.Limits = ptr.To[int32](5), ptr.To[int32](80), cpu("4")
		}, 10, 4},
		{"percentage rounds up to a minimum of 1", func(s *autoscalingv1beta1.CapacityBufferSpec) { deploymentRef(s); s.Percentage = ptr.To[int32](10) }, 1, 1},
		{"percentage is ignored with a podTemplateRef", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			podTemplateRef(s)
			s.Replicas, s.Percentage = ptr.To[int32](2), ptr.To[int32](500)
		}, 10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := buffer(tc.spec)
			src := &Source{Template: corev1.PodTemplateSpec{Spec: cpuSpec("1")}, ScalableReplicas: tc.workload}
			r := Resolve(cb, src, nil, false)
			if !r.Ready || r.Replicas != tc.want || len(r.Pods) != int(tc.want) {
				t.Errorf("ready %v, replicas %d, %d pods; want %d (%s)", r.Ready, r.Replicas, len(r.Pods), tc.want, r.Message)
			}
		})
	}
}

// Follows Karpenter's suite_test.go Contexts "PodTemplateRef resolution" and
// "ScalableRef resolution": what cannot be resolved sets
// ReadyForProvisioning=False with a reason and a message naming the field.
func TestResolveReportsBadInput(t *testing.T) {
	notFound := apierrors.NewNotFound(corev1.Resource("podtemplates"), "web (spec.podTemplateRef.name)")
	for _, tc := range []struct {
		name       string
		spec       func(*autoscalingv1beta1.CapacityBufferSpec)
		err        error
		notFound   bool
		wantReason string
		wantInMsg  string
	}{
		{"should set ReadyForProvisioning=False when PodTemplate is not found", func(s *autoscalingv1beta1.CapacityBufferSpec) { podTemplateRef(s); s.Replicas = ptr.To[int32](1) },
			notFound, true, autoscalingv1beta1.ReasonPodTemplateNotFound, "spec.podTemplateRef.name"},
		{"should set ReadyForProvisioning=False when scalable ref is not found", deploymentRef,
			apierrors.NewNotFound(corev1.Resource("deployments"), "web (spec.scalableRef.name)"), true, autoscalingv1beta1.ReasonScalableRefNotFound, "spec.scalableRef.name"},
		{"should return error for unsupported kind", deploymentRef,
			errors.New(`spec.scalableRef.kind "CronJob" is not supported`), false, autoscalingv1beta1.ReasonResolutionFailed, "spec.scalableRef.kind"},
		{"neither reference is set", func(*autoscalingv1beta1.CapacityBufferSpec) {}, nil, false, autoscalingv1beta1.ReasonResolutionFailed, "neither spec.podTemplateRef nor spec.scalableRef"},
		{"another provisioning strategy", func(s *autoscalingv1beta1.CapacityBufferSpec) {
			podTemplateRef(s)
			s.ProvisioningStrategy = ptr.To("buffer.x-k8s.io/standby")
		}, nil, false, autoscalingv1beta1.ReasonUnsupportedStrategy, "spec.provisioningStrategy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := buffer(tc.spec)
			var src *Source
			if tc.err == nil {
				src = &Source{Template: corev1.PodTemplateSpec{Spec: cpuSpec("1")}}
			}
			r := Resolve(cb, src, tc.err, tc.notFound)
			if r.Ready || len(r.Pods) != 0 {
				t.Fatalf("resolved a buffer that cannot be: %+v", r)
			}
			st := Status(r, nil, false)
			c := apimeta.FindStatusCondition(st.Conditions, autoscalingv1beta1.ReadyForProvisioningCondition)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantInMsg) || !strings.Contains(c.Message, "shop/web") {
				t.Errorf("ReadyForProvisioning = %+v; want False, %s, a message naming shop/web and %q", c, tc.wantReason, tc.wantInMsg)
			}
			if p := apimeta.FindStatusCondition(st.Conditions, autoscalingv1beta1.ProvisioningCondition); p == nil || p.Reason != autoscalingv1beta1.ReasonNotReadyForProvisioning {
				t.Errorf("Provisioning = %+v, want False/NotReadyForProvisioning", p)
			}
			if st.Replicas != nil {
				t.Errorf("status.replicas = %d for a buffer that is not ready", *st.Replicas)
			}
		})
	}
}

// Follows Karpenter's suite_test.go "should resolve a PodTemplate and set
// ReadyForProvisioning=True": the status records the template and its
// generation, the replicas and the strategy.
func TestStatusOfAResolvedPodTemplateBuffer(t *testing.T) {
	cb := buffer(func(s *autoscalingv1beta1.CapacityBufferSpec) { podTemplateRef(s); s.Replicas = ptr.To[int32](2) })
	r := Resolve(cb, &Source{Template: corev1.PodTemplateSpec{Spec: cpuSpec("1")}, PodTemplate: "web", PodTemplateGeneration: 4}, nil, false)
	st := Status(r, nil, false)
	if st.PodTemplateRef == nil || st.PodTemplateRef.Name != "web" || ptr.Deref(st.PodTemplateGeneration, 0) != 4 || ptr.Deref(st.Replicas, 0) != 2 ||
		ptr.Deref(st.ProvisioningStrategy, "") != autoscalingv1beta1.ActiveProvisioningStrategy {
		t.Errorf("status %+v", st)
	}
	c := apimeta.FindStatusCondition(st.Conditions, autoscalingv1beta1.ReadyForProvisioningCondition)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != autoscalingv1beta1.ReasonResolved || c.ObservedGeneration != 3 {
		t.Errorf("ReadyForProvisioning = %+v", c)
	}
	if apimeta.FindStatusCondition(st.Conditions, autoscalingv1beta1.ProvisioningCondition) != nil {
		t.Errorf("Provisioning set before any plan")
	}
}

// Follows Karpenter's provisioning buffers_test.go,
// computeProvisioningCondition: FitsExistingCapacity when every chunk is on
// existing capacity, RequiresNewCapacity otherwise, BufferEmpty for zero
// chunks, unchanged without a plan.
func TestProvisioningCondition(t *testing.T) {
	ready := func(n int32) *Resolved {
		cb := buffer(func(s *autoscalingv1beta1.CapacityBufferSpec) { podTemplateRef(s); s.Replicas = ptr.To(n) })
		return Resolve(cb, &Source{Template: corev1.PodTemplateSpec{Spec: cpuSpec("1")}}, nil, false)
	}
	for _, tc := range []struct {
		name    string
		r       *Resolved
		placed  *Placement
		planned bool
		want    string // reason; "" for no condition
		status  metav1.ConditionStatus
	}{
		{"should return True/FitsExistingCapacity when all pods fit existing nodes", ready(3), &Placement{Existing: 3, Nodes: map[string]int{"n1": 3}}, true, autoscalingv1beta1.ReasonFitsExistingCapacity, metav1.ConditionTrue},
		{"should return False/RequiresNewCapacity when new nodes are needed", ready(3), &Placement{Existing: 1, New: 2}, true, autoscalingv1beta1.ReasonRequiresNewCapacity, metav1.ConditionFalse},
		{"chunks that fit nowhere require new capacity", ready(2), &Placement{Existing: 1, Unplaced: 1, Reasons: []string{"no pool"}}, true, autoscalingv1beta1.ReasonRequiresNewCapacity, metav1.ConditionFalse},
		{"should return False/BufferEmpty when replicas is zero", ready(0), &Placement{}, true, autoscalingv1beta1.ReasonBufferEmpty, metav1.ConditionFalse},
		{"should return nil when ready but no results observed", ready(2), nil, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Status(tc.r, tc.placed, tc.planned)
			c := apimeta.FindStatusCondition(st.Conditions, autoscalingv1beta1.ProvisioningCondition)
			switch {
			case tc.want == "" && c != nil:
				t.Errorf("Provisioning = %+v, want none", c)
			case tc.want != "" && (c == nil || c.Reason != tc.want || c.Status != tc.status):
				t.Errorf("Provisioning = %+v, want %s/%s", c, tc.status, tc.want)
			}
		})
	}
}

// Follows Karpenter's virtualpods utilities_test.go, "buildVirtualPods" and
// "sanitizeVirtualPodSpec".
func TestVirtualPods(t *testing.T) {
	cb := buffer(podTemplateRef)
	cb.CreationTimestamp = metav1.Unix(1000, 0)
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:     "somewhere",
			NodeSelector: map[string]string{"tier": "front"},
			Tolerations:  []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpExists}},
			Containers:   []corev1.Container{{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "data"}, {Name: "scratch"}, {Name: "config"}}}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			},
		},
	}
	t.Run("should create the correct number of pods with expected metadata", func(t *testing.T) {
		got := VirtualPods(cb, template, 3)
		if len(got) != 3 {
			t.Fatalf("%d pods, want 3", len(got))
		}
		for i, p := range got {
			if !IsVirtual(p) || BufferOf(p) != "shop/web" || p.Namespace != "shop" || p.Labels["app"] != "web" ||
				p.Name != "capacity-buffer-web-"+string(rune('1'+i)) || ptr.Deref(p.Spec.Priority, 0) != VirtualPodPriority {
				t.Errorf("pod %d: %+v", i, p.ObjectMeta)
			}
			if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || p.Status.Conditions[0].Reason != corev1.PodReasonUnschedulable {
				t.Errorf("pod %d is not pending and unschedulable", i)
			}
		}
	})
	t.Run("should produce deterministic UIDs across calls", func(t *testing.T) {
		a, b := VirtualPods(cb, template, 2), VirtualPods(cb, template, 2)
		if a[0].UID != b[0].UID || a[0].UID == a[1].UID {
			t.Errorf("UIDs %s %s / %s", a[0].UID, a[1].UID, b[0].UID)
		}
	})
	t.Run("should return nil for zero replicas", func(t *testing.T) {
		if got := VirtualPods(cb, template, 0); got != nil {
			t.Errorf("%d pods", len(got))
		}
	})
	t.Run("should drop both PVC and ephemeral volumes together", func(t *testing.T) {
		p := VirtualPods(cb, template, 1)[0]
		if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Name != "config" {
			t.Errorf("volumes %v", p.Spec.Volumes)
		}
		if m := p.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "config" {
			t.Errorf("mounts %v", m)
		}
		if len(template.Spec.Volumes) != 3 {
			t.Errorf("the template was changed")
		}
	})
	t.Run("should preserve tolerations, nodeSelector, and affinity", func(t *testing.T) {
		p := VirtualPods(cb, template, 1)[0]
		if p.Spec.NodeSelector["tier"] != "front" || len(p.Spec.Tolerations) != 1 {
			t.Errorf("spec %+v", p.Spec)
		}
	})
	t.Run("real pods are not virtual", func(t *testing.T) {
		if IsVirtual(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"other": "x"}}}) || IsVirtual(nil) || BufferOf(nil) != "" {
			t.Errorf("a real pod counts as virtual")
		}
	})
}
