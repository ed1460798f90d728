package interruption

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSAPI is the part of the SQS client the controller uses.
type SQSAPI interface {
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// NewSQSClient returns an SQS client for region, sending to endpoint when
// set (a local or VPC endpoint) instead of the region's. It signs with
// the credentials of the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and sends unsigned requests
// without them.
func NewSQSClient(region, endpoint string) *sqs.Client {
	o := sqs.Options{Region: region, Credentials: environmentCredentials()}
	if endpoint != "" {
		o.BaseEndpoint = aws.String(endpoint)
	}
	return sqs.New(o)
}

func environmentCredentials() aws.CredentialsProvider {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.AnonymousCredentials{}
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
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
