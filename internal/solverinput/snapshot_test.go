package solverinput

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/solver"
)

func usEast1(t *testing.T) []cloud.InstanceTypeOfferings {
	t.Helper()
	catalog, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	offered, err := catalog.RegionOfferings("us-east-1", cloud.WithZones("us-east-1a", "us-east-1b", "us-east-1c"))
	if err != nil {
		t.Fatal(err)
	}
	return offered
}

func nodePool(name string, mutate func(*v1alpha1.NodePool)) *v1alpha1.NodePool {
	np := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1alpha1.NodePoolSpec{
			ClusterName: "c1",
			Template: v1alpha1.NodeClaimTemplate{
				ObjectMeta: v1alpha1.TemplateMetadata{Labels: map[string]v1alpha1.LabelValue{"team": "a"}},
				Spec: v1alpha1.NodeClaimSpec{
					Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{"spot"}, MinValues: ptr.To(1)}},
					Taints:       []v1alpha1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}},
				},
			},
		},
	}
	if mutate != nil {
		mutate(np)
	}
	return np
}

func TestPoolCarriesTheNodePoolsPolicy(t *testing.T) {
	offered := usEast1(t)
	np := nodePool("gpu", func(np *v1alpha1.NodePool) {
		np.Spec.Weight = ptr.To[int32](40)
		np.Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), v1alpha1.LimitPricePerHour: resource.MustParse("12.5")}
	})
	pool, err := Pool(np, offered, NodeModel{}, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}, 1.25)
	if err != nil {
		t.Fatal(err)
	}
	if pool.Name != "gpu" || pool.Weight != 40 || pool.Labels["team"] != "a" || len(pool.Taints) != 1 || pool.Taints[0].Key != "gpu" {
		t.Errorf("pool policy lost: %+v", pool)
	}
	if len(pool.Requirements) != 1 || pool.Requirements[0].Operator != "In" || *pool.Requirements[0].MinValues != 1 {
		t.Errorf("requirements: %+v", pool.Requirements)
	}
	if pool.PricePerHourLimit == nil || *pool.PricePerHourLimit != 12.5 {
		t.Errorf("pricePerHour limit: %v", pool.PricePerHourLimit)
	}
	if _, ok := pool.Limits[v1alpha1.LimitPricePerHour]; ok || pool.Limits.Cpu().Value() != 64 {
		t.Errorf("resource limits must hold cpu only: %v", pool.Limits)
	}
	if pool.InUse.Cpu().Value() != 8 || pool.InUsePricePerHour != 1.25 {
		t.Errorf("in use: %v %v", pool.InUse, pool.InUsePricePerHour)
	}
	if len(pool.InstanceTypes) < 500 {
		t.Errorf("only %d instance types offered in us-east-1", len(pool.InstanceTypes))
	}
}

// New nodes carry the EBS CSI driver's attach limit where the catalog
// tells it (cloud.EBSVolumeLimit), and existing nodes' CSINodes reach the
// solver, so a pod's EBS claims count against both.
func TestVolumeLimitsReachTheSolver(t *testing.T) {
	offered := usEast1(t)
	pool, err := Pool(nodePool("general", nil), offered, NodeModel{}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]map[string]int{}
	for _, it := range pool.InstanceTypes {
		limits[it.Name] = it.VolumeLimits
	}
	if got := limits["m5.large"][cloud.EBSCSIDriver]; got != 26 {
		t.Errorf("m5.large EBS limit %d, want 26", got)
	}
	if _, ok := limits["m5.metal"][cloud.EBSCSIDriver]; ok {
		t.Errorf("m5.metal has an EBS limit the catalog cannot tell: %v", limits["m5.metal"])
	}
	csiNode := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	snap, err := Snapshot(Objects{CSINodes: []*storagev1.CSINode{csiNode}}, offered, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.CSINodes) != 1 || snap.CSINodes[0] != csiNode {
		t.Errorf("CSINodes %v, want the one given", snap.CSINodes)
	}
}

func TestKubeletMaxPodsShapesAllocatable(t *testing.T) {
	offered := usEast1(t)
	pods := func(np *v1alpha1.NodePool, name string) int64 {
		pool, err := Pool(np, offered, NodeModel{}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range pool.InstanceTypes {
			if it.Name == name {
				return it.Allocatable.Pods().Value()
			}
		}
		t.Fatalf("%s not offered", name)
		return 0
	}
	// A kubeadm node's kubelet takes 110 pods by default; before, this was
	// the EKS AMI's ENI limit (58).
	if got := pods(nodePool("default", nil), "m5.xlarge"); got != 110 {
		t.Errorf("m5.xlarge default pods %d, want the kubelet's 110", got)
	}
	capped := nodePool("capped", func(np *v1alpha1.NodePool) {
		np.Spec.Template.Spec.Kubelet = &v1alpha1.KubeletConfiguration{MaxPods: ptr.To[int32](20)}
	})
	if got := pods(capped, "m5.xlarge"); got != 20 {
		t.Errorf("m5.xlarge with maxPods 20 has %d pods", got)
	}
}

func TestSnapshotSplitsPendingFromBoundAndCountsPoolUsage(t *testing.T) {
	offered := usEast1(t)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
			v1alpha1.LabelNodePool: "general", v1alpha1.LabelInstanceType: "m5.large",
			v1alpha1.LabelZone: "us-east-1a", v1alpha1.LabelCapacityType: "on-demand",
		}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
	}
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending"}}
	bound := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "done"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	snap, err := Snapshot(Objects{
		Pods: []*corev1.Pod{pending, bound, done}, Nodes: []*corev1.Node{node},
		NodePools: []*v1alpha1.NodePool{nodePool("general", nil)}, InFlight: map[string]bool{"n1": true},
	}, offered, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Pods) != 1 || snap.Pods[0] != pending {
		t.Errorf("pending pods: %v", snap.Pods)
	}
	if len(snap.Nodes) != 1 || len(snap.Nodes[0].Pods) != 1 || snap.Nodes[0].Pods[0] != bound || !snap.Nodes[0].InFlight || snap.Nodes[0].Pool != "general" {
		t.Errorf("nodes: %+v", snap.Nodes[0])
	}
	pool := snap.Pools[0]
	if pool.InUse.Cpu().Value() != 2 || pool.InUsePricePerHour != 0.096 {
		t.Errorf("general in use: cpu %v, $%v/h; want 2 and m5.large's on-demand 0.096", pool.InUse.Cpu(), pool.InUsePricePerHour)
	}
}

// Karpenter: utils/pod/scheduling.go IsProvisionable (a preempting pod, one
// with status.nominatedNodeName, is not provisionable).
func TestSnapshotCountsNominatedPodsOnTheirNode(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	nominated := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nominated"}, Status: corev1.PodStatus{NominatedNodeName: "n1"}}
	elsewhere := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Status: corev1.PodStatus{NominatedNodeName: "gone"}}
	snap, err := Snapshot(Objects{Pods: []*corev1.Pod{nominated, elsewhere}, Nodes: []*corev1.Node{node}}, usEast1(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Pods) != 1 || snap.Pods[0] != elsewhere {
		t.Errorf("pending pods: %v, want only the one nominated to an unknown node", snap.Pods)
	}
	if len(snap.Nodes[0].Pods) != 1 || snap.Nodes[0].Pods[0] != nominated {
		t.Errorf("n1 pods: %v, want the pod nominated to it", snap.Nodes[0].Pods)
	}
}

func TestSnapshotRejectsTwoPoolsOfOneName(t *testing.T) {
	a, b := nodePool("general", nil), nodePool("general", nil)
	b.Namespace = "other"
	if _, err := Snapshot(Objects{NodePools: []*v1alpha1.NodePool{a, b}}, usEast1(t), nil); err == nil {
		t.Error("two pools named general in different namespaces were accepted")
	}
}

// Overlays reach the solver through Snapshot: the offerings they select
// carry the overlaid price (and the overlay's name), other pools keep list
// prices, and a pool's machines count against its pricePerHour limit at the
// overlaid price. Karpenter: nodeoverlay suite "should only apply override
// for nodepool that defined in the overlay requirements", applied through
// the provisioner's instance types.
func TestSnapshotAppliesOverlays(t *testing.T) {
	offered := usEast1(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
		v1alpha1.LabelNodePool: "general", v1alpha1.LabelInstanceType: "m5.large",
		v1alpha1.LabelZone: "us-east-1a", v1alpha1.LabelCapacityType: "on-demand",
	}}}
	half := "-50%"
	snap, err := Snapshot(Objects{
		Nodes:     []*corev1.Node{node},
		NodePools: []*v1alpha1.NodePool{nodePool("general", nil), nodePool("other", nil)},
		Overlays: []*v1alpha1.NodeOverlay{{
			ObjectMeta: metav1.ObjectMeta{Name: "savings-plan"},
			Spec: v1alpha1.NodeOverlaySpec{PriceAdjustment: &half, Requirements: []v1alpha1.NodeOverlayRequirement{
				{Key: v1alpha1.LabelKarpenterNodePool, Operator: v1alpha1.OpIn, Values: []string{"general"}},
				{Key: "karpenter.k8s.aws/instance-family", Operator: v1alpha1.OpIn, Values: []string{"m5"}},
			}},
		}},
	}, offered, nil)
	if err != nil {
		t.Fatal(err)
	}
	price := func(pool int, typ, zone, ct string) (float64, string) {
		for _, it := range snap.Pools[pool].InstanceTypes {
			if it.Name != typ {
				continue
			}
			for _, o := range it.Offerings {
				if o.Zone == zone && o.CapacityType == ct {
					return o.PricePerHour, o.PriceOverlay
				}
			}
		}
		t.Fatalf("%s %s %s not offered", typ, zone, ct)
		return 0, ""
	}
	if p, by := price(0, "m5.large", "us-east-1a", "on-demand"); p != 0.048 || by != "savings-plan" {
		t.Errorf("general m5.large on-demand: $%v by %q, want 0.048 by savings-plan", p, by)
	}
	if p, by := price(0, "c5.large", "us-east-1a", "on-demand"); by != "" || p != 0.085 {
		t.Errorf("general c5.large: $%v by %q, want the list 0.085", p, by)
	}
	if p, by := price(1, "m5.large", "us-east-1a", "on-demand"); p != 0.096 || by != "" {
		t.Errorf("other m5.large: $%v by %q, want the list price", p, by)
	}
	if got := snap.Pools[0].InUsePricePerHour; got != 0.048 {
		t.Errorf("general in use $%v/h, want the overlaid 0.048", got)
	}
}

// A machine launched for a pod that asks for an extended resource a
// NodeOverlay adds is room for that resource while it boots: the next
// plan puts a second such pod there instead of launching again.
// Karpenter: nodeoverlay "should apply capacity adjustments for instances
// types", as its scheduler counts an in-flight NodeClaim's overlaid
// capacity.
func TestInFlightNodesHaveTheOverlaidCapacity(t *testing.T) {
	const fuse = corev1.ResourceName("smarter-devices/fuse")
	booting := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "general-abc", Labels: map[string]string{
			v1alpha1.LabelNodePool: "general", v1alpha1.LabelInstanceType: "m5.xlarge",
			v1alpha1.LabelZone: "us-east-1a", v1alpha1.LabelCapacityType: "spot", v1alpha1.LabelHostname: "general-abc",
			v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux", "team": "a",
		}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("3900m"), corev1.ResourceMemory: resource.MustParse("14Gi"), corev1.ResourcePods: resource.MustParse("110"),
		}},
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
			Tolerations: []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1"), fuse: resource.MustParse("1"),
			}}}},
		}}
	}
	bound := pod("first")
	bound.Spec.NodeName = booting.Name
	objs := Objects{
		Pods: []*corev1.Pod{bound, pod("second")}, Nodes: []*corev1.Node{booting},
		NodePools: []*v1alpha1.NodePool{nodePool("general", nil)}, InFlight: map[string]bool{booting.Name: true},
		Overlays: []*v1alpha1.NodeOverlay{{ObjectMeta: metav1.ObjectMeta{Name: "fuse"}, Spec: v1alpha1.NodeOverlaySpec{
			Capacity: corev1.ResourceList{fuse: resource.MustParse("4")},
		}}},
	}
	snap, err := Snapshot(objs, usEast1(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := solver.Solve(snap, solver.Options{SkipLowerBound: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NewNodes) != 0 || len(plan.Existing) != 1 || plan.Existing[0].NodeName != booting.Name {
		t.Errorf("new nodes %d, placed on existing %+v, unschedulable %v; want the second pod on the booting machine", len(plan.NewNodes), plan.Existing, plan.Unschedulable)
	}
	if _, ok := booting.Status.Allocatable[fuse]; ok {
		t.Error("the input Node (the cache's) was modified")
	}
}

// The catalog offers every active reservation of the region; each pool
// plans with those its capacityReservationSelectorTerms select, as
// Karpenter's EC2NodeClass resolves its terms, with the count each holds.
func TestPoolsGetTheReservationsTheirTermsSelect(t *testing.T) {
	catalog, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	catalog = catalog.WithCapacityReservations("us-east-1", []cloud.CapacityReservation{
		{ID: "cr-ml", OwnerID: "111111111111", InstanceType: "m5.large", Region: "us-east-1", ZoneID: "use1-az1", Type: "default", Total: 4, Available: 3, State: "active", Tags: map[string]string{"team": "ml"}},
		{ID: "cr-web", OwnerID: "111111111111", InstanceType: "m5.large", Region: "us-east-1", ZoneID: "use1-az1", Type: "capacity-block", Total: 2, Available: 2, State: "active", Tags: map[string]string{"team": "web"}},
	})
	offered, err := catalog.RegionOfferings("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	reserved := func(terms ...v1alpha1.CapacityReservationSelectorTerm) map[string]string {
		np := nodePool("p", func(np *v1alpha1.NodePool) { np.Spec.Template.Spec.CapacityReservationSelectorTerms = terms })
		pool, err := Pool(np, offered, NodeModel{}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, it := range pool.InstanceTypes {
			for _, o := range it.Offerings {
				if o.CapacityType == v1alpha1.CapacityTypeReserved {
					out[o.ReservationID] = fmt.Sprintf("%s %s %s %d", it.Name, o.Zone, o.ReservationType, o.ReservationCapacity)
				}
			}
		}
		return out
	}
	for _, tc := range []struct {
		rule  string
		terms []v1alpha1.CapacityReservationSelectorTerm
		want  map[string]string
	}{
		{"no terms, no reservation", nil, map[string]string{}},
		{"by id", []v1alpha1.CapacityReservationSelectorTerm{{ID: "cr-web"}}, map[string]string{"cr-web": "m5.large us-east-1a capacity-block 2"}},
		{"by tag", []v1alpha1.CapacityReservationSelectorTerm{{Tags: map[string]string{"team": "ml"}}}, map[string]string{"cr-ml": "m5.large us-east-1a default 3"}},
		{"any term", []v1alpha1.CapacityReservationSelectorTerm{{Tags: map[string]string{"team": "*"}, OwnerID: "111111111111"}},
			map[string]string{"cr-ml": "m5.large us-east-1a default 3", "cr-web": "m5.large us-east-1a capacity-block 2"}},
	} {
		if got := reserved(tc.terms...); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: reserved offerings %v, want %v", tc.rule, got, tc.want)
		}
	}
}
