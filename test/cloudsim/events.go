package cloudsim

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventBridge events, as EC2 and AWS Health deliver them to an SQS queue
// through the EventBridge rules Karpenter's CloudFormation template
// creates. The envelope is EventBridge's; detail is the source's.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
// https://docs.aws.amazon.com/health/latest/ug/cloudwatch-events-health.html

// Detail types and sources of the events the simulator sends.
const (
	DetailTypeSpotInterruption = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance        = "EC2 Instance Rebalance Recommendation"
	DetailTypeStateChange      = "EC2 Instance State-change Notification"
	DetailTypeHealth           = "AWS Health Event"
	SourceEC2                  = "aws.ec2"
	SourceHealth               = "aws.health"
)

// Event is an EventBridge event.
type Event struct {
	Version    string    `json:"version"`
	ID         string    `json:"id"`
	DetailType string    `json:"detail-type"`
	Source     string    `json:"source"`
	Account    string    `json:"account"`
	Time       time.Time `json:"time"`
	Region     string    `json:"region"`
	Resources  []string  `json:"resources"`
	Detail     any       `json:"detail"`
}

// SpotInterruptionDetail is the detail of "EC2 Spot Instance Interruption
// Warning".
type SpotInterruptionDetail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
}

// InstanceDetail is the detail of "EC2 Instance Rebalance Recommendation".
type InstanceDetail struct {
	InstanceID string `json:"instance-id"`
}

// StateChangeDetail is the detail of "EC2 Instance State-change
// Notification".
type StateChangeDetail struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

// HealthDetail is the detail of an "AWS Health Event".
type HealthDetail struct {
	EventARN          string              `json:"eventArn"`
	Service           string              `json:"service"`
	EventTypeCode     string              `json:"eventTypeCode"`
	EventTypeCategory string              `json:"eventTypeCategory"`
	StartTime         string              `json:"startTime"`
	EndTime           string              `json:"endTime,omitempty"`
	EventDescription  []HealthDescription `json:"eventDescription"`
	AffectedEntities  []HealthEntity      `json:"affectedEntities"`
}

// HealthDescription is one language's description of a Health event.
type HealthDescription struct {
	Language          string `json:"language"`
	LatestDescription string `json:"latestDescription"`
}

// HealthEntity is a resource a Health event affects.
type HealthEntity struct {
	EntityValue string `json:"entityValue"`
}

// healthTime is the format AWS Health uses for startTime and endTime
// ("Sat, 05 Jun 2016 15:10:09 GMT").
const healthTime = "Mon, 02 Jan 2006 15:04:05 GMT"

// ScheduledChange describes an AWS Health scheduled change of an instance
// (a retirement, a reboot for maintenance).
type ScheduledChange struct {
	// EventTypeCode, e.g. AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED (the
	// default) or AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED.
	EventTypeCode string
	// Start and End of the maintenance window (Start defaults to two weeks
	// from now, as for a retirement).
	Start, End  time.Time
	Description string
}

func (c *Cloud) event(detailType, source string, inst Instance, at time.Time, detail any) Event {
	// EC2's spot interruption warnings name the instance with its zone in
	// the region field of the ARN; its other events use the region and
	// account.
	resource := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", c.opts.Region, c.sqsAccount(), inst.ID)
	if detailType == DetailTypeSpotInterruption {
		resource = fmt.Sprintf("arn:aws:ec2:%s:instance/%s", inst.Zone, inst.ID)
	}
	return Event{
		Version: "0", ID: newUUID(), DetailType: detailType, Source: source, Account: c.sqsAccount(),
		Time: at.UTC().Truncate(time.Second), Region: c.opts.Region, Resources: []string{resource}, Detail: detail,
	}
}

func (c *Cloud) sqsAccount() string {
	if c.opts.AccountID == "" {
		return DefaultAccountID
	}
	return c.opts.AccountID
}

// SendEvent puts an EventBridge event on the cloud's SQS queue.
func (c *Cloud) SendEvent(e Event) error {
	if c.sqs == nil {
		return errSQSDisabled
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	id, err := c.sqs.Send(c.opts.SQSQueue, string(b))
	if err != nil {
		return fmt.Errorf("sending %q for %v to queue %s: %w", e.DetailType, e.Resources, c.opts.SQSQueue, err)
	}
	c.opts.Log.Info("EventBridge event sent to SQS", "detailType", e.DetailType, "resources", e.Resources, "queue", c.opts.SQSQueue, "messageId", id)
	return nil
}

// RecommendRebalance sends EC2's rebalance recommendation for an instance
// (its spot capacity is at elevated risk of interruption).
func (c *Cloud) RecommendRebalance(instanceID string) error {
	inst, err := c.liveInstance(instanceID)
	if err != nil {
		return err
	}
	return c.SendEvent(c.event(DetailTypeRebalance, SourceEC2, inst, time.Now(), InstanceDetail{InstanceID: inst.ID}))
}

// ScheduleChange sends an AWS Health scheduled change affecting an
// instance. The simulator does not act on it: the instance keeps running.
func (c *Cloud) ScheduleChange(instanceID string, change ScheduledChange) error {
	inst, err := c.liveInstance(instanceID)
	if err != nil {
		return err
	}
	now := time.Now()
	if change.EventTypeCode == "" {
		change.EventTypeCode = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
	}
	if change.Start.IsZero() {
		change.Start = now.Add(14 * 24 * time.Hour)
	}
	if change.Description == "" {
		change.Description = fmt.Sprintf("EC2 has detected degradation of the underlying hardware hosting your Amazon EC2 instance %s in the %s region. "+
			"Due to this degradation your instance could already be unreachable. Your instance will be stopped or terminated after %s.",
			inst.ID, c.opts.Region, change.Start.UTC().Format(healthTime))
	}
	d := HealthDetail{
		EventARN:      fmt.Sprintf("arn:aws:health:%s::event/EC2/%s/%s_%s", c.opts.Region, change.EventTypeCode, change.EventTypeCode, newUUID()),
		Service:       "EC2",
		EventTypeCode: change.EventTypeCode, EventTypeCategory: "scheduledChange",
		StartTime:        change.Start.UTC().Format(healthTime),
		EventDescription: []HealthDescription{{Language: "en_US", LatestDescription: change.Description}},
		AffectedEntities: []HealthEntity{{EntityValue: inst.ID}},
	}
	if !change.End.IsZero() {
		d.EndTime = change.End.UTC().Format(healthTime)
	}
	e := c.event(DetailTypeHealth, SourceHealth, inst, now, d)
	e.Resources = []string{inst.ID}
	return c.SendEvent(e)
}

// NotifyStateChange sends EC2's state-change notification for an
// instance in state (pending, running, stopping, stopped, shutting-down,
// terminated). The simulator does not change the instance.
func (c *Cloud) NotifyStateChange(instanceID, state string) error {
	inst, ok := c.Instance(instanceID)
	if !ok {
		return fmt.Errorf("no instance %s in the simulated cloud", instanceID)
	}
	return c.SendEvent(c.event(DetailTypeStateChange, SourceEC2, inst, time.Now(), StateChangeDetail{InstanceID: inst.ID, State: state}))
}

func (c *Cloud) liveInstance(id string) (Instance, error) {
	inst, ok := c.Instance(id)
	if !ok {
		return Instance{}, fmt.Errorf("no instance %s in the simulated cloud", id)
	}
	if inst.State == StateTerminated || inst.State == StateShuttingDown {
		return Instance{}, fmt.Errorf("instance %s is already %s", id, inst.State)
	}
	return inst, nil
}

// sendSpotInterruption sends the warning of an announced interruption.
func (c *Cloud) sendSpotInterruption(inst Instance, notice Interruption) {
	e := c.event(DetailTypeSpotInterruption, SourceEC2, inst, notice.NoticeTime,
		SpotInterruptionDetail{InstanceID: inst.ID, InstanceAction: "terminate"})
	if err := c.SendEvent(e); err != nil {
		c.opts.Log.Error(err, "sending the spot interruption warning", "instance", inst.ID)
	}
}
