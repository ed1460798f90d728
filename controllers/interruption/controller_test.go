package interruption

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

type recordedUnavailable map[solver.OfferingKey]time.Time

func (r recordedUnavailable) MarkUnavailable(k solver.OfferingKey, now time.Time) { r[k] = now }

// fixture is a Joinery Machine running a spot instance, and the
// controller polling a simulated SQS queue through the real SDK client.
type fixture struct {
	c           *Controller
	client      client.Client
	sqs         *cloudsim.SQS
	recorder    *record.FakeRecorder
	unavailable recordedUnavailable
	history     recordedHistory
}

type recordedHistory map[solver.OfferingKey]int

func (r recordedHistory) RecordInterruption(k solver.OfferingKey, _ time.Time) { r[k]++ }

const instanceID = "i-0b662ef9931388ba0"

func newFixture(t *testing.T, poolLabel string) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, infrav1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{}
	if poolLabel != "" {
		labels[v1alpha1.LabelNodePool] = poolLabel
	}
	machine := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "spot-abc", UID: "machine-uid", Labels: labels},
		Spec:       clusterv1.MachineSpec{ClusterName: "workload-1", FailureDomain: "us-east-1b"},
	}
	awsMachine := &infrav1.AWSMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "spot-abc", Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: "spot-abc", UID: "machine-uid", Controller: ptr.To(true),
		}}},
		Spec: infrav1.AWSMachineSpec{
			InstanceType: "m5.large", SpotMarketOptions: &infrav1.SpotMarketOptions{},
			ProviderID: ptr.To("aws:///us-east-1b/" + instanceID), InstanceID: ptr.To(instanceID),
		},
	}
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "fleet", Name: "spot"}}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(machine, awsMachine, pool).
		WithIndex(&infrav1.AWSMachine{}, instanceIDIndex, IndexInstanceID).Build()

	s := cloudsim.NewSQS("")
	if err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateQueue("interruptions"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{client: cl, sqs: s, recorder: record.NewFakeRecorder(20), unavailable: recordedUnavailable{}, history: recordedHistory{}}
	queue, err := NewSQSClient(context.Background(), "us-east-1", s.URL())
	if err != nil {
		t.Fatal(err)
	}
	f.c = &Controller{
		Client: cl, SQS: queue, Queue: "interruptions",
		Recorder: f.recorder, Unavailable: f.unavailable, History: f.history, Now: time.Now, Log: testr.New(t),
	}
	return f
}

// pollOnce sends the bodies and runs one receive-and-handle round.
func (f *fixture) pollOnce(t *testing.T, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := f.sqs.Send("interruptions", b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.c.poll(context.Background()); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

func (f *fixture) machineExists(t *testing.T) bool {
	err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "fleet", Name: "spot-abc"}, &clusterv1.Machine{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) queueEmpty(t *testing.T) {
	t.Helper()
	if visible, inFlight := f.sqs.Messages("interruptions"); visible+inFlight != 0 {
		t.Errorf("queue holds %d visible and %d in-flight messages; handled messages must be deleted", visible, inFlight)
	}
}

func TestSpotInterruptionDeletesTheMachineAndMarksTheOfferingUnavailable(t *testing.T) {
	f := newFixture(t, "spot")
	body := strings.Replace(spotWarning, `"time": "2026-11-22T10:00:00Z"`, `"time": "`+time.Now().UTC().Format(time.RFC3339)+`"`, 1)
	f.pollOnce(t, body)

	if f.machineExists(t) {
		t.Error("the interrupted instance's Machine still exists")
	}
	want := solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1b", CapacityType: v1alpha1.CapacityTypeSpot}
	if _, ok := f.unavailable[want]; !ok || len(f.unavailable) != 1 {
		t.Errorf("unavailable offerings = %v, want only %v", f.unavailable, want)
	}
	if f.history[want] != 1 || len(f.history) != 1 {
		t.Errorf("interruptions recorded = %v, want one of %v", f.history, want)
	}
	events := strings.Join(f.events(), "\n")
	for _, want := range []string{
		"Warning SpotInterrupted EC2 will reclaim spot instance " + instanceID + " (m5.large spot in us-east-1b) at about ",
		"Warning SpotInterrupted Machine spot-abc in cluster workload-1: EC2 will reclaim",
		"Normal TerminatingOnInterruption deleted Machine spot-abc of " + instanceID,
	} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	f.queueEmpty(t)
}

func TestScheduledChangeDeletesTheMachineWithoutMarkingTheOffering(t *testing.T) {
	f := newFixture(t, "spot")
	f.pollOnce(t, strings.ReplaceAll(scheduledChange, "i-abcd1111", instanceID))
	if f.machineExists(t) {
		t.Error("the Machine of an instance scheduled for retirement still exists")
	}
	if len(f.unavailable) != 0 {
		t.Errorf("unavailable offerings = %v; a retirement is about one host, not the offering", f.unavailable)
	}
	if len(f.history) != 0 {
		t.Errorf("interruptions recorded = %v; a retirement is no spot interruption", f.history)
	}
	events := strings.Join(f.events(), "\n")
	if !strings.Contains(events, "Warning ScheduledChange AWS Health scheduled AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED for instance "+instanceID+" (m5.large spot in us-east-1b) from 2026-12-05T15:10:09Z") {
		t.Errorf("events:\n%s", events)
	}
	f.queueEmpty(t)
}

func TestRebalanceAndStateChangesOnlyRecordEvents(t *testing.T) {
	f := newFixture(t, "spot")
	f.pollOnce(t, strings.ReplaceAll(rebalance, "i-0b662ef9931388ba0", instanceID),
		strings.ReplaceAll(strings.Replace(stateChange, "%s", "stopping", 1), "i-abcd1111", instanceID))
	if !f.machineExists(t) {
		t.Error("a rebalance recommendation or state change deleted the Machine")
	}
	if len(f.unavailable) != 0 {
		t.Errorf("unavailable offerings = %v, want none", f.unavailable)
	}
	events := strings.Join(f.events(), "\n")
	for _, want := range []string{"Normal SpotRebalanceRecommendation EC2 recommends rebalancing spot instance " + instanceID, "Warning InstanceStateChanged EC2 reports instance " + instanceID} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	f.queueEmpty(t)
}

func TestMachinesJoineryDoesNotOwnAreLeftAlone(t *testing.T) {
	f := newFixture(t, "")
	f.pollOnce(t, spotWarning)
	if !f.machineExists(t) {
		t.Error("deleted a Machine without the joinery.dev/nodepool label")
	}
	if events := f.events(); len(events) != 0 || len(f.unavailable) != 0 {
		t.Errorf("events %v, unavailable %v; want none", events, f.unavailable)
	}
	f.queueEmpty(t)
}

func TestABodyThatIsNoEventIsDeleted(t *testing.T) {
	f := newFixture(t, "spot")
	f.pollOnce(t, "not json")
	f.queueEmpty(t)
	if !f.machineExists(t) {
		t.Error("Machine deleted")
	}
}

func TestIndexInstanceIDReadsTheProviderIDWhenInstanceIDIsUnset(t *testing.T) {
	m := &infrav1.AWSMachine{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelNodePool: "p"}},
		Spec: infrav1.AWSMachineSpec{ProviderID: ptr.To("aws:///eu-west-1c/i-0123456789abcdef0")}}
	if got := IndexInstanceID(m); len(got) != 1 || got[0] != "i-0123456789abcdef0" {
		t.Errorf("= %v", got)
	}
	m.Labels = nil
	if got := IndexInstanceID(m); got != nil {
		t.Errorf("an AWSMachine Joinery does not own is indexed: %v", got)
	}
}
