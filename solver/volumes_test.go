package solver_test

import (
	"fmt"
	"testing"

	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testDriver = "ebs.csi.aws.com"

// withClaims mounts the named claims.
func withClaims(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: n,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: n}}})
		}
	}
}

// addClaims adds unbound claims of a class whose provisioner is driver.
func addClaims(s *Snapshot, driver string, names ...string) {
	class := "class-" + driver
	found := false
	for _, sc := range s.StorageClasses {
		found = found || sc.Name == class
	}
	if !found {
		s.StorageClasses = append(s.StorageClasses, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: driver})
	}
	for _, n := range names {
		s.PersistentVolumeClaims = append(s.PersistentVolumeClaims, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default"},
			Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: &class}})
	}
}

func csiNode(name string, limits map[string]int32) *storagev1.CSINode {
	cn := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for d, l := range limits {
		cn.Spec.Drivers = append(cn.Spec.Drivers, storagev1.CSINodeDriver{Name: d, NodeID: name,
			Allocatable: &storagev1.VolumeNodeResources{Count: ptr(l)}})
	}
	return cn
}

func withVolumeLimit(driver string, limit int) func(*InstanceType) {
	return func(it *InstanceType) {
		if it.VolumeLimits == nil {
			it.VolumeLimits = map[string]int{}
		}
		it.VolumeLimits[driver] = limit
	}
}

// podsWithClaims makes n pods, each with its own k claims on driver.
func podsWithClaims(s *Snapshot, n, k int, driver, prefix string) []*corev1.Pod {
	var out []*corev1.Pod
	for i := 0; i < n; i++ {
		var names []string
		for j := 0; j < k; j++ {
			names = append(names, fmt.Sprintf("%s-%d-%d", prefix, i, j))
		}
		addClaims(s, driver, names...)
		out = append(out, testPod(fmt.Sprintf("%s-%d", prefix, i), "100m", "100Mi", withClaims(names...)))
	}
	return out
}

func volumeLimitedTypes(limit int) []*InstanceType {
	return []*InstanceType{itype("m.4xlarge", 16, 64, 0.80, withVolumeLimit(testDriver, limit))}
}

// volumeCases follow Karpenter v1.15.0's scheduling suite, "Volume Limits"
// (pkg/controllers/provisioning/scheduling/suite_test.go).
var volumeCases = []ruleCase{
	// Karpenter: "should launch multiple nodes if required due to volume limits": an existing
	// node whose CSINode allows 10 volumes takes 5 pods of 2 claims each; the 6th needs a new node.
	{name: "an existing node's CSINode count limits its volumes",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", standardTypes())}}
			s.Pods = podsWithClaims(s, 6, 2, testDriver, "p")
			s.Nodes = []*Node{existingNode("big", "zone-a", 64, 256, nil)}
			s.CSINodes = []*storagev1.CSINode{csiNode("big", map[string]int32{testDriver: 10})}
			return s
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			onBig := 0
			for _, pod := range s.Pods {
				if nodeOf(p, pod) == "big" {
					onBig++
				}
			}
			if onBig != 5 {
				t.Fatalf("%d pods on the existing node, want 5 (10 volumes / 2 each)", onBig)
			}
		}},
	{name: "volumes already attached on an existing node count, each claim once",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", standardTypes())}}
			addClaims(s, testDriver, "old-a", "old-b")
			bound := []*corev1.Pod{
				testPod("old-1", "100m", "100Mi", withClaims("old-a", "old-b")),
				testPod("old-2", "100m", "100Mi", withClaims("old-a")),
			}
			s.Pods = podsWithClaims(s, 3, 1, testDriver, "p")
			s.Nodes = []*Node{existingNode("big", "zone-a", 64, 256, bound)}
			s.CSINodes = []*storagev1.CSINode{csiNode("big", map[string]int32{testDriver: 4})}
			return s
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			// old-a and old-b take 2 of 4: two new pods fit, the third opens a node.
			wantNodes(t, p, 1)
		}},
	// Karpenter: "should launch a single node if all pods use the same PVC".
	{name: "pods sharing one claim fit together",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", volumeLimitedTypes(10))}}
			addClaims(s, testDriver, "shared")
			s.Pods = pods(30, "p", "100m", "100Mi", withClaims("shared"))
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	// Karpenter: "should launch enough nodes for all pods in a single scheduling loop" and
	// "should account for pods with multiple volumes" (instance type limits on new nodes).
	{name: "a new node's type limits its volumes",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", volumeLimitedTypes(10))}}
			s.Pods = podsWithClaims(s, 12, 2, testDriver, "p")
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 3) }},
	// Karpenter: "should not limit volumes for drivers without a declared limit".
	{name: "a driver without a declared limit takes any number",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", volumeLimitedTypes(10))}}
			s.Pods = podsWithClaims(s, 12, 2, "efs.csi.aws.com", "p")
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	// Karpenter: "should not schedule pods which exceed the volume limits of every instance type".
	{name: "a pod with more volumes than any type attaches is unschedulable, and says why",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", volumeLimitedTypes(10))}}
			s.Pods = podsWithClaims(s, 1, 11, testDriver, "p")
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "attachable-volumes-csi-ebs.csi.aws.com=11")
		}},
	// Karpenter: "should filter out instance types which cannot support the pod's volumes".
	{name: "types that cannot attach the pod's volumes are passed over",
		snap: func() *Snapshot {
			types := []*InstanceType{
				itype("small-attach", 4, 16, 0.10, withVolumeLimit(testDriver, 2)),
				itype("big-attach", 4, 16, 0.30, withVolumeLimit(testDriver, 20)),
			}
			s := &Snapshot{Pools: []*Pool{testPool("default", types)}}
			s.Pods = podsWithClaims(s, 1, 3, testDriver, "p")
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			wantType(t, p, 0, "big-attach")
			for _, fb := range p.NewNodes[0].Fallbacks {
				if fb.InstanceType.Name == "small-attach" {
					t.Fatalf("fallback %s cannot attach 3 volumes", fb.InstanceType.Name)
				}
			}
		}},
	// Karpenter: "should filter out instance types which cannot support all of the pod's
	// volumes across multiple CSI drivers".
	{name: "each driver's limit holds on its own",
		snap: func() *Snapshot {
			types := []*InstanceType{
				itype("ebs-only", 4, 16, 0.10, withVolumeLimit(testDriver, 20), withVolumeLimit("other.csi", 1)),
				itype("both", 4, 16, 0.30, withVolumeLimit(testDriver, 20), withVolumeLimit("other.csi", 5)),
			}
			s := &Snapshot{Pools: []*Pool{testPool("default", types)}}
			addClaims(s, testDriver, "e1", "e2")
			addClaims(s, "other.csi", "o1", "o2")
			s.Pods = []*corev1.Pod{testPod("p", "100m", "100Mi", withClaims("e1", "e2", "o1", "o2"))}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantType(t, p, 0, "both") }},
	{name: "a bound in-tree EBS volume counts against the EBS CSI driver",
		snap: func() *Snapshot {
			s := &Snapshot{Pools: []*Pool{testPool("default", volumeLimitedTypes(1))}}
			for _, n := range []string{"a", "b"} {
				pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + n}}
				pv.Spec.AWSElasticBlockStore = &corev1.AWSElasticBlockStoreVolumeSource{VolumeID: "vol-" + n}
				s.PersistentVolumes = append(s.PersistentVolumes, pv)
				s.PersistentVolumeClaims = append(s.PersistentVolumeClaims, &corev1.PersistentVolumeClaim{
					ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: pv.Name}})
				s.Pods = append(s.Pods, testPod("p-"+n, "100m", "100Mi", withClaims(n)))
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 2) }},
}

func TestVolumeLimits(t *testing.T) {
	for _, tc := range volumeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			p := solveChecked(t, s, tc.opts)
			tc.expect(t, s, p)
		})
	}
}
