package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/testbed"
)

// The pools. general serves on-demand and spot, consolidates, and has a
// budget of one node plus a window every five minutes allowing none; batch
// is on-demand, expires its Machines and allows two at a time; gpu is
// on-demand NVIDIA instances, one at a time.
const (
	poolGeneral = "general"
	poolBatch   = "batch"
	poolGPU     = "gpu"
	templates   = "soak-workers"

	// budgetWindowCron/budgetWindow: general's no-disruption window.
	budgetWindowCron = "*/5 * * * *"
	budgetWindow     = time.Minute
	generalBudget    = 1
	batchBudget      = 2
	gpuBudget        = 1
	batchExpireAfter = "4m"
)

func createPools(ctx context.Context, tb *testbed.Testbed) error {
	infra, bootstrap, err := tb.CreateWorkerTemplates(ctx, templates)
	if err != nil {
		return err
	}
	pool := func(name string, capacityTypes []string) *v1alpha1.NodePool {
		return &v1alpha1.NodePool{
			ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
			Spec: v1alpha1.NodePoolSpec{
				ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "soak"}},
				Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
					Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
						{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: capacityTypes},
						{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCategory, Operator: v1alpha1.OpIn, Values: []string{"c", "m", "r"}},
						{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCPU, Operator: v1alpha1.OpLte, Values: []string{"8"}},
					},
					InfrastructureTemplateRef: infra,
					BootstrapTemplateRef:      bootstrap,
				}},
			},
		}
	}
	general := pool(poolGeneral, []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand})
	general.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized
	general.Spec.Disruption.ConsolidateAfter = "15s"
	general.Spec.Disruption.Budgets = []v1alpha1.Budget{
		{Nodes: fmt.Sprint(generalBudget)},
		{Nodes: "0", Schedule: ptr.To(budgetWindowCron), Duration: &metav1.Duration{Duration: budgetWindow}},
	}
	batch := pool(poolBatch, []string{v1alpha1.CapacityTypeOnDemand})
	batch.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized
	batch.Spec.Disruption.ConsolidateAfter = "30s"
	batch.Spec.Disruption.Budgets = []v1alpha1.Budget{{Nodes: fmt.Sprint(batchBudget)}}
	batch.Spec.Template.Spec.ExpireAfter = batchExpireAfter
	gpu := pool(poolGPU, []string{v1alpha1.CapacityTypeOnDemand})
	gpu.Spec.Template.Spec.Requirements = []v1alpha1.NodeSelectorRequirementWithMinValues{
		{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}},
		{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCategory, Operator: v1alpha1.OpIn, Values: []string{"g"}},
		{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCPU, Operator: v1alpha1.OpLte, Values: []string{"8"}},
	}
	gpu.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized
	gpu.Spec.Disruption.ConsolidateAfter = "15s"
	gpu.Spec.Disruption.Budgets = []v1alpha1.Budget{{Nodes: fmt.Sprint(gpuBudget)}}
	for _, p := range []*v1alpha1.NodePool{general, batch, gpu} {
		if err := tb.Client.Create(ctx, p); err != nil {
			return fmt.Errorf("creating NodePool %s: %w", p.Name, err)
		}
	}
	return nil
}

// budgetAllows is how many of a pool's nodes may be disrupting at t, read
// from the budgets createPools wrote (fixed counts and one window), not
// from Joinery's own budget code.
func budgetAllows(pool string, t time.Time) int {
	switch pool {
	case poolGeneral:
		t = t.UTC()
		if t.Minute()%5 == 0 && t.Sub(t.Truncate(time.Minute)) < budgetWindow {
			return 0
		}
		return generalBudget
	case poolBatch:
		return batchBudget
	case poolGPU:
		return gpuBudget
	}
	return 0
}

// replicas are the manager's two replicas, electing a leader through one
// Lease as a Deployment of two would.
type replicas struct {
	tb    *testbed.Testbed
	procs []*replica
}

type replica struct {
	name        string
	proc        *testbed.JoineryProcess
	metricsAddr string
	logPath     string
}

const (
	leaseNamespace = "default"
	leaseName      = "joinery-manager.joinery.dev"
)

func startManagers(ctx context.Context, tb *testbed.Testbed, dir string) (*replicas, error) {
	rs := &replicas{tb: tb}
	for _, name := range []string{"replica-a", "replica-b"} {
		rdir := filepath.Join(dir, name)
		if err := os.MkdirAll(rdir, 0o755); err != nil {
			return nil, err
		}
		addr, err := testbed.FreeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"--kubeconfig=" + tb.Management.KubeconfigPath,
			"--leader-elect=true", "--leader-election-namespace=" + leaseNamespace,
			// A killed leader's successor takes over within seconds.
			"--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s", "--leader-elect-retry-period=1s",
			"--metrics-bind-address=" + addr, "--metrics-secure=false", "--health-probe-bind-address=0",
			"--registration-timeout=90s", "--disruption-validation-delay=3s", "--disruption-interval=2s",
			"--interruption-queue=" + interruptionQueue, "--aws-region=" + tb.Cloud.Region(), "--aws-endpoint=" + tb.Cloud.SQSEndpoint(),
			"--catalog-regions=" + tb.Cloud.Region(), "--ec2-endpoint=" + tb.Cloud.EC2Endpoint()}
		r := &replica{name: name, proc: testbed.NewJoineryProcess(rdir, args...), metricsAddr: addr, logPath: filepath.Join(rdir, "joinery.log")}
		if err := r.proc.Start(); err != nil {
			return nil, err
		}
		rs.procs = append(rs.procs, r)
	}
	// The soak starts once a leader has read the catalog from EC2.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, r := range rs.procs {
			if strings.Contains(r.proc.Tail(4<<20), "read the EC2 catalog") {
				return rs, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no manager replica read the EC2 catalog within 2 minutes (logs: %s, %s)", rs.procs[0].logPath, rs.procs[1].logPath)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// holder is the Lease's holder identity ("" when none).
func (rs *replicas) holder(ctx context.Context, c client.Client) string {
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: leaseName}, &lease); err != nil {
		return ""
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// leader is the replica whose log, since its last start, says it acquired
// the Lease; nil when none has (yet).
func (rs *replicas) leader() *replica {
	for _, r := range rs.procs {
		if !r.proc.Running() {
			continue
		}
		tail := r.proc.Tail(8 << 20)
		if i := strings.LastIndex(tail, "===== start "); i >= 0 {
			tail = tail[i:]
		}
		if strings.Contains(tail, "Successfully acquired lease") {
			return r
		}
	}
	return nil
}

func (rs *replicas) stop() {
	var wg sync.WaitGroup
	for _, r := range rs.procs {
		wg.Add(1)
		go func(r *replica) { defer wg.Done(); r.proc.Stop() }(r)
	}
	wg.Wait()
}
