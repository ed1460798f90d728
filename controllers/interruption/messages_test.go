package interruption

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Bodies as EventBridge delivers them to SQS (from the EC2 and AWS Health
// documentation's examples).
const (
	spotWarning = `{
  "version": "0",
  "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
  "detail-type": "EC2 Spot Instance Interruption Warning",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2026-11-22T10:00:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0"],
  "detail": {"instance-id": "i-0b662ef9931388ba0", "instance-action": "terminate"}
}`
	rebalance = `{
  "version": "0",
  "id": "5c4c7d51-2a1c-4b2d-9a5e-3f2a6c7f1e11",
  "detail-type": "EC2 Instance Rebalance Recommendation",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2026-11-22T09:58:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0b662ef9931388ba0"],
  "detail": {"instance-id": "i-0b662ef9931388ba0"}
}`
	stateChange = `{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2026-11-22T10:02:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
  "detail": {"instance-id": "i-abcd1111", "state": "%s"}
}`
	scheduledChange = `{
  "version": "0",
  "id": "121345678-1234-1234-1234-123456789012",
  "detail-type": "AWS Health Event",
  "source": "aws.health",
  "account": "123456789012",
  "time": "2026-11-22T10:00:00Z",
  "region": "us-east-1",
  "resources": ["i-abcd1111"],
  "detail": {
    "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_ABC123-DEF456",
    "service": "EC2",
    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    "eventTypeCategory": "scheduledChange",
    "startTime": "Sat, 05 Dec 2026 15:10:09 GMT",
    "endTime": "Sat, 05 Dec 2026 17:10:09 GMT",
    "eventDescription": [{"language": "en_US", "latestDescription": "EC2 has detected degradation of the underlying hardware hosting your Amazon EC2 instance. Your instance will be stopped."}],
    "affectedEntities": [{"entityValue": "i-abcd1111"}, {"entityValue": "i-abcd2222"}]
  }
}`
	healthIssue = `{
  "version": "0", "id": "x", "detail-type": "AWS Health Event", "source": "aws.health",
  "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1", "resources": [],
  "detail": {"service": "EC2", "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE", "eventTypeCategory": "issue", "startTime": "Sat, 05 Dec 2026 15:10:09 GMT", "affectedEntities": []}
}`
)

func TestParse(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		body      string
		kind      Kind
		instances []string
		deadline  time.Time
		wantErr   bool
	}{
		{name: "a spot interruption warning names the instance, and EC2 reclaims it two minutes later",
			body: spotWarning, kind: KindSpotInterruption, instances: []string{"i-0b662ef9931388ba0"}, deadline: at.Add(2 * time.Minute)},
		{name: "a rebalance recommendation names the instance",
			body: rebalance, kind: KindRebalance, instances: []string{"i-0b662ef9931388ba0"}},
		{name: "a state change to stopping is an instance stopped",
			body: fmt.Sprintf(stateChange, "stopping"), kind: KindInstanceStopped, instances: []string{"i-abcd1111"}},
		{name: "a state change to shutting-down is an instance terminated",
			body: fmt.Sprintf(stateChange, "shutting-down"), kind: KindInstanceTerminated, instances: []string{"i-abcd1111"}},
		{name: "a state change to running is of no interest",
			body: fmt.Sprintf(stateChange, "running"), kind: KindNoOp},
		{name: "an EC2 scheduled change names every affected instance and starts at the window",
			body: scheduledChange, kind: KindScheduledChange, instances: []string{"i-abcd1111", "i-abcd2222"}, deadline: time.Date(2026, 12, 5, 15, 10, 9, 0, time.UTC)},
		{name: "an AWS Health issue is no scheduled change",
			body: healthIssue, kind: KindNoOp},
		{name: "an event of another source is of no interest",
			body: `{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","time":"2026-11-22T10:00:00Z","detail":{}}`, kind: KindNoOp},
		{name: "a body that is not JSON is an error",
			body: "hello", kind: KindNoOp, wantErr: true},
		{name: "a spot warning without an instance is an error",
			body: `{"version":"0","id":"1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":"2026-11-22T10:00:00Z","detail":{}}`, kind: KindNoOp, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.body)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if m.Kind != tc.kind {
				t.Errorf("kind = %s, want %s", m.Kind, tc.kind)
			}
			if !slices.Equal(m.InstanceIDs, tc.instances) {
				t.Errorf("instances = %v, want %v", m.InstanceIDs, tc.instances)
			}
			if !m.Deadline.Equal(tc.deadline) {
				t.Errorf("deadline = %s, want %s", m.Deadline, tc.deadline)
			}
		})
	}
}

func TestParseKeepsWhatAScheduledChangeSays(t *testing.T) {
	m, err := Parse(scheduledChange)
	if err != nil {
		t.Fatal(err)
	}
	if m.EventTypeCode != "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED" || m.Description == "" || m.ID != "121345678-1234-1234-1234-123456789012" {
		t.Errorf("%+v", m)
	}
}
