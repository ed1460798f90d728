package live

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// ec2Endpoint answers DescribeAvailabilityZones and records the
// Authorization header of each request.
func ec2Endpoint(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var auth []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><availabilityZoneInfo/></DescribeAvailabilityZonesResponse>`))
	}))
	t.Cleanup(s.Close)
	return s, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), auth...) }
}

// isolated clears every credential source of the host so the test sees
// only what it sets.
func isolated(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_EC2"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("HOME", dir)
}

func describeZones(t *testing.T, endpoint string) {
	t.Helper()
	client, err := NewEC2Client(context.Background(), "us-east-1", endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DescribeAvailabilityZones(context.Background(), &ec2.DescribeAvailabilityZonesInput{}); err != nil {
		t.Fatal(err)
	}
}

// Under IRSA the pod has no keys, only a projected token and a role: the
// SDK's chain exchanges them at STS. Before, every call went unsigned.
func TestEC2ClientSignsWithIRSACredentials(t *testing.T) {
	isolated(t)
	var stsCalls []string
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		stsCalls = append(stsCalls, r.Form.Get("Action")+" "+r.Form.Get("RoleArn")+" "+r.Form.Get("WebIdentityToken"))
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
			`<Credentials><AccessKeyId>ASIAIRSATEST</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>` +
			`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/joinery/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>` +
			`</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`))
	}))
	t.Cleanup(sts.Close)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("projected-service-account-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/joinery")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	ec2s, auth := ec2Endpoint(t)
	describeZones(t, ec2s.URL)
	if len(stsCalls) != 1 || stsCalls[0] != "AssumeRoleWithWebIdentity arn:aws:iam::123456789012:role/joinery projected-service-account-token" {
		t.Errorf("STS calls: %q", stsCalls)
	}
	if got := auth(); len(got) != 1 || !strings.Contains(got[0], "Credential=ASIAIRSATEST/") {
		t.Errorf("EC2 request not signed with the role's credentials: %q", got)
	}
}

func TestEC2ClientSignsWithEnvironmentKeys(t *testing.T) {
	isolated(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENVTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	ec2s, auth := ec2Endpoint(t)
	describeZones(t, ec2s.URL)
	if got := auth(); len(got) != 1 || !strings.Contains(got[0], "Credential=AKIAENVTEST/") {
		t.Errorf("EC2 request not signed with the environment's keys: %q", got)
	}
}

// The simulated cloud of the testbed takes unsigned requests; with no
// credential source at all, a loopback endpoint keeps getting them.
func TestEC2ClientToALocalEndpointWithoutCredentialsIsUnsigned(t *testing.T) {
	isolated(t)
	ec2s, auth := ec2Endpoint(t)
	describeZones(t, ec2s.URL)
	if got := auth(); len(got) != 1 || got[0] != "" {
		t.Errorf("want one unsigned request, got %q", got)
	}
}
