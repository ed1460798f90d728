package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/testbed"
)

type sandboxOptions struct {
	dir      string
	samples  string
	clusters int
	// manager runs Joinery's manager in-process; without it, run `joinery
	// manager` yourself (config/README.md: as the ServiceAccount of
	// config/default).
	manager bool
}

func newSandboxCommand() *cobra.Command {
	opts := &sandboxOptions{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local CAPI management cluster, workload clusters, a simulated AWS and a demo workload",
		Long: "Start a real Cluster API management cluster (CAPI's own reconcilers in-process), workload clusters\n" +
			"with fake (kwok) nodes, and a simulated AWS that plays CAPA and EC2; apply the sample NodePools\n" +
			"with the templates they reference and a demo workload, then run until interrupted (Ctrl-C).\n" +
			"Needs the control plane binaries of `make tools` (bin/, or $JOINERY_BIN_DIR).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSandbox(cmd.Context(), cmd.OutOrStdout(), opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.dir, "dir", ".sandbox", "Directory for the clusters' data, kubeconfigs and logs; emptied at start.")
	f.StringVar(&opts.samples, "samples", "config/samples", "Directory of NodePool samples to apply.")
	f.IntVar(&opts.clusters, "clusters", 2, "Number of workload clusters (workload-1, workload-2, ...).")
	f.BoolVar(&opts.manager, "manager", true, "Run Joinery's manager in-process; with --manager=false run `joinery manager` yourself (hack/sandbox-install.sh).")
	return cmd
}

func runSandbox(parent context.Context, out io.Writer, opts *sandboxOptions) error {
	if opts.clusters < 1 {
		return usageError{fmt.Errorf("--clusters is %d; the sandbox needs at least 1 workload cluster", opts.clusters)}
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := filepath.Abs(opts.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the sandbox directory: %w", err)
	}
	logPath := filepath.Join(dir, "sandbox.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := zap.New(zap.WriteTo(logFile), zap.JSONEncoder())
	ctrl.SetLogger(log)
	klog.SetLogger(log) // client-go and CAPI log through klog too

	pools, err := readNodePools(opts.samples)
	if err != nil {
		return err
	}

	t0 := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	step("starting the sandbox in %s (component logs in <cluster>/logs, controller logs in %s)", dir, logPath)
	tb, err := testbed.Start(ctx, testbed.Options{
		Dir:              dir,
		WorkloadClusters: opts.clusters,
		ClusterLabels:    map[string]string{"env": "dev"},
		Log:              log,
		Progress:         func(s string) { step("%s", s) },
	})
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return errors.New("interrupted while starting")
		}
		return err
	}
	// joineryStopped is closed once the in-process manager has stopped.
	var joineryStopped <-chan struct{}
	defer func() {
		step("stopping the sandbox")
		// Joinery's manager stops with ctx; its watches on the workload
		// clusters must be closed before their apiservers are stopped,
		// or those wait out their shutdown timeout for them.
		if joineryStopped != nil {
			select {
			case <-joineryStopped:
			case <-time.After(joineryStopTimeout):
				fmt.Fprintf(out, "Joinery's manager did not stop within %s; stopping the clusters anyway\n", joineryStopTimeout)
			}
		}
		if err := tb.Stop(); err != nil {
			fmt.Fprintf(out, "error stopping the sandbox: %v\n", err)
		}
		step("stopped")
	}()

	step("applying %d sample NodePool(s) from %s and the templates they reference", len(pools), opts.samples)
	if err := applySamples(ctx, tb, pools, log); err != nil {
		return err
	}
	if opts.manager {
		if joineryStopped, err = startJoinery(ctx, tb, log); err != nil {
			return err
		}
	}
	// The demo pods come once the manager is started, so their latencies
	// leave out building it; they still include its caches syncing and
	// its first read of the catalog (a second or two).
	demo := demoDeployment()
	burst := newBurstTracker(tb, demo.Spec.Template.Labels["app"], len(tb.Workloads)*int(*demo.Spec.Replicas))
	go func() {
		if burst.run(ctx) {
			step("%s", strings.TrimSuffix(burst.String(), "\n"))
		}
	}()
	step("creating a demo Deployment with pending pods in each workload cluster")
	for _, w := range tb.Workloads {
		if err := w.Client.Create(ctx, demoDeployment()); err != nil {
			return fmt.Errorf("creating the demo Deployment in %s: %w", w.Name, err)
		}
	}
	ready := time.Since(t0)

	rss, procs := rssOfProcessTree()
	fmt.Fprintf(out, "\nSandbox ready in %s; %d processes use %d MiB RSS.\n\n", ready.Round(100*time.Millisecond), procs, rss>>20)
	fmt.Fprintf(out, "Management cluster:   export KUBECONFIG=%s\n", tb.Management.KubeconfigPath)
	for _, w := range tb.Workloads {
		fmt.Fprintf(out, "Workload %-11s  %s\n", w.Name+":", w.Cluster.KubeconfigPath)
	}
	k := filepath.Join(filepath.Dir(os.Args[0]), "kubectl")
	if _, err := os.Stat(k); err != nil {
		k = "kubectl"
	}
	fmt.Fprintf(out, `
Try:
  %[1]s --kubeconfig %[2]s get clusters,machines,awsmachines,kubeadmconfigs,nodepools -A
  %[1]s --kubeconfig %[3]s get pods,nodes -o wide
  # a worker Machine by hand (CAPI bootstraps it, the simulated cloud boots it):
  %[1]s --kubeconfig %[2]s apply -f %[4]s

%[5]s
  %[1]s --kubeconfig %[2]s get nodepools,machines -A -w

Press Ctrl-C to stop everything.
`, k, tb.Management.KubeconfigPath, tb.Workloads[0].Cluster.KubeconfigPath, writeExampleMachine(tb, dir), joineryStatus(opts, dir, tb))
	<-ctx.Done()
	fmt.Fprintln(out)
	return nil
}

// joineryStatus says whether Joinery runs, or how to run it.
func joineryStatus(opts *sandboxOptions, dir string, tb *testbed.Testbed) string {
	if opts.manager {
		return "Joinery is running: the demo pods become Machines, then Nodes, then Running pods."
	}
	return fmt.Sprintf("Joinery is not running (--manager=false). Install config/default and run the manager as its ServiceAccount:\n"+
		"  hack/sandbox-install.sh %[1]s\n"+
		"  bin/joinery manager --kubeconfig %[1]s/joinery-sa.kubeconfig --leader-election-namespace joinery-system \\\n"+
		"    --catalog-regions=%[2]s --ec2-endpoint=%[3]s\n"+
		"then the demo pods become Machines, then Nodes, then Running pods.", dir, tb.Cloud.Region(), tb.Cloud.EC2Endpoint())
}

// joineryStopTimeout bounds the wait for the in-process manager to stop
// (controller-runtime's own graceful shutdown default is 30 s).
const joineryStopTimeout = 10 * time.Second

// startJoinery runs Joinery's manager in-process against the sandbox's
// management cluster, as `joinery manager` would run beside CAPI; it stops
// with ctx, and the returned channel is closed once it has.
func startJoinery(ctx context.Context, tb *testbed.Testbed, log logr.Logger) (<-chan struct{}, error) {
	opts := manager.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr, opts.LeaderElect = "0", "0", false
	opts.Logger = log.WithName("joinery")
	// CAPI's ClusterCache controller is also in the testbed's manager.
	opts.SkipNameValidation = true
	// The catalog, the account's zone names and the AMIs' architecture
	// are read from the simulated EC2, as a manager with --catalog-regions
	// reads them from EC2: a newcomer sees the decisions production makes,
	// not the assumptions of a manager without EC2 access.
	opts.Catalog.Regions = []string{tb.Cloud.Region()}
	opts.Catalog.Endpoint = tb.Cloud.EC2Endpoint()
	mgr, err := manager.New(ctx, tb.Management.Config, opts)
	if err != nil {
		return nil, err
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := mgr.Start(ctx); err != nil {
			log.Error(err, "Joinery's manager stopped")
		}
	}()
	return stopped, nil
}

// readNodePools reads every NodePool of the YAML files in dir.
func readNodePools(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, usageError{fmt.Errorf("no NodePool samples in %s: run from the repository root or pass --samples", dir)}
	}
	sort.Strings(files)
	var pools []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			obj := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if obj.GetKind() == "NodePool" {
				pools = append(pools, obj)
			}
		}
	}
	return pools, nil
}

// applySamples creates the NodePools in the testbed's namespace, with an
// AWSMachineTemplate and KubeadmConfigTemplate for every template they
// reference. A pool naming a cluster the sandbox does not have is pointed
// at workload-1.
func applySamples(ctx context.Context, tb *testbed.Testbed, pools []*unstructured.Unstructured, log logr.Logger) error {
	infra, bootstrap := map[string]bool{}, map[string]bool{}
	for _, p := range pools {
		p.SetNamespace(tb.Namespace)
		if name, ok, _ := unstructured.NestedString(p.Object, "spec", "clusterName"); ok && tb.Workload(name) == nil {
			log.Info("sample NodePool names a cluster the sandbox does not have; using the first", "nodePool", p.GetName(), "cluster", name)
			_ = unstructured.SetNestedField(p.Object, tb.Workloads[0].Name, "spec", "clusterName")
		}
		if name, ok, _ := unstructured.NestedString(p.Object, "spec", "template", "spec", "infrastructureTemplateRef", "name"); ok {
			infra[name] = true
		}
		if name, ok, _ := unstructured.NestedString(p.Object, "spec", "template", "spec", "bootstrapTemplateRef", "name"); ok {
			bootstrap[name] = true
		}
	}
	for name := range infra {
		t := &infrav1.AWSMachineTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
			Spec:       infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: testbed.WorkerMachineSpec()}},
		}
		if err := tb.Client.Create(ctx, t); err != nil {
			return fmt.Errorf("creating AWSMachineTemplate %s/%s: %w", t.Namespace, t.Name, err)
		}
	}
	for name := range bootstrap {
		t := &bootstrapv1.KubeadmConfigTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}
		if err := tb.Client.Create(ctx, t); err != nil {
			return fmt.Errorf("creating KubeadmConfigTemplate %s/%s: %w", t.Namespace, t.Name, err)
		}
	}
	for _, p := range pools {
		if err := tb.Client.Create(ctx, p); err != nil {
			return fmt.Errorf("creating NodePool %s (fix the sample or the CRD): %w", p.GetName(), err)
		}
	}
	return nil
}

func demoDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "demo"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "demo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi"),
					}},
				}}},
			},
		},
	}
}

// writeExampleMachine writes a worker Machine (with its KubeadmConfig and
// AWSMachine) to try by hand, and returns the file's path.
func writeExampleMachine(tb *testbed.Testbed, dir string) string {
	config, awsMachine, machine := tb.WorkerObjects(testbed.WorkerMachine{
		Cluster: tb.Workloads[0].Name, Name: "by-hand", InstanceType: "m5.large", Zone: tb.Cloud.Region() + "a",
	})
	config.TypeMeta = metav1.TypeMeta{APIVersion: bootstrapv1.GroupVersion.String(), Kind: "KubeadmConfig"}
	awsMachine.TypeMeta = metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AWSMachine"}
	machine.TypeMeta = metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine"}
	var buf bytes.Buffer
	for _, obj := range []any{config, awsMachine, machine} {
		data, err := yamlOf(obj)
		if err != nil {
			continue
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	path := filepath.Join(dir, "example-machine.yaml")
	_ = os.WriteFile(path, buf.Bytes(), 0o644)
	return path
}

// rssOfProcessTree sums the resident memory of this process and its
// children (etcd, kube-apiserver, ... of every cluster), from /proc.
func rssOfProcessTree() (bytes int64, processes int) {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid int
		var rss int64
		for _, line := range strings.Split(string(status), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			switch fields[0] {
			case "PPid:":
				ppid, _ = strconv.Atoi(fields[1])
			case "VmRSS:":
				kb, _ := strconv.ParseInt(fields[1], 10, 64)
				rss = kb << 10
			}
		}
		if pid == self || ppid == self {
			bytes += rss
			processes++
		}
	}
	return bytes, processes
}

func yamlOf(obj any) ([]byte, error) { return yaml.Marshal(obj) }
