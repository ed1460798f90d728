package provisioning

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/apiclock"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/testenv"
)

// The provisioning windows of issue 15, against a real apiserver (no
// CAPI or CAPA controllers: what matters is what the pass reads and
// writes, and the apiserver's own semantics of names, finalizers and
// deletion).

// eventLog records Events with the kind and name of their object.
type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

type recordedEvent struct{ kind, name, eventType, reason, message string }

func (l *eventLog) Event(o runtime.Object, eventType, reason, message string) {
	kind, name := reflect.TypeOf(o).Elem().Name(), ""
	if m, ok := o.(metav1.Object); ok {
		name = m.GetName()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, recordedEvent{kind, name, eventType, reason, message})
}

func (l *eventLog) Eventf(o runtime.Object, eventType, reason, format string, args ...any) {
	l.Event(o, eventType, reason, fmt.Sprintf(format, args...))
}

func (l *eventLog) AnnotatedEventf(o runtime.Object, _ map[string]string, eventType, reason, format string, args ...any) {
	l.Eventf(o, eventType, reason, format, args...)
}

func (l *eventLog) find(kind, name string, warning bool) []recordedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []recordedEvent
	for _, e := range l.events {
		if e.kind == kind && e.name == name && (!warning || e.eventType == corev1.EventTypeWarning) {
			out = append(out, e)
		}
	}
	return out
}

type windowsEnv struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	c      client.Client
	scenes int
}

func startWindowsEnv(t *testing.T) *windowsEnv {
	if testing.Short() {
		t.Skip("starts an apiserver")
	}
	cluster := testenv.New(t, testenv.Options{
		Name:              "provisioning-windows",
		CRDDirectoryPaths: []string{"../../test/testbed/crds", "../../config/crd/bases"},
		WithoutScheduler:  true,
		WithoutKwok:       true,
	})
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, infrav1.AddToScheme, bootstrapv1.AddToScheme, v1alpha1.AddToScheme, autoscalingv1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &windowsEnv{cfg: cluster.Config, scheme: scheme, c: c}
}

// provisioner is a Provisioner as a new manager process starts one,
// writing and reading the management cluster through c.
func (env *windowsEnv) provisioner(t *testing.T, cfg *rest.Config, c client.Client) *Provisioner {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.BatchIdle, opts.BatchMax = 0, 0
	p := &Provisioner{Client: c, APIReader: c, Catalog: catalog, Recorder: &eventLog{}, Options: opts, Reports: NewReports(), Now: time.Now}
	p.batches = NewBatches(opts.BatchIdle, opts.BatchMax)
	p.unavailable = NewUnavailableOfferings(opts.UnavailableTTL)
	p.templates = &templates{client: c, mapper: mapper}
	p.offerings = &offeringsCache{source: catalog}
	p.clusters = map[types.NamespacedName]*clusterState{}
	p.blocked = map[poolCluster]poolBlock{}
	return p
}

// scene is one subtest's namespace: a cluster, its pools and a
// provisioner that writes through clients of the given config (the
// management cluster is also the "workload" cluster here).
type scene struct {
	t       *testing.T
	ctx     context.Context
	env     *windowsEnv
	c       client.Client
	ns      string
	p       *Provisioner
	events  *eventLog
	cluster *clusterv1.Cluster
	pools   []*v1alpha1.NodePool
}

func (env *windowsEnv) scene(t *testing.T, cfg *rest.Config) *scene {
	ctx := context.Background()
	env.scenes++
	ns := fmt.Sprintf("scene-%d", env.scenes)
	if err := env.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.scheme})
	if err != nil {
		t.Fatal(err)
	}
	p := env.provisioner(t, cfg, c)
	events := p.Recorder.(*eventLog)

	aws := &infrav1.AWSCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"}, Spec: infrav1.AWSClusterSpec{Region: "us-east-1"}}
	if err := c.Create(ctx, aws); err != nil {
		t.Fatal(err)
	}
	cluster := &clusterv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"},
		Spec: clusterv1.ClusterSpec{
			InfrastructureRef: clusterv1.ContractVersionedObjectReference{APIGroup: infrav1.GroupVersion.Group, Kind: "AWSCluster", Name: "workload"},
			Topology:          clusterv1.Topology{Version: "v1.33.1"},
		},
		Status: clusterv1.ClusterStatus{FailureDomains: []clusterv1.FailureDomain{{Name: "us-east-1a"}, {Name: "us-east-1b"}}},
	}
	key := client.ObjectKeyFromObject(cluster)
	// Pod Events of the "workload" cluster go to the same log.
	p.events = &workloadEvents{ctx: ctx, recorders: map[types.NamespacedName]*clusterRecorder{key: {recorder: events}}}
	return &scene{t: t, ctx: ctx, env: env, c: c, ns: ns, p: p, events: events, cluster: cluster}
}

// restarted is the scene as a new manager process finds it: the same
// apiserver and objects, a Provisioner with none of the old one's memory,
// reading Machines through c.
func (env *windowsEnv) restarted(t *testing.T, s *scene, c client.Client) *scene {
	t.Helper()
	fresh := env.provisioner(t, env.cfg, c)
	fresh.events = s.p.events
	next := *s
	next.p, next.events = fresh, fresh.Recorder.(*eventLog)
	return &next
}

// killAfterMachine is a client whose process dies right after a Machine
// create reaches the apiserver: every write after it fails.
type killAfterMachine struct {
	client.Client
	dead bool
}

func (k *killAfterMachine) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if k.dead {
		return fmt.Errorf("the process was killed")
	}
	err := k.Client.Create(ctx, obj, opts...)
	if _, ok := obj.(*clusterv1.Machine); ok && err == nil {
		k.dead = true
	}
	return err
}

// hideMachines lists Machines as a cache whose first list came before the
// hidden ones were created.
type hideMachines struct {
	client.Client
	hidden map[string]bool
}

func (h *hideMachines) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := h.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	if ml, ok := list.(*clusterv1.MachineList); ok {
		kept := ml.Items[:0]
		for _, m := range ml.Items {
			if !h.hidden[m.Name] {
				kept = append(kept, m)
			}
		}
		ml.Items = kept
	}
	return nil
}

// pool creates a NodePool of the scene's cluster with templates of its own.
func (s *scene) pool(name string) *v1alpha1.NodePool {
	s.t.Helper()
	aws := &infrav1.AWSMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: infrav1.AWSMachineSpec{InstanceType: "m5.large"}}}}
	kubeadm := &bootstrapv1.KubeadmConfigTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name}}
	np := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: v1alpha1.NodePoolSpec{ClusterName: s.cluster.Name, Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
			Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
				{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}},
				{Key: v1alpha1.LabelInstanceType, Operator: v1alpha1.OpIn, Values: []string{"m5.large", "m5.xlarge"}},
			},
			InfrastructureTemplateRef: v1alpha1.TemplateReference{APIGroup: infrav1.GroupVersion.Group, Kind: "AWSMachineTemplate", Name: name},
			BootstrapTemplateRef:      v1alpha1.TemplateReference{APIGroup: bootstrapv1.GroupVersion.Group, Kind: "KubeadmConfigTemplate", Name: name},
		}}},
	}
	np.Spec.Disruption.ConsolidateAfter = "Never"
	for _, o := range []client.Object{aws, kubeadm, np} {
		if err := s.c.Create(s.ctx, o); err != nil {
			s.t.Fatal(err)
		}
	}
	s.pools = append(s.pools, np)
	return np
}

// pass is one reconcile of the scene's cluster, as Reconcile starts it.
func (s *scene) pass() *pass {
	return &pass{Provisioner: s.p, ctx: s.ctx, log: testr.New(s.t), cluster: s.cluster, pools: s.pools,
		workload: &workload{reader: s.c, client: s.c}, now: s.p.Now()}
}

// prepared is a pass that read the cluster's region and its pools'
// templates, ready to launch.
func (s *scene) prepared() *pass {
	s.t.Helper()
	ps := s.pass()
	if _, err := ps.prepare(); err != nil {
		s.t.Fatal(err)
	}
	return ps
}

// pendingPod creates a pod the scheduler found no room for, kept on pool.
func (s *scene) pendingPod(name, pool string) *corev1.Pod {
	s.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{v1alpha1.LabelNodePool: pool},
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
		},
	}
	if err := s.c.Create(s.ctx, p); err != nil {
		s.t.Fatal(err)
	}
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	if err := s.c.Status().Update(s.ctx, p); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = s.env.c.Delete(context.Background(), p) })
	return p
}

// newNode is a plan's node for pods of pool.
func newNode(pool string, pods ...*corev1.Pod) *solver.NewNode {
	return &solver.NewNode{Pool: pool, InstanceType: &solver.InstanceType{Name: "m5.large"},
		Offering: solver.Offering{Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeOnDemand, PricePerHour: 0.096}, Pods: pods}
}

func (s *scene) machines() []clusterv1.Machine {
	s.t.Helper()
	var list clusterv1.MachineList
	if err := s.c.List(s.ctx, &list, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	return list.Items
}

func (s *scene) exists(o client.Object, name string) bool {
	s.t.Helper()
	err := s.env.c.Get(s.ctx, types.NamespacedName{Namespace: s.ns, Name: name}, o)
	if err != nil && !apierrors.IsNotFound(err) {
		s.t.Fatal(err)
	}
	return err == nil
}

// terminate deletes a Machine that a finalizer keeps, as CAPI's keeps
// it while its instance is terminated.
func (s *scene) terminate(name string) {
	s.t.Helper()
	m := &clusterv1.Machine{}
	if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: s.ns, Name: name}, m); err != nil {
		s.t.Fatal(err)
	}
	m.Finalizers = append(m.Finalizers, clusterv1.MachineFinalizer)
	if err := s.c.Update(s.ctx, m); err != nil {
		s.t.Fatal(err)
	}
	if err := s.c.Delete(s.ctx, m); err != nil {
		s.t.Fatal(err)
	}
}

func TestProvisioningWindows(t *testing.T) {
	env := startWindowsEnv(t)

	t.Run("a relaunch never adopts a terminating Machine, and stays idempotent", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("relaunch")
		pods := []*corev1.Pod{s.pendingPod("a", "relaunch"), s.pendingPod("b", "relaunch")}
		plan := &solver.Plan{NewNodes: []*solver.NewNode{newNode("relaunch", pods...)}}

		first, err := s.prepared().launchPlan(plan)
		if err != nil || len(first) != 1 {
			t.Fatalf("first launch: %v, %v", first, err)
		}
		// EC2 refused it (or its node never registered): the pass deleted
		// it, and CAPI's finalizer keeps it while CAPA terminates; its
		// AWSMachine is already gone.
		s.terminate(first[0])
		if err := s.c.Delete(s.ctx, &infrav1.AWSMachine{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: first[0]}}); err != nil {
			t.Fatal(err)
		}

		relaunch, err := s.prepared().launchPlan(plan)
		if err != nil || len(relaunch) != 1 {
			t.Fatalf("relaunch: %v, %v", relaunch, err)
		}
		if relaunch[0] == first[0] {
			t.Fatalf("the relaunch adopted Machine %s, which is being deleted", first[0])
		}
		if s.exists(&infrav1.AWSMachine{}, first[0]) {
			t.Errorf("an AWSMachine was created again for the terminating Machine %s: CAPA would launch an instance for it", first[0])
		}
		m := &clusterv1.Machine{}
		if !s.exists(m, relaunch[0]) || m.DeletionTimestamp != nil {
			t.Fatalf("the relaunched Machine %s is not there, or is being deleted", relaunch[0])
		}
		for _, o := range []client.Object{&infrav1.AWSMachine{}, &bootstrapv1.KubeadmConfig{}} {
			if !s.exists(o, relaunch[0]) {
				t.Errorf("the relaunched Machine %s has no %T", relaunch[0], o)
			}
		}

		// The manager is killed before the cache shows the relaunch, and
		// the next process makes the same decision: it must find the
		// Machine it made, not make another.
		again, err := s.prepared().launchPlan(plan)
		if err != nil || len(again) != 1 {
			t.Fatalf("launch after a restart: %v, %v", again, err)
		}
		if again[0] != relaunch[0] {
			t.Errorf("after a restart the same decision made Machine %s; it should have adopted %s", again[0], relaunch[0])
		}
		if n := len(s.machines()); n != 2 {
			t.Errorf("%d Machines, want 2 (the terminating one and its relaunch)", n)
		}
	})

	t.Run("a plan that counted a live Machine as capacity never adopts it for another node", func(t *testing.T) {
		// The Machine launched for pod a registered, and the scheduler
		// put another pod there; a pass that saw it and still needs a node
		// for a (anti-affinity) makes the same decision for a: the name
		// is taken by a Machine the plan already counted, and adopting it
		// would leave a pending for good.
		s := env.scene(t, env.cfg)
		s.pool("taken")
		plan := &solver.Plan{NewNodes: []*solver.NewNode{newNode("taken", s.pendingPod("a", "taken"))}}
		first, err := s.prepared().launchPlan(plan)
		if err != nil || len(first) != 1 {
			t.Fatalf("first launch: %v, %v", first, err)
		}
		ps := s.prepared()
		ps.plannedWith(s.machines())
		second, err := ps.launchPlan(plan)
		if err != nil || len(second) != 1 {
			t.Fatalf("second launch: %v, %v", second, err)
		}
		if second[0] == first[0] {
			t.Fatalf("the second launch adopted Machine %s, which its plan had counted as capacity already", first[0])
		}
		if n := len(s.machines()); n != 2 {
			t.Errorf("%d Machines, want 2", n)
		}
	})

	t.Run("a Machine whose objects cannot be made is reported and skipped; the other pools launch", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		broken := s.pool("broken")
		s.pool("healthy")
		stuck, err := s.prepared().launchPlan(&solver.Plan{NewNodes: []*solver.NewNode{newNode("broken", s.pendingPod("x", "broken"))}})
		if err != nil || len(stuck) != 1 {
			t.Fatalf("launch: %v, %v", stuck, err)
		}
		// A crash left the Machine without its AWSMachine, and its
		// template is deleted before the next pass can clone it.
		for _, o := range []client.Object{
			&infrav1.AWSMachine{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: stuck[0]}},
			&infrav1.AWSMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "broken"}},
		} {
			if err := s.c.Delete(s.ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		s.pendingPod("y", "healthy")

		if _, err := s.pass().run(); err != nil {
			t.Errorf("the pass failed for the whole cluster: %v", err)
		}
		var launched []string
		for _, m := range s.machines() {
			if m.Labels[v1alpha1.LabelNodePool] == "healthy" {
				launched = append(launched, m.Name)
				for _, o := range []client.Object{&infrav1.AWSMachine{}, &bootstrapv1.KubeadmConfig{}} {
					if !s.exists(o, m.Name) {
						t.Errorf("the healthy pool's Machine %s has no %T", m.Name, o)
					}
				}
			}
		}
		if len(launched) != 1 {
			t.Errorf("the healthy pool got Machines %v, want one for its pending pod", launched)
		}
		if !mentions(s.events.find("NodePool", "broken", true), stuck[0]) {
			t.Errorf("no Warning Event on NodePool broken; events: %+v", s.events.events)
		}
		if len(s.events.find("Machine", stuck[0], true)) == 0 {
			t.Errorf("no Warning Event on Machine %s", stuck[0])
		}
		if r := s.p.Reports.Get(client.ObjectKeyFromObject(broken))[s.cluster.Name]; !r.LaunchFailed || !strings.Contains(r.LaunchProblem, stuck[0]) {
			t.Errorf("NodePool broken's report does not name the failing Machine: %+v", r)
		}

		// A launch that fails for one pool (its template is gone) does not
		// keep the next node of the plan, of another pool, from launching.
		created, err := s.prepared().launchPlan(&solver.Plan{NewNodes: []*solver.NewNode{
			newNode("broken", s.pendingPod("z", "broken")), newNode("healthy", s.pendingPod("w", "healthy"))}})
		// The error is for callers that need every node (a disruption's
		// replacements); the healthy node was launched all the same.
		if err == nil || !strings.Contains(err.Error(), "NodePool broken") {
			t.Errorf("the broken pool's failed launch was not returned: %v", err)
		}
		var healthy int
		for _, name := range created {
			m := &clusterv1.Machine{}
			if s.exists(m, name) && m.Labels[v1alpha1.LabelNodePool] == "healthy" && s.exists(&infrav1.AWSMachine{}, name) {
				healthy++
			}
		}
		if healthy != 1 {
			t.Errorf("created %v: want the healthy pool's Machine, with its AWSMachine, after the broken pool's failed", created)
		}
	})

	// After Karpenter core's "should wait for cluster to be synced and not
	// over provision" (static/provisioning suite): Karpenter plans only
	// once its state holds every NodeClaim the apiserver lists. This is
	// the case that guard cannot catch, a create still in flight when the
	// process dies and committed after the next process's first list; the
	// next process plans the same pods again and must reach the Machine
	// the killed one made, by its name, not launch a second node. The e2e
	// kill -9 spec cannot see it: a new process's cache lists every
	// Machine before it plans.
	t.Run("a manager killed right after a Machine's create: the next one, whose list missed it, adopts it by name", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("restart")
		s.pendingPod("a", "restart")
		s.pendingPod("b", "restart")

		// Process A dies the moment its Machine is written: nothing of
		// the launch after it (AWSMachine, KubeadmConfig) happens.
		killed := &killAfterMachine{Client: s.c}
		s.p.Client = killed
		if _, err := s.pass().run(); err != nil {
			t.Logf("process A's pass ended with %v (it was killed)", err)
		}
		made := s.machines()
		if len(made) != 1 {
			t.Fatalf("process A made %d Machines, want 1", len(made))
		}
		if s.exists(&infrav1.AWSMachine{}, made[0].Name) {
			t.Fatalf("process A got as far as the AWSMachine; the test needs it killed before")
		}

		// Process B: nothing of A's memory, and a Machine list taken
		// before A's create committed.
		b := env.restarted(t, s, &hideMachines{Client: s.c, hidden: map[string]bool{made[0].Name: true}})
		if _, err := b.pass().run(); err != nil {
			t.Fatalf("process B's pass: %v", err)
		}
		after := s.machines()
		if len(after) != 1 {
			var names []string
			for _, m := range after {
				names = append(names, m.Name)
			}
			t.Fatalf("Machines %v after the restart: the same decision got another name, so two nodes launch for pods a and b", names)
		}
		for _, o := range []client.Object{&infrav1.AWSMachine{}, &bootstrapv1.KubeadmConfig{}} {
			if !s.exists(o, made[0].Name) {
				t.Errorf("process B adopted Machine %s but did not finish its launch: no %T", made[0].Name, o)
			}
		}
	})

	// After Karpenter core's "should not schedule pods with nodePool which
	// is not ready" (provisioning/scheduling suite, "Scheduling Logic"):
	// Karpenter skips a pool whose NodeClass cannot be resolved and plans
	// with the rest; here one pool that cannot size its nodes launches
	// nothing, says why, and the cluster's other pools still launch.
	t.Run("a pool whose node model cannot be built is reported and skipped; the other pools launch", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		unsized := s.pool("unsized")
		s.pool("sized")
		// The apiserver admits any string as a kubelet flag's value;
		// only sizing the pool's nodes finds this one unusable.
		kubeadm := &bootstrapv1.KubeadmConfigTemplate{}
		if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: s.ns, Name: "unsized"}, kubeadm); err != nil {
			t.Fatal(err)
		}
		kubeadm.Spec.Template.Spec.JoinConfiguration.NodeRegistration.KubeletExtraArgs = []bootstrapv1.Arg{{Name: "max-pods", Value: ptr.To("lots")}}
		if err := s.c.Update(s.ctx, kubeadm); err != nil {
			t.Fatal(err)
		}
		s.pendingPod("u", "unsized")
		s.pendingPod("v", "sized")

		if _, err := s.pass().run(); err != nil {
			t.Fatalf("the pass failed for the whole cluster: %v", err)
		}
		byPool := map[string]int{}
		for _, m := range s.machines() {
			byPool[m.Labels[v1alpha1.LabelNodePool]]++
		}
		if byPool["sized"] != 1 || byPool["unsized"] != 0 {
			t.Errorf("Machines by pool %v, want one for sized and none for unsized", byPool)
		}
		r := s.p.Reports.Get(client.ObjectKeyFromObject(unsized))[s.cluster.Name]
		for _, want := range []string{"bootstrap template unsized", "kubeletExtraArgs", "max-pods", "lots", "fix it"} {
			if !r.LaunchBlocked || !strings.Contains(r.LaunchProblem, want) {
				t.Errorf("NodePool unsized's report %+v: want it blocked, its problem naming %q", r, want)
			}
		}
		events := s.events.find("NodePool", "unsized", true)
		if !mentions(events, "kubeletExtraArgs") {
			t.Errorf("no Warning Event on NodePool unsized naming the field; events: %+v", events)
		}
		if r := s.p.Reports.Get(client.ObjectKeyFromObject(s.pools[1]))[s.cluster.Name]; r.LaunchBlocked || r.LaunchProblem != "" {
			t.Errorf("NodePool sized is reported with a problem: %+v", r)
		}

		// Reported once per problem, not once per pass.
		if _, err := s.pass().run(); err != nil {
			t.Fatal(err)
		}
		if n := len(s.events.find("NodePool", "unsized", true)); n != len(events) {
			t.Errorf("a second pass recorded the same problem again: %d Warning Events, had %d", n, len(events))
		}

		// Fixed, the pool launches for its pod.
		if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: s.ns, Name: "unsized"}, kubeadm); err != nil {
			t.Fatal(err)
		}
		kubeadm.Spec.Template.Spec.JoinConfiguration.NodeRegistration.KubeletExtraArgs = []bootstrapv1.Arg{{Name: "max-pods", Value: ptr.To("58")}}
		if err := s.c.Update(s.ctx, kubeadm); err != nil {
			t.Fatal(err)
		}
		// A model is kept for nodeModelTTL, and waiting pods are planned
		// again every Replan; a test need not wait either out.
		s.p.modelCache = nodeModels{}
		s.p.Options.Replan = time.Nanosecond
		if _, err := s.pass().run(); err != nil {
			t.Fatal(err)
		}
		byPool = map[string]int{}
		for _, m := range s.machines() {
			byPool[m.Labels[v1alpha1.LabelNodePool]]++
		}
		if byPool["unsized"] != 1 {
			t.Errorf("after the template's fix, Machines by pool %v, want one for unsized", byPool)
		}
		if r := s.p.Reports.Get(client.ObjectKeyFromObject(unsized))[s.cluster.Name]; r.LaunchBlocked {
			t.Errorf("after the fix NodePool unsized is still blocked: %+v", r)
		}
	})

	t.Run("the registration timeout is measured by the apiserver's clock", func(t *testing.T) {
		for _, c := range []struct {
			skew, timeout time.Duration
			wait          time.Duration
			gone          bool
		}{
			// A manager 20 minutes ahead must not delete a fresh Machine.
			{skew: 20 * time.Minute, timeout: 15 * time.Minute, gone: false},
			// One 20 minutes behind must not keep a Machine past its timeout.
			{skew: -20 * time.Minute, timeout: 2 * time.Second, wait: 3 * time.Second, gone: true},
		} {
			manager := func() time.Time { return time.Now().Add(c.skew) }
			clock := apiclock.New(manager)
			cfg := rest.CopyConfig(env.cfg)
			clock.Wrap(cfg)
			s := env.scene(t, cfg)
			s.p.Now, s.p.APIServerClock = manager, clock
			s.p.Options.RegistrationTimeout = c.timeout
			pool := s.pool("skew")
			names, err := s.prepared().launchPlan(&solver.Plan{NewNodes: []*solver.NewNode{newNode("skew", s.pendingPod("p", "skew"))}})
			if err != nil || len(names) != 1 {
				t.Fatalf("launch: %v, %v", names, err)
			}
			time.Sleep(c.wait)
			m, aws := &clusterv1.Machine{}, &infrav1.AWSMachine{}
			if !s.exists(m, names[0]) || !s.exists(aws, names[0]) {
				t.Fatalf("Machine %s or its AWSMachine is missing", names[0])
			}
			d, err := ReadDecision(m)
			if err != nil {
				t.Fatal(err)
			}
			gone, _, err := s.pass().checkMachine(m, pool, d, aws)
			if err != nil {
				t.Fatal(err)
			}
			if gone != c.gone {
				t.Errorf("manager clock %s off the apiserver's, registration timeout %s, Machine %s old by the apiserver: deleted %v, want %v",
					c.skew, c.timeout, c.wait, gone, c.gone)
			}
		}
	})

	// The soak's clock-skew fault (issue #20): a Node's registration time
	// is an apiserver's, so whether it is still booting is read on the
	// apiserver's clock. Read on a manager's clock 20 minutes ahead, a Node
	// that registered a moment ago looked past its boot and held no pods:
	// every pod it was launched for got a second Machine.
	t.Run("a booting Node's age is read on the apiserver's clock", func(t *testing.T) {
		manager := func() time.Time { return time.Now().Add(20 * time.Minute) }
		clock := apiclock.New(manager)
		cfg := rest.CopyConfig(env.cfg)
		clock.Wrap(cfg)
		s := env.scene(t, cfg)
		s.p.Now, s.p.APIServerClock = manager, clock
		s.p.Options.RegistrationTimeout = 15 * time.Minute
		s.pool("boot")
		first := s.pendingPod("first", "boot")
		names, err := s.prepared().launchPlan(&solver.Plan{NewNodes: []*solver.NewNode{newNode("boot", first)}})
		if err != nil || len(names) != 1 {
			t.Fatalf("launch: %v, %v", names, err)
		}
		// Its instance registered a Node, as a kubelet does, not yet
		// initialized; CAPA would have set the Machine's provider ID.
		node := "booting-" + s.ns
		m := &clusterv1.Machine{}
		if !s.exists(m, names[0]) {
			t.Fatalf("Machine %s is missing", names[0])
		}
		m.Spec.ProviderID = "aws:///us-east-1a/i-" + node
		if err := s.c.Update(s.ctx, m); err != nil {
			t.Fatal(err)
		}
		s.node(node, "boot", corev1.ConditionFalse, []corev1.Taint{{Key: clusterv1.NodeUninitializedTaint.Key, Effect: clusterv1.NodeUninitializedTaint.Effect}})
		s.pendingPod("second", "boot")

		if _, err := s.pass().run(); err != nil {
			t.Fatal(err)
		}
		if n := len(s.machines()); n != 1 {
			t.Errorf("%d Machines: a Node registered a moment ago by the apiserver's clock (20 minutes ago by the manager's) was not counted as booting; want 1", n)
		}
	})

	// Found by the soak (issue #20): pods created just before a workload
	// cluster's partition stayed pending 500 s while every pass planned
	// them onto two Nodes whose instances were gone, their Machines deleted
	// while CAPI could not reach the cluster to delete the Nodes. Such a
	// Node (NotReady, no live Machine) is not capacity on its way; nor is
	// one that stopped reporting (Ready Unknown): its unreachable taint is
	// real. After Karpenter core's cluster state, which treats only its own
	// uninitialized NodeClaims as in flight (StateNode.Initialized).
	t.Run("a Node that will not serve holds no pods: left without a Machine, or stopped reporting", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("lost")
		unreachable := []corev1.Taint{
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
		}
		s.node("orphan-"+s.ns, "lost", corev1.ConditionUnknown, unreachable)
		s.node("never-initialized-"+s.ns, "lost", corev1.ConditionFalse,
			[]corev1.Taint{{Key: clusterv1.NodeUninitializedTaint.Key, Effect: clusterv1.NodeUninitializedTaint.Effect}})
		s.pendingPod("p", "lost")

		if _, err := s.pass().run(); err != nil {
			t.Fatal(err)
		}
		if n := len(s.machines()); n != 1 {
			t.Errorf("%d Machines for a pod whose only pool Nodes have no live Machine (one lost, one never initialized): want 1", n)
		}
	})

	t.Run("passes woken by pending pods alone count them into the open window and read nothing else; any other change makes the next pass full", func(t *testing.T) {
		s := env.scene(t, env.cfg)
		s.pool("burst")
		lists := &countMachineLists{Client: s.c}
		s.p.Client = lists
		now := time.Now()
		s.p.Now = func() time.Time { return now }
		s.p.Options.BatchIdle, s.p.Options.BatchMax = time.Minute, 10*time.Minute
		s.p.batches = NewBatches(s.p.Options.BatchIdle, s.p.Options.BatchMax)
		key := client.ObjectKeyFromObject(s.cluster)
		pass := func(wantFull bool, why string) time.Duration {
			t.Helper()
			before, podsBefore := lists.count(), lists.podCount()
			ps := s.pass()
			ps.workload = &workload{reader: lists, client: s.c}
			res, err := ps.run()
			if err != nil {
				t.Fatalf("%s: %v", why, err)
			}
			if full := lists.count() > before; full != wantFull {
				t.Errorf("%s: a full pass (Machines read) %v, want %v", why, full, wantFull)
			}
			// A pods-only pass reads the pods that arrived, one by one:
			// listing every pod per pending pod made a burst quadratic.
			if listed := lists.podCount() > podsBefore; listed != wantFull {
				t.Errorf("%s: the cluster's pods listed %v, want %v", why, listed, wantFull)
			}
			return res.RequeueAfter
		}

		// The pod watch's handler, as the cache would call it.
		watch, woken := s.p.pendingPods(key), &wokenQueue{}
		s.pendingPod("a", "burst")
		if wait := pass(true, "the cluster's first pass"); wait != time.Minute {
			t.Errorf("the first pending pod opened a window closing in %s, want the idle %s", wait, time.Minute)
		}
		now = now.Add(20 * time.Second)
		watch.Update(s.ctx, event.UpdateEvent{ObjectNew: s.pendingPod("b", "burst")}, woken)
		// The pass that counts b runs a little after b arrived (its wake
		// waits for more arrivals): the window idles from b's arrival.
		now = now.Add(arrivalWake)
		if wait := pass(false, "a pass woken by a new pending pod"); wait != time.Minute-arrivalWake {
			t.Errorf("the new pod extended the window to %s from now, want the idle %s less the %s since it arrived", wait, time.Minute, arrivalWake)
		}
		// A pod the watch saw become pending and that is gone by the
		// pass counts for nothing, as a list would not have shown it.
		now = now.Add(10*time.Second - arrivalWake)
		gone := s.pendingPod("gone", "burst")
		watch.Create(s.ctx, event.CreateEvent{Object: gone}, woken)
		if err := s.c.Delete(s.ctx, gone); err != nil {
			t.Fatal(err)
		}
		if wait := pass(false, "a pass woken by a pod gone since"); wait != 50*time.Second {
			t.Errorf("a pod gone before the pass moved the window to close in %s, want 50s (b's idle)", wait)
		}
		now = now.Add(10 * time.Second)
		if wait := pass(false, "a pass with nothing new"); wait != 40*time.Second {
			t.Errorf("nothing new: the window closes in %s, want 40s (b's idle)", wait)
		}
		// A Machine, Node, pool, Cluster or buffer event: the next pass
		// reads everything again.
		s.p.markChanged(reconcile.Request{NamespacedName: key})
		pass(true, "a pass after another watch's event")
		pass(false, "the pass after that full one")
		// A pending pod deleted: the window may have nothing left to plan.
		watch.Delete(s.ctx, event.DeleteEvent{Object: gone}, woken)
		pass(true, "a pass after a pending pod's deletion")
		if woken.n != 3 {
			t.Errorf("the pod watch woke the loop %d times, want 3 (b, gone, gone's deletion)", woken.n)
		}
		// A Machine due to be looked at by itself (a registration
		// timeout) is looked at whatever the events.
		s.p.state(key).recheckAt = now
		pass(true, "a pass when a Machine is due")
		if n := len(s.machines()); n != 0 {
			t.Fatalf("%d Machines before the window closed", n)
		}

		// The window closes: the plan is the full pass's, for both pods.
		now = now.Add(time.Minute)
		pass(true, "the pass at the window's close")
		planned := map[string]bool{}
		for _, m := range s.machines() {
			d, err := ReadDecision(&m)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range d.Pods {
				planned[p] = true
			}
		}
		if !planned[s.ns+"/a"] || !planned[s.ns+"/b"] {
			t.Errorf("the plan at the window's close named pods %v, want %s/a and %s/b", planned, s.ns, s.ns)
		}
	})
}

// wokenQueue counts the wake-ups of a cluster's loop.
type wokenQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	n int
}

func (q *wokenQueue) Add(reconcile.Request) { q.n++ }

func (q *wokenQueue) AddAfter(reconcile.Request, time.Duration) { q.n++ }

// countMachineLists counts the lists of Machines, which only a full pass
// makes, and of pods, which a pass woken by pending pods alone does not.
type countMachineLists struct {
	client.Client
	mu   sync.Mutex
	n    int
	pods int
}

func (c *countMachineLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.mu.Lock()
	switch list.(type) {
	case *clusterv1.MachineList:
		c.n++
	case *corev1.PodList:
		c.pods++
	}
	c.mu.Unlock()
	return c.Client.List(ctx, list, opts...)
}

func (c *countMachineLists) podCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods
}

func (c *countMachineLists) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// node registers a Node of pool in the scene's cluster, as the kubelet
// would (an m5.large in us-east-1a), with the given readiness and taints.
func (s *scene) node(name, pool string, ready corev1.ConditionStatus, taints []corev1.Taint) *corev1.Node {
	s.t.Helper()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelNodePool: pool, v1alpha1.LabelInstanceType: "m5.large", v1alpha1.LabelCapacityType: v1alpha1.CapacityTypeOnDemand,
			corev1.LabelTopologyZone: "us-east-1a", corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux", corev1.LabelHostname: name,
		}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-" + name, Taints: taints},
	}
	if err := s.c.Create(s.ctx, n); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = s.env.c.Delete(context.Background(), n) })
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("7Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
	if err := s.c.Status().Update(s.ctx, n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func mentions(events []recordedEvent, s string) bool {
	for _, e := range events {
		if strings.Contains(e.message, s) {
			return true
		}
	}
	return false
}

// TestArrivalsOfABurstWakeTheLoopOnce: the pods of a burst arrive
// milliseconds apart; the pod watch wakes the cluster's loop once for all
// that arrive within arrivalWake of the first (a pass per pod was most of
// a burst's passes), and every arrival reaches the pass with its time.
func TestArrivalsOfABurstWakeTheLoopOnce(t *testing.T) {
	key := types.NamespacedName{Namespace: "fleet", Name: "c1"}
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := clocktesting.NewFakeClock(start)
	p := &Provisioner{Now: clock.Now, clusters: map[types.NamespacedName]*clusterState{key: {}}}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clock})
	defer q.ShutDown()
	watch := p.pendingPods(key)
	pod := func(i int) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i)}}
	}
	const burst = 40
	for i := range burst {
		if i%2 == 0 {
			watch.Create(context.Background(), event.CreateEvent{Object: pod(i)}, q)
		} else {
			watch.Update(context.Background(), event.UpdateEvent{ObjectNew: pod(i)}, q)
		}
		clock.Step(arrivalWake / burst / 2)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("%d wake-ups before the first arrival's wake came due, want none yet", n)
	}
	clock.Step(arrivalWake)
	if n := queuedAfterStep(q, 1); n != 1 {
		t.Fatalf("%d arrivals woke the loop %d times, want once", burst, n)
	}
	got := p.takeArrived(p.clusters[key])
	if len(got) != burst {
		t.Fatalf("%d arrivals reached the pass, want %d", len(got), burst)
	}
	for i, a := range got {
		if want := start.Add(time.Duration(i) * (arrivalWake / burst / 2)); !a.at.Equal(want) || a.pod.Name != fmt.Sprintf("p%d", i) {
			t.Errorf("arrival %d: %s at %s, want p%d at %s", i, a.pod, a.at, i, want)
		}
	}
}

// TestBootChangesWakeTheLoopOnce: a booting Machine, its AWSMachine and
// its Node change a dozen times within seconds; each change marks its
// cluster changed at once (a pass that runs meanwhile is a full one), and
// the changes within changeWake of the first wake the loop once, then.
func TestBootChangesWakeTheLoopOnce(t *testing.T) {
	key := types.NamespacedName{Namespace: "fleet", Name: "c1"}
	other := types.NamespacedName{Namespace: "fleet", Name: "c2"}
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	p := &Provisioner{Now: clock.Now, clusters: map[types.NamespacedName]*clusterState{key: {}, other: {}}}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clock})
	defer q.ShutDown()
	machines := p.changingSoon(clusterOfObject)
	nodes := p.changingSoon(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: key}}
	})
	machine := func(cluster string) *clusterv1.Machine {
		return &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "m-" + cluster,
			Labels: map[string]string{clusterv1.ClusterNameLabel: cluster}}}
	}
	ctx := context.Background()
	const steps = 10
	for i := range steps {
		switch i % 3 {
		case 0:
			machines.Create(ctx, event.CreateEvent{Object: machine("c1")}, q)
		case 1:
			machines.Update(ctx, event.UpdateEvent{ObjectOld: machine("c1"), ObjectNew: machine("c1")}, q)
		case 2:
			nodes.Update(ctx, event.UpdateEvent{ObjectOld: &corev1.Node{}, ObjectNew: &corev1.Node{}}, q)
		}
		if p.clusters[key].changes == 0 {
			t.Fatalf("change %d did not mark the cluster changed at once", i)
		}
		clock.Step(changeWake / steps / 2)
	}
	if p.clusters[other].changes != 0 {
		t.Errorf("another cluster's state was marked changed")
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("%d wake-ups before the first change's wake came due, want none yet", n)
	}
	clock.Step(changeWake)
	if n := queuedAfterStep(q, 1); n != 1 {
		t.Fatalf("%d changes woke the loop %d times, want once", steps, n)
	}
	r, _ := q.Get()
	if r.NamespacedName != key {
		t.Errorf("woke %s, want %s", r.NamespacedName, key)
	}
	q.Done(r)
	// An update moving a Machine to another cluster wakes both.
	machines.Update(ctx, event.UpdateEvent{ObjectOld: machine("c1"), ObjectNew: machine("c2")}, q)
	clock.Step(changeWake)
	if n := queuedAfterStep(q, 2); n != 2 || p.clusters[other].changes == 0 {
		t.Errorf("a Machine moved between clusters woke %d loops (c2 changed: %d), want both", n, p.clusters[other].changes)
	}
}

// queuedAfterStep is how many keys the queue holds once the delayed adds a
// fake clock's step made due have landed (the queue moves them on its own
// goroutine): it waits up to 10 s for want of them.
func queuedAfterStep(q workqueue.TypedRateLimitingInterface[reconcile.Request], want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return q.Len()
}
