package solver_test

import (
	"fmt"
	. "github.com/joinery-dev/joinery/solver"
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver/internal/check"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var testZones = []string{"zone-a", "zone-b", "zone-c"}

// itype builds an instance type offered in every test zone, on-demand at
// price and spot at 70% of it.
func itype(name string, cpu, memGi int, price float64, mods ...func(*InstanceType)) *InstanceType {
	it := &InstanceType{
		Name: name,
		Labels: map[string]string{
			v1alpha1.LabelInstanceType: name,
			v1alpha1.LabelArch:         "amd64",
			v1alpha1.LabelOS:           "linux",
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily:     "m5",
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCPU:        fmt.Sprint(cpu),
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceMemory:     fmt.Sprint(memGi * 1024),
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceGPUCount:   "0",
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceCategory:   "m",
			v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceGeneration: "5",
		},
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(cpu), resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(int64(memGi)<<30, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		},
	}
	it.Allocatable = it.Capacity.DeepCopy()
	for _, z := range testZones {
		it.Offerings = append(it.Offerings,
			Offering{Zone: z, ZoneID: z + "-id", CapacityType: v1alpha1.CapacityTypeOnDemand, PricePerHour: price, Available: true},
			Offering{Zone: z, ZoneID: z + "-id", CapacityType: v1alpha1.CapacityTypeSpot, PricePerHour: price * 0.7, Available: true})
	}
	for _, m := range mods {
		m(it)
	}
	return it
}

func withArch(arch string) func(*InstanceType) {
	return func(it *InstanceType) { it.Labels[v1alpha1.LabelArch] = arch }
}

func withFamily(f string) func(*InstanceType) {
	return func(it *InstanceType) { it.Labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily] = f }
}

func withGPU(n int) func(*InstanceType) {
	return func(it *InstanceType) {
		q := *resource.NewQuantity(int64(n), resource.DecimalSI)
		it.Capacity["nvidia.com/gpu"] = q
		it.Allocatable["nvidia.com/gpu"] = q
		it.Labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceGPUCount] = fmt.Sprint(n)
	}
}

// standardTypes: a small m5-like ladder (price ~ linear in size).
func standardTypes() []*InstanceType {
	return []*InstanceType{
		itype("m.large", 2, 8, 0.10),
		itype("m.xlarge", 4, 16, 0.20),
		itype("m.2xlarge", 8, 32, 0.40),
		itype("m.4xlarge", 16, 64, 0.80),
		itype("c.large", 2, 4, 0.085, withFamily("c5")),
		itype("c.xlarge", 4, 8, 0.17, withFamily("c5")),
		itype("g.xlarge", 4, 16, 0.80, withFamily("g5"), withGPU(1)),
		itype("g.2xlarge", 8, 32, 1.50, withFamily("g5"), withGPU(2)),
		itype("a.large", 2, 8, 0.09, withArch("arm64"), withFamily("m6g")),
		itype("a.xlarge", 4, 16, 0.18, withArch("arm64"), withFamily("m6g")),
	}
}

func onDemandAndSpot() Requirements {
	return Requirements{{Key: v1alpha1.LabelCapacityType, Operator: OpIn, Values: []string{"spot", "on-demand"}}}
}

func onDemandOnly() Requirements {
	return Requirements{{Key: v1alpha1.LabelCapacityType, Operator: OpIn, Values: []string{"on-demand"}}}
}

func testPool(name string, types []*InstanceType, mods ...func(*Pool)) *Pool {
	p := &Pool{Name: name, Requirements: onDemandOnly(), InstanceTypes: types}
	for _, m := range mods {
		m(p)
	}
	return p
}

type podOpt func(*corev1.Pod)

func testPod(name, cpu, mem string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-default-" + name), Labels: map[string]string{}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		}}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func pods(n int, prefix, cpu, mem string, opts ...podOpt) []*corev1.Pod {
	var out []*corev1.Pod
	for i := 0; i < n; i++ {
		out = append(out, testPod(fmt.Sprintf("%s-%d", prefix, i), cpu, mem, opts...))
	}
	return out
}

func withLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withNodeSelector(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func affinity(p *corev1.Pod) *corev1.Affinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	return p.Spec.Affinity
}

func withRequiredTerms(terms ...[]corev1.NodeSelectorRequirement) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		a.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}
		for _, t := range terms {
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(
				a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
		}
	}
}

func withPreferred(weight int32, reqs ...corev1.NodeSelectorRequirement) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.NodeAffinity == nil {
			a.NodeAffinity = &corev1.NodeAffinity{}
		}
		a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: reqs}})
	}
}

func nsr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func withSpread(key string, maxSkew int32, when corev1.UnsatisfiableConstraintAction, match map[string]string, mods ...func(*corev1.TopologySpreadConstraint)) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: match}}
		for _, m := range mods {
			m(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func podTerm(key string, match map[string]string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: match}}
}

func withAntiAffinity(key string, match map[string]string) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAntiAffinity == nil {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, podTerm(key, match))
	}
}

func withPodAffinity(key string, match map[string]string) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAffinity == nil {
			a.PodAffinity = &corev1.PodAffinity{}
		}
		a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, podTerm(key, match))
	}
}

func withToleration(key, value string, effect corev1.TaintEffect) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpEqual, Value: value, Effect: effect})
	}
}

func withHostPort(port int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port})
	}
}

func withGPURequest(n int64) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = *resource.NewQuantity(n, resource.DecimalSI)
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(n, resource.DecimalSI)}
	}
}

// existingNode builds a ready node with the given allocatable and labels.
func existingNode(name, zone string, cpu, memGi int, bound []*corev1.Pod, mods ...func(*Node)) *Node {
	n := &Node{Node: &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelHostname: name, v1alpha1.LabelZone: zone, v1alpha1.LabelArch: "amd64",
			v1alpha1.LabelCapacityType: "on-demand", v1alpha1.LabelInstanceType: "m.existing",
		}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(cpu), resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(int64(memGi)<<30, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		}},
	}, Pods: bound}
	for _, p := range bound {
		p.Spec.NodeName = name
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func daemonSet(name, cpu, mem string, mods ...func(*corev1.PodSpec)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: "ds", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}}
	for _, m := range mods {
		m(&ds.Spec.Template.Spec)
	}
	return ds
}

// solveChecked solves and runs the independent checker.
func solveChecked(t testing.TB, snap *Snapshot, opts ...Options) *Plan {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	plan, err := Solve(snap, o)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	for _, err := range check.Plan(snap, plan) {
		t.Errorf("invalid plan: %v", err)
	}
	if plan.LowerBoundPricePerHour > plan.TotalPricePerHour+1e-9 {
		t.Errorf("lower bound %v > total %v", plan.LowerBoundPricePerHour, plan.TotalPricePerHour)
	}
	return plan
}

func nodeOf(plan *Plan, pod *corev1.Pod) string {
	for _, p := range plan.Order {
		if p.Pod == pod {
			return p.NodeName
		}
	}
	return ""
}

func newNodeByName(plan *Plan, name string) *NewNode {
	for _, n := range plan.NewNodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}
