package config_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	utilyaml "sigs.k8s.io/cluster-api/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/testenv"
)

const serviceAccount = "joinery-controller-manager"

// TestInstallConfigDefault installs `kustomize build config/default` into a
// management cluster (a real kube-apiserver with CAPI's and CAPA's CRDs, as
// go.mod pins them) with server-side apply and strict field validation, then
// `kubectl apply --server-side -k config/default` on top, as the README says
// to install it. Every object is accepted, the NodePool CRD is established,
// the ClusterRole carries exactly the rules generated into
// config/rbac/role.yaml and is bound to the manager's ServiceAccount, and
// Joinery's manager, running as that ServiceAccount, wins leader election in
// joinery-system and syncs every informer of every controller without a
// single "forbidden".
func TestInstallConfigDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	kustomize := kustomizePath(t)
	cluster := testenv.New(t, testenv.Options{
		Name:              "install",
		CRDDirectoryPaths: []string{filepath.Join("..", "test", "testbed", "crds")},
		WithoutScheduler:  true,
		WithoutKwok:       true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	built, err := exec.Command(kustomize, "build", "default").Output()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	objs, err := utilyaml.ToUnstructured(built)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cluster.Config)
	kinds := map[string]int{}
	for _, obj := range objs {
		kinds[obj.GetKind()]++
		// The Namespace and the CRD come first in kustomize's output; the
		// mapper learns about new kinds on a miss.
		mapping, err := c.RESTMapper().RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var r dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if obj.GetNamespace() != "" {
			r = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := r.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
			FieldManager: "joinery-install-test", FieldValidation: metav1.FieldValidationStrict,
		}); err != nil {
			t.Errorf("server-side apply of %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	t.Logf("applied %d objects: %v", len(objs), kinds)
	if t.Failed() {
		t.FailNow()
	}

	// kubectl's own kustomize builds the same directory and applies cleanly
	// over it.
	kubectl := filepath.Join(filepath.Dir(kustomize), "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", cluster.KubeconfigPath, "apply", "--server-side", "-k", "default").CombinedOutput()
	if err != nil {
		t.Errorf("kubectl apply --server-side -k config/default: %v\n%s", err, out)
	}
	t.Logf("kubectl apply --server-side -k config/default:\n%s", out)

	checkCRDEstablished(ctx, t, c)
	checkRBAC(ctx, t, c, cluster.Config)
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: targetNamespace, Name: deploymentName}, d); err != nil {
		t.Fatalf("Deployment %s/%s: %v", targetNamespace, deploymentName, err)
	}
	if d.Spec.Template.Spec.ServiceAccountName != serviceAccount {
		t.Errorf("Deployment runs as %q, want %q", d.Spec.Template.Spec.ServiceAccountName, serviceAccount)
	}
	runManagerAsServiceAccount(ctx, t, cluster.Config)
}

func checkCRDEstablished(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: "nodepools.joinery.dev"}, crd); err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("CRD nodepools.joinery.dev not established: %v", err)
	}
}

// checkRBAC: the ClusterRole has exactly config/rbac/role.yaml's rules, and
// the ServiceAccount may do each of them (the bindings name it), plus leader
// election in its namespace.
func checkRBAC(ctx context.Context, t *testing.T, c client.Client, admin *rest.Config) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	generated := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(data, generated); err != nil {
		t.Fatal(err)
	}
	installed := &rbacv1.ClusterRole{}
	if err := c.Get(ctx, client.ObjectKey{Name: "joinery-" + generated.Name}, installed); err != nil {
		t.Fatalf("ClusterRole joinery-%s (config/rbac/role.yaml with config/default's prefix): %v", generated.Name, err)
	}
	if !reflect.DeepEqual(installed.Rules, generated.Rules) {
		t.Errorf("ClusterRole %s rules differ from config/rbac/role.yaml:\n%v\n%v", installed.Name, installed.Rules, generated.Rules)
	}

	sa := impersonate(admin)
	kube := kubernetes.NewForConfigOrDie(sa)
	type access struct{ namespace, verb, group, resource string }
	var checks []access
	for _, rule := range generated.Rules {
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				for _, v := range rule.Verbs {
					checks = append(checks, access{"", v, g, r})
				}
			}
		}
	}
	for _, v := range []string{"get", "create", "update"} {
		checks = append(checks, access{targetNamespace, v, "coordination.k8s.io", "leases"})
	}
	// Least privilege: no Lease outside its namespace (a stolen token could
	// take another controller's), no verb nothing uses.
	var denied []access
	for _, v := range []string{"get", "create", "update", "delete"} {
		denied = append(denied, access{"kube-system", v, "coordination.k8s.io", "leases"})
	}
	denied = append(denied, access{"default", "update", "cluster.x-k8s.io", "machines"}, access{"default", "update", "joinery.dev", "nodepools/status"},
		access{targetNamespace, "delete", "coordination.k8s.io", "leases"})
	for _, a := range denied {
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status.Allowed {
			t.Errorf("ServiceAccount %s/%s may %s %s.%s in %q; it should not", targetNamespace, serviceAccount, a.verb, a.resource, a.group, a.namespace)
		}
	}
	for _, a := range checks {
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Status.Allowed {
			t.Errorf("ServiceAccount %s/%s may not %s %s.%s in %q: %s", targetNamespace, serviceAccount, a.verb, a.resource, a.group, a.namespace, res.Status.Reason)
		}
	}
	t.Logf("%d permissions checked for the ServiceAccount", len(checks))
}

// impersonate returns admin's config acting as the manager's ServiceAccount,
// with the groups a ServiceAccount token carries.
func impersonate(admin *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", targetNamespace, serviceAccount),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + targetNamespace, "system:authenticated"},
	}
	return cfg
}

// logs collects log lines of controller-runtime and client-go.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) sink() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

var controllerKey = regexp.MustCompile(`"controller"="([^"]+)"`)

// state returns the controllers that started event sources, those whose
// workers started (their caches synced) and every line saying forbidden.
func (l *logs) state() (started, synced map[string]bool, forbidden []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	started, synced = map[string]bool{}, map[string]bool{}
	for _, line := range l.lines {
		name := ""
		if m := controllerKey.FindStringSubmatch(line); m != nil {
			name = m[1]
		}
		switch {
		case strings.Contains(line, `"msg"="Starting EventSource"`) && name != "":
			started[name] = true
		case strings.Contains(line, `"msg"="Starting workers"`) && name != "":
			synced[name] = true
		}
		if strings.Contains(strings.ToLower(line), "forbidden") {
			forbidden = append(forbidden, line)
		}
	}
	return started, synced, forbidden
}

// runManagerAsServiceAccount runs Joinery's manager as `joinery manager`
// runs in the Deployment (leader election on, in the ServiceAccount's
// namespace), but with the ServiceAccount's identity through impersonation.
func runManagerAsServiceAccount(ctx context.Context, t *testing.T, admin *rest.Config) {
	t.Helper()
	collected := &logs{}
	log := collected.sink()
	// client-go's reflectors report a forbidden list or watch through klog,
	// or through the logger of the informers' context: controller-runtime's.
	klog.SetLogger(log.WithName("klog"))
	defer klog.ClearLogger()
	logf.SetLogger(log)

	opts := manager.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr = freeAddr(t), "0"             // metrics as deployed: HTTPS behind authn/authz
	opts.LeaderElect, opts.LeaderElectionNS = true, targetNamespace // in a Pod, the namespace comes from the ServiceAccount
	opts.Logger = log
	opts.SkipNameValidation = true
	mgrCtx, stop := context.WithCancel(ctx)
	mgr, err := manager.New(mgrCtx, impersonate(admin), opts)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager stopped: %v", err)
		}
	}()

	// Leader election: the Lease in joinery-system, held by this manager.
	kube := kubernetes.NewForConfigOrDie(admin)
	lease := &coordinationv1.Lease{}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		lease, err = kube.CoordinationV1().Leases(targetNamespace).Get(ctx, opts.LeaderElectionID, metav1.GetOptions{})
		return err == nil && ptr.Deref(lease.Spec.HolderIdentity, "") != "", nil
	})
	if err != nil {
		_, _, forbidden := collected.state()
		t.Fatalf("no leader in Lease %s/%s: %v\n%s", targetNamespace, opts.LeaderElectionID, err, strings.Join(forbidden, "\n"))
	}

	// Every controller's caches sync: the ServiceAccount may list and watch
	// everything the controllers read. Wait until the set of controllers has
	// stopped growing and each has started its workers.
	var started, synced map[string]bool
	var forbidden []string
	stable := 0
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		s, y, f := collected.state()
		if len(s) > 0 && len(s) == len(started) && len(y) == len(s) {
			stable++
		} else {
			stable = 0
		}
		started, synced, forbidden = s, y, f
		return stable >= 8 || len(f) > 0, nil
	})
	names := func(m map[string]bool) string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	if len(forbidden) > 0 {
		t.Fatalf("the manager was refused access as the ServiceAccount:\n%s", strings.Join(forbidden, "\n"))
	}
	if err != nil {
		var buf bytes.Buffer
		collected.mu.Lock()
		for _, l := range collected.lines[max(0, len(collected.lines)-40):] {
			fmt.Fprintln(&buf, l)
		}
		collected.mu.Unlock()
		t.Fatalf("controllers %s started, only %s synced: %v\n%s", names(started), names(synced), err, buf.String())
	}
	t.Logf("leader %s; controllers synced as the ServiceAccount: %s", ptr.Deref(lease.Spec.HolderIdentity, ""), names(synced))
	checkMetricsAuth(ctx, t, admin, "https://"+opts.MetricsAddr+"/metrics")
}

// checkMetricsAuth: the metrics endpoint refuses a scrape without a token
// (401) and with a token lacking the metrics-reader ClusterRole (403), and
// serves one whose ServiceAccount is bound to it. The manager makes the
// TokenReview and SubjectAccessReview as its ServiceAccount, so this also
// checks the ClusterRole grants them.
func checkMetricsAuth(ctx context.Context, t *testing.T, admin *rest.Config, url string) {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(admin)
	scraper := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: targetNamespace}}
	if _, err := kube.CoreV1().ServiceAccounts(targetNamespace).Create(ctx, scraper, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kube.CoreV1().ServiceAccounts(targetNamespace).CreateToken(ctx, scraper.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s: %v", scraper.Name, err)
	}
	// The manager's serving certificate is self-signed.
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test of authn, not of the certificate
	scrape := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		var code int
		var body []byte
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			resp, err := httpc.Do(req)
			if err != nil {
				return false, nil // not listening yet
			}
			defer resp.Body.Close()
			body, _ = io.ReadAll(resp.Body)
			code = resp.StatusCode
			return true, nil
		})
		return code, string(body)
	}
	if code, body := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("a scrape without a token got %d, want 401: %.200s", code, body)
	}
	// controller-runtime answers a token the TokenReview rejects with an
	// error as 500 "Authentication failed": refused all the same.
	if code, body := scrape("not-a-token"); code != http.StatusUnauthorized && !(code == http.StatusInternalServerError && strings.Contains(body, "Authentication failed")) {
		t.Errorf("a scrape with a bad token got %d, want it refused: %.200s", code, body)
	}
	if code, body := scrape(tr.Status.Token); code != http.StatusForbidden {
		t.Errorf("a scrape by a ServiceAccount without metrics-reader got %d, want 403: %.200s", code, body)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-joinery-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "joinery-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: scraper.Name, Namespace: targetNamespace}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The filter caches a denial for 30 s.
	var code int
	var body string
	_ = wait.PollUntilContextTimeout(ctx, time.Second, 60*time.Second, true, func(context.Context) (bool, error) {
		code, body = scrape(tr.Status.Token)
		return code == http.StatusOK, nil
	})
	if code != http.StatusOK || !strings.Contains(body, "controller_runtime_") {
		t.Errorf("a scrape by a ServiceAccount bound to joinery-metrics-reader got %d: %.200s", code, body)
	}
	t.Logf("metrics on %s: 401 without a token, refused with a bad one, 403 without metrics-reader, 200 with it", url)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
