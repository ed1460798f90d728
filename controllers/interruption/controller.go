// Package interruption is Joinery's interruption controller, after
// Karpenter's (karpenter-provider-aws pkg/controllers/interruption): it
// long-polls an SQS queue that EventBridge fills with EC2 and AWS Health
// events and acts on the Machines Joinery made. A spot interruption
// warning or a scheduled change deletes the instance's Machine right away
// (CAPI cordons and drains its node, the pods go pending and the
// provisioning controller replaces the capacity in its next batch window,
// within the two minutes EC2 gives); a spot interruption also marks its
// offering unavailable, so the replacement goes elsewhere. Rebalance
// recommendations and instance state changes are recorded (Events,
// metrics) and left to the other loops.
package interruption

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/metrics"
	"github.com/joinery-dev/joinery/solver"
)

// UnavailableOfferings is where an interrupted spot offering is recorded
// so the next plans avoid it; the provisioning controller's
// *provisioning.UnavailableOfferings is one.
type UnavailableOfferings interface {
	MarkUnavailable(key solver.OfferingKey, now time.Time)
}

// History is where a spot interruption is counted against its offering,
// so later plans weigh the offering's risk; the provisioning controller's
// *provisioning.SpotInterruptions is one.
type History interface {
	RecordInterruption(key solver.OfferingKey, now time.Time)
}

// Options configure the controller; the manager's flags set them. An empty
// Queue turns the controller off.
type Options struct {
	// Queue is the SQS queue's name or URL (--interruption-queue).
	Queue string
	// Region is the queue's region (--aws-region).
	Region string
	// Endpoint replaces the region's SQS endpoint (--aws-endpoint).
	Endpoint string
}

// Enabled reports whether a queue is configured.
func (o Options) Enabled() bool { return o.Queue != "" }

// instanceIDIndex indexes Joinery's AWSMachines by EC2 instance ID.
const instanceIDIndex = "joinery.interruption.instanceID"

// Receive settings, as Karpenter's: batches of 10, the longest long poll;
// a message whose handling failed comes back after the visibility timeout.
const (
	maxMessages       = 10
	waitTimeSeconds   = 20
	visibilityTimeout = 20
)

// Controller polls the queue and acts on each message. It runs as a
// manager Runnable on the leader only.
type Controller struct {
	Client      client.Client
	SQS         SQSAPI
	Queue       string
	Recorder    record.EventRecorder
	Unavailable UnavailableOfferings
	// History, when set, counts spot interruptions per offering.
	History History
	// Now is the clock (tests set it).
	Now func() time.Time
	Log logr.Logger

	queueURL string
}

// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=machines,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=infrastructure.cluster.x-k8s.io,resources=awsmachines,verbs=get;list;watch
// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools,verbs=get;list;watch

// SetupWithManager indexes AWSMachines by instance ID and adds the
// controller to the manager.
func (c *Controller) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log.GetSink() == nil {
		c.Log = mgr.GetLogger().WithName("interruption")
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &infrav1.AWSMachine{}, instanceIDIndex, IndexInstanceID); err != nil {
		return fmt.Errorf("indexing AWSMachines by instance ID: %w", err)
	}
	return mgr.Add(c)
}

// IndexInstanceID is the instance ID of a Joinery AWSMachine:
// spec.instanceID, or the last part of spec.providerID
// (aws:///<zone>/<instance-id>).
func IndexInstanceID(o client.Object) []string {
	m, ok := o.(*infrav1.AWSMachine)
	if !ok || m.Labels[v1alpha1.LabelNodePool] == "" {
		return nil
	}
	if id := aws.ToString(m.Spec.InstanceID); id != "" {
		return []string{id}
	}
	if _, id, ok := zoneAndInstance(aws.ToString(m.Spec.ProviderID)); ok {
		return []string{id}
	}
	return nil
}

// zoneAndInstance splits a providerID aws:///<zone>/<instance-id>.
func zoneAndInstance(providerID string) (zone, instanceID string, ok bool) {
	rest, found := strings.CutPrefix(providerID, "aws:///")
	if !found {
		return "", "", false
	}
	zone, instanceID, ok = strings.Cut(rest, "/")
	return zone, instanceID, ok && strings.HasPrefix(instanceID, "i-")
}

// NeedLeaderElection makes only the leader poll: two replicas would each
// take messages from the other.
func (c *Controller) NeedLeaderElection() bool { return true }

// Start polls until ctx ends. Errors of SQS are logged and retried with
// backoff: they never stop the manager.
func (c *Controller) Start(ctx context.Context) error {
	log := c.Log.WithValues("queue", c.Queue)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		if err := c.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, time.Second), time.Minute)
			log.Error(err, "polling the interruption queue", "retryIn", backoff)
			continue
		}
		backoff = 0
	}
	return nil
}

// poll receives one batch (waiting up to 20 s for it) and handles it.
func (c *Controller) poll(ctx context.Context) error {
	if c.queueURL == "" {
		u, err := queueURL(ctx, c.SQS, c.Queue)
		if err != nil {
			return err
		}
		c.queueURL = u
		c.Log.Info("watching the interruption queue", "queueURL", u)
	}
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(c.queueURL), MaxNumberOfMessages: maxMessages,
		WaitTimeSeconds: waitTimeSeconds, VisibilityTimeout: visibilityTimeout,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
	})
	if err != nil {
		return fmt.Errorf("receiving from %s: %w", c.queueURL, err)
	}
	var errs []error
	for _, raw := range out.Messages {
		errs = append(errs, c.HandleMessage(ctx, raw))
	}
	return errors.Join(errs...)
}

// HandleMessage acts on one queue message and deletes it from the queue,
// unless acting failed: then it stays, and comes back after the visibility
// timeout. A body that is no event is logged and deleted.
func (c *Controller) HandleMessage(ctx context.Context, raw sqstypes.Message) error {
	msg, err := Parse(aws.ToString(raw.Body))
	if err != nil {
		c.Log.Error(err, "deleting a queue message that is not an event Joinery reads", "messageId", aws.ToString(raw.MessageId))
		return c.delete(ctx, raw)
	}
	receivedMessages.WithLabelValues(string(msg.Kind)).Inc()
	if err := c.Handle(ctx, msg); err != nil {
		return fmt.Errorf("%s event %s: %w", msg.Kind, msg.ID, err)
	}
	if !msg.Time.IsZero() {
		messageQueueDuration.Observe(c.Now().Sub(msg.Time).Seconds())
	}
	return c.delete(ctx, raw)
}

func (c *Controller) delete(ctx context.Context, raw sqstypes.Message) error {
	if _, err := c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.queueURL), ReceiptHandle: raw.ReceiptHandle}); err != nil {
		return fmt.Errorf("deleting message %s from %s: %w", aws.ToString(raw.MessageId), c.queueURL, err)
	}
	deletedMessages.Inc()
	return nil
}

// Handle acts on every Joinery Machine whose instance the message names.
func (c *Controller) Handle(ctx context.Context, msg Message) error {
	if msg.Kind == KindNoOp {
		return nil
	}
	var errs []error
	for _, id := range msg.InstanceIDs {
		targets, err := c.targets(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(targets) == 0 {
			c.Log.V(1).Info("no Joinery Machine runs the instance; ignoring", "kind", msg.Kind, "instance", id)
		}
		for _, t := range targets {
			errs = append(errs, c.act(ctx, msg, t))
		}
	}
	return errors.Join(errs...)
}

// target is a Joinery Machine and its AWSMachine.
type target struct {
	instanceID string
	machine    *clusterv1.Machine
	awsMachine *infrav1.AWSMachine
	pool       *v1alpha1.NodePool // nil when gone
}

func (c *Controller) targets(ctx context.Context, instanceID string) ([]target, error) {
	var list infrav1.AWSMachineList
	if err := c.Client.List(ctx, &list, client.MatchingFields{instanceIDIndex: instanceID}); err != nil {
		return nil, fmt.Errorf("listing AWSMachines of instance %s: %w", instanceID, err)
	}
	var out []target
	for i := range list.Items {
		am := &list.Items[i]
		owner := ownerMachine(am)
		if owner == "" {
			continue
		}
		m := &clusterv1.Machine{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: am.Namespace, Name: owner}, m); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading Machine %s/%s of instance %s: %w", am.Namespace, owner, instanceID, err)
		}
		poolName := m.Labels[v1alpha1.LabelNodePool]
		if poolName == "" {
			continue // not Joinery's
		}
		t := target{instanceID: instanceID, machine: m, awsMachine: am}
		pool := &v1alpha1.NodePool{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: poolName}, pool); err == nil {
			t.pool = pool
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading NodePool %s/%s of Machine %s: %w", m.Namespace, poolName, m.Name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func ownerMachine(am *infrav1.AWSMachine) string {
	for _, ref := range am.OwnerReferences {
		if ref.Kind == "Machine" && strings.HasPrefix(ref.APIVersion, clusterv1.GroupVersion.Group+"/") {
			return ref.Name
		}
	}
	return ""
}

// act records what the message says on the Machine and its NodePool and,
// for a spot interruption or a scheduled change, deletes the Machine.
func (c *Controller) act(ctx context.Context, msg Message, t target) error {
	m := t.machine
	log := c.Log.WithValues("kind", msg.Kind, "instance", t.instanceID, "machine", client.ObjectKeyFromObject(m).String(), "cluster", m.Spec.ClusterName)
	offering := c.offering(t)
	what := fmt.Sprintf("instance %s (%s %s in %s)", t.instanceID, offering.InstanceType, offering.CapacityType, offering.Zone)
	switch msg.Kind {
	case KindSpotInterruption:
		c.event(t, corev1.EventTypeWarning, "SpotInterrupted", "EC2 will reclaim spot %s at about %s (spot interruption warning of %s); "+
			"deleting the Machine so CAPI drains its node now and its pods get a replacement, avoiding %s/%s/spot for a while",
			what, clock(msg.Deadline), clock(msg.Time), offering.InstanceType, offering.Zone)
		if c.Unavailable != nil && offering.InstanceType != "" && offering.Zone != "" {
			c.Unavailable.MarkUnavailable(offering, c.Now())
		}
		if c.History != nil && offering.InstanceType != "" && offering.Zone != "" {
			c.History.RecordInterruption(offering, c.Now())
		}
		return c.deleteMachine(ctx, log, t)
	case KindScheduledChange:
		deadline := "at a time AWS Health did not give"
		if !msg.Deadline.IsZero() {
			deadline = "from " + clock(msg.Deadline)
		}
		c.event(t, corev1.EventTypeWarning, "ScheduledChange", "AWS Health scheduled %s for %s %s: %s; deleting the Machine so its pods move before then",
			msg.EventTypeCode, what, deadline, firstSentence(msg.Description))
		return c.deleteMachine(ctx, log, t)
	case KindRebalance:
		c.event(t, corev1.EventTypeNormal, "SpotRebalanceRecommendation", "EC2 recommends rebalancing spot %s: its capacity is at elevated risk of interruption (no action; an interruption warning would replace it)", what)
	case KindInstanceStopped, KindInstanceTerminated:
		c.event(t, corev1.EventTypeWarning, "InstanceStateChanged", "EC2 reports %s %s (at %s)", what, msg.State, clock(msg.Time))
	}
	log.V(1).Info("recorded interruption event")
	return nil
}

// offering is what the Machine runs: its AWSMachine's instance type and
// market, in the zone of its providerID (else its failure domain).
func (c *Controller) offering(t target) solver.OfferingKey {
	k := solver.OfferingKey{InstanceType: t.awsMachine.Spec.InstanceType, CapacityType: v1alpha1.CapacityTypeOnDemand, Zone: t.machine.Spec.FailureDomain}
	if t.awsMachine.Spec.SpotMarketOptions != nil || t.awsMachine.Spec.MarketType == infrav1.MarketTypeSpot {
		k.CapacityType = v1alpha1.CapacityTypeSpot
	}
	if zone, _, ok := zoneAndInstance(aws.ToString(t.awsMachine.Spec.ProviderID)); ok && zone != "" {
		k.Zone = zone
	}
	return k
}

func (c *Controller) deleteMachine(ctx context.Context, log logr.Logger, t target) error {
	if !t.machine.DeletionTimestamp.IsZero() {
		log.V(1).Info("Machine already deleting")
		return nil
	}
	// Preconditions: delete exactly the Machine read, not a new one of the
	// same name.
	if err := c.Client.Delete(ctx, t.machine, client.Preconditions{UID: &t.machine.UID}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("deleting Machine %s/%s of interrupted instance %s: %w", t.machine.Namespace, t.machine.Name, t.instanceID, err)
	}
	log.Info("deleted the Machine of an interrupted instance")
	metrics.MachineDeleted(t.machine, metrics.ReasonInterruption)
	c.event(t, corev1.EventTypeNormal, "TerminatingOnInterruption", "deleted Machine %s of %s; CAPI drains its node", t.machine.Name, t.instanceID)
	return nil
}

// event records on the Machine and, naming the Machine and cluster, on
// its NodePool.
func (c *Controller) event(t target, eventType, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.Recorder.Event(t.machine, eventType, reason, msg)
	if t.pool != nil {
		c.Recorder.Eventf(t.pool, eventType, reason, "Machine %s in cluster %s: %s", t.machine.Name, t.machine.Spec.ClusterName, msg)
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
