package soak

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/testbed"
)

// app is one Deployment of the workload and how far it is scaled.
type app struct {
	name          string
	pool          string
	cpu, memory   string
	min, max      int32
	doNotDisrupt  bool
	spotOnly      bool
	zoneSpread    bool
	gpus          int64
	pdbMinAvail   *intstr.IntOrString // nil: no PodDisruptionBudget
	pdbCanBeTight bool                // the churn sometimes makes it allow no eviction
}

// apps are the same in every workload cluster.
var apps = []app{
	{name: "web", pool: poolGeneral, cpu: "250m", memory: "256Mi", min: 2, max: 8, zoneSpread: true, pdbMinAvail: ptr.To(intstr.FromString("50%"))},
	{name: "api", pool: poolGeneral, cpu: "500m", memory: "512Mi", min: 2, max: 6, pdbMinAvail: ptr.To(intstr.FromInt32(1)), pdbCanBeTight: true},
	{name: "spot", pool: poolGeneral, cpu: "300m", memory: "384Mi", min: 0, max: 6, spotOnly: true},
	{name: "pinned", pool: poolBatch, cpu: "200m", memory: "128Mi", min: 1, max: 3, doNotDisrupt: true},
	{name: "batch", pool: poolBatch, cpu: "1", memory: "1Gi", min: 0, max: 10, pdbMinAvail: ptr.To(intstr.FromInt32(1))},
	{name: "gpu", pool: poolGPU, cpu: "500m", memory: "1Gi", gpus: 1, min: 0, max: 2},
}

// workload creates the apps in every workload cluster and rescales them.
type workload struct {
	tb   *testbed.Testbed
	rng  *rand.Rand
	hist *history
	mu   sync.Mutex
}

func newWorkload(tb *testbed.Testbed, rng *rand.Rand, hist *history) *workload {
	return &workload{tb: tb, rng: rng, hist: hist}
}

func (w *workload) create(ctx context.Context) error {
	for _, wc := range w.tb.Workloads {
		for _, a := range apps {
			if err := wc.Client.Create(ctx, a.deployment()); err != nil {
				return err
			}
			if a.pdbMinAvail != nil {
				if err := wc.Client.Create(ctx, a.pdb(*a.pdbMinAvail)); err != nil {
					return err
				}
			}
		}
		w.hist.Printf("cluster %s: created %d apps", wc.Name, len(apps))
	}
	return nil
}

func (a app) labels() map[string]string { return map[string]string{"app": a.name, "soak": "true"} }

func (a app) deployment() *appsv1.Deployment {
	spec := corev1.PodSpec{
		NodeSelector:                  map[string]string{v1alpha1.LabelNodePool: a.pool},
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers: []corev1.Container{{
			Name: a.name, Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(a.cpu), corev1.ResourceMemory: resource.MustParse(a.memory),
			}},
		}},
	}
	if a.gpus > 0 {
		spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = *resource.NewQuantity(a.gpus, resource.DecimalSI)
		spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(a.gpus, resource.DecimalSI)}
	}
	if a.spotOnly {
		spec.NodeSelector[v1alpha1.LabelCapacityType] = v1alpha1.CapacityTypeSpot
	}
	if a.zoneSpread {
		spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1alpha1.LabelZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: a.labels()},
		}}
	}
	meta := metav1.ObjectMeta{Labels: a.labels()}
	if a.doNotDisrupt {
		meta.Annotations = map[string]string{"karpenter.sh/do-not-disrupt": "true"}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: a.name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(a.min),
			Selector: &metav1.LabelSelector{MatchLabels: a.labels()},
			Template: corev1.PodTemplateSpec{ObjectMeta: meta, Spec: spec},
		},
	}
}

func (a app) pdb(minAvailable intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: a.name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &minAvailable,
			Selector:     &metav1.LabelSelector{MatchLabels: a.labels()},
		},
	}
}

// churn rescales a random app of a random cluster, and sometimes makes a
// budget allow no eviction (or loosens it again), about every `every`,
// until ctx ends.
func (w *workload) churn(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		w.mu.Lock()
		wait := jitter(w.rng, every)
		wc := w.tb.Workloads[w.rng.IntN(len(w.tb.Workloads))]
		a := apps[w.rng.IntN(len(apps))]
		replicas := a.min + w.rng.Int32N(a.max-a.min+1)
		tighten := a.pdbCanBeTight && w.rng.IntN(3) == 0
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		w.scale(ctx, wc, a, replicas)
		if a.pdbCanBeTight {
			min := *a.pdbMinAvail
			if tighten {
				min = intstr.FromString("100%")
			}
			w.setPDB(ctx, wc, a, min)
		}
	}
}

func (w *workload) scale(ctx context.Context, wc *testbed.Workload, a app, replicas int32) {
	var d appsv1.Deployment
	if err := wc.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: a.name}, &d); err != nil {
		w.hist.Printf("cluster %s: reading Deployment %s: %v", wc.Name, a.name, err)
		return
	}
	if ptr.Deref(d.Spec.Replicas, 0) == replicas {
		return
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To(replicas)
	if err := wc.Client.Patch(ctx, &d, patch); err != nil {
		w.hist.Printf("cluster %s: scaling %s: %v", wc.Name, a.name, err)
		return
	}
	w.hist.Printf("cluster %s: scaled %s to %d", wc.Name, a.name, replicas)
}

func (w *workload) setPDB(ctx context.Context, wc *testbed.Workload, a app, minAvailable intstr.IntOrString) {
	var pdb policyv1.PodDisruptionBudget
	if err := wc.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: a.name}, &pdb); err != nil {
		return
	}
	if pdb.Spec.MinAvailable != nil && *pdb.Spec.MinAvailable == minAvailable {
		return
	}
	patch := client.MergeFrom(pdb.DeepCopy())
	pdb.Spec.MinAvailable = &minAvailable
	if err := wc.Client.Patch(ctx, &pdb, patch); err != nil {
		w.hist.Printf("cluster %s: PDB %s: %v", wc.Name, a.name, err)
		return
	}
	w.hist.Printf("cluster %s: PDB %s now minAvailable %s", wc.Name, a.name, minAvailable.String())
}

// calm loosens every budget for the quiet period, so consolidation may
// reach the fleet a fresh plan would make.
func (w *workload) calm(ctx context.Context) {
	for _, wc := range w.tb.Workloads {
		for _, a := range apps {
			if a.pdbCanBeTight {
				w.setPDB(ctx, wc, a, *a.pdbMinAvail)
			}
		}
	}
}

// jitter is every ± half of it.
func jitter(rng *rand.Rand, every time.Duration) time.Duration {
	return every/2 + time.Duration(rng.Int64N(int64(every)))
}
