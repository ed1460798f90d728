package interruption

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/joinery-dev/joinery/cloud/live"
)

// SQSAPI is the part of the SQS client the controller uses.
type SQSAPI interface {
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// NewSQSClient returns an SQS client for region, sending to endpoint when
// set (a local or VPC endpoint) instead of the region's. Credentials come
// from the SDK's default chain: environment, AWS_PROFILE, IRSA (web
// identity), Pod Identity, instance profile (see live.AWSConfig).
func NewSQSClient(ctx context.Context, region, endpoint string) (*sqs.Client, error) {
	cfg, err := live.AWSConfig(ctx, region, endpoint)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg), nil
}

// isQueueURL tells a queue URL from a queue name.
func isQueueURL(queue string) bool {
	return strings.HasPrefix(queue, "https://") || strings.HasPrefix(queue, "http://")
}

// queueURL resolves the configured queue: a URL as is, a name through
// GetQueueUrl.
func queueURL(ctx context.Context, api SQSAPI, queue string) (string, error) {
	if isQueueURL(queue) {
		return queue, nil
	}
	out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		return "", fmt.Errorf("resolving --interruption-queue=%s: %w (create the queue and its EventBridge rules, or pass the queue's URL)", queue, err)
	}
	return aws.ToString(out.QueueUrl), nil
}
