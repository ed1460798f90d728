package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/testbed"
	"github.com/joinery-dev/joinery/test/testenv"
)

// The watch floor is a second process beside the manager during a burst
// that only watches what the manager must watch, through the same
// client-go and controller-runtime caches: the management cluster's
// Machines, AWSMachines and Clusters, and each workload cluster's Pods and
// Nodes (with the manager's transforms). It plans nothing and writes
// nothing. Its CPU per pod is what receiving the burst's changes costs any
// informer-based controller, the part of the manager's CPU per pod that
// no change to Joinery's own work removes.

// watchFloorEnv names the JSON file (a watchFloorSpec) that makes this
// binary run as the watch floor instead of the bench.
const watchFloorEnv = "JOINERY_BENCH_WATCH_FLOOR"

type watchFloorSpec struct {
	Management string   `json:"management"` // kubeconfig paths
	Workloads  []string `json:"workloads"`
}

// runWatchFloorIfRequested runs the watch floor until SIGTERM when
// watchFloorEnv is set, and returns at once otherwise.
func runWatchFloorIfRequested() {
	path := os.Getenv(watchFloorEnv)
	if path == "" {
		return
	}
	if err := runWatchFloor(path); err != nil {
		fmt.Fprintln(os.Stderr, "watch floor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runWatchFloor(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec watchFloorSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	scheme, err := manager.Scheme()
	if err != nil {
		return err
	}
	start := func(kubeconfig string, opts cache.Options, kinds ...client.Object) error {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return err
		}
		opts.Scheme = scheme
		opts.DefaultTransform = cache.TransformStripManagedFields()
		c, err := cache.New(cfg, opts)
		if err != nil {
			return err
		}
		for _, kind := range kinds {
			inf, err := c.GetInformer(ctx, kind)
			if err != nil {
				return err
			}
			// A handler as the manager's controllers have: each event is
			// delivered, not only stored.
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{}); err != nil {
				return err
			}
		}
		go func() { _ = c.Start(ctx) }()
		if !c.WaitForCacheSync(ctx) {
			return fmt.Errorf("%s: caches did not sync", kubeconfig)
		}
		return nil
	}
	if err := start(spec.Management, cache.Options{}, &clusterv1.Machine{}, &infrav1.AWSMachine{}, &clusterv1.Cluster{}); err != nil {
		return err
	}
	for _, w := range spec.Workloads {
		if err := start(w, cache.Options{ByObject: manager.WorkloadCacheByObject()}, &corev1.Pod{}, &corev1.Node{}); err != nil {
			return err
		}
	}
	fmt.Println("synced")
	<-ctx.Done()
	return nil
}

// watchFloorProcess is the watch floor running beside the manager.
type watchFloorProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startWatchFloor starts the watch floor on the testbed's clusters and
// waits until its caches are synced, so its CPU measured from then on is
// the burst's.
func startWatchFloor(ctx context.Context, tb *testbed.Testbed) (*watchFloorProcess, error) {
	spec := watchFloorSpec{Management: tb.Management.KubeconfigPath}
	for _, w := range tb.Workloads {
		spec.Workloads = append(spec.Workloads, w.Cluster.KubeconfigPath)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(tb.Dir(), "watch-floor.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(tb.Dir(), "watch-floor.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), watchFloorEnv+"="+path)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := testenv.StartTied(cmd); err != nil {
		return nil, fmt.Errorf("starting the watch floor: %w", err)
	}
	p := &watchFloorProcess{cmd: cmd, done: make(chan struct{})}
	synced := make(chan bool, 1)
	go func() {
		defer close(p.done)
		defer log.Close()
		s := bufio.NewScanner(out)
		ok := false
		for s.Scan() {
			if s.Text() == "synced" && !ok {
				ok = true
				synced <- true
			}
		}
		if !ok {
			synced <- false
		}
		_ = cmd.Wait()
	}()
	select {
	case ok := <-synced:
		if !ok {
			return nil, fmt.Errorf("the watch floor stopped before its caches synced (log: %s)", log.Name())
		}
	case <-time.After(2 * time.Minute):
		p.stop()
		return nil, fmt.Errorf("the watch floor's caches did not sync in 2 minutes (log: %s)", log.Name())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

// cpuTime is the watch floor's CPU time so far; none (0) without one.
func (p *watchFloorProcess) cpuTime() (time.Duration, error) {
	if p == nil {
		return 0, nil
	}
	return testenv.ProcessCPUTime(p.cmd.Process.Pid)
}

func (p *watchFloorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
