package cloudsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// startSQS serves a simulated SQS with one queue and returns the SDK's
// client for it and the queue URL.
func startSQS(t *testing.T, queue string) (*SQS, *sqs.Client, string) {
	t.Helper()
	s := NewSQS("")
	if err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := sqsClient(s.URL())
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(queue)})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return s, c, aws.ToString(out.QueueUrl)
}

func sqsClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		})),
	})
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestSQSCreateQueueAndGetQueueUrlAnswerTheQueueURL(t *testing.T) {
	s, c, url := startSQS(t, "interruptions")
	if want := s.URL() + "/" + DefaultAccountID + "/interruptions"; url != want {
		t.Errorf("CreateQueue URL = %q, want %q", url, want)
	}
	again, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("interruptions")})
	if err != nil || aws.ToString(again.QueueUrl) != url {
		t.Errorf("CreateQueue of an existing queue = %v, %v; want its URL", aws.ToString(again.QueueUrl), err)
	}
	got, err := c.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("interruptions")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Errorf("GetQueueUrl = %v, %v; want %q", aws.ToString(got.QueueUrl), err, url)
	}
}

func TestSQSUnknownQueueIsQueueDoesNotExistWithTheQueryErrorCode(t *testing.T) {
	s, c, _ := startSQS(t, "interruptions")
	_, err := c.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var notExist *sqstypes.QueueDoesNotExist
	if !errors.As(err, &notExist) {
		t.Fatalf("GetQueueUrl of a missing queue: %v (%T), want *types.QueueDoesNotExist", err, err)
	}
	if code := apiCode(err); code != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("error code = %q, want AWS.SimpleQueueService.NonExistentQueue", code)
	}
	if !strings.Contains(err.Error(), "The specified queue does not exist.") {
		t.Errorf("error = %v, want SQS's message", err)
	}
	_, err = c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.URL() + "/" + DefaultAccountID + "/nope")})
	if !errors.As(err, &notExist) {
		t.Errorf("ReceiveMessage on a missing queue: %v, want QueueDoesNotExist", err)
	}
}

func TestSQSSendThenReceiveABatchInSendOrderWithChecksumsAndAttributes(t *testing.T) {
	_, c, url := startSQS(t, "q")
	ctx := context.Background()
	var ids []string
	for i := range 12 {
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatalf("SendMessage %d: %v", i, err) // the SDK checks MD5OfMessageBody
		}
		ids = append(ids, aws.ToString(out.MessageId))
	}
	before := time.Now().Add(-time.Second)
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp, sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err) // the SDK checks MD5OfBody
	}
	if len(out.Messages) != 10 {
		t.Fatalf("received %d messages, want a batch of 10", len(out.Messages))
	}
	for i, m := range out.Messages {
		if aws.ToString(m.MessageId) != ids[i] || aws.ToString(m.Body) != `{"n":`+strconv.Itoa(i)+`}` {
			t.Errorf("message %d = %s %s, want %s in send order", i, aws.ToString(m.MessageId), aws.ToString(m.Body), ids[i])
		}
		sent, _ := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
		if time.UnixMilli(sent).Before(before) || m.Attributes["ApproximateReceiveCount"] != "1" {
			t.Errorf("message %d attributes = %v", i, m.Attributes)
		}
	}
	rest, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(rest.Messages) != 2 {
		t.Errorf("second receive = %d messages, %v; want the 2 left", len(rest.Messages), err)
	}
}

func TestSQSLongPollReturnsAsSoonAsAMessageArrives(t *testing.T) {
	s, c, url := startSQS(t, "q")
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = s.Send("q", "late")
	}()
	start := time.Now()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "late" {
		t.Fatalf("long poll got %v, want the message sent while it waited", out.Messages)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("long poll took %s, want it to return when the message arrived (~300ms)", took)
	}
}

func TestSQSLongPollOnAnEmptyQueueWaitsTheWaitTime(t *testing.T) {
	_, c, url := startSQS(t, "q")
	start := time.Now()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("= %v, %v; want no message", out.Messages, err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("returned after %s, want WaitTimeSeconds=1", took)
	}
}

func TestSQSMessageNotDeletedWithinTheVisibilityTimeoutIsRedelivered(t *testing.T) {
	s, c, url := startSQS(t, "q")
	ctx := context.Background()
	if _, err := s.Send("q", "work"); err != nil {
		t.Fatal(err)
	}
	first, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 1})
	if err != nil || len(first.Messages) != 1 {
		t.Fatalf("first receive = %v, %v", first.Messages, err)
	}
	if visible, inFlight := s.Messages("q"); visible != 0 || inFlight != 1 {
		t.Errorf("after receive: %d visible, %d in flight; want 0, 1", visible, inFlight)
	}
	hidden, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(hidden.Messages) != 0 {
		t.Fatalf("receive while invisible = %v, %v; want nothing", hidden.Messages, err)
	}
	// A long poll is woken when the message becomes visible again.
	again, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil || len(again.Messages) != 1 {
		t.Fatalf("receive after the visibility timeout = %v, %v; want the message again", again.Messages, err)
	}
	m := again.Messages[0]
	if aws.ToString(m.MessageId) != aws.ToString(first.Messages[0].MessageId) || m.Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("redelivered %s with attributes %v, want the same message received twice", aws.ToString(m.MessageId), m.Attributes)
	}
	if aws.ToString(m.ReceiptHandle) == aws.ToString(first.Messages[0].ReceiptHandle) {
		t.Error("a redelivery must carry a new receipt handle")
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if visible, inFlight := s.Messages("q"); visible+inFlight != 0 {
		t.Errorf("after delete: %d visible, %d in flight; want an empty queue", visible, inFlight)
	}
	// Deleting again with a handle SQS issued succeeds, as on AWS.
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first.Messages[0].ReceiptHandle}); err != nil {
		t.Errorf("deleting a deleted message: %v, want success", err)
	}
}

func TestSQSRejectsBadParametersAsSQSDoes(t *testing.T) {
	_, c, url := startSQS(t, "q")
	ctx := context.Background()
	_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("forged")})
	var invalid *sqstypes.ReceiptHandleIsInvalid
	if !errors.As(err, &invalid) {
		t.Errorf("DeleteMessage with a forged receipt handle: %v, want ReceiptHandleIsInvalid", err)
	}
	_, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
	if code := apiCode(err); code != "InvalidParameterValue" || !strings.Contains(err.Error(), "MaxNumberOfMessages") {
		t.Errorf("MaxNumberOfMessages=11: %v (code %q), want InvalidParameterValue", err, code)
	}
	_, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
	if code := apiCode(err); code != "InvalidParameterValue" {
		t.Errorf("WaitTimeSeconds=21: %v, want InvalidParameterValue", err)
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strings.Repeat("x", 256*1024+1))})
	if code := apiCode(err); code != "InvalidParameterValue" {
		t.Errorf("a message over 256 KiB: %v, want InvalidParameterValue", err)
	}
}

func TestSQSMessageAttributesRoundTrip(t *testing.T) {
	_, c, url := startSQS(t, "q")
	ctx := context.Background()
	attrs := map[string]sqstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("spot")}}
	sent, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("b"), MessageAttributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageAttributeNames: []string{"All"}})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("= %v, %v", got.Messages, err)
	}
	m := got.Messages[0]
	if aws.ToString(m.MessageAttributes["kind"].StringValue) != "spot" || aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) || aws.ToString(sent.MD5OfMessageAttributes) == "" {
		t.Errorf("attributes %v (md5 %s), sent md5 %s", m.MessageAttributes, aws.ToString(m.MD5OfMessageAttributes), aws.ToString(sent.MD5OfMessageAttributes))
	}
}

func TestSQSAnswersRequestsOutsideTheJSONProtocolWithAnError(t *testing.T) {
	s, _, _ := startSQS(t, "q")
	for name, set := range map[string]func(*http.Request){
		"no X-Amz-Target": func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.0") },
		"query protocol":  func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
		"unknown operation": func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "AmazonSQS.PurgeQueue")
			r.Header.Set("Content-Type", "application/x-amz-json-1.0")
		},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader("{}"))
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode < 400 || body["__type"] == "" || body["message"] == "" || resp.Header.Get("x-amzn-query-error") == "" {
			t.Errorf("%s: %d %v %v, want an SQS JSON error", name, resp.StatusCode, body, resp.Header)
		}
	}
}

func TestCloudSendsTheSpotInterruptionWarningEC2SendsToTheQueue(t *testing.T) {
	cloud, err := New(Options{SQSQueue: "joinery-interruptions", SpotInterruptionWarning: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cloud.Stop)
	inst := Instance{ID: runInstance(t, cloud, &ec2.RunInstancesInput{
		ImageId: aws.String(DefaultImageAMD64), InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement:             &ec2types.Placement{AvailabilityZone: aws.String("us-east-1b")},
		InstanceMarketOptions: &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot},
	})}
	notice, err := cloud.InterruptSpotInstance(context.Background(), inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.RecommendRebalance(inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := cloud.ScheduleChange(inst.ID, ScheduledChange{}); err != nil {
		t.Fatal(err)
	}
	if err := cloud.NotifyStateChange(inst.ID, StateShuttingDown); err != nil {
		t.Fatal(err)
	}

	c := sqsClient(cloud.SQSEndpoint())
	url, err := c.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String("joinery-interruptions")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 4 {
		t.Fatalf("ReceiveMessage = %d messages, %v; want 4 events", len(out.Messages), err)
	}
	var warning map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &warning); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": "0", "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
		"account": DefaultAccountID, "region": "us-east-1",
		"resources": []any{"arn:aws:ec2:us-east-1b:instance/" + inst.ID},
		"detail":    map[string]any{"instance-id": inst.ID, "instance-action": "terminate"},
		"time":      notice.NoticeTime.UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	for k, v := range want {
		if got, _ := json.Marshal(warning[k]); string(got) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if id, _ := warning["id"].(string); len(id) != 36 {
		t.Errorf("id = %v, want a UUID", warning["id"])
	}
	kinds := []string{}
	for _, m := range out.Messages {
		var e Event
		_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &e)
		kinds = append(kinds, e.Source+"/"+e.DetailType)
	}
	if strings.Join(kinds, ",") != "aws.ec2/EC2 Spot Instance Interruption Warning,aws.ec2/EC2 Instance Rebalance Recommendation,aws.health/AWS Health Event,aws.ec2/EC2 Instance State-change Notification" {
		t.Errorf("events = %v", kinds)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
