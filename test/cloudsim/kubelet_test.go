package cloudsim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/cloud"
)

// The numbers below are worked by hand from the kubelet's rules:
// allocatable = capacity - kube-reserved - system-reserved - hard eviction
// threshold, a percentage threshold being float32(p)/100 of the capacity.
func TestKubeletAllocatableAsTheKubeletComputesIt(t *testing.T) {
	m5large := cloud.InstanceType{Name: "m5.large", Arch: cloud.ArchAMD64, VCPU: 2, MemoryMiB: 8192}
	g5xlarge := cloud.InstanceType{Name: "g5.xlarge", Arch: cloud.ArchAMD64, VCPU: 4, MemoryMiB: 16384, GPUCount: 1, GPUManufacturer: cloud.ManufacturerNVIDIA}
	const gi = int64(1) << 30
	for _, tc := range []struct {
		name        string
		it          cloud.InstanceType
		args        map[string]string
		capacity    map[corev1.ResourceName]int64 // cpu in millicores
		allocatable map[corev1.ResourceName]int64
	}{
		{
			// memory: 8192 MiB less 156+286 MiB for the kernel = 7750 MiB;
			// less 100Mi. Storage: 40 GiB less 10% (4294967360 as float32).
			name: "defaults: memory.available<100Mi, nodefs.available<10%, 110 pods",
			it:   m5large, args: map[string]string{},
			capacity:    map[corev1.ResourceName]int64{"cpu": 2000, "memory": 7750 << 20, "pods": 110, "ephemeral-storage": 40 * gi},
			allocatable: map[corev1.ResourceName]int64{"cpu": 2000, "memory": 7650 << 20, "pods": 110, "ephemeral-storage": 40*gi - 4294967360},
		},
		{
			// cpu 2000-80-100; memory 7750-893-100-200 MiB; storage 40Gi-1Gi-15% (6442451200).
			name: "max-pods, kube-reserved, system-reserved and eviction-hard",
			it:   m5large,
			args: map[string]string{"max-pods": "29", "kube-reserved": "cpu=80m,memory=893Mi,ephemeral-storage=1Gi",
				"system-reserved": "cpu=100m,memory=100Mi", "eviction-hard": "memory.available<200Mi,nodefs.available<15%"},
			capacity:    map[corev1.ResourceName]int64{"cpu": 2000, "memory": 7750 << 20, "pods": 29, "ephemeral-storage": 40 * gi},
			allocatable: map[corev1.ResourceName]int64{"cpu": 1820, "memory": 6557 << 20, "pods": 29, "ephemeral-storage": 40*gi - gi - 6442451200},
		},
		{
			// memory 16384-(156+573) = 15655 MiB; 5% of it is 820772876
			// bytes; eviction-hard names no nodefs threshold, so none.
			name: "a percentage memory threshold replaces the defaults; GPUs",
			it:   g5xlarge, args: map[string]string{"eviction-hard": "memory.available<5%"},
			capacity:    map[corev1.ResourceName]int64{"cpu": 4000, "memory": 15655 << 20, "pods": 110, "ephemeral-storage": 40 * gi, "nvidia.com/gpu": 1},
			allocatable: map[corev1.ResourceName]int64{"cpu": 4000, "memory": 15655<<20 - 820772876, "pods": 110, "ephemeral-storage": 40 * gi, "nvidia.com/gpu": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := Instance{ID: "i-0123456789abcdef0", Offering: Offering{InstanceType: tc.it.Name, Zone: "us-east-1a"}, PrivateIP: "10.0.0.4", hostname: "ip-10-0-0-4.ec2.internal"}
			node, err := kubeletNode(inst, instanceWire{facts: tc.it, rootVolumeGiB: 40, zoneID: "use1-az2"}, join{args: tc.args}, "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got corev1.ResourceList, want map[corev1.ResourceName]int64) {
				if len(got) != len(want) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
				for name, v := range want {
					q := got[name]
					n := q.Value()
					if name == corev1.ResourceCPU {
						n = q.MilliValue()
					}
					if n != v {
						t.Errorf("%s %s = %d (%s), want %d", what, name, n, q.String(), v)
					}
				}
			}
			check("capacity", node.Status.Capacity, tc.capacity)
			check("allocatable", node.Status.Allocatable, tc.allocatable)
		})
	}
}

func TestKubeletNodeLabelsTaintsAndProviderID(t *testing.T) {
	inst := Instance{ID: "i-0123456789abcdef0", Offering: Offering{InstanceType: "m6g.large", Zone: "us-east-1b"}, PrivateIP: "10.0.1.9", hostname: "ip-10-0-1-9.ec2.internal"}
	it := cloud.InstanceType{Name: "m6g.large", Arch: cloud.ArchARM64, VCPU: 2, MemoryMiB: 8192}
	j := join{
		args:   map[string]string{"node-labels": "joinery.dev/nodepool=general,tier=web", "register-with-taints": "dedicated=gpu:NoSchedule,node.cluster.x-k8s.io/uninitialized:NoSchedule"},
		taints: []corev1.Taint{{Key: "node.cluster.x-k8s.io/uninitialized", Effect: corev1.TaintEffectNoSchedule}},
	}
	node, err := kubeletNode(inst, instanceWire{facts: it, rootVolumeGiB: 20, zoneID: "use1-az1"}, j, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kubernetes.io/hostname": "ip-10-0-1-9.ec2.internal", "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
		"node.kubernetes.io/instance-type": "m6g.large", "topology.kubernetes.io/zone": "us-east-1b", "topology.kubernetes.io/region": "us-east-1",
		"joinery.dev/nodepool": "general", "tier": "web", "beta.kubernetes.io/arch": "arm64",
	}
	for k, v := range want {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if _, ok := node.Labels["karpenter.sh/capacity-type"]; ok {
		t.Error("the kubelet set karpenter.sh/capacity-type; Joinery labels that itself")
	}
	if node.Name != "ip-10-0-1-9.ec2.internal" || node.Spec.ProviderID != "aws:///us-east-1b/i-0123456789abcdef0" || node.Annotations[KwokNodeAnnotation] != "fake" {
		t.Errorf("node %s providerID %s annotations %v", node.Name, node.Spec.ProviderID, node.Annotations)
	}
	if len(node.Spec.Taints) != 2 || node.Spec.Taints[1].Key != "dedicated" || node.Spec.Taints[1].Value != "gpu" {
		t.Errorf("taints = %v, want the uninitialized taint once and dedicated=gpu:NoSchedule", node.Spec.Taints)
	}
	if _, err := kubeletNode(inst, instanceWire{facts: it, rootVolumeGiB: 20}, join{args: map[string]string{"kube-reserved": "memory"}}, "us-east-1"); err == nil {
		t.Error("kube-reserved=memory accepted; want an error naming the argument")
	}
}
