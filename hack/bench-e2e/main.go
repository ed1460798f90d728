// Command bench-e2e measures provisioning end to end on the testbed: a
// burst of pending pods in one or many workload clusters, Joinery's manager
// running as a process of its own, and what it takes until every pod has
// its Machine. `make bench-e2e` runs it.
//
// It reports, per scenario (clusters x pods per cluster):
//   - until machines: from the pods' creation until the last Machine the
//     burst took was seen (measured once every pod is bound; pods planned
//     onto room left on an earlier Machine are named by no decision);
//   - pending to Machine: per pod, from when the bench saw the scheduler
//     mark it Unschedulable to when it saw the Machine whose decision names
//     it, p50 and p99, and the same measured from the close of the pod's
//     batch window (replayed from the sightings with the manager's 1 s
//     idle and 10 s maximum windows);
//   - the manager's Go heap (go_memstats_heap_alloc_bytes, scraped from its
//     metrics endpoint every second through the burst, asking for that
//     family alone), P95 and max;
//   - heap per idle connected cluster: the live heap (after a collection
//     forced through the manager's profiler) once every cluster is
//     connected and idle, less that of a second manager connected to none
//     (a --watch-filter no Cluster carries), per cluster;
//   - the manager's own CPU time during the burst (from /proc, so a loaded
//     machine does not inflate it), in total and per pod.
//
// With -line each scenario is one line, as `make bench-fleet` prints it.
//
// Times are taken by the bench's own watches on one clock; a watch event
// arrives some milliseconds after the write it reports, for pods and
// Machines alike.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/clusterstate"
	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

const (
	batchIdle = time.Second
	batchMax  = 10 * time.Second
)

func main() {
	manager.RunChildIfRequested()
	runWatchFloorIfRequested()
	// The testbed's CAPI reconcilers log through controller-runtime and
	// klog; the bench prints only its results.
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	scenarios := flag.String("scenarios", "1x1000,20x100", "comma-separated CLUSTERSxPODS scenarios (pods per cluster)")
	dir := flag.String("dir", "", "where clusters keep data and logs (default: a temporary directory)")
	out := flag.String("json", "", "also write the results as JSON to this file")
	line := flag.Bool("line", false, "print each scenario as one line of key=value pairs")
	profiles := flag.String("profiles", "", "save the manager's heap profiles (idle, after the burst) and a CPU profile of the burst's first 45 s in this directory")
	sharedEtcd := flag.Bool("shared-etcd", false, "keep the workload clusters' data in one etcd, a prefix each, instead of an etcd per cluster")
	watchFloor := flag.Bool("watch-floor", false, "run a second process through the burst that only watches what the manager must (Machines, AWSMachines, Clusters; each cluster's Pods and Nodes) and report its CPU per pod")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var results []result
	for _, s := range strings.Split(*scenarios, ",") {
		var clusters, pods int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%dx%d", &clusters, &pods); err != nil || clusters < 1 || pods < 1 {
			fmt.Fprintf(os.Stderr, "-scenarios: %q is not CLUSTERSxPODS (for example 20x100)\n", s)
			os.Exit(2)
		}
		r, err := run(ctx, *dir, *profiles, *sharedEtcd, *watchFloor, clusters, pods)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scenario %s: %v\n", s, err)
			os.Exit(1)
		}
		if *line {
			r.printLine(os.Stdout)
			r.printDetails(os.Stdout)
			// Beside the line, not in it: the line's fields are what
			// `make bench-fleet` promises.
			fmt.Fprintf(os.Stderr, "reconciles during the burst: %s\n", r.reconcileLine())
		} else {
			r.print(os.Stdout)
		}
		results = append(results, r)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

type result struct {
	Clusters            int                `json:"clusters"`
	PodsPerCluster      int                `json:"podsPerCluster"`
	Machines            int                `json:"machines"`
	UntilMachinesSec    float64            `json:"untilMachinesSeconds"`
	PendingToMachineP50 float64            `json:"pendingToMachineP50Seconds"`
	PendingToMachineP99 float64            `json:"pendingToMachineP99Seconds"`
	AfterBatchP50       float64            `json:"afterBatchCloseP50Seconds"`
	AfterBatchP99       float64            `json:"afterBatchCloseP99Seconds"`
	HeapP95MB           float64            `json:"heapP95MB"`
	HeapMaxMB           float64            `json:"heapMaxMB"`
	PerClusterP99       map[string]float64 `json:"perClusterPendingToMachineP99Seconds,omitempty"`
	HeapPerClusterMB    float64            `json:"heapPerIdleClusterMB"`
	ManagerCPUSec       float64            `json:"managerCPUSeconds"`
	// BurstSec is how long the burst took, from its first pod to its last
	// bound: the span ManagerCPUSec is measured over.
	BurstSec float64 `json:"burstSeconds"`
	// IdleCPUMsPerSec is the manager's CPU with every cluster connected
	// and nothing pending, measured before the burst: what the burst's
	// span costs with no pod at all.
	IdleCPUMsPerSec float64 `json:"idleCPUMillisecondsPerSecond"`
	// WatchFloorCPUSec is the watch floor's CPU over the same span (with
	// -watch-floor; see watchfloor.go).
	WatchFloorCPUSec float64 `json:"watchFloorCPUSeconds,omitempty"`
	// Reconciles are the manager's reconciles during the burst, by
	// controller: how many passes the CPU was spent on.
	Reconciles map[string]int `json:"reconciles,omitempty"`
}

// reconcileLine names the reconciles per controller, busiest first.
func (r result) reconcileLine() string {
	names := make([]string, 0, len(r.Reconciles))
	for n := range r.Reconciles {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return r.Reconciles[names[i]] > r.Reconciles[names[j]] })
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, r.Reconciles[n])
	}
	return strings.TrimSpace(b.String())
}

// worstClusterP99 is the slowest cluster's pending-to-Machine p99.
func (r result) worstClusterP99() float64 {
	worst := r.PendingToMachineP99
	if len(r.PerClusterP99) > 0 {
		worst = 0
		for _, v := range r.PerClusterP99 {
			worst = max(worst, v)
		}
	}
	return worst
}

// medianClusterP99 is the median of the clusters' pending-to-Machine
// p99s (the mean of the middle two for an even count): the issue's "worst
// cluster p99 ≤ 2× the median" reads worstClusterP99 against it.
func (r result) medianClusterP99() float64 {
	if len(r.PerClusterP99) == 0 {
		return r.PendingToMachineP99
	}
	vs := make([]float64, 0, len(r.PerClusterP99))
	for _, v := range r.PerClusterP99 {
		vs = append(vs, v)
	}
	sort.Float64s(vs)
	mid := len(vs) / 2
	if len(vs)%2 == 1 {
		return vs[mid]
	}
	return (vs[mid-1] + vs[mid]) / 2
}

// printDetails is the second line beside printLine: what the line's
// fields are read against, kept off the line `make bench-fleet` promises.
func (r result) printDetails(w *os.File) {
	fmt.Fprintf(w, "fleet-details: median_cluster_p99_s=%.2f worst_to_median=%.2f burst_s=%.1f idle_cpu_ms_per_s=%.1f",
		r.medianClusterP99(), ratio(r.worstClusterP99(), r.medianClusterP99()), r.BurstSec, r.IdleCPUMsPerSec)
	if r.WatchFloorCPUSec > 0 {
		fmt.Fprintf(w, " watch_floor_ms_per_pod=%.2f", r.WatchFloorCPUSec*1000/float64(r.Clusters*r.PodsPerCluster))
	}
	fmt.Fprintln(w)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r result) printLine(w *os.File) {
	pods := r.Clusters * r.PodsPerCluster
	fmt.Fprintf(w, "clusters=%d pods=%d machines=%d last_machine_s=%.2f p99_window_to_machine_s=%.2f worst_cluster_p99_s=%.2f heap_p95_mb=%.1f heap_per_cluster_mb=%.2f manager_cpu_s=%.2f cpu_ms_per_pod=%.2f\n",
		r.Clusters, pods, r.Machines, r.UntilMachinesSec, r.AfterBatchP99, r.worstClusterP99(), r.HeapP95MB, r.HeapPerClusterMB,
		r.ManagerCPUSec, r.ManagerCPUSec*1000/float64(pods))
}

func (r result) print(w *os.File) {
	fmt.Fprintf(w, "\n%d cluster(s) x %d pods: %d Machines\n", r.Clusters, r.PodsPerCluster, r.Machines)
	fmt.Fprintf(w, "  until all Machines exist     %6.2f s\n", r.UntilMachinesSec)
	fmt.Fprintf(w, "  pending to Machine           p50 %5.2f s   p99 %5.2f s\n", r.PendingToMachineP50, r.PendingToMachineP99)
	fmt.Fprintf(w, "  after the batch window closed p50 %5.2f s   p99 %5.2f s\n", r.AfterBatchP50, r.AfterBatchP99)
	fmt.Fprintf(w, "  manager heap                 P95 %5.1f MB  max %5.1f MB  per idle cluster %.2f MB\n", r.HeapP95MB, r.HeapMaxMB, r.HeapPerClusterMB)
	fmt.Fprintf(w, "  manager CPU during the burst %6.2f s (%.2f ms per pod)\n", r.ManagerCPUSec, r.ManagerCPUSec*1000/float64(r.Clusters*r.PodsPerCluster))
	fmt.Fprintf(w, "  reconciles during the burst  %s\n", r.reconcileLine())
	if len(r.PerClusterP99) > 1 {
		names := make([]string, 0, len(r.PerClusterP99))
		for n := range r.PerClusterP99 {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprint(w, "  per-cluster pending to Machine p99 (s):")
		for _, n := range names {
			fmt.Fprintf(w, " %s=%.2f", n, r.PerClusterP99[n])
		}
		fmt.Fprintln(w)
	}
}

// observations are the bench's own sightings, keyed cluster/namespace/name.
type observations struct {
	mu          sync.Mutex
	pending     map[string]time.Time
	machined    map[string]machineSighting // pod key -> the first Machine whose decision names it
	bound       map[string]bool
	podCount    map[string]int // Machine name -> pods its decision is for
	lastMachine time.Time
}

// machineSighting is a Machine the bench saw, and when.
type machineSighting struct {
	name string
	at   time.Time
}

func (o *observations) seeBound(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bound[key] = true
}

func (o *observations) boundCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.bound)
}

func (o *observations) lastMachineSeen() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastMachine
}

func (o *observations) seePending(key string, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.pending[key]; !ok {
		o.pending[key] = at
	}
}

func (o *observations) seeMachine(m *clusterv1.Machine, at time.Time) {
	d, err := provisioning.ReadDecision(m)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.podCount[m.Name]; ok {
		return
	}
	// A Machine whose pods are all bound already is a disruption's
	// replacement (consolidation moves running pods onto it), not one the
	// burst waited for: pods a plan put on room left on another Machine are
	// named by no decision, and a replacement made later named two of them
	// as if they had waited minutes for it.
	waitedFor := false
	for _, p := range d.Pods {
		if !o.bound[m.Spec.ClusterName+"/"+p] {
			waitedFor = true
			break
		}
	}
	if !waitedFor {
		return
	}
	o.podCount[m.Name] = d.PodCount
	o.lastMachine = at
	for _, p := range d.Pods {
		key := m.Spec.ClusterName + "/" + p
		if _, ok := o.machined[key]; !ok {
			o.machined[key] = machineSighting{name: m.Name, at: at}
		}
	}
}

func (o *observations) covered() (pods, machines int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.podCount {
		pods += n
	}
	return pods, len(o.podCount)
}

func run(ctx context.Context, dir, profiles string, sharedEtcd, watchFloor bool, clusters, podsPerCluster int) (result, error) {
	r := result{Clusters: clusters, PodsPerCluster: podsPerCluster}
	fmt.Printf("starting a testbed with %d workload cluster(s)...\n", clusters)
	tb, err := testbed.Start(ctx, testbed.Options{
		Dir: dir, WorkloadClusters: clusters, ClusterLabels: map[string]string{"env": "bench"},
		WorkloadsWithoutControllerManager: true, MachineConcurrency: 20,
		SharedWorkloadEtcd: sharedEtcd,
		Cloud:              cloudsim.Options{BootDelay: time.Second, JoinDelay: 200 * time.Millisecond, ShutdownDelay: time.Millisecond},
	})
	if err != nil {
		return r, err
	}
	defer func() { _ = tb.Stop() }()

	if err := createPool(ctx, tb); err != nil {
		return r, err
	}
	baselineHeap, err := baselineHeap(ctx, tb)
	if err != nil {
		return r, err
	}
	metricsAddr, err := testbed.FreeAddr()
	if err != nil {
		return r, err
	}
	args := append([]string{"--kubeconfig=" + tb.Management.KubeconfigPath, "--leader-elect=false",
		"--metrics-bind-address=" + metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0"}, catalogArgs(tb)...)
	// The profiler serves the forced collection liveHeap needs, and the
	// profiles -profiles saves.
	profilerAddr, err := testbed.FreeAddr()
	if err != nil {
		return r, err
	}
	args = append(args, "--profiler-address="+profilerAddr)
	if profiles != "" {
		if err := os.MkdirAll(profiles, 0o755); err != nil {
			return r, err
		}
	}
	joinery := testbed.NewJoineryProcess(tb.Dir(), args...)
	if err := joinery.Start(); err != nil {
		return r, err
	}
	defer joinery.Stop()
	heap := &heapSampler{url: "http://" + metricsAddr + "/metrics", profiler: profilerAddr}
	if err := heap.waitUp(ctx, time.Minute); err != nil {
		return r, fmt.Errorf("joinery's metrics endpoint: %w (log: %s)", err, filepath.Join(tb.Dir(), "joinery.log"))
	}
	if err := waitCatalogRead(ctx, joinery, time.Minute); err != nil {
		return r, fmt.Errorf("%w (log: %s)", err, filepath.Join(tb.Dir(), "joinery.log"))
	}
	// The burst starts once the manager reached every cluster, so the
	// times measure planning, not connecting.
	if err := waitConnected(ctx, tb, clusters, 3*time.Minute); err != nil {
		return r, fmt.Errorf("%w (log: %s)", err, filepath.Join(tb.Dir(), "joinery.log"))
	}
	idleHeap, err := heap.live(ctx)
	if err != nil {
		return r, err
	}
	r.HeapPerClusterMB = max(0, idleHeap-baselineHeap) / float64(clusters) / (1 << 20)
	if profiles != "" {
		saveProfile(ctx, profilerAddr, "heap", filepath.Join(profiles, fmt.Sprintf("heap-idle-%dx%d.pprof", clusters, podsPerCluster)))
		go saveProfile(ctx, profilerAddr, "profile?seconds=45", filepath.Join(profiles, fmt.Sprintf("cpu-burst-%dx%d.pprof", clusters, podsPerCluster)))
	}
	if r.IdleCPUMsPerSec, err = idleCPU(ctx, joinery, idleSpan); err != nil {
		return r, err
	}
	var floor *watchFloorProcess
	if watchFloor {
		if floor, err = startWatchFloor(ctx, tb); err != nil {
			return r, err
		}
		defer floor.stop()
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go heap.run(sampleCtx)

	obs := &observations{pending: map[string]time.Time{}, machined: map[string]machineSighting{}, bound: map[string]bool{}, podCount: map[string]int{}}
	watchCtx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	if err := watchMachines(watchCtx, tb, obs); err != nil {
		return r, err
	}
	for _, w := range tb.Workloads {
		if err := watchPending(watchCtx, w, obs); err != nil {
			return r, err
		}
	}
	cpu0, err := joinery.CPUTime()
	if err != nil {
		return r, err
	}
	floor0, err := floor.cpuTime()
	if err != nil {
		return r, err
	}
	reconciles0, err := reconciles(heap.url)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(tb.Workloads))
	for _, w := range tb.Workloads {
		wg.Add(1)
		go func(w *testbed.Workload) {
			defer wg.Done()
			errs <- createPods(ctx, w, podsPerCluster)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return r, err
		}
	}
	go recordNodes(watchCtx, tb, filepath.Join(tb.Dir(), "nodes.log"))
	total := clusters * podsPerCluster
	// Pods the plan put on room left on a Machine launched for earlier
	// pods are named in no decision: the burst is covered once every pod
	// is bound, and the Machines it took are those that exist by then.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		bound := obs.boundCount()
		if bound >= total {
			break
		}
		if time.Now().After(deadline) {
			covered, machines := obs.covered()
			return r, fmt.Errorf("after 5 minutes, %d of %d pods are bound; %d Machines name %d pods (log: %s)", bound, total, machines, covered, filepath.Join(tb.Dir(), "joinery.log"))
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	cpu1, err := joinery.CPUTime()
	if err != nil {
		return r, err
	}
	r.ManagerCPUSec = (cpu1 - cpu0).Seconds()
	floor1, err := floor.cpuTime()
	if err != nil {
		return r, err
	}
	r.WatchFloorCPUSec = (floor1 - floor0).Seconds()
	r.BurstSec = time.Since(t0).Seconds()
	reconciles1, err := reconciles(heap.url)
	if err != nil {
		return r, err
	}
	r.Reconciles = map[string]int{}
	for c, n := range reconciles1 {
		if d := n - reconciles0[c]; d > 0 {
			r.Reconciles[c] = d
		}
	}
	// The manager's metrics as the burst ends (its queues' waits, its
	// reconciles' durations) beside its log, for reading a slow run.
	saveMetrics(heap.url, filepath.Join(tb.Dir(), "metrics-after-burst.txt"))
	r.Machines = len(obs.podCount)
	r.UntilMachinesSec = obs.lastMachineSeen().Sub(t0).Seconds()
	stopSampling()
	if profiles != "" {
		saveProfile(ctx, profilerAddr, "heap", filepath.Join(profiles, fmt.Sprintf("heap-after-%dx%d.pprof", clusters, podsPerCluster)))
	}
	r.HeapP95MB, r.HeapMaxMB = heap.summary()
	if err := noAssumedNodeModel(ctx, tb); err != nil {
		return r, err
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	// Replay each cluster's batch windows from the pending sightings: a
	// window opens with a pod, closes batchIdle after the last pod in it
	// or batchMax after it opened; a pod seen later opens the next one.
	closes := map[string]time.Time{} // pod key -> close of its window
	byCluster := map[string][]string{}
	for key := range obs.pending {
		cluster := strings.SplitN(key, "/", 2)[0]
		byCluster[cluster] = append(byCluster[cluster], key)
	}
	for _, keys := range byCluster {
		sort.Slice(keys, func(i, j int) bool { return obs.pending[keys[i]].Before(obs.pending[keys[j]]) })
		var members []string
		var opened, last time.Time
		flush := func() {
			closed := last.Add(batchIdle)
			if maxClose := opened.Add(batchMax); maxClose.Before(closed) {
				closed = maxClose
			}
			for _, k := range members {
				closes[k] = closed
			}
			members = nil
		}
		for _, k := range keys {
			at := obs.pending[k]
			if len(members) > 0 && (at.After(last.Add(batchIdle)) || at.After(opened.Add(batchMax))) {
				flush()
			}
			if len(members) == 0 {
				opened = at
			}
			members = append(members, k)
			last = at
		}
		if len(members) > 0 {
			flush()
		}
	}
	var latency, afterClose []float64
	perCluster := map[string][]float64{}
	for key, pendingAt := range obs.pending {
		machined, ok := obs.machined[key]
		if !ok {
			continue // named past the decision's first 100 pods
		}
		cluster := strings.SplitN(key, "/", 2)[0]
		closed := closes[key]
		l := machined.at.Sub(pendingAt).Seconds()
		latency = append(latency, l)
		afterClose = append(afterClose, max(0, machined.at.Sub(closed).Seconds()))
		perCluster[cluster] = append(perCluster[cluster], l)
	}
	if len(latency) == 0 {
		return r, errors.New("no pod was both seen pending and named by a Machine's decision")
	}
	if err := writeTimeline(filepath.Join(tb.Dir(), "pods.tsv"), t0, obs, closes); err != nil {
		return r, err
	}
	r.PendingToMachineP50, r.PendingToMachineP99 = percentile(latency, 50), percentile(latency, 99)
	r.AfterBatchP50, r.AfterBatchP99 = percentile(afterClose, 50), percentile(afterClose, 99)
	if clusters > 1 {
		r.PerClusterP99 = map[string]float64{}
		for c, ls := range perCluster {
			r.PerClusterP99[c] = percentile(ls, 99)
		}
	}
	return r, nil
}

// writeTimeline writes each pod's sightings, in seconds from the burst's
// start, one pod per line sorted by when it was seen pending: where a
// slow pod's time went (its window's close, its Machine) is read against
// the manager's log of the same directory.
func writeTimeline(path string, t0 time.Time, obs *observations, closes map[string]time.Time) error {
	keys := make([]string, 0, len(obs.pending))
	for k := range obs.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return obs.pending[keys[i]].Before(obs.pending[keys[j]]) })
	var b strings.Builder
	b.WriteString("pod\tpending_s\twindow_closed_s\tmachine\tmachine_s\twindow_to_machine_s\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\t%.2f\t%.2f", k, obs.pending[k].Sub(t0).Seconds(), closes[k].Sub(t0).Seconds())
		if m, ok := obs.machined[k]; ok {
			fmt.Fprintf(&b, "\t%s\t%.2f\t%.2f\n", m.name, m.at.Sub(t0).Seconds(), m.at.Sub(closes[k]).Seconds())
		} else {
			b.WriteString("\t-\t-\t-\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func percentile(values []float64, p float64) float64 {
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func createPool(ctx context.Context, tb *testbed.Testbed) error {
	name := "bench-workers"
	infra, bootstrap, err := tb.CreateWorkerTemplates(ctx, name)
	if err != nil {
		return err
	}
	return tb.Client.Create(ctx, &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: "bench"},
		Spec: v1alpha1.NodePoolSpec{
			ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "bench"}},
			Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
				Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
					{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}},
					{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCategory, Operator: v1alpha1.OpIn, Values: []string{"c", "m", "r"}},
					// Machines of at most 16 vCPUs hold at most 64 of the
					// bench's pods: every decision names all its pods.
					{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCPU, Operator: v1alpha1.OpLte, Values: []string{"16"}},
				},
				InfrastructureTemplateRef: infra,
				BootstrapTemplateRef:      bootstrap,
			}},
		},
	})
}

// createPods creates bare pods (the bench's workload clusters run no
// controller manager), eight writers at a time.
func createPods(ctx context.Context, w *testbed.Workload, n int) error {
	// A burst as a Deployment controller would make it: no client-side
	// throttling in the bench itself.
	cfg := rest.CopyConfig(w.Cluster.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: fmt.Sprintf("burst-%05d", i), Labels: map[string]string{"app": "burst"}},
					Spec: corev1.PodSpec{
						TerminationGracePeriodSeconds: ptr.To[int64](0),
						Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
						}}},
					},
				}
				if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating pod %s in %s: %w", pod.Name, w.Name, err)
					return
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

func watchPending(ctx context.Context, w *testbed.Workload, obs *observations) error {
	cs, err := w.Clientset()
	if err != nil {
		return err
	}
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", metav1.NamespaceDefault, fields.Everything())
	see := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		key := w.Name + "/" + pod.Namespace + "/" + pod.Name
		switch {
		case pod.Spec.NodeName != "":
			obs.seeBound(key)
		case clusterstate.IsProvisionable(pod):
			obs.seePending(key, time.Now())
		}
	}
	return runInformer(ctx, lw, &corev1.Pod{}, see)
}

func watchMachines(ctx context.Context, tb *testbed.Testbed, obs *observations) error {
	informer, err := tb.Manager.GetCache().GetInformer(ctx, &clusterv1.Machine{})
	if err != nil {
		return err
	}
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if m, ok := obj.(*clusterv1.Machine); ok {
			obs.seeMachine(m, time.Now())
		}
	}})
	return err
}

func runInformer(ctx context.Context, lw cache.ListerWatcher, obj client.Object, see func(any)) error {
	informer := cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{})
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: see, UpdateFunc: func(_, n any) { see(n) },
	}); err != nil {
		return err
	}
	go informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return errors.New("pod informer did not sync")
	}
	return nil
}

// saveMetrics writes what the manager's metrics endpoint serves to path;
// a failure is reported and the run goes on (the file is for reading, the
// line does not depend on it).
func saveMetrics(metricsURL, path string) {
	body, err := testbed.MetricsText(metricsURL)
	if err == nil {
		err = os.WriteFile(path, body, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "saving the manager's metrics to %s: %v\n", path, err)
	}
}

// reconciles reads the manager's reconciles so far by controller
// (controller_runtime_reconcile_total, all results).
func reconciles(metricsURL string) (map[string]int, error) {
	samples, err := testbed.Samples(metricsURL, "controller_runtime_reconcile_total")
	if err != nil {
		return nil, fmt.Errorf("reading the manager's reconcile counts: %w", err)
	}
	out := map[string]int{}
	for labels, v := range samples {
		_, rest, ok := strings.Cut(labels, `controller="`)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, `"`)
		out[name] += int(v)
	}
	return out, nil
}

// heapSampler scrapes the manager's Go heap size from its metrics.
type heapSampler struct {
	url      string
	profiler string // the manager's --profiler-address
	mu       sync.Mutex
	samples  []float64
}

func (h *heapSampler) waitUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := h.scrape(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (h *heapSampler) run(ctx context.Context) {
	// Each scrape is the manager's CPU too, counted in its burst CPU:
	// it asks for the one family it reads (HeapAllocBytes), and once a
	// second still gives a 5-cluster burst of about 8 s enough samples
	// for a P95 that follows the collector's sawtooth.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if v, err := h.scrape(); err == nil {
				h.mu.Lock()
				h.samples = append(h.samples, v)
				h.mu.Unlock()
			}
		}
	}
}

func (h *heapSampler) scrape() (float64, error) { return testbed.HeapAllocBytes(h.url) }

// live is the manager's live heap: the heap right after a collection
// forced through its profiler (heap?gc=1), the lowest of three, so the
// garbage a collection has not reached yet does not count.
func (h *heapSampler) live(ctx context.Context) (float64, error) {
	lowest := -1.0
	for range 3 {
		saveProfile(ctx, h.profiler, "heap?gc=1", os.DevNull)
		v, err := h.scrape()
		if err != nil {
			return 0, err
		}
		if lowest < 0 || v < lowest {
			lowest = v
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return lowest, nil
}

func (h *heapSampler) summary() (p95MB, maxMB float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) == 0 {
		return 0, 0
	}
	return percentile(h.samples, 95) / (1 << 20), percentile(h.samples, 100) / (1 << 20)
}

// baselineHeap is the idle heap of a manager that serves no cluster (a
// --watch-filter no Cluster carries): what a manager costs before its
// first cluster.
func baselineHeap(ctx context.Context, tb *testbed.Testbed) (float64, error) {
	addr, err := testbed.FreeAddr()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(tb.Dir(), "baseline-manager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	profiler, err := testbed.FreeAddr()
	if err != nil {
		return 0, err
	}
	// It holds the same live catalog as the measured manager, so the
	// difference is the clusters alone.
	baseline := testbed.NewJoineryProcess(dir, append([]string{"--kubeconfig=" + tb.Management.KubeconfigPath, "--leader-elect=false",
		"--metrics-bind-address=" + addr, "--metrics-secure=false", "--health-probe-bind-address=0", "--watch-filter=bench-serves-no-cluster",
		"--profiler-address=" + profiler}, catalogArgs(tb)...)...)
	if err := baseline.Start(); err != nil {
		return 0, err
	}
	defer baseline.Stop()
	heap := &heapSampler{url: "http://" + addr + "/metrics", profiler: profiler}
	if err := heap.waitUp(ctx, time.Minute); err != nil {
		return 0, fmt.Errorf("the baseline manager's metrics endpoint: %w (log: %s)", err, filepath.Join(dir, "joinery.log"))
	}
	if err := waitCatalogRead(ctx, baseline, time.Minute); err != nil {
		return 0, fmt.Errorf("the baseline manager: %w (log: %s)", err, filepath.Join(dir, "joinery.log"))
	}
	// Its caches sync and it settles, as the measured manager does.
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Second):
	}
	return heap.live(ctx)
}

// catalogArgs point a manager's catalog refresh at the simulated EC2, as
// the e2e suite and `joinery sandbox` do: instance types, offerings, spot
// prices, the account's zone names and the AMIs' architecture come from
// EC2's API, as in production, not from the embedded snapshot's
// assumptions (which the manager reports as NodeModelAssumed).
func catalogArgs(tb *testbed.Testbed) []string {
	return []string{"--catalog-regions=" + tb.Cloud.Region(), "--ec2-endpoint=" + tb.Cloud.EC2Endpoint()}
}

// waitCatalogRead waits for a manager's first catalog read from the
// simulated EC2: until then it plans with the snapshot and assumed zone
// names, and provisioning holds its first decisions for up to 30 s, which
// would be timed as planning.
func waitCatalogRead(ctx context.Context, j *testbed.JoineryProcess, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(j.Tail(1<<20), "read the EC2 catalog") {
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager did not log its first catalog read (--catalog-regions, --ec2-endpoint of the simulated EC2) within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// noAssumedNodeModel fails a run whose manager planned with an assumed
// node model (architecture, zone names): its numbers would not be those
// of a manager that reads EC2.
func noAssumedNodeModel(ctx context.Context, tb *testbed.Testbed) error {
	var events corev1.EventList
	if err := tb.Client.List(ctx, &events, client.InNamespace(tb.Namespace)); err != nil {
		return fmt.Errorf("listing Events: %w", err)
	}
	for _, e := range events.Items {
		if e.Reason == "NodeModelAssumed" {
			return fmt.Errorf("the manager planned with an assumed node model (Event NodeModelAssumed on %s %s: %s); the run does not measure a manager that reads EC2",
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
	}
	return nil
}

// waitConnected waits until the bench pool's status shows every cluster
// reachable: the manager's ClusterCache connected to each and a pass ran.
func waitConnected(ctx context.Context, tb *testbed.Testbed, clusters int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pool := &v1alpha1.NodePool{}
		if err := tb.Client.Get(ctx, client.ObjectKey{Namespace: tb.Namespace, Name: "bench"}, pool); err != nil {
			return err
		}
		reachable := 0
		for _, c := range pool.Status.Clusters {
			if c.Reachable {
				reachable++
			}
		}
		if reachable >= clusters {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the manager reached %d of %d clusters", timeout, reachable, clusters)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// idleSpan is how long idleCPU watches the manager with nothing to do.
const idleSpan = 10 * time.Second

// idleCPU is the manager's CPU milliseconds per second over span, with
// every cluster connected and no pod pending.
func idleCPU(ctx context.Context, joinery *testbed.JoineryProcess, span time.Duration) (float64, error) {
	cpu0, err := joinery.CPUTime()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(span):
	}
	cpu1, err := joinery.CPUTime()
	if err != nil {
		return 0, err
	}
	return float64((cpu1 - cpu0).Milliseconds()) / span.Seconds(), nil
}

// saveProfile writes one of the manager's pprof profiles to path; a
// profile that cannot be read is reported, not fatal.
func saveProfile(ctx context.Context, addr, profile, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+profile, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", profile, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", profile, err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// recordNodes writes, every five seconds, each workload node's state and
// load and what the pending pods wait for: enough to tell after the fact
// why a replan found no room.
func recordNodes(ctx context.Context, tb *testbed.Testbed, path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		for _, w := range tb.Workloads {
			cs, err := w.Clientset()
			if err != nil {
				continue
			}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			perNode := map[string]int{}
			pending, example := 0, ""
			for _, p := range pods.Items {
				if p.Spec.NodeName != "" {
					perNode[p.Spec.NodeName]++
					continue
				}
				pending++
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodScheduled && example == "" {
						example = c.Reason + ": " + c.Message
					}
				}
			}
			fmt.Fprintf(f, "%s %s: %d nodes, %d pending (%s)\n", time.Now().Format("15:04:05"), w.Name, len(nodes.Items), pending, example)
			for _, n := range nodes.Items {
				ready := "NotReady"
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready = "Ready"
					}
				}
				var taints []string
				for _, t := range n.Spec.Taints {
					taints = append(taints, t.Key)
				}
				fmt.Fprintf(f, "  %s %s %s cpu=%s pods=%s bound=%d taints=%v\n", n.Name, n.Labels[v1alpha1.LabelInstanceType], ready,
					n.Status.Allocatable.Cpu(), n.Status.Allocatable.Pods(), perNode[n.Name], taints)
			}
		}
	}
}
