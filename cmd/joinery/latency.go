package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/test/testbed"
)

// burstTracker follows a burst of pods in every workload cluster from
// pending to Running, through the Machine that served each pod (the one
// whose Node the pod runs on): the Machine created, its AWSMachine Ready,
// its Node Ready. Times are when a poll first saw each state: the
// apiserver's timestamps have whole seconds only, too coarse for steps
// that take one or two.
type burstTracker struct {
	tb       *testbed.Testbed
	app      string
	expected int
	clusters int
	poll     time.Duration

	podSeen, podRunning   map[string]time.Time // cluster/pod
	podNode               map[string]string    // cluster/pod -> node
	machineSeen, awsReady map[string]time.Time // Machine (and AWSMachine) name
	nodeReady             map[string]time.Time // cluster/node
	nodeMachine           map[string]string    // cluster/node -> Machine
}

func newBurstTracker(tb *testbed.Testbed, app string, expected int) *burstTracker {
	b := newBurstTrackerFor(app, expected, len(tb.Workloads))
	b.tb = tb
	return b
}

func newBurstTrackerFor(app string, expected, clusters int) *burstTracker {
	return &burstTracker{
		app: app, expected: expected, clusters: clusters, poll: 200 * time.Millisecond,
		podSeen: map[string]time.Time{}, podRunning: map[string]time.Time{}, podNode: map[string]string{},
		machineSeen: map[string]time.Time{}, awsReady: map[string]time.Time{},
		nodeReady: map[string]time.Time{}, nodeMachine: map[string]string{},
	}
}

// run polls until every expected pod runs on a Node whose Machine and
// AWSMachine were seen, or ctx ends; it reports whether the burst completed.
func (b *burstTracker) run(ctx context.Context) bool {
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		b.observe(ctx)
		if b.complete() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (b *burstTracker) observe(ctx context.Context) {
	now := time.Now()
	first := func(m map[string]time.Time, k string) {
		if _, ok := m[k]; !ok {
			m[k] = now
		}
	}
	var machines clusterv1.MachineList
	if err := b.tb.Client.List(ctx, &machines, client.InNamespace(b.tb.Namespace)); err == nil {
		for _, m := range machines.Items {
			first(b.machineSeen, m.Name)
			if m.Status.NodeRef.IsDefined() {
				b.nodeMachine[m.Spec.ClusterName+"/"+m.Status.NodeRef.Name] = m.Name
			}
		}
	}
	var awsMachines infrav1.AWSMachineList
	if err := b.tb.Client.List(ctx, &awsMachines, client.InNamespace(b.tb.Namespace)); err == nil {
		for _, m := range awsMachines.Items {
			if m.Status.Ready {
				first(b.awsReady, m.Name)
			}
		}
	}
	for _, w := range b.tb.Workloads {
		var pods corev1.PodList
		if err := w.Client.List(ctx, &pods, client.InNamespace("default"), client.MatchingLabels{"app": b.app}); err == nil {
			for _, p := range pods.Items {
				k := w.Name + "/" + p.Name
				first(b.podSeen, k)
				if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
					first(b.podRunning, k)
					b.podNode[k] = w.Name + "/" + p.Spec.NodeName
				}
			}
		}
		var nodes corev1.NodeList
		if err := w.Client.List(ctx, &nodes); err == nil {
			for _, n := range nodes.Items {
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						first(b.nodeReady, w.Name+"/"+n.Name)
					}
				}
			}
		}
	}
}

// complete: every expected pod runs and its Node's Machine, AWSMachine
// and Node Ready were all seen.
func (b *burstTracker) complete() bool {
	if len(b.podRunning) < b.expected {
		return false
	}
	for pod := range b.podRunning {
		if _, _, ok := b.path(pod); !ok {
			return false
		}
	}
	return true
}

// path is the pod's Node and Machine, once every step of it was seen.
func (b *burstTracker) path(pod string) (node, machine string, ok bool) {
	node = b.podNode[pod]
	machine = b.nodeMachine[node]
	if machine == "" {
		return "", "", false
	}
	_, seen := b.machineSeen[machine]
	_, ready := b.awsReady[machine]
	_, nodeReady := b.nodeReady[node]
	return node, machine, seen && ready && nodeReady
}

// report writes the latencies from each pod's pending to each step of
// the Machine that served it: p50 and p99 (nearest rank) over the pods.
func (b *burstTracker) report(w io.Writer) {
	steps := []string{"Machine created", "AWSMachine Ready", "Node Ready", "pod Running"}
	lat := make([][]time.Duration, len(steps))
	machines := map[string]bool{}
	for pod, running := range b.podRunning {
		node, machine, ok := b.path(pod)
		if !ok {
			continue
		}
		machines[machine] = true
		start := b.podSeen[pod]
		for i, at := range []time.Time{b.machineSeen[machine], b.awsReady[machine], b.nodeReady[node], running} {
			lat[i] = append(lat[i], at.Sub(start))
		}
	}
	fmt.Fprintf(w, "Demo burst: %d pods over %d workload cluster(s) on %d Machines; seconds from a pod seen pending to\n", len(lat[0]), b.clusters, len(machines))
	fmt.Fprintf(w, "  %-18s %6s %6s %6s\n", "", "p50", "p99", "max")
	for i, step := range steps {
		fmt.Fprintf(w, "  %-18s %6.1f %6.1f %6.1f\n", step+":", percentile(lat[i], 50).Seconds(), percentile(lat[i], 99).Seconds(), percentile(lat[i], 100).Seconds())
	}
	fmt.Fprintf(w, "  (its Machine: the one whose Node the pod runs on; %s polls, so each step is seen up to %s late)\n", b.poll, b.poll)
}

// percentile is the nearest-rank percentile p of ds (0 when empty).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

// String is the report as text.
func (b *burstTracker) String() string {
	var sb strings.Builder
	b.report(&sb)
	return sb.String()
}
