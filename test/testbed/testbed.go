// Package testbed starts what Joinery runs against: a real Cluster API
// management cluster with workload clusters and a simulated AWS.
//
//   - The management cluster is a testenv cluster (etcd, kube-apiserver,
//     kube-controller-manager for garbage collection) with the CRDs of CAPI
//     core, CAPI's kubeadm bootstrap provider, CAPA's AWSCluster, AWSMachine
//     and AWSMachineTemplate, the testbed's control plane and Joinery.
//   - CAPI's own reconcilers run in-process in one controller-runtime
//     manager: the ClusterCache, Cluster, Machine and KubeadmConfig
//     reconcilers, wired as CAPI's core and bootstrap managers wire them.
//     Bootstrap data, nodeRef, label sync, cordon, drain (respecting PDBs)
//     and deletion are CAPI's code.
//   - The simulated cloud (test/cloudsim) plays CAPA and EC2 in the
//     same manager.
//   - Each workload cluster is a testenv cluster (apiserver, scheduler,
//     kwok, kube-controller-manager) registered as a CAPI Cluster with an
//     AWSCluster (three failure domains) and a TestbedControlPlane, the
//     testbed's control plane provider: the workload apiserver is the
//     control plane, externally managed like EKS; the testbed writes the
//     Cluster's kubeconfig and CA secrets as a control plane provider does
//     and reports the control plane initialized.
//
// See README.md in this directory.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/cluster-api/util/secret"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	joineryv1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testenv"
)

// DefaultKubernetesVersion is the version of the control plane binaries
// `make tools` builds, and of the Machines the testbed creates.
const DefaultKubernetesVersion = "v1.36.3"

// Options say what the testbed runs.
type Options struct {
	// Dir holds every cluster's data, certificates, kubeconfig and logs
	// (management/, <workload name>/). Subdirectories left by an earlier
	// run are removed first. A temporary directory is used when empty.
	Dir string
	// WorkloadClusters is how many workload clusters to start, named
	// workload-1, workload-2, ... unless ClusterNames names them.
	WorkloadClusters int
	ClusterNames     []string
	// ClusterLabels are put on every CAPI Cluster (NodePools select
	// clusters by label).
	ClusterLabels map[string]string
	// Namespace holds the CAPI objects (default "default").
	Namespace string
	// KubernetesVersion of the control planes and Machines (default DefaultKubernetesVersion).
	KubernetesVersion string
	// Cloud configures the simulated cloud.
	Cloud cloudsim.Options
	// Log receives the structured logs of CAPI's reconcilers, the
	// simulator and the testbed (default: discarded).
	Log logr.Logger
	// Progress, when set, is told about each step of the start.
	Progress func(step string)
	// MachineConcurrency is how many Machines, KubeadmConfigs and
	// AWSMachines are reconciled at once (default 10).
	MachineConcurrency int
	// WorkloadsWithoutControllerManager leaves kube-controller-manager out
	// of the workload clusters, for fleets of many clusters that run only
	// bare pods (no Deployments, no garbage collection, no node
	// lifecycle).
	WorkloadsWithoutControllerManager bool
	// ParallelStarts is how many clusters start at once (default: twice
	// the CPUs, at least 4). A fleet of twenty starting together on two
	// cores starves every apiserver past its start timeout; in waves each
	// gets the CPU it needs.
	ParallelStarts int
	// ProxyAPIServers puts a Proxy between the management cluster and each
	// workload apiserver: the Cluster's endpoint and kubeconfig name the
	// proxy, so cutting it makes the workload cluster unreachable from the
	// management side only (Workload.Proxy).
	ProxyAPIServers bool
	// SharedWorkloadEtcd keeps every workload cluster's data in one etcd,
	// each under a prefix of its own, instead of an etcd per cluster.
	SharedWorkloadEtcd bool
}

// Testbed is a running management cluster with its workload clusters.
type Testbed struct {
	Management *testenv.Cluster
	// Client talks to the management cluster through the manager's cache
	// (reads of Secrets and ConfigMaps go to the apiserver).
	Client client.Client
	// Manager runs CAPI's reconcilers and the simulated cloud; it is
	// running when Start returns (controllers added to it later start
	// right away). Joinery's controllers can also run in a manager of
	// their own against Management.Config.
	Manager ctrl.Manager
	Cloud   *cloudsim.Cloud
	// Namespace holds the CAPI objects.
	Namespace         string
	KubernetesVersion string
	Workloads         []*Workload

	log     logr.Logger
	dir     string
	ownsDir bool
	cancel  context.CancelFunc
	done    chan error
	stop    sync.Once

	shutdownClusterCache func()
	stopErr              error
	capa                 *capaManager
	workloadEtcd         *testenv.SharedEtcd
}

// Workload is one workload cluster.
type Workload struct {
	// Name is the CAPI Cluster's name.
	Name    string
	Cluster *testenv.Cluster
	Client  client.Client
	// Proxy is set with Options.ProxyAPIServers.
	Proxy *Proxy
}

// Clientset returns a typed client for the workload cluster.
func (w *Workload) Clientset() (*kubernetes.Clientset, error) { return w.Cluster.Clientset() }

// Scheme knows the Kubernetes, CAPI (core and kubeadm bootstrap), CAPA,
// Joinery and CapacityBuffer types.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, clusterv1.AddToScheme, bootstrapv1.AddToScheme, infrav1.AddToScheme, joineryv1alpha1.AddToScheme,
		autoscalingv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start starts the testbed and returns once every workload cluster is a
// CAPI Cluster whose infrastructure is provisioned, whose control plane is
// initialized and which CAPI's ClusterCache has connected to. On error,
// whatever was started is stopped.
func Start(ctx context.Context, opts Options) (tb *Testbed, err error) {
	if opts.Namespace == "" {
		opts.Namespace = metav1.NamespaceDefault
	}
	if opts.KubernetesVersion == "" {
		opts.KubernetesVersion = DefaultKubernetesVersion
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if opts.MachineConcurrency == 0 {
		opts.MachineConcurrency = 10
	}
	names := opts.ClusterNames
	for i := len(names); i < opts.WorkloadClusters; i++ {
		names = append(names, "workload-"+strconv.Itoa(i+1))
	}
	progress := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		opts.Log.WithName("testbed").Info(msg)
		if opts.Progress != nil {
			opts.Progress(msg)
		}
	}
	tb = &Testbed{Namespace: opts.Namespace, KubernetesVersion: opts.KubernetesVersion, log: opts.Log.WithName("testbed"), dir: opts.Dir}
	if tb.dir == "" {
		if tb.dir, err = os.MkdirTemp("", "joinery-testbed-"); err != nil {
			return nil, err
		}
		tb.ownsDir = true
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("starting the testbed (logs under %s): %w", tb.dir, err)
			_ = tb.Stop()
		}
	}()

	crds, err := CRDs()
	if err != nil {
		return tb, fmt.Errorf("reading CRDs: %w", err)
	}
	workloadCRDs, err := WorkloadCRDs()
	if err != nil {
		return tb, fmt.Errorf("reading the workload clusters' CRDs: %w", err)
	}

	// The clusters start in parallel, a few at a time: each is mostly
	// waiting for its own apiserver.
	progress("starting the management cluster and %d workload cluster(s)", len(names))
	parallel := opts.ParallelStarts
	if parallel <= 0 {
		parallel = max(4, 2*goruntime.NumCPU())
	}
	slots := make(chan struct{}, parallel)
	type started struct {
		c   *testenv.Cluster
		err error
	}
	results := make([]started, len(names)+1)
	var wg sync.WaitGroup
	startCluster := func(i int, o testenv.Options) {
		defer wg.Done()
		slots <- struct{}{}
		defer func() { <-slots }()
		o.Dir = filepath.Join(tb.dir, o.Name)
		if err := os.RemoveAll(o.Dir); err != nil {
			results[i].err = err
			return
		}
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			results[i].err = err
			return
		}
		t0 := time.Now()
		results[i].c, results[i].err = testenv.Start(ctx, o)
		if results[i].err == nil {
			progress("cluster %s is up (%s)", o.Name, time.Since(t0).Round(100*time.Millisecond))
		}
	}
	if opts.SharedWorkloadEtcd {
		dir := filepath.Join(tb.dir, "workload-etcd")
		if err := os.RemoveAll(dir); err != nil {
			return tb, err
		}
		if tb.workloadEtcd, err = testenv.StartSharedEtcd(dir); err != nil {
			return tb, err
		}
	}
	wg.Add(len(names) + 1)
	go startCluster(0, testenv.Options{Name: "management", CRDs: crds, WithoutScheduler: true, WithoutKwok: true, WithControllerManager: true})
	for i, name := range names {
		go startCluster(i+1, testenv.Options{Name: name, CRDs: workloadCRDs, WithControllerManager: !opts.WorkloadsWithoutControllerManager,
			Etcd: tb.workloadEtcd})
	}
	wg.Wait()
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if i == 0 {
			tb.Management = r.c
		} else {
			tb.Workloads = append(tb.Workloads, &Workload{Name: names[i-1], Cluster: r.c})
		}
	}
	if len(errs) > 0 {
		// Stop the clusters that did start.
		for _, r := range results {
			if r.c != nil {
				_ = r.c.Stop()
			}
		}
		tb.Management, tb.Workloads = nil, nil
		return tb, errors.Join(errs...)
	}

	scheme, err := Scheme()
	if err != nil {
		return tb, err
	}
	for _, w := range tb.Workloads {
		if w.Client, err = client.New(w.Cluster.Config, client.Options{Scheme: scheme}); err != nil {
			return tb, err
		}
	}

	progress("starting the simulated cloud, CAPI's reconcilers and CAPA %s", CAPAVersion)
	if opts.Cloud.Log.GetSink() == nil {
		opts.Cloud.Log = opts.Log.WithName("cloudsim")
	}
	if tb.Cloud, err = cloudsim.New(opts.Cloud); err != nil {
		return tb, err
	}
	if err := tb.startManager(ctx, scheme, opts); err != nil {
		return tb, err
	}
	if tb.capa, err = startCAPA(ctx, tb.Management, tb.Cloud.EC2Endpoint(), tb.Cloud.Region(), opts.MachineConcurrency); err != nil {
		return tb, err
	}

	progress("registering the workload clusters with CAPI")
	for _, w := range tb.Workloads {
		if opts.ProxyAPIServers {
			host, port, err := endpoint(w.Cluster.Config.Host)
			if err != nil {
				return nil, err
			}
			if w.Proxy, err = newProxy(net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
				return nil, err
			}
		}
		if err := tb.register(ctx, w, opts.ClusterLabels); err != nil {
			return tb, err
		}
	}
	for _, w := range tb.Workloads {
		if err := tb.waitClusterReady(ctx, w.Name, 2*time.Minute); err != nil {
			return tb, err
		}
	}
	progress("testbed ready")
	return tb, nil
}

func (tb *Testbed) startManager(ctx context.Context, scheme *runtime.Scheme, opts Options) error {
	mgr, err := newManager(tb.Management, scheme, opts.Log)
	if err != nil {
		return err
	}
	tb.Manager = mgr
	tb.Client = mgr.GetClient()
	shutdown, err := setupCAPI(ctx, mgr, opts.MachineConcurrency)
	if shutdown != nil {
		tb.shutdownClusterCache = shutdown
	}
	if err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(context.Background())
	tb.cancel = cancel
	tb.done = make(chan error, 1)
	go func() { tb.done <- mgr.Start(mgrCtx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		select {
		case err := <-tb.done:
			tb.done <- err
			return fmt.Errorf("the manager running CAPI's reconcilers stopped: %w", err)
		default:
			return fmt.Errorf("the manager's caches did not sync within a minute")
		}
	}
	return nil
}

func newManager(management *testenv.Cluster, scheme *runtime.Scheme, log logr.Logger) (ctrl.Manager, error) {
	cacheOpts, clientOpts := managerCacheAndClientOptions(scheme)
	return ctrl.NewManager(management.Config, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
		Client:                 clientOpts,
		// CAPI's controller names ("machine", "cluster", ...) repeat when
		// a process runs several testbeds.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
}

// register makes a workload cluster a CAPI Cluster: its control plane
// object, CA and kubeconfig secrets, AWSCluster and Cluster.
func (tb *Testbed) register(ctx context.Context, w *Workload, labels map[string]string) error {
	c := tb.Client
	ns := tb.Namespace
	key := types.NamespacedName{Namespace: ns, Name: w.Name}
	if ns != metav1.NamespaceDefault {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	host, port, err := endpoint(w.Cluster.Config.Host)
	if err != nil {
		return fmt.Errorf("workload cluster %s: %w", w.Name, err)
	}
	if w.Proxy != nil {
		if host, port, err = endpoint("https://" + w.Proxy.Addr()); err != nil {
			return err
		}
	}
	if err := tb.Cloud.RegisterCluster(key, net.JoinHostPort(host, strconv.Itoa(port)), w.Cluster.Config); err != nil {
		return err
	}

	cp := &unstructured.Unstructured{}
	cp.SetAPIVersion(ControlPlaneGroup + "/" + ControlPlaneVersion)
	cp.SetKind(ControlPlaneKind)
	cp.SetNamespace(ns)
	cp.SetName(w.Name)
	cp.SetLabels(map[string]string{clusterv1.ClusterNameLabel: w.Name})
	cp.Object["spec"] = map[string]any{
		"controlPlaneEndpoint": map[string]any{"host": host, "port": int64(port)},
		"version":              tb.KubernetesVersion,
	}
	if err := c.Create(ctx, cp); err != nil {
		return fmt.Errorf("creating %s %s: %w", ControlPlaneKind, key, err)
	}
	owner := metav1.OwnerReference{APIVersion: cp.GetAPIVersion(), Kind: ControlPlaneKind, Name: cp.GetName(), UID: cp.GetUID(), Controller: ptr.To(true)}

	// What a control plane provider (KubeadmControlPlane, AWSManagedControlPlane)
	// keeps in the management cluster: the cluster CA, whose certificate
	// the kubeadm bootstrap provider hashes into join configurations, and
	// the admin kubeconfig, through which CAPI's ClusterCache reaches the
	// workload cluster. The kubeconfig is the workload apiserver's own
	// (envtest's CA); the cluster CA is generated here, since envtest keeps
	// its CA key in memory. Nodes are simulated, so nothing verifies one
	// against the other.
	ca := secret.NewCertificatesForWorker("")
	if err := ca.Generate(); err != nil {
		return fmt.Errorf("generating the cluster CA of %s: %w", key, err)
	}
	if err := ca.SaveGenerated(ctx, c, key, owner); err != nil {
		return fmt.Errorf("saving the cluster CA secret of %s: %w", key, err)
	}
	kubeconfig, err := os.ReadFile(w.Cluster.KubeconfigPath)
	if err != nil {
		return err
	}
	if w.Proxy != nil {
		if kubeconfig, err = withServer(kubeconfig, "https://"+w.Proxy.Addr()); err != nil {
			return fmt.Errorf("pointing %s's kubeconfig at its proxy: %w", w.Name, err)
		}
	}
	kubeconfigSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: secret.Name(w.Name, secret.Kubeconfig),
			Labels:          map[string]string{clusterv1.ClusterNameLabel: w.Name},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Type: clusterv1.ClusterSecretType,
		Data: map[string][]byte{secret.KubeconfigDataName: kubeconfig},
	}
	if err := c.Create(ctx, kubeconfigSecret); err != nil {
		return fmt.Errorf("creating kubeconfig secret %s/%s: %w", ns, kubeconfigSecret.Name, err)
	}

	// The control plane is the running workload apiserver: initialized,
	// and externally managed (no control plane Machines, as with EKS).
	cp.Object["status"] = map[string]any{
		"initialization":              map[string]any{"controlPlaneInitialized": true},
		"externalManagedControlPlane": true,
		"version":                     tb.KubernetesVersion,
		"conditions": []any{map[string]any{
			"type": clusterv1.AvailableCondition, "status": "True", "reason": "Available",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": cp.GetGeneration(),
		}},
	}
	if err := c.Status().Update(ctx, cp); err != nil {
		return fmt.Errorf("reporting %s %s initialized: %w", ControlPlaneKind, key, err)
	}

	// The AWSCluster is bring-your-own infrastructure, as CAPA documents it
	// for a network someone else manages: annotated
	// cluster.x-k8s.io/managed-by, so CAPA's AWSCluster reconciler leaves it
	// alone, and its status (ready, failure domains) filled here. Its VPC and
	// subnets exist in the simulated EC2, where CAPA's AWSMachine path finds
	// them.
	region := tb.Cloud.Region()
	awsCluster := &infrav1.AWSCluster{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: w.Name,
			Annotations: map[string]string{clusterv1.ManagedByAnnotation: "joinery-testbed"},
		},
		Spec: infrav1.AWSClusterSpec{
			Region: region,
			NetworkSpec: infrav1.NetworkSpec{
				VPC: infrav1.VPCSpec{ID: "vpc-" + w.Name, CidrBlock: "10.0.0.0/16"},
			},
		},
	}
	network := cloudsim.Network{VPCID: awsCluster.Spec.NetworkSpec.VPC.ID, CIDR: awsCluster.Spec.NetworkSpec.VPC.CidrBlock}
	failureDomains := clusterv1beta1.FailureDomains{}
	for i, zone := range tb.Zones() {
		subnet := infrav1.SubnetSpec{
			ID: fmt.Sprintf("subnet-%s-private-%s", w.Name, zone), CidrBlock: fmt.Sprintf("10.0.%d.0/20", i*16), AvailabilityZone: zone,
		}
		awsCluster.Spec.NetworkSpec.Subnets = append(awsCluster.Spec.NetworkSpec.Subnets, subnet)
		network.Subnets = append(network.Subnets, cloudsim.Subnet{ID: subnet.ID, AvailabilityZone: zone, CIDR: subnet.CidrBlock})
		failureDomains[zone] = clusterv1beta1.FailureDomainSpec{ControlPlane: true}
	}
	if _, err := tb.Cloud.AddNetwork(network); err != nil {
		return fmt.Errorf("declaring the network of %s in the simulated EC2: %w", key, err)
	}
	if err := c.Create(ctx, awsCluster); err != nil {
		return fmt.Errorf("creating AWSCluster %s: %w", key, err)
	}
	awsCluster.Status.Ready = true
	awsCluster.Status.FailureDomains = failureDomains
	if err := c.Status().Update(ctx, awsCluster); err != nil {
		return fmt.Errorf("reporting AWSCluster %s ready: %w", key, err)
	}

	clusterLabels := map[string]string{}
	for k, v := range labels {
		clusterLabels[k] = v
	}
	cluster := &clusterv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: w.Name, Labels: clusterLabels},
		Spec: clusterv1.ClusterSpec{
			ControlPlaneEndpoint: clusterv1.APIEndpoint{Host: host, Port: int32(port)},
			ControlPlaneRef:      clusterv1.ContractVersionedObjectReference{APIGroup: ControlPlaneGroup, Kind: ControlPlaneKind, Name: w.Name},
			InfrastructureRef:    clusterv1.ContractVersionedObjectReference{APIGroup: infrav1.GroupVersion.Group, Kind: "AWSCluster", Name: w.Name},
		},
	}
	if err := c.Create(ctx, cluster); err != nil {
		return fmt.Errorf("creating Cluster %s: %w", key, err)
	}
	return nil
}

func endpoint(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", 0, fmt.Errorf("apiserver URL %q: %w", rawURL, err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("apiserver URL %q: %w", rawURL, err)
	}
	port, err := strconv.Atoi(portStr)
	return host, port, err
}

// waitClusterReady waits until CAPI reports the Cluster's infrastructure
// provisioned, its control plane initialized and its workload cluster
// reachable (RemoteConnectionProbe).
func (tb *Testbed) waitClusterReady(ctx context.Context, name string, timeout time.Duration) error {
	cluster := &clusterv1.Cluster{}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := tb.Client.Get(ctx, types.NamespacedName{Namespace: tb.Namespace, Name: name}, cluster); err != nil {
			last = err.Error()
			return false, nil
		}
		switch {
		case !ptr.Deref(cluster.Status.Initialization.InfrastructureProvisioned, false):
			last = "status.initialization.infrastructureProvisioned is not true"
		case !conditions.IsTrue(cluster, clusterv1.ClusterControlPlaneInitializedCondition):
			last = "condition ControlPlaneInitialized is not True"
		case !conditions.IsTrue(cluster, clusterv1.ClusterRemoteConnectionProbeCondition):
			last = "condition RemoteConnectionProbe is not True (CAPI's ClusterCache has not connected)"
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("Cluster %s/%s not ready after %s: %s", tb.Namespace, name, timeout, last)
	}
	return nil
}

// Zones are the Availability Zones every workload cluster has a subnet in,
// and so its failure domains.
func (tb *Testbed) Zones() []string {
	r := tb.Cloud.Region()
	return []string{r + "a", r + "b", r + "c"}
}

// Workload returns the workload cluster with this CAPI Cluster name.
func (tb *Testbed) Workload(name string) *Workload {
	for _, w := range tb.Workloads {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// Dir is where the clusters keep their data and logs.
func (tb *Testbed) Dir() string { return tb.dir }

// Stop stops the manager, then every cluster. It is safe to call more
// than once.
func (tb *Testbed) Stop() error {
	tb.stop.Do(func() {
		var errs []error
		if tb.Cloud != nil {
			tb.Cloud.Stop()
		}
		if tb.cancel != nil {
			tb.cancel()
			if err := <-tb.done; err != nil {
				errs = append(errs, fmt.Errorf("manager: %w", err))
			}
		}
		if tb.shutdownClusterCache != nil {
			tb.shutdownClusterCache()
		}
		for _, w := range tb.Workloads {
			if w.Proxy != nil {
				w.Proxy.close()
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		stopCluster := func(c *testenv.Cluster) {
			defer wg.Done()
			if err := c.Stop(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
		for _, w := range tb.Workloads {
			wg.Add(1)
			go stopCluster(w.Cluster)
		}
		if tb.Management != nil {
			wg.Add(1)
			go stopCluster(tb.Management)
		}
		wg.Wait()
		if tb.workloadEtcd != nil {
			// After the apiservers on it.
			errs = append(errs, tb.workloadEtcd.Stop())
		}
		if tb.ownsDir {
			errs = append(errs, os.RemoveAll(tb.dir))
		}
		tb.stopErr = errors.Join(errs...)
	})
	return tb.stopErr
}

// WorkerMachineSpec is the AWSMachine spec of a worker template for the
// testbed's clusters, as a user writes one for CAPA: an AMI that the
// simulated EC2 has (amd64), the nodes' instance profile, and bootstrap data
// passed in user data rather than through Secrets Manager. Joinery sets the
// instance type and market of each clone.
func WorkerMachineSpec() infrav1.AWSMachineSpec {
	return infrav1.AWSMachineSpec{
		InstanceType:       "m5.large",
		AMI:                infrav1.AMIReference{ID: ptr.To(cloudsim.DefaultImageAMD64)},
		IAMInstanceProfile: "nodes.cluster-api-provider-aws.sigs.k8s.io",
		CloudInit:          infrav1.CloudInit{InsecureSkipSecretsManager: true},
	}
}

// CreateWorkerTemplates makes an AWSMachineTemplate of WorkerMachineSpec
// and an empty KubeadmConfigTemplate, both called name, in the testbed's
// namespace (kept if they exist), and returns the references a NodePool
// names them by.
func (tb *Testbed) CreateWorkerTemplates(ctx context.Context, name string) (infra, bootstrap joineryv1alpha1.TemplateReference, err error) {
	for _, o := range []client.Object{
		&infrav1.AWSMachineTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
			Spec:       infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: WorkerMachineSpec()}},
		},
		&bootstrapv1.KubeadmConfigTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}},
	} {
		if err := tb.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return infra, bootstrap, fmt.Errorf("creating the worker templates %s: %w", name, err)
		}
	}
	return joineryv1alpha1.TemplateReference{APIGroup: infrav1.GroupVersion.Group, Kind: "AWSMachineTemplate", Name: name},
		joineryv1alpha1.TemplateReference{APIGroup: bootstrapv1.GroupVersion.Group, Kind: "KubeadmConfigTemplate", Name: name}, nil
}

// withServer points every cluster of a kubeconfig at server. The
// apiserver's certificate names 127.0.0.1, so a proxy on another port of
// the same address verifies.
func withServer(kubeconfig []byte, server string) ([]byte, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, err
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	return clientcmd.Write(*cfg)
}
