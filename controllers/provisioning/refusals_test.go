package provisioning

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/clusterstate"
)

// refusalWorld is one cluster's pass with a fake management and workload
// cluster: a Machine of pool "general" whose AWSMachine carries what CAPA
// wrote.
type refusalWorld struct {
	ps        *pass
	machine   *clusterv1.Machine
	pool      *v1alpha1.NodePool
	poolEvts  *record.FakeRecorder
	podEvts   *record.FakeRecorder
	mgmt      client.Client
	startedAt time.Time
}

func newRefusalWorld(t *testing.T, aws *infrav1.AWSMachine, nodeRef string) *refusalWorld {
	t.Helper()
	return newRefusalWorldOf(t, aws, nodeRef, nil)
}

// newRefusalWorldOf is newRefusalWorld for a decision decide changes.
func newRefusalWorldOf(t *testing.T, aws *infrav1.AWSMachine, nodeRef string, decide func(*Decision)) *refusalWorld {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, bootstrapv1.AddToScheme, infrav1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	l := launchSpec()
	if decide != nil {
		decide(&l.Decision)
	}
	m, err := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	if err != nil {
		t.Fatal(err)
	}
	m.UID = "machine-uid"
	m.CreationTimestamp = metav1.NewTime(time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC))
	if nodeRef != "" {
		m.Status.NodeRef = clusterv1.MachineNodeReference{Name: nodeRef}
	}
	aws.Namespace, aws.Name = m.Namespace, m.Name
	// The bootstrap config exists: the throttled Machine goes on booting.
	kubeadm := &bootstrapv1.KubeadmConfig{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}}
	mgmt := fake.NewClientBuilder().WithScheme(scheme).WithObjects(m, aws, l.NodePool, kubeadm).Build()
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{bootstrapv1.GroupVersion})
	mapper.Add(bootstrapv1.GroupVersion.WithKind("KubeadmConfig"), meta.RESTScopeNamespace)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}}
	wl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(pod).Build()
	poolEvts, podEvts := record.NewFakeRecorder(20), record.NewFakeRecorder(20)
	now := m.CreationTimestamp.Add(time.Minute)
	p := &Provisioner{Client: mgmt, Recorder: poolEvts, Options: DefaultOptions(), Reports: NewReports(), Now: func() time.Time { return now },
		batches: NewBatches(time.Second, 10*time.Second), unavailable: newUnavailableOfferings(3*time.Minute, unavailableOfferings),
		clusters: map[types.NamespacedName]*clusterState{}, blocked: map[poolCluster]poolBlock{},
		events:    &workloadEvents{recorders: map[types.NamespacedName]*clusterRecorder{}},
		templates: &templates{client: mgmt, mapper: mapper}}
	key := client.ObjectKeyFromObject(l.Cluster)
	p.events.recorders[key] = &clusterRecorder{recorder: podEvts}
	ps := &pass{Provisioner: p, ctx: context.Background(), log: logr.Discard(), cluster: l.Cluster, pools: []*v1alpha1.NodePool{l.NodePool},
		workload: &workload{reader: wl, client: wl}, now: now, key: key, region: "us-east-1",
		byPool: map[string]*v1alpha1.NodePool{"general": l.NodePool}, templateIDs: map[string]string{"general": "template-v1"},
		constraints: map[string]*LaunchConstraints{}}
	return &refusalWorld{ps: ps, machine: m, pool: l.NodePool, poolEvts: poolEvts, podEvts: podEvts, mgmt: mgmt, startedAt: now}
}

func refusedAWSMachine(message string) *infrav1.AWSMachine {
	return &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{Conditions: clusterv1beta1.Conditions{{
		Type: infrav1.InstanceReadyCondition, Status: corev1.ConditionFalse, Severity: clusterv1beta1.ConditionSeverityError,
		Reason: infrav1.InstanceProvisionFailedReason, Message: message}}}}
}

func (w *refusalWorld) check(t *testing.T, aws *infrav1.AWSMachine) bool {
	t.Helper()
	d, err := ReadDecision(w.machine)
	if err != nil {
		t.Fatal(err)
	}
	got := &infrav1.AWSMachine{}
	if err := w.mgmt.Get(context.Background(), client.ObjectKeyFromObject(aws), got); err != nil {
		t.Fatal(err)
	}
	gone, _, err := w.ps.checkMachine(w.machine, w.pool, d, got)
	if err != nil {
		t.Fatal(err)
	}
	return gone
}

func (w *refusalWorld) machineDeleted(t *testing.T) bool {
	err := w.mgmt.Get(context.Background(), client.ObjectKeyFromObject(w.machine), &clusterv1.Machine{})
	return apierrors.IsNotFound(err)
}

func drain(r *record.FakeRecorder) string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

func TestConfigurationErrorBlocksThePoolUntilItsTemplateChanges(t *testing.T) {
	aws := refusedAWSMachine(capaMessage("InvalidParameterValue", "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI."))
	w := newRefusalWorld(t, aws, "")
	if !w.check(t, aws) || !w.machineDeleted(t) {
		t.Fatalf("the refused Machine must be deleted")
	}
	events := drain(w.poolEvts)
	if !strings.Contains(events, "Warning LaunchConfigurationError") || !strings.Contains(events, "spec.template.spec.ami") {
		t.Errorf("the NodePool's Event must name the field to fix:\n%s", events)
	}
	if pods := drain(w.podEvts); !strings.Contains(pods, "Warning FailedProvisioning") || !strings.Contains(pods, "InvalidParameterValue") {
		t.Errorf("the pods must learn why:\n%s", pods)
	}
	if !w.ps.restriction().blocked["general"] {
		t.Errorf("the pool must launch nothing with the same templates")
	}
	w.ps.reportPlan(nil)
	if r := w.ps.Reports.Get(client.ObjectKeyFromObject(w.pool))["workload-1"]; !r.LaunchBlocked || !strings.Contains(r.LaunchProblem, "spec.template.spec.ami") {
		t.Errorf("the pool status must hear of it: %+v", r)
	}
	if len(w.ps.unavailable.At(w.ps.now)) != 0 || len(w.ps.unavailable.Scopes(w.ps.now)) != 0 {
		t.Errorf("a configuration error is no capacity refusal")
	}

	w.ps.templateIDs["general"] = "template-v2"
	if w.ps.restriction().blocked["general"] {
		t.Errorf("a changed template must launch again")
	}
	w.ps.templateIDs["general"] = "template-v1"
	w.ps.blockPool(w.pool, "template-v1", w.ps.now.Add(w.ps.Options.LaunchErrorBackoff), "again")
	w.ps.now = w.ps.now.Add(w.ps.Options.LaunchErrorBackoff)
	if w.ps.restriction().blocked["general"] {
		t.Errorf("the backoff must end the block")
	}
}

func TestCapacityRefusalMarksItsScope(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		code    string
		want    UnavailableScope
		offered bool // the refusal is recorded as a single offering
	}{
		{"ICE marks the offering", "InsufficientInstanceCapacity", UnavailableScope{}, true},
		{"a vCPU quota marks the family group in the region", "VcpuLimitExceeded", UnavailableScope{Kind: ScopeQuotaGroup, Region: "us-east-1", CapacityType: "spot", QuotaGroup: "standard"}, false},
		{"no addresses marks the pool's zone", "InsufficientFreeAddressesInSubnet", UnavailableScope{Kind: ScopePoolZone, Pool: "team-a/general", Zone: "us-east-1b"}, false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			aws := refusedAWSMachine(capaMessage(tc.code, "refused"))
			w := newRefusalWorld(t, aws, "")
			if !w.check(t, aws) || !w.machineDeleted(t) {
				t.Fatalf("the refused Machine must be deleted")
			}
			if ev := drain(w.poolEvts); !strings.Contains(ev, "Warning InsufficientCapacity") {
				t.Errorf("events:\n%s", ev)
			}
			if tc.offered {
				if !w.ps.unavailable.At(w.ps.now).Has("m5.large", "us-east-1b", "spot") {
					t.Errorf("the offering is not marked")
				}
				return
			}
			scopes := w.ps.unavailable.Scopes(w.ps.now)
			if len(scopes) != 1 || scopes[0] != tc.want {
				t.Errorf("scopes %+v, want %+v", scopes, tc.want)
			}
		})
	}
	// The decision's own reservation, not the template's (it has none):
	// the next window plans without it and falls back.
	t.Run("a full reservation marks the reservation the decision targeted", func(t *testing.T) {
		aws := refusedAWSMachine(capaMessage("ReservationCapacityExceeded", "The requested reservation does not have sufficient compatible and available capacity for this request."))
		w := newRefusalWorldOf(t, aws, "", func(d *Decision) {
			d.Offering.CapacityType, d.Offering.ReservationID, d.Offering.ReservationType = v1alpha1.CapacityTypeReserved, "cr-0123456789abcdef0", "default"
		})
		if !w.check(t, aws) || !w.machineDeleted(t) {
			t.Fatalf("the refused Machine must be deleted")
		}
		want := UnavailableScope{Kind: ScopeReservation, Reservation: "cr-0123456789abcdef0"}
		if scopes := w.ps.unavailable.Scopes(w.ps.now); len(scopes) != 1 || scopes[0] != want {
			t.Errorf("scopes %+v, want %+v", scopes, want)
		}
	})
	t.Run("throttling leaves the Machine to CAPA's retries", func(t *testing.T) {
		aws := refusedAWSMachine(capaMessage("RequestLimitExceeded", "Request limit exceeded."))
		w := newRefusalWorld(t, aws, "")
		if w.check(t, aws) || w.machineDeleted(t) {
			t.Errorf("a throttled launch must not delete the Machine")
		}
	})
}

// A pass right after the one that deleted a refused Machine can read it
// from a cache that has not seen the deletion (the CAPA suite's launch-error
// table caught two InsufficientCapacity Events for one refusal): the second
// reading must not handle the refusal again, and the Machine is no capacity
// until the cache shows it deleting or gone.
func TestARefusedMachineIsHandledOnceWhileTheCacheLags(t *testing.T) {
	aws := refusedAWSMachine(capaMessage("InsufficientInstanceCapacity", "refused"))
	w := newRefusalWorld(t, aws, "")
	if !w.check(t, aws) || !w.machineDeleted(t) {
		t.Fatalf("the refused Machine must be deleted")
	}
	first := drain(w.poolEvts)
	// The stale reading: the same Machine, not deleting, as the cache last
	// showed it.
	w.ps.now = w.ps.now.Add(50 * time.Millisecond)
	w.check(t, aws)
	if again := drain(w.poolEvts); again != "" {
		t.Errorf("the refusal was handled again from a stale reading:\nfirst:\n%s\nagain:\n%s", first, again)
	}
	st := w.ps.state(w.ps.key)
	if !st.deletedHere(w.machine.UID) {
		t.Fatalf("the deletion is not remembered")
	}
	listed := []clusterstate.Machine{{Machine: w.machine}}
	st.forgetDeleted(listed, w.ps.now)
	if !st.deletedHere(w.machine.UID) {
		t.Errorf("forgotten while the cache still lists the Machine undeleted")
	}
	st.forgetDeleted(listed, w.ps.now.Add(cacheLagLimit+time.Second))
	if st.deletedHere(w.machine.UID) {
		t.Errorf("still remembered past the cache lag limit")
	}
	st.deleted[w.machine.UID] = w.ps.now
	deleting := w.machine.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: w.ps.now}
	st.forgetDeleted([]clusterstate.Machine{{Machine: deleting}}, w.ps.now)
	if st.deletedHere(w.machine.UID) {
		t.Errorf("still remembered once the cache shows the Machine deleting")
	}
}

func TestLostMachinesAreNoCapacity(t *testing.T) {
	terminated := infrav1.InstanceStateTerminated
	running := infrav1.InstanceStateRunning
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-1"}}

	w := newRefusalWorld(t, &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: &terminated, FailureReason: ptr.To("UpdateError")}}, "ip-10-0-1-1")
	aws, _ := w.ps.awsMachine(w.machine)
	if got, _ := w.ps.capacity(w.machine, aws, node); got != MachineInstanceGone {
		t.Errorf("a terminated instance, even with its Node still listed: %v, want MachineInstanceGone", got)
	}

	w = newRefusalWorld(t, &infrav1.AWSMachine{Status: infrav1.AWSMachineStatus{InstanceState: &running}}, "ip-10-0-1-1")
	aws, _ = w.ps.awsMachine(w.machine)
	if got, _ := w.ps.capacity(w.machine, aws, node); got != MachineRegistered {
		t.Errorf("a running instance with its Node: %v", got)
	}
	got, wait := w.ps.capacity(w.machine, aws, nil)
	if got != MachineNodeLostGrace || wait != w.ps.Options.NodeLostGrace {
		t.Errorf("a Node that just went: %v (wait %s), want not-ready capacity for the grace", got, wait)
	}
	w.ps.now = w.ps.now.Add(w.ps.Options.NodeLostGrace)
	if got, _ := w.ps.capacity(w.machine, aws, nil); got != MachineNodeLost {
		t.Errorf("a Node gone for the whole grace: %v, want MachineNodeLost", got)
	}
	if got, _ := w.ps.capacity(w.machine, aws, node); got != MachineRegistered {
		t.Errorf("a Node that came back: %v", got)
	}
	w.ps.now = w.ps.now.Add(time.Second)
	if got, _ := w.ps.capacity(w.machine, aws, nil); got != MachineNodeLostGrace {
		t.Errorf("a Node that went again starts a new grace: %v", got)
	}
}
