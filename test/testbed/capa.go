package testbed

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/test/testenv"
)

// CAPA's manager runs as a process of its own against the management
// apiserver, built from CAPA's own module (hack/tools/capa) into
// bin/capa-manager, as users run it from CAPA's release image. It talks to
// the simulated cloud's EC2 endpoint only.
const (
	capaBinary = "capa-manager"
	// CAPAVersion is the CAPA release the testbed runs.
	CAPAVersion = "v2.13.0"
	// capaFeatureGates turn off what has nothing to reconcile here (EKS,
	// machine pools) and keep CAPA's defaults otherwise; the
	// AutoControllerIdentityCreator (on by default) makes the
	// AWSClusterControllerIdentity "default" that CAPA's AWSCluster webhook
	// defaults every AWSCluster's identityRef to.
	capaFeatureGates = "EKS=false,MachinePool=false"
	// The credentials CAPA's AWS SDK signs with: static, so no credential
	// provider reaches for instance metadata. The simulated EC2 does not
	// check signatures.
	testbedAccessKeyID     = "AKIATESTBED000000000"
	testbedSecretAccessKey = "testbed-secret-access-key"
)

//go:embed webhooks/capa-webhooks.yaml
var capaWebhookManifests []byte

// capaManager is CAPA's running manager.
type capaManager struct {
	healthAddr  string
	webhookPort int
	caPEM       []byte
	logPath     string
}

// startCAPA starts CAPA's manager as a component of the management cluster,
// pointed at the simulated EC2 endpoint, waits until its webhook server and
// controllers are ready, then registers CAPA's webhooks for the kinds the
// management cluster has with the apiserver (as CAPA's kustomize
// installation does, with a URL on loopback instead of a Service).
func startCAPA(ctx context.Context, mgmt *testenv.Cluster, ec2Endpoint, region string, concurrency int) (*capaManager, error) {
	binDir, err := testenv.BinDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(binDir, capaBinary)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("CAPA's manager %s is missing: run `make tools` (it builds CAPA %s from hack/tools/capa): %w", path, CAPAVersion, err)
	}
	certDir := filepath.Join(mgmt.Dir, "capa-webhook-certs")
	caPEM, err := writeServingCert(certDir)
	if err != nil {
		return nil, fmt.Errorf("CAPA's webhook certificate: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	m := &capaManager{
		healthAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		webhookPort: ports[0],
		caPEM:       caPEM,
		logPath:     filepath.Join(mgmt.Dir, "logs", capaBinary+".log"),
	}
	args := []string{
		"--kubeconfig=" + mgmt.KubeconfigPath,
		"--leader-elect=false",
		"--feature-gates=" + capaFeatureGates,
		"--service-endpoints=" + region + ":ec2=" + ec2Endpoint,
		"--webhook-port=" + strconv.Itoa(m.webhookPort),
		"--webhook-cert-dir=" + certDir,
		"--health-addr=" + m.healthAddr,
		"--diagnostics-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])),
		"--insecure-diagnostics",
		"--awsmachine-concurrency=" + strconv.Itoa(concurrency),
		"--v=2",
	}
	env := []string{
		"AWS_ACCESS_KEY_ID=" + testbedAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + testbedSecretAccessKey,
		"AWS_REGION=" + region,
		"AWS_DEFAULT_REGION=" + region,
		// What the SDK itself honours besides CAPA's --service-endpoints,
		// so no client of CAPA's reaches past loopback.
		"AWS_ENDPOINT_URL=" + ec2Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if err := mgmt.StartComponent(capaBinary, path, args, env); err != nil {
		return nil, err
	}
	if err := m.waitReady(ctx, time.Minute); err != nil {
		return nil, err
	}
	if err := m.registerWebhooks(ctx, mgmt); err != nil {
		return nil, err
	}
	return m, nil
}

// waitReady polls CAPA's readiness endpoint, which is ready once its
// webhook server serves.
func (m *capaManager) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.healthAddr+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("CAPA's manager not ready after %s (last: %s); its log: %s%s", timeout, last, m.logPath, logTail(m.logPath, 3000))
}

func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > n {
		_, _ = f.Seek(info.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return "\n" + string(b)
}

// capaWebhookResources are the resources of the kinds the management cluster
// has CRDs for; CAPA's webhooks for other kinds (EKS, ROSA, machine pools)
// have nothing to admit and CAPA does not serve them with those gates off.
var capaWebhookResources = []string{
	"awsclusters", "awsmachines", "awsmachinetemplates",
	"awsclustercontrolleridentities", "awsclusterroleidentities", "awsclusterstaticidentities",
}

// registerWebhooks creates CAPA's mutating and validating webhook
// configurations, each webhook pointed at CAPA's webhook server on loopback.
func (m *capaManager) registerWebhooks(ctx context.Context, mgmt *testenv.Cluster) error {
	c, err := client.New(mgmt.Config, client.Options{})
	if err != nil {
		return err
	}
	url := func(cc admissionregistrationv1.WebhookClientConfig) admissionregistrationv1.WebhookClientConfig {
		path := ""
		if cc.Service != nil && cc.Service.Path != nil {
			path = *cc.Service.Path
		}
		return admissionregistrationv1.WebhookClientConfig{
			URL:      ptr.To(fmt.Sprintf("https://127.0.0.1:%d%s", m.webhookPort, path)),
			CABundle: m.caPEM,
		}
	}
	ours := func(rules []admissionregistrationv1.RuleWithOperations) bool {
		for _, r := range rules {
			for _, res := range r.Resources {
				if slices.Contains(capaWebhookResources, res) {
					return true
				}
			}
		}
		return false
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(capaWebhookManifests), 4096)
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading CAPA's webhook manifests: %w", err)
		}
		if raw == nil {
			continue
		}
		kind, _ := raw["kind"].(string)
		var obj client.Object
		switch kind {
		case "MutatingWebhookConfiguration":
			cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
			obj = cfg
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, cfg); err != nil {
				return fmt.Errorf("CAPA's %s: %w", kind, err)
			}
			cfg.Webhooks = keepOurs(cfg.Webhooks, func(w *admissionregistrationv1.MutatingWebhook) bool {
				w.ClientConfig = url(w.ClientConfig)
				return ours(w.Rules)
			})
		case "ValidatingWebhookConfiguration":
			cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			obj = cfg
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, cfg); err != nil {
				return fmt.Errorf("CAPA's %s: %w", kind, err)
			}
			cfg.Webhooks = keepOurs(cfg.Webhooks, func(w *admissionregistrationv1.ValidatingWebhook) bool {
				w.ClientConfig = url(w.ClientConfig)
				return ours(w.Rules)
			})
		default:
			continue
		}
		obj.SetName("capa-" + obj.GetName())
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("registering CAPA's %s: %w", kind, err)
		}
	}
}

// keepOurs keeps the webhooks for which point (which may rewrite one in
// place) says true.
func keepOurs[W any](webhooks []W, point func(*W) bool) []W {
	var keep []W
	for i := range webhooks {
		if point(&webhooks[i]) {
			keep = append(keep, webhooks[i])
		}
	}
	return keep
}

// writeServingCert writes a CA and a serving certificate for 127.0.0.1 and
// localhost as tls.crt/tls.key (what controller-runtime's webhook server
// reads) into dir and returns the CA certificate in PEM.
func writeServingCert(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testbed-capa-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "capa-webhook-service"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// freePorts returns n distinct free TCP ports on loopback.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
