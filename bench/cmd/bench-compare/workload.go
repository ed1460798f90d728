package main

// The pod generators below are copied (the package-level rand source is
// re-seeded per size, see newWorkload, and the loop the four generators
// repeated is one function, makePods) from Karpenter's own scheduling
// benchmark:
//
//	sigs.k8s.io/karpenter@v1.15.0/pkg/controllers/provisioning/scheduling/scheduling_benchmark_test.go
//
// They live in a _test.go file there, so they cannot be imported. The order
// of the calls to r (label, selector label, cpu, memory; evaluated in the
// order the composite literals name them) is unchanged, so for a given count
// the pods get the same labels, selectors and requests as Karpenter's
// BenchmarkScheduling<count> run on its own (go test -bench=Scheduling5000
// starts from a fresh rand.NewSource(42); we re-seed before every size to
// match that, where Karpenter's package-level r would carry over between
// sizes run in one process). Names and UIDs come from test.RandomName and
// uuid.NewUUID, which are random there as here.

import (
	"fmt"
	"math/rand"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/cloudprovider/fake"
	"sigs.k8s.io/karpenter/pkg/test"
)

//nolint:gosec
var r = rand.New(rand.NewSource(42))

// workload is one size of Karpenter's benchmark: its pods, its NodePool and
// its 400 fake instance types. Both schedulers see these same objects.
type workload struct {
	pods          []*corev1.Pod
	nodePool      *v1.NodePool
	instanceTypes []*cloudprovider.InstanceType
}

func newWorkload(count int) *workload {
	r = rand.New(rand.NewSource(42)) //nolint:gosec
	pods := makeDiversePods(count)
	// As setupScheduler in scheduling_benchmark_test.go.
	nodePool := test.NodePool(v1.NodePool{
		Spec: v1.NodePoolSpec{
			Limits: v1.Limits{
				corev1.ResourceCPU:    resource.MustParse("10000000"),
				corev1.ResourceMemory: resource.MustParse("10000000Gi"),
			},
		},
	})
	return &workload{pods: pods, nodePool: nodePool, instanceTypes: fake.InstanceTypes(400)}
}

// ---- from scheduling_benchmark_test.go (Karpenter v1.15.0) ----

func makeDiversePods(count int) []*corev1.Pod {
	var pods []*corev1.Pod
	numTypes := 5
	pods = append(pods, makeGenericPods(count/numTypes)...)
	pods = append(pods, makeTopologySpreadPods(count/numTypes, corev1.LabelTopologyZone)...)
	pods = append(pods, makeTopologySpreadPods(count/numTypes, corev1.LabelHostname)...)
	pods = append(pods, makePodAffinityPods(count/numTypes, corev1.LabelTopologyZone)...)
	pods = append(pods, makePodAntiAffinityPods(count/numTypes, corev1.LabelHostname)...)

	// fill out due to count being not evenly divisible with generic pods
	nRemaining := count - len(pods)
	pods = append(pods, makeGenericPods(nRemaining)...)
	return pods
}

// makePods is the pod-building loop the four generators below shared,
// each as a copy of the others: shape sets a pod's labels and constraint,
// then its cpu and memory are drawn. Karpenter's composite literals call r
// in that same order (label, selector label, cpu, memory), so the pods
// are the ones its benchmark builds.
func makePods(count int, shape func(*test.PodOptions)) []*corev1.Pod {
	var pods []*corev1.Pod
	for i := 0; i < count; i++ {
		var o test.PodOptions
		shape(&o)
		o.UID = uuid.NewUUID() // set the UUID so the cached data is properly stored in the scheduler
		o.ResourceRequirements = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    randomCPU(),
				corev1.ResourceMemory: randomMemory(),
			},
		}
		pods = append(pods, test.Pod(o))
	}
	return pods
}

func makePodAntiAffinityPods(count int, key string) []*corev1.Pod {
	// all of these pods have anti-affinity to each other
	labels := map[string]string{
		"app": "nginx",
	}
	return makePods(count, func(o *test.PodOptions) {
		o.Labels = labels
		o.PodAntiRequirements = []corev1.PodAffinityTerm{
			{
				LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
				TopologyKey:   key,
			},
		}
	})
}

func makePodAffinityPods(count int, key string) []*corev1.Pod {
	return makePods(count, func(o *test.PodOptions) {
		// We use self-affinity here because using affinity that relies on other pod
		// domains doens't guarantee that all pods can schedule. In the case where you are not
		// using self-affinity and the domain doesn't exist, scheduling will fail for all pods with
		// affinities against this domain
		labels := randomAffinityLabels()
		o.Labels = labels
		o.PodRequirements = []corev1.PodAffinityTerm{
			{
				LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
				TopologyKey:   key,
			},
		}
	})
}

func makeTopologySpreadPods(count int, key string) []*corev1.Pod {
	return makePods(count, func(o *test.PodOptions) {
		o.Labels = randomLabels()
		o.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
			{
				MaxSkew:           1,
				TopologyKey:       key,
				WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{
					MatchLabels: randomLabels(),
				},
			},
		}
	})
}

func makeGenericPods(count int) []*corev1.Pod {
	return makePods(count, func(o *test.PodOptions) {
		o.Labels = randomLabels()
	})
}

func randomAffinityLabels() map[string]string {
	return map[string]string{
		"my-affininity": randomLabelValue(),
	}
}

func randomLabels() map[string]string {
	return map[string]string{
		"my-label": randomLabelValue(),
	}
}

func randomLabelValue() string {
	labelValues := []string{"a", "b", "c", "d", "e", "f", "g"}
	return labelValues[r.Intn(len(labelValues))]
}

func randomMemory() resource.Quantity {
	mem := []int{100, 256, 512, 1024, 2048, 4096}
	return resource.MustParse(fmt.Sprintf("%dMi", mem[r.Intn(len(mem))]))
}

func randomCPU() resource.Quantity {
	cpu := []int{100, 250, 500, 1000, 1500}
	return resource.MustParse(fmt.Sprintf("%dm", cpu[r.Intn(len(cpu))]))
}

// ---- end of copy ----
