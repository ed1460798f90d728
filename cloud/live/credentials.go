package live

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// AWSConfig is the SDK configuration every AWS client of Joinery uses (EC2
// for the catalog, SQS for interruptions): the SDK's default credential
// chain, in its order: environment keys, the shared config and credentials
// files (AWS_PROFILE), web identity (IRSA: AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE, exchanged at STS), the ECS/EKS Pod Identity
// container endpoint, and last the EC2 instance profile through IMDS.
//
// One exception keeps the local testbed and its simulated cloud working
// without any AWS setup: an endpoint on a loopback address with no
// credential source configured in the environment gets unsigned requests,
// as before, instead of a chain that would end at an IMDS that is not there.
func AWSConfig(ctx context.Context, region, endpoint string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration (credentials from the environment, AWS_PROFILE, IRSA or the instance profile): %w", err)
	}
	// The loaded client carries AWS_CA_BUNDLE's roots, if any; keep its
	// transport under readOnlyBodies (see HTTPClient).
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = &http.Client{Transport: readOnlyBodies{b.GetTransport()}}
	} else {
		cfg.HTTPClient = HTTPClient()
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
		if isLoopback(endpoint) && !credentialSourceConfigured() {
			cfg.Credentials = aws.AnonymousCredentials{}
		}
	}
	return cfg, nil
}

// credentialSourceConfigured: the environment names some credential
// source other than the instance profile.
func credentialSourceConfigured() bool {
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
