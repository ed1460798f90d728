package solver_test

import (
	"fmt"
	"testing"

	. "github.com/joinery-dev/joinery/solver"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// byteReader turns fuzz bytes into choices; exhausted input reads zeros.
type byteReader struct {
	data []byte
	pos  int
}

func (r *byteReader) next() int {
	if r.pos >= len(r.data) {
		return 0
	}
	b := r.data[r.pos]
	r.pos++
	return int(b)
}

func (r *byteReader) pick(n int) int { return r.next() % n }

// fuzzSnapshot builds a random but well-formed workload: pools with taints,
// limits and capacity-type requirements, existing nodes with bound pods,
// daemonsets, and pods mixing every supported constraint.
func fuzzSnapshot(data []byte) *Snapshot {
	r := &byteReader{data: data}
	snap := &Snapshot{}
	types := standardTypes()
	nPools := 1 + r.pick(3)
	for i := 0; i < nPools; i++ {
		p := testPool(fmt.Sprintf("pool%d", i), types)
		p.Weight = int32(r.pick(3))
		if r.pick(2) == 0 {
			p.Requirements = onDemandAndSpot()
		}
		if r.pick(4) == 0 {
			p.Taints = []corev1.Taint{{Key: "team", Value: "x", Effect: corev1.TaintEffectNoSchedule}}
		}
		if r.pick(4) == 0 {
			p.Limits = corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(int64(4+r.pick(40)), resource.DecimalSI)}
		}
		if r.pick(5) == 0 {
			limit := 0.2 + float64(r.pick(20))/10
			p.PricePerHourLimit = &limit
		}
		if r.pick(5) == 0 {
			p.Requirements = append(p.Requirements, Requirement{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily,
				Operator: OpExists, MinValues: ptr(1 + r.pick(3))})
		}
		if r.pick(5) == 0 {
			p.Requirements = append(p.Requirements, Requirement{Key: v1alpha1.LabelArch, Operator: OpIn, Values: []string{"amd64"}})
		}
		snap.Pools = append(snap.Pools, p)
	}
	if r.pick(3) == 0 {
		snap.DaemonSets = append(snap.DaemonSets, daemonSet("ds", fmt.Sprintf("%dm", 50+r.pick(400)), "128Mi"))
	}
	snap.Unavailable = UnavailableOfferings{}
	for i := r.pick(4); i > 0; i-- {
		it := types[r.pick(len(types))]
		o := it.Offerings[r.pick(len(it.Offerings))]
		snap.Unavailable[OfferingKey{InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType}] = struct{}{}
	}
	apps := []string{"web", "db", "cache"}
	for i := r.pick(3); i > 0; i-- {
		var bound []*corev1.Pod
		for j := r.pick(3); j > 0; j-- {
			bp := testPod(fmt.Sprintf("bound-%d-%d", i, j), "200m", "256Mi", withLabels("app", apps[r.pick(3)]))
			if r.pick(4) == 0 {
				withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": apps[r.pick(3)]})(bp)
			}
			bound = append(bound, bp)
		}
		snap.Nodes = append(snap.Nodes, existingNode(fmt.Sprintf("node-%d", i), testZones[r.pick(3)], 2+r.pick(6), 4+r.pick(12), bound))
	}
	cpus := []string{"100m", "250m", "500m", "1", "1500m", "3"}
	mems := []string{"128Mi", "512Mi", "1Gi", "2Gi", "6Gi"}
	nGroups := 1 + r.pick(6)
	for gi := 0; gi < nGroups; gi++ {
		app := apps[r.pick(3)]
		opts := []podOpt{withLabels("app", app)}
		switch r.pick(12) {
		case 0:
			opts = append(opts, withSpread(v1alpha1.LabelZone, int32(1+r.pick(2)), corev1.DoNotSchedule, map[string]string{"app": app}))
		case 1:
			opts = append(opts, withSpread(v1alpha1.LabelHostname, int32(1+r.pick(2)), corev1.DoNotSchedule, map[string]string{"app": app}))
		case 2:
			opts = append(opts, withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": app}))
		case 3:
			opts = append(opts, withAntiAffinity(v1alpha1.LabelZone, map[string]string{"app": app}))
		case 4:
			opts = append(opts, withPodAffinity(v1alpha1.LabelZone, map[string]string{"app": app}))
		case 5:
			opts = append(opts, withPodAffinity(v1alpha1.LabelHostname, map[string]string{"app": apps[r.pick(3)]}))
		case 6:
			opts = append(opts, withSpread(v1alpha1.LabelCapacityType, 1, corev1.DoNotSchedule, map[string]string{"app": app}))
		case 7:
			opts = append(opts, withHostPort(int32(8000+r.pick(2))))
		}
		switch r.pick(8) {
		case 0:
			opts = append(opts, withNodeSelector(v1alpha1.LabelArch, []string{"amd64", "arm64"}[r.pick(2)]))
		case 1:
			opts = append(opts, withNodeSelector(v1alpha1.LabelZone, testZones[r.pick(3)]))
		case 2:
			opts = append(opts, withPreferred(10, nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, testZones[r.pick(3)])))
		case 3:
			opts = append(opts, withToleration("team", "x", corev1.TaintEffectNoSchedule))
		case 4:
			opts = append(opts, withGPURequest(int64(1+r.pick(2))))
		case 5:
			opts = append(opts, withRequiredTerms(
				[]corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelArch, corev1.NodeSelectorOpIn, "riscv")},
				[]corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")}))
		}
		n := 1 + r.pick(12)
		snap.Pods = append(snap.Pods, pods(n, fmt.Sprintf("g%d", gi), cpus[r.pick(len(cpus))], mems[r.pick(len(mems))], opts...)...)
	}
	return snap
}

func FuzzSolve(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("zone spread and anti affinity with limits and daemonsets"))
	for i := 0; i < 32; i++ {
		seed := make([]byte, 48)
		for j := range seed {
			seed[j] = byte((i*31 + j*17) % 251)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap := fuzzSnapshot(data)
		solveChecked(t, snap)
	})
}
