package interruption

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind is what a queue message announces; the message_type label of the
// metrics, named as Karpenter names them.
type Kind string

// The kinds of message the controller understands.
const (
	KindSpotInterruption   Kind = "spot_interrupted"
	KindRebalance          Kind = "rebalance_recommendation"
	KindScheduledChange    Kind = "scheduled_change"
	KindInstanceStopped    Kind = "instance_stopped"
	KindInstanceTerminated Kind = "instance_terminated"
	// KindNoOp is an event of no interest (another source, detail type,
	// Health category or instance state).
	KindNoOp Kind = "no_op"
)

// SpotInterruptionWarning is how long before reclaiming a spot instance EC2
// sends its warning. The event itself carries only the time it was sent.
const SpotInterruptionWarning = 2 * time.Minute

// Message is one EventBridge event read from the queue.
type Message struct {
	Kind       Kind
	ID         string
	Source     string
	DetailType string
	// Time is when the event happened (EventBridge's "time").
	Time        time.Time
	InstanceIDs []string
	// Deadline is when the instance goes away: two minutes after a spot
	// interruption warning, the start of a scheduled change's window; zero
	// for other kinds.
	Deadline time.Time
	// State is the instance state of a state-change notification.
	State string
	// EventTypeCode and Description describe a scheduled change.
	EventTypeCode string
	Description   string
}

// envelope is EventBridge's event envelope.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// The EventBridge schemas the controller reads: aws.ec2
// EC2SpotInstanceInterruptionWarning, EC2InstanceRebalanceRecommendation,
// EC2InstanceStateChangeNotification, and aws.health AWSHealthEvent.
type instanceDetail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
	State          string `json:"state"`
}

type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	StartTime         string `json:"startTime"`
	EventDescription  []struct {
		Language          string `json:"language"`
		LatestDescription string `json:"latestDescription"`
	} `json:"eventDescription"`
	AffectedEntities []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// Parse reads an SQS message body as an EventBridge event. Events of no
// interest parse as KindNoOp; an error means the body is not an event (or
// an event of a known kind with a broken detail).
func Parse(body string) (Message, error) {
	var e envelope
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return Message{Kind: KindNoOp}, fmt.Errorf("message body is not an EventBridge event: %w", err)
	}
	m := Message{Kind: KindNoOp, ID: e.ID, Source: e.Source, DetailType: e.DetailType, Time: e.Time}
	if e.Version != "0" {
		return m, nil
	}
	switch {
	case e.Source == "aws.ec2" && e.DetailType == "EC2 Spot Instance Interruption Warning":
		d, err := instance(e)
		if err != nil {
			return m, err
		}
		m.Kind, m.InstanceIDs, m.Deadline = KindSpotInterruption, []string{d.InstanceID}, e.Time.Add(SpotInterruptionWarning)
	case e.Source == "aws.ec2" && e.DetailType == "EC2 Instance Rebalance Recommendation":
		d, err := instance(e)
		if err != nil {
			return m, err
		}
		m.Kind, m.InstanceIDs = KindRebalance, []string{d.InstanceID}
	case e.Source == "aws.ec2" && e.DetailType == "EC2 Instance State-change Notification":
		d, err := instance(e)
		if err != nil {
			return m, err
		}
		m.State = strings.ToLower(d.State)
		switch m.State {
		case "stopping", "stopped":
			m.Kind = KindInstanceStopped
		case "shutting-down", "terminated":
			m.Kind = KindInstanceTerminated
		default:
			return m, nil
		}
		m.InstanceIDs = []string{d.InstanceID}
	case e.Source == "aws.health" && e.DetailType == "AWS Health Event":
		var d healthDetail
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			return m, fmt.Errorf("%s event %s: detail: %w", e.DetailType, e.ID, err)
		}
		if d.Service != "EC2" || d.EventTypeCategory != "scheduledChange" {
			return m, nil
		}
		m.Kind, m.EventTypeCode = KindScheduledChange, d.EventTypeCode
		for _, a := range d.AffectedEntities {
			if strings.HasPrefix(a.EntityValue, "i-") {
				m.InstanceIDs = append(m.InstanceIDs, a.EntityValue)
			}
		}
		for _, desc := range d.EventDescription {
			if desc.Language == "en_US" || m.Description == "" {
				m.Description = desc.LatestDescription
			}
		}
		m.Deadline = parseHealthTime(d.StartTime)
	}
	return m, nil
}

func instance(e envelope) (instanceDetail, error) {
	var d instanceDetail
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return d, fmt.Errorf("%s event %s: detail: %w", e.DetailType, e.ID, err)
	}
	if d.InstanceID == "" {
		return d, fmt.Errorf("%s event %s: detail has no instance-id", e.DetailType, e.ID)
	}
	return d, nil
}

// parseHealthTime reads AWS Health's "Sat, 05 Jun 2016 15:10:09 GMT"
// (or RFC 3339); zero when it is neither.
func parseHealthTime(s string) time.Time {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
