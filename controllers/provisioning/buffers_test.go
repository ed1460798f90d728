package provisioning

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	"github.com/joinery-dev/joinery/api/v1alpha1"
	joinerycrd "github.com/joinery-dev/joinery/config/crd"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/testenv"
)

// CapacityBuffers against a real apiserver (its CRD, status subresource
// and CEL rules): what a pass reads, plans and writes. Follows Karpenter
// v1.15's controllers/capacitybuffer suite ("PodTemplateRef resolution",
// "ScalableRef resolution") and provisioning's buffers_test.go
// (updateBufferProvisioningStatus), which run its controller against
// envtest the same way.
func TestCapacityBuffersAgainstAnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an apiserver")
	}
	cluster := testenv.New(t, testenv.Options{
		Name:              "provisioning-buffers",
		CRDDirectoryPaths: []string{"../../test/testbed/crds", "../../config/crd/bases"},
		WithoutScheduler:  true,
		WithoutKwok:       true,
	})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, infrav1.AddToScheme, bootstrapv1.AddToScheme,
		v1alpha1.AddToScheme, autoscalingv1beta1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	env := &windowsEnv{cfg: cluster.Config, scheme: scheme, c: c}

	t.Run("a cluster without the CRD has no buffers, and no error", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("plain")
		buffers, err := s.prepared().readBuffers()
		if err != nil || buffers != nil {
			t.Fatalf("readBuffers = %v, %v; want nothing", buffers, err)
		}
	})

	// The workload cluster gets the CRD as a user installs it.
	data, err := joinerycrd.Workload.ReadFile("workload/autoscaling.x-k8s.io_capacitybuffers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), crd); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list autoscalingv1beta1.CapacityBufferList
		if err := c.List(t.Context(), &list); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the CapacityBuffer CRD is not served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("the CRD's rules refuse a buffer with both references, naming them", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		cb := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "both"}, Spec: autoscalingv1beta1.CapacityBufferSpec{
			PodTemplateRef: &autoscalingv1beta1.LocalObjectRef{Name: "x"}, ScalableRef: &autoscalingv1beta1.ScalableRef{Kind: "Deployment", Name: "x"},
			Replicas: ptr.To[int32](1)}}
		err := s.c.Create(s.ctx, cb)
		if err == nil || !strings.Contains(err.Error(), "either PodTemplateRef or ScalableRef") {
			t.Fatalf("create = %v, want the CRD's rule", err)
		}
	})

	t.Run("buffers resolve into chunks that launch a Machine, and their status says so", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("buffered")
		pt := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "web"}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeSelector: map[string]string{v1alpha1.LabelNodePool: "buffered"}, Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}}}}}
		web := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "web"}, Spec: autoscalingv1beta1.CapacityBufferSpec{
			PodTemplateRef: &autoscalingv1beta1.LocalObjectRef{Name: "web"}, Replicas: ptr.To[int32](2)}}
		missing := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "missing"}, Spec: autoscalingv1beta1.CapacityBufferSpec{
			PodTemplateRef: &autoscalingv1beta1.LocalObjectRef{Name: "nope"}, Replicas: ptr.To[int32](1)}}
		cronJob := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "cron"}, Spec: autoscalingv1beta1.CapacityBufferSpec{
			ScalableRef: &autoscalingv1beta1.ScalableRef{APIGroup: "batch", Kind: "CronJob", Name: "nightly"}, Percentage: ptr.To[int32](50)}}
		for _, o := range []client.Object{pt, web, missing, cronJob} {
			if err := s.c.Create(s.ctx, o); err != nil {
				t.Fatal(err)
			}
		}

		ps := s.prepared()
		buffers, err := ps.readBuffers()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*capacitybuffer.Resolved{}
		for _, b := range buffers {
			byName[b.Buffer.Name] = b
		}
		if len(byName) != 3 || !byName["web"].Ready || len(byName["web"].Pods) != 2 || byName["missing"].Ready || byName["cron"].Ready {
			t.Fatalf("resolved %+v", byName)
		}
		headroom := virtualPods(buffers)
		plan := &solver.Plan{NewNodes: []*solver.NewNode{newNode("buffered", headroom...)}}
		created, err := ps.launchPlan(plan)
		if err != nil || len(created) != 1 {
			t.Fatalf("launch: %v, %v", created, err)
		}
		ps.writeBufferStatuses(buffers, plan)

		m := &clusterv1.Machine{}
		if !s.exists(m, created[0]) {
			t.Fatalf("Machine %s not created", created[0])
		}
		d, err := ReadDecision(m)
		if err != nil || d.Headroom[s.ns+"/web"] != 2 {
			t.Errorf("decision headroom %v (%v), want %s/web: 2", d.Headroom, err, s.ns)
		}
		for _, p := range headroom {
			if evs := s.events.find("Pod", p.Name, false); len(evs) > 0 {
				t.Errorf("an Event was sent to virtual pod %s, which does not exist: %+v", p.Name, evs)
			}
		}
		// A restart makes the same plan again: the chunks' stable UIDs
		// name the same Machine, so nothing is launched twice.
		redo, err := s.prepared().launchPlan(plan)
		if err != nil || len(redo) != 1 || redo[0] != created[0] {
			t.Errorf("the same headroom plan launched %v (%v), want Machine %s again", redo, err, created[0])
		}

		get := func(name string) *autoscalingv1beta1.CapacityBuffer {
			cb := &autoscalingv1beta1.CapacityBuffer{}
			if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: s.ns, Name: name}, cb); err != nil {
				t.Fatal(err)
			}
			return cb
		}
		cond := func(cb *autoscalingv1beta1.CapacityBuffer, typ string) *metav1.Condition {
			return apimeta.FindStatusCondition(cb.Status.Conditions, typ)
		}
		got := get("web")
		if r := cond(got, autoscalingv1beta1.ReadyForProvisioningCondition); r == nil || r.Status != metav1.ConditionTrue ||
			ptr.Deref(got.Status.Replicas, 0) != 2 || got.Status.PodTemplateRef == nil || got.Status.PodTemplateRef.Name != "web" || got.Status.PodTemplateGeneration == nil {
			t.Errorf("web status %+v", got.Status)
		}
		if p := cond(got, autoscalingv1beta1.ProvisioningCondition); p == nil || p.Reason != autoscalingv1beta1.ReasonRequiresNewCapacity {
			t.Errorf("web Provisioning %+v, want RequiresNewCapacity", p)
		}
		if r := cond(get("missing"), autoscalingv1beta1.ReadyForProvisioningCondition); r == nil || r.Reason != autoscalingv1beta1.ReasonPodTemplateNotFound ||
			!strings.Contains(r.Message, "spec.podTemplateRef.name") {
			t.Errorf("missing ReadyForProvisioning %+v, want PodTemplateNotFound naming spec.podTemplateRef.name", r)
		}
		if r := cond(get("cron"), autoscalingv1beta1.ReadyForProvisioningCondition); r == nil || r.Reason != autoscalingv1beta1.ReasonResolutionFailed ||
			!strings.Contains(r.Message, "spec.scalableRef.apiGroup") {
			t.Errorf("cron ReadyForProvisioning %+v, want ResolutionFailed naming spec.scalableRef.apiGroup", r)
		}
		if evs := s.events.find("CapacityBuffer", "missing", true); len(evs) != 1 || evs[0].reason != autoscalingv1beta1.ReasonPodTemplateNotFound {
			t.Errorf("Events on the missing buffer: %+v", evs)
		}

		// The chunks now fit on what exists: the status follows.
		fits := &solver.Plan{}
		for _, p := range headroom {
			fits.Existing = append(fits.Existing, solver.Placement{Pod: p, NodeName: created[0]})
		}
		buffers, err = s.prepared().readBuffers()
		if err != nil {
			t.Fatal(err)
		}
		s.prepared().writeBufferStatuses(buffers, fits)
		if p := cond(get("web"), autoscalingv1beta1.ProvisioningCondition); p == nil || p.Status != metav1.ConditionTrue || p.Reason != autoscalingv1beta1.ReasonFitsExistingCapacity {
			t.Errorf("web Provisioning %+v, want True/FitsExistingCapacity", p)
		}
	})
}
