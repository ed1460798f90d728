// Package testenv starts real Kubernetes clusters for tests: etcd and
// kube-apiserver (through controller-runtime's envtest), kube-scheduler,
// kwok and, on request, kube-controller-manager, all built from Go modules
// into the project's bin/ directory by `make tools`.
//
// Every process is started with a parent-death signal (SIGKILL), so nothing
// outlives the test binary, even when the binary itself is killed with
// SIGKILL. Several independent clusters can run in one process; each gets
// random free ports and its own directory for data, certificates and logs.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options says what a cluster runs.
type Options struct {
	// Name labels the cluster's log lines and directory.
	Name string
	// Dir holds data, certificates, kubeconfig and component logs. A
	// directory under os.TempDir() is made (and removed on Stop) when empty.
	Dir string
	// CRDDirectoryPaths and CRDs are installed before Start returns.
	CRDDirectoryPaths []string
	CRDs              []*apiextensionsv1.CustomResourceDefinition
	// WithoutScheduler leaves pods unscheduled; WithoutKwok leaves nodes
	// unmanaged. Both run by default because most tests need them.
	WithoutScheduler bool
	WithoutKwok      bool
	// WithControllerManager runs kube-controller-manager, needed for
	// Deployments, ReplicaSets, garbage collection and node lifecycle.
	WithControllerManager bool
	// StartTimeout bounds the start of each component (default 60s).
	StartTimeout time.Duration
	// Etcd, when set, keeps the cluster's data in a shared etcd under a
	// prefix named after the cluster, instead of an etcd of its own.
	Etcd *SharedEtcd
}

// Cluster is a running cluster. Config authenticates as a member of
// system:masters; KubeconfigPath holds the same credentials for programs.
type Cluster struct {
	Name           string
	Config         *rest.Config
	KubeconfigPath string
	Dir            string

	env *envtest.Environment
	// apiServer is set instead of env for a cluster on a shared etcd:
	// envtest's Environment always starts an etcd of its own.
	apiServer *envtest.APIServer
	children  []*child
	ownsDir   bool
	stopOnce  sync.Once
	stopError error
}

// KwokNodeAnnotation marks a Node that kwok manages (keeps Ready, runs its pods).
const (
	KwokNodeAnnotation      = "kwok.x-k8s.io/node"
	KwokNodeAnnotationValue = "fake"
)

// Start starts a cluster and returns when every component is ready. On
// error, whatever was started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "cluster"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	c = &Cluster{Name: opts.Name, Dir: opts.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "joinery-testenv-"+opts.Name+"-"); err != nil {
			return nil, err
		}
		c.ownsDir = true
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("starting cluster %q (logs in %s): %w", opts.Name, c.logDir(), err)
			_ = c.Stop()
		}
	}()
	for _, d := range []string{c.logDir(), c.shimDir(), filepath.Join(c.Dir, "etcd"), filepath.Join(c.Dir, "pki")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return c, err
		}
	}
	if err := writeParentDeathShims(c.shimDir(), binDir, "etcd", "kube-apiserver"); err != nil {
		return c, err
	}

	apiLog, err := c.openLog("kube-apiserver")
	if err != nil {
		return c, err
	}
	apiServer := &envtest.APIServer{CertDir: filepath.Join(c.Dir, "pki"), Out: apiLog, Err: apiLog}
	if !opts.WithControllerManager {
		// Without the node lifecycle controller nothing would remove the
		// not-ready taint this plugin adds to new nodes.
		apiServer.Configure().Set("disable-admission-plugins", "ServiceAccount,TaintNodesByCondition")
	}
	var admin *envtest.AuthenticatedUser
	if opts.Etcd != nil {
		admin, err = c.startOnSharedEtcd(ctx, apiServer, opts)
	} else {
		admin, err = c.startWithEtcd(apiServer, opts)
	}
	if err != nil {
		return c, err
	}
	c.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return c, err
	}
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return c, err
	}

	if opts.WithControllerManager {
		args := []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--leader-elect=false",
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + filepath.Join(c.Dir, "pki", "sa-signer.key"),
			"--root-ca-file=" + filepath.Join(c.Dir, "pki", "apiserver.crt"),
			// Components a test cluster has no use for, or that need
			// cluster-signing keys it does not have.
			"--controllers=*,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-csrcleaner,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
			"--node-monitor-grace-period=40s",
		}
		if err := c.startChild(ctx, binDir, "kube-controller-manager", args); err != nil {
			return c, err
		}
	}
	if !opts.WithoutScheduler {
		args := []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--authentication-kubeconfig=" + c.KubeconfigPath,
			"--authorization-kubeconfig=" + c.KubeconfigPath,
			"--leader-elect=false",
			"--secure-port=0",
		}
		if err := c.startChild(ctx, binDir, "kube-scheduler", args); err != nil {
			return c, err
		}
	}
	if !opts.WithoutKwok {
		stages := filepath.Join(c.Dir, "kwok-stages.yaml")
		if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
			return c, err
		}
		args := []string{
			"--kubeconfig=" + c.KubeconfigPath,
			"--config=" + stages,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=" + KwokNodeAnnotationValue,
			"--cidr=10.244.0.0/16",
			"--node-ip=10.0.0.1",
			// Renew each node's Lease in kube-node-lease. The stages only
			// refresh node status every 10-20 minutes, and without leases
			// kube-controller-manager's node lifecycle controller marks
			// nodes Unknown after --node-monitor-grace-period (40s) and
			// their pods NotReady. kwok's flag default is 0 (no leases).
			"--node-lease-duration-seconds=40",
		}
		if err := c.startChild(ctx, binDir, "kwok", args); err != nil {
			return c, err
		}
	}
	if err := c.waitReady(ctx, opts); err != nil {
		return c, err
	}
	return c, nil
}

// startWithEtcd starts the cluster's own etcd and its apiserver, and
// installs its CRDs, through envtest.
func (c *Cluster) startWithEtcd(apiServer *envtest.APIServer, opts Options) (*envtest.AuthenticatedUser, error) {
	etcdLog, err := c.openLog("etcd")
	if err != nil {
		return nil, err
	}
	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    c.shimDir(),
		CRDDirectoryPaths:        opts.CRDDirectoryPaths,
		CRDs:                     opts.CRDs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: opts.StartTimeout,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	c.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(c.Dir, "etcd"), Out: etcdLog, Err: etcdLog}
	c.env.ControlPlane.APIServer = apiServer
	if _, err := c.env.Start(); err != nil {
		return nil, fmt.Errorf("etcd/kube-apiserver: %w", err)
	}
	admin, err := c.env.AddUser(envtest.User{Name: "joinery-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	return admin, nil
}

// startOnSharedEtcd starts the cluster's apiserver on opts.Etcd, under a
// prefix of its own, and does what envtest's Environment does after its
// control plane is up: the admin user, the default namespace, the CRDs.
func (c *Cluster) startOnSharedEtcd(ctx context.Context, apiServer *envtest.APIServer, opts Options) (*envtest.AuthenticatedUser, error) {
	prefix, err := opts.Etcd.claim(opts.Name)
	if err != nil {
		return nil, err
	}
	apiServer.Path = filepath.Join(c.shimDir(), "kube-apiserver")
	apiServer.EtcdURL = opts.Etcd.URL
	apiServer.StartTimeout, apiServer.StopTimeout = opts.StartTimeout, 20*time.Second
	apiServer.Configure().Set("etcd-prefix", prefix)
	if err := apiServer.Start(); err != nil {
		return nil, fmt.Errorf("kube-apiserver on the shared etcd: %w", err)
	}
	c.apiServer = apiServer
	plane := &envtest.ControlPlane{APIServer: apiServer}
	admin, err := plane.AddUser(envtest.User{Name: "joinery-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	cs, err := kubernetes.NewForConfig(admin.Config())
	if err != nil {
		return nil, err
	}
	var getErr error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, opts.StartTimeout, true, func(ctx context.Context) (bool, error) {
		_, getErr = cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return getErr == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("the default namespace did not appear within %s: %w", opts.StartTimeout, errors.Join(err, getErr))
	}
	if len(opts.CRDs) > 0 || len(opts.CRDDirectoryPaths) > 0 {
		// InstallCRDs writes what the apiserver returns into the objects it
		// is given, and clusters starting at once share opts.CRDs.
		crds := make([]*apiextensionsv1.CustomResourceDefinition, len(opts.CRDs))
		for i, crd := range opts.CRDs {
			crds[i] = crd.DeepCopy()
		}
		if _, err := envtest.InstallCRDs(admin.Config(), envtest.CRDInstallOptions{
			CRDs: crds, Paths: opts.CRDDirectoryPaths, ErrorIfPathMissing: true,
		}); err != nil {
			return nil, fmt.Errorf("installing CRDs: %w", err)
		}
	}
	return admin, nil
}

// Stop stops every component, newest first, and removes the cluster's
// directory if Start made it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for i := len(c.children) - 1; i >= 0; i-- {
			errs = append(errs, c.children[i].stop(10*time.Second))
		}
		if c.env != nil {
			if err := c.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping etcd/kube-apiserver: %w", err))
			}
		}
		if c.apiServer != nil {
			if err := c.apiServer.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping kube-apiserver: %w", err))
			}
		}
		if c.ownsDir {
			errs = append(errs, os.RemoveAll(c.Dir))
		}
		c.stopError = errors.Join(errs...)
	})
	return c.stopError
}

// Clientset returns a typed client for the cluster.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.Config)
}

// waitReady returns once the apiserver serves and the scheduler and kwok
// hold their watches, so a test's first object is not missed.
func (c *Cluster) waitReady(ctx context.Context, opts Options) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(opts.StartTimeout)
	for {
		var problems []string
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(body) != "ok" {
			problems = append(problems, fmt.Sprintf("apiserver not ready: %v", err))
		}
		for _, ch := range c.children {
			if exited, err := ch.exited(); exited {
				return fmt.Errorf("%s exited during start: %v (see %s)", ch.name, err, ch.logPath)
			}
		}
		if len(problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %s", opts.StartTimeout, strings.Join(problems, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) logDir() string  { return filepath.Join(c.Dir, "logs") }
func (c *Cluster) shimDir() string { return filepath.Join(c.Dir, "bin") }

func (c *Cluster) openLog(component string) (*os.File, error) {
	return os.OpenFile(filepath.Join(c.logDir(), component+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}
