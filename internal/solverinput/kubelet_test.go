package solverinput

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

func TestKubeletArgsMergeTemplateAndNodePool(t *testing.T) {
	for _, tc := range []struct {
		rule     string
		template []KubeletArg
		kubelet  *v1alpha1.KubeletConfiguration
		want     []KubeletArg
	}{
		{"no NodePool settings keep the template's flags", []KubeletArg{{"cloud-provider", "external"}, {"max-pods", "50"}}, nil,
			[]KubeletArg{{"cloud-provider", "external"}, {"max-pods", "50"}}},
		{"NodePool maxPods replaces the template's in place", []KubeletArg{{"max-pods", "50"}, {"cloud-provider", "external"}},
			&v1alpha1.KubeletConfiguration{MaxPods: ptr.To[int32](30), PodsPerCore: ptr.To[int32](4)},
			[]KubeletArg{{"max-pods", "30"}, {"cloud-provider", "external"}, {"pods-per-core", "4"}}},
		{"reserved entries merge by resource, the NodePool's winning", []KubeletArg{{"kube-reserved", "cpu=100m,memory=500Mi"}},
			&v1alpha1.KubeletConfiguration{KubeReserved: map[string]v1alpha1.ReservedQuantity{"memory": "1Gi"}, SystemReserved: map[string]v1alpha1.ReservedQuantity{"cpu": "50m"}},
			[]KubeletArg{{"kube-reserved", "cpu=100m,memory=1Gi"}, {"system-reserved", "cpu=50m"}}},
		{"NodePool evictionHard without a template flag starts from the kubelet's defaults", nil,
			&v1alpha1.KubeletConfiguration{EvictionHard: map[string]v1alpha1.EvictionThreshold{"memory.available": "500Mi"}},
			[]KubeletArg{{"eviction-hard", "imagefs.available<15%,imagefs.inodesFree<5%,memory.available<500Mi,nodefs.available<10%,nodefs.inodesFree<5%"}}},
		{"NodePool evictionHard merges into the template's set", []KubeletArg{{"eviction-hard", "memory.available<200Mi"}},
			&v1alpha1.KubeletConfiguration{EvictionHard: map[string]v1alpha1.EvictionThreshold{"nodefs.available": "5%"}},
			[]KubeletArg{{"eviction-hard", "memory.available<200Mi,nodefs.available<5%"}}},
		{"settings that do not shape allocatable become flags too, merged the same way",
			[]KubeletArg{{"eviction-soft", "nodefs.available<15%"}, {"eviction-soft-grace-period", "nodefs.available=2m"}, {"cluster-dns", "10.96.0.10"}},
			&v1alpha1.KubeletConfiguration{
				EvictionSoft:              map[string]v1alpha1.EvictionThreshold{"memory.available": "500Mi"},
				EvictionSoftGracePeriod:   map[string]v1alpha1.GracePeriod{"memory.available": "1m30s"},
				EvictionMaxPodGracePeriod: ptr.To[int32](60), ImageGCHighThresholdPercent: ptr.To[int32](85), ImageGCLowThresholdPercent: ptr.To[int32](70),
				CPUCFSQuota: ptr.To(false), ClusterDNS: []string{"169.254.20.10"},
			},
			[]KubeletArg{{"eviction-soft", "memory.available<500Mi,nodefs.available<15%"}, {"eviction-soft-grace-period", "memory.available=1m30s,nodefs.available=2m"},
				{"cluster-dns", "169.254.20.10"}, {"eviction-max-pod-grace-period", "60"}, {"image-gc-high-threshold", "85"}, {"image-gc-low-threshold", "70"},
				{"cpu-cfs-quota", "false"}}},
		{"a flag the template gives twice appears once, with its last value", []KubeletArg{{"max-pods", "50"}, {"v", "2"}, {"max-pods", "60"}}, &v1alpha1.KubeletConfiguration{},
			[]KubeletArg{{"max-pods", "60"}, {"v", "2"}}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			got, err := KubeletArgs(tc.template, tc.kubelet)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("KubeletArgs =\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}

func TestKubeletArgsBoundedByCAPIsValueLength(t *testing.T) {
	long := []KubeletArg{{"kube-reserved", "memory=" + strings.Repeat("1", MaxKubeletArgValue)}}
	_, err := KubeletArgs(long, &v1alpha1.KubeletConfiguration{KubeReserved: map[string]v1alpha1.ReservedQuantity{"cpu": "1"}})
	if err == nil || !strings.Contains(err.Error(), "--kube-reserved") || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("KubeletArgs = %v, want an error naming --kube-reserved and CAPI's 1024-character limit", err)
	}
}

func TestKubeletConfigFromArgsReadsFlagsAsTheKubeletDoes(t *testing.T) {
	kc, err := KubeletConfigFromArgs([]KubeletArg{
		{"max-pods", "40"}, {"pods-per-core", "8"}, {"kube-reserved", "cpu=100m, memory=1Gi"},
		{"system-reserved", "memory=200Mi"}, {"eviction-hard", "memory.available<300Mi"}, {"node-labels", "a=b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.KubeletConfig{
		MaxPods: ptr.To[int32](40), PodsPerCore: ptr.To[int32](8),
		KubeReserved: map[string]string{"cpu": "100m", "memory": "1Gi"}, SystemReserved: map[string]string{"memory": "200Mi"},
		EvictionHard: map[string]string{"memory.available": "300Mi"},
	}
	if !reflect.DeepEqual(kc, want) {
		t.Errorf("KubeletConfigFromArgs = %+v, want %+v", kc, want)
	}
	for _, bad := range []struct {
		arg  KubeletArg
		want string
	}{
		{KubeletArg{"max-pods", "many"}, `--max-pods="many" is not a number`},
		{KubeletArg{"kube-reserved", "cpu"}, `--kube-reserved="cpu": "cpu" is not key=value`},
		{KubeletArg{"eviction-hard", "memory.available<lots"}, `evictionHard[memory.available]: "lots" is not a quantity`},
	} {
		if _, err := KubeletConfigFromArgs([]KubeletArg{bad.arg}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("KubeletConfigFromArgs(%v) = %v, want an error containing %q", bad.arg, err, bad.want)
		}
	}
}

// The model the planner sizes types with is the node's: the NodePool's and
// the template's kubelet flags merged, the template's root volume, the
// AMI's architecture.
func TestLaunchableTypesUseTheNodeModel(t *testing.T) {
	offered := usEast1(t)
	find := func(types []LaunchableType, name string) *LaunchableType {
		for i := range types {
			if types[i].Name == name {
				return &types[i]
			}
		}
		return nil
	}
	np := nodePool("general", func(np *v1alpha1.NodePool) {
		np.Spec.Template.Spec.Kubelet = &v1alpha1.KubeletConfiguration{KubeReserved: map[string]v1alpha1.ReservedQuantity{"memory": "1Gi"}}
	})
	model := NodeModel{
		KubeletArgs: []KubeletArg{{"max-pods", "60"}, {"kube-reserved", "cpu=200m,memory=300Mi"}},
		RootVolume:  resource.MustParse("50Gi"),
		Arch:        cloud.ArchARM64,
	}
	types, err := LaunchableTypes(np, offered, model)
	if err != nil {
		t.Fatal(err)
	}
	if find(types, "m5.large") != nil {
		t.Error("m5.large (amd64) offered for an arm64 AMI")
	}
	m6g := find(types, "m6g.large")
	if m6g == nil {
		t.Fatal("m6g.large (arm64) not offered for an arm64 AMI")
	}
	// 7518Mi capacity - 1Gi kube-reserved (the NodePool's) - 100Mi eviction;
	// 50Gi - int64(50Gi * float32(0.1)).
	want := map[corev1.ResourceName]string{"cpu": "1800m", "memory": "6394Mi", "pods": "60", "ephemeral-storage": "48318382000"}
	for name, w := range want {
		if got := m6g.Allocatable[name]; got.Cmp(resource.MustParse(w)) != 0 {
			t.Errorf("m6g.large allocatable %s = %s, want %s", name, got.String(), w)
		}
	}
	if _, err := LaunchableTypes(np, offered, NodeModel{KubeletArgs: []KubeletArg{{"max-pods", "x"}}}); err == nil ||
		!strings.Contains(err.Error(), "NodePool default/general") || !strings.Contains(err.Error(), "kubeletExtraArgs") {
		t.Errorf("a bad template flag gave %v, want an error naming the NodePool and kubeletExtraArgs", err)
	}
}
