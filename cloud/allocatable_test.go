package cloud

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func embeddedType(t *testing.T, name string) InstanceType {
	t.Helper()
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	it, ok := c.InstanceType(name)
	if !ok {
		t.Fatalf("the embedded catalog has no %s", name)
	}
	return it
}

// assertResources compares every resource in want with got, and fails on
// non-zero resources in got that want does not list.
func assertResources(t *testing.T, what string, got corev1.ResourceList, want map[corev1.ResourceName]string) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s %s: missing, want %s", what, name, w)
			continue
		}
		if g.Cmp(resource.MustParse(w)) != 0 {
			t.Errorf("%s %s = %s, want %s", what, name, g.String(), w)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok && !g.IsZero() {
			t.Errorf("%s has %s = %s, which is not expected", what, name, g.String())
		}
	}
}

// The figures are what the kubelet of a CAPA kubeadm node reports with no
// kubelet settings, computed by hand: memory capacity = EC2 MiB less 7.5%
// rounded up to a MiB (arm64 first loses 64 MiB), less the default 100Mi
// hard eviction threshold; 110 pods; an 8Gi root volume less 10% taken as
// the kubelet does (float32 share, truncated: 858993472 bytes); nothing
// reserved. Before, these were Karpenter's EKS AMI figures (ENI-limited
// pods, EKS kube-reserved, 20Gi root volume).
func TestAllocatableIsTheKubeadmKubelets(t *testing.T) {
	const disk = "7730941120" // 8Gi - int64(8Gi * float32(0.1))
	for _, tc := range []struct {
		name string
		want map[corev1.ResourceName]string
	}{
		// 8192 - ceil(614.4) = 7577Mi capacity.
		{"m5.large", map[corev1.ResourceName]string{"cpu": "2", "ephemeral-storage": disk, "memory": "7477Mi", "pods": "110"}},
		// (8192 - 64) - ceil(609.6) = 7518Mi capacity.
		{"m6g.large", map[corev1.ResourceName]string{"cpu": "2", "ephemeral-storage": disk, "memory": "7418Mi", "pods": "110"}},
		// 1024 - ceil(76.8) = 947Mi capacity.
		{"t3.micro", map[corev1.ResourceName]string{"cpu": "2", "ephemeral-storage": disk, "memory": "847Mi", "pods": "110"}},
		// 16384 - ceil(1228.8) = 15155Mi capacity.
		{"g5.xlarge", map[corev1.ResourceName]string{"cpu": "4", "ephemeral-storage": disk, "memory": "15055Mi", ResourceNVIDIAGPU: "1", "pods": "110"}},
		// 2097152 - ceil(157286.4) = 1939865Mi capacity.
		{"p5.48xlarge", map[corev1.ResourceName]string{"cpu": "192", "ephemeral-storage": disk, "memory": "1939765Mi", ResourceNVIDIAGPU: "8", "pods": "110", ResourceEFA: "32"}},
		// 16384 - 1229 = 15155Mi; Neuron devices are an extended resource.
		{"inf2.xlarge", map[corev1.ResourceName]string{ResourceAWSNeuron: "1", "cpu": "4", "ephemeral-storage": disk, "memory": "15055Mi", "pods": "110"}},
	} {
		t.Run(tc.name+" allocatable is the kubeadm kubelet's", func(t *testing.T) {
			_, allocatable := Allocatable(embeddedType(t, tc.name), KubeletConfig{})
			assertResources(t, tc.name+" allocatable", allocatable, tc.want)
		})
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		rule string
		name string
		want map[corev1.ResourceName]string
	}{
		{"capacity memory takes 7.5% VM overhead off, rounded up to a MiB", "m5.large",
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7577Mi", "ephemeral-storage": "8Gi", "pods": "110"}},
		{"arm64 capacity memory also loses 64 MiB of CMA", "m6g.large",
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7518Mi", "ephemeral-storage": "8Gi", "pods": "110"}},
		{"no branch ENIs without the VPC CNI; habana GPUs are habana.ai/gaudi", "dl1.24xlarge",
			map[corev1.ResourceName]string{"cpu": "96", "memory": "727449Mi", "ephemeral-storage": "8Gi", "pods": "110", ResourceHabanaGaudi: "8", ResourceEFA: "4"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			capacity, _ := Allocatable(embeddedType(t, tc.name), KubeletConfig{})
			assertResources(t, tc.name+" capacity", capacity, tc.want)
		})
	}
}

func TestAllocatableHonoursKubeletConfig(t *testing.T) {
	const disk = "7730941120" // 8Gi less the default nodefs.available<10%
	for _, tc := range []struct {
		rule string
		name string
		kc   KubeletConfig
		opts *NodeOptions
		want map[corev1.ResourceName]string // allocatable cpu, memory, ephemeral-storage, pods
	}{
		{"maxPods replaces the kubelet's 110", "m5.large",
			KubeletConfig{MaxPods: ptr.To[int32](50)}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": disk, "pods": "50"}},
		{"podsPerCore caps pods at podsPerCore times vCPUs", "m5.large",
			KubeletConfig{PodsPerCore: ptr.To[int32](10)}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": disk, "pods": "20"}},
		{"podsPerCore above 110 per node changes nothing", "m5.large",
			KubeletConfig{PodsPerCore: ptr.To[int32](100)}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": disk, "pods": "110"}},
		{"podsPerCore caps maxPods too", "m5.large",
			KubeletConfig{MaxPods: ptr.To[int32](300), PodsPerCore: ptr.To[int32](100)}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": disk, "pods": "200"}},
		{"kubeReserved is subtracted", "m5.large",
			KubeletConfig{KubeReserved: map[string]string{"cpu": "100m", "memory": "1Gi"}}, nil,
			map[corev1.ResourceName]string{"cpu": "1900m", "memory": "6453Mi", "ephemeral-storage": disk, "pods": "110"}},
		{"systemReserved is subtracted on top", "m5.large",
			KubeletConfig{KubeReserved: map[string]string{"cpu": "100m"}, SystemReserved: map[string]string{"memory": "100Mi", "cpu": "70m"}}, nil,
			map[corev1.ResourceName]string{"cpu": "1830m", "memory": "7377Mi", "ephemeral-storage": disk, "pods": "110"}},
		{"evictionHard is the whole set: memory 500Mi and no nodefs threshold", "m5.large",
			KubeletConfig{EvictionHard: map[string]string{"memory.available": "500Mi"}}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7077Mi", "ephemeral-storage": "8Gi", "pods": "110"}},
		// 7577Mi = 7945060352 bytes; * float32(0.05) = 397253023.5, truncated.
		{"evictionHard memory percentage is of capacity, truncated as the kubelet does", "m5.large",
			KubeletConfig{EvictionHard: map[string]string{"memory.available": "5%", "nodefs.available": "10%"}}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7547807329", "ephemeral-storage": disk, "pods": "110"}},
		{"evictionHard nodefs percentage replaces 10%", "m5.large",
			KubeletConfig{EvictionHard: map[string]string{"memory.available": "100Mi", "nodefs.available": "15%"}}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": "7301444352", "pods": "110"}},
		{"evictionHard 100% disables the threshold, as in the kubelet", "m5.large",
			KubeletConfig{EvictionHard: map[string]string{"memory.available": "100%", "nodefs.available": "10%"}}, nil,
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7577Mi", "ephemeral-storage": disk, "pods": "110"}},
		// 100Gi - int64(100Gi * float32(0.1)).
		{"the root volume is the ephemeral storage", "m5.large",
			KubeletConfig{}, &NodeOptions{VMMemoryOverheadPercent: 0.075, RootVolumeSize: resource.MustParse("100Gi")},
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7477Mi", "ephemeral-storage": "96636764000", "pods": "110"}},
		// 8192 - ceil(8192 * 0.05 = 409.6) = 7782Mi capacity.
		{"the VM memory overhead share is an option", "m5.large",
			KubeletConfig{}, &NodeOptions{VMMemoryOverheadPercent: 0.05, RootVolumeSize: resource.MustParse("8Gi")},
			map[corev1.ResourceName]string{"cpu": "2", "memory": "7682Mi", "ephemeral-storage": disk, "pods": "110"}},
		{"types whose ENI limits are unknown take pods like any other", "p2.xlarge",
			KubeletConfig{}, nil,
			map[corev1.ResourceName]string{"pods": "110"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			opts := DefaultNodeOptions()
			if tc.opts != nil {
				opts = *tc.opts
			}
			if err := tc.kc.Validate(); err != nil {
				t.Fatalf("test kubelet config is invalid: %v", err)
			}
			_, allocatable := AllocatableWith(embeddedType(t, tc.name), tc.kc, opts)
			for name, w := range tc.want {
				g := allocatable[name]
				if g.Cmp(resource.MustParse(w)) != 0 {
					t.Errorf("allocatable %s = %s, want %s", name, g.String(), w)
				}
			}
		})
	}
}

func TestAllocatableNeverNegative(t *testing.T) {
	_, allocatable := Allocatable(embeddedType(t, "t3.nano"), KubeletConfig{SystemReserved: map[string]string{"memory": "10Gi", "cpu": "10"}})
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q := allocatable[name]; !q.IsZero() {
			t.Errorf("allocatable %s = %s, want 0 when reservations exceed capacity", name, q.String())
		}
	}
}

func TestKubeletConfigValidateNamesFieldAndFix(t *testing.T) {
	for _, tc := range []struct {
		rule string
		kc   KubeletConfig
		want string
	}{
		{"negative maxPods is rejected", KubeletConfig{MaxPods: ptr.To[int32](-1)}, "kubelet.maxPods is -1"},
		{"negative podsPerCore is rejected", KubeletConfig{PodsPerCore: ptr.To[int32](-2)}, "kubelet.podsPerCore is -2"},
		{"unparsable kubeReserved is rejected", KubeletConfig{KubeReserved: map[string]string{"memory": "lots"}}, `kubelet.kubeReserved[memory] is "lots"; use a quantity`},
		{"unparsable systemReserved is rejected", KubeletConfig{SystemReserved: map[string]string{"cpu": "-1"}}, `kubelet.systemReserved[cpu] is "-1"`},
		{"percentage over 100 is rejected", KubeletConfig{EvictionHard: map[string]string{"memory.available": "120%"}}, `kubelet.evictionHard[memory.available]: "120%" is not a percentage`},
		{"unparsable eviction quantity is rejected", KubeletConfig{EvictionHard: map[string]string{"nodefs.available": "ten"}}, `kubelet.evictionHard[nodefs.available]: "ten" is not a quantity`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			err := tc.kc.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	valid := KubeletConfig{
		MaxPods: ptr.To[int32](110), PodsPerCore: ptr.To[int32](10),
		KubeReserved:   map[string]string{"cpu": "100m", "memory": "1Gi"},
		SystemReserved: map[string]string{"memory": "100Mi"},
		EvictionHard:   map[string]string{"memory.available": "5%", "nodefs.available": "1Gi", "imagefs.available": "15%"},
	}
	if err := valid.Validate(); err != nil {
		t.Errorf("Validate() on a valid config = %v, want nil", err)
	}
}
