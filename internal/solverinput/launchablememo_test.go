package solverinput

import (
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// The memo returns, for every setting that changes sizing, exactly what a
// fresh computation returns: a setting left out of its key would hand one
// pool another pool's node sizes.
func TestLaunchableTypesMemoMatchesAFreshComputation(t *testing.T) {
	offered := usEast1(t)
	east1a, err := func() ([]cloud.InstanceTypeOfferings, error) {
		catalog, err := cloud.Embedded()
		if err != nil {
			return nil, err
		}
		return catalog.RegionOfferings("us-east-1", cloud.WithZones("us-east-1a"))
	}()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		offered []cloud.InstanceTypeOfferings
		kubelet *v1alpha1.KubeletConfiguration
		model   NodeModel
	}{
		{name: "defaults", offered: offered},
		{name: "other zones", offered: east1a},
		{name: "maxPods", offered: offered, kubelet: &v1alpha1.KubeletConfiguration{MaxPods: ptr.To[int32](20)}},
		{name: "podsPerCore", offered: offered, kubelet: &v1alpha1.KubeletConfiguration{PodsPerCore: ptr.To[int32](4)}},
		{name: "kubeReserved", offered: offered, kubelet: &v1alpha1.KubeletConfiguration{KubeReserved: map[string]v1alpha1.ReservedQuantity{"memory": "1Gi"}}},
		{name: "systemReserved", offered: offered, kubelet: &v1alpha1.KubeletConfiguration{SystemReserved: map[string]v1alpha1.ReservedQuantity{"cpu": "500m"}}},
		{name: "evictionHard", offered: offered, kubelet: &v1alpha1.KubeletConfiguration{EvictionHard: map[string]v1alpha1.EvictionThreshold{"memory.available": "10%"}}},
		{name: "template flags", offered: offered, model: NodeModel{KubeletArgs: []KubeletArg{{"max-pods", "60"}}}},
		{name: "root volume", offered: offered, model: NodeModel{RootVolume: resource.MustParse("200Gi")}},
		{name: "arch", offered: offered, model: NodeModel{Arch: cloud.ArchARM64}},
		{name: "vm overhead", offered: offered, model: NodeModel{VMMemoryOverheadPercent: 0.2}},
	}
	// Twice round, in order: the second round is served from the memo.
	for round := range 2 {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/round%d", c.name, round), func(t *testing.T) {
				np := nodePool("p", func(np *v1alpha1.NodePool) { np.Spec.Template.Spec.Kubelet = c.kubelet })
				got, err := LaunchableTypes(np, c.offered, c.model)
				if err != nil {
					t.Fatal(err)
				}
				kubelet, err := NodeKubeletConfig(np, c.model)
				if err != nil {
					t.Fatal(err)
				}
				want := sizeTypes(c.offered, kubelet, c.model.nodeOptions(), c.model.Arch)
				if len(got) == 0 || !reflect.DeepEqual(got, want) {
					t.Fatalf("memoised sizing (%d types) differs from a fresh one (%d types)", len(got), len(want))
				}
				byName, err := LaunchableTypesByName(np, c.offered, c.model)
				if err != nil {
					t.Fatal(err)
				}
				if len(byName) != len(want) {
					t.Fatalf("%d types by name, want %d", len(byName), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(*byName[want[i].Name], want[i]) {
						t.Fatalf("type %s by name differs from a fresh sizing", want[i].Name)
					}
				}
			})
		}
	}
}

// The memo forgets its oldest entries past its limit, so a manager whose
// pools keep changing settings does not grow without bound.
func TestLaunchableMemoIsBounded(t *testing.T) {
	m := &launchableMemo{limit: 3}
	offered := usEast1(t)
	computed := 0
	compute := func() []LaunchableType { computed++; return nil }
	for i := range 5 {
		m.get(offered, fmt.Sprint(i), compute)
	}
	if len(m.entries) != 3 || len(m.order) != 3 {
		t.Fatalf("memo holds %d entries (%d in order), want 3", len(m.entries), len(m.order))
	}
	m.get(offered, "4", compute)
	if computed != 5 {
		t.Errorf("a recent entry was computed again (%d computations, want 5)", computed)
	}
	m.get(offered, "0", compute)
	if computed != 6 {
		t.Errorf("an evicted entry was served (%d computations, want 6)", computed)
	}
}

func BenchmarkLaunchableTypes(b *testing.B) {
	catalog, err := cloud.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	offered, err := catalog.RegionOfferings("us-east-1", cloud.WithZones("us-east-1a", "us-east-1b", "us-east-1c"))
	if err != nil {
		b.Fatal(err)
	}
	np := nodePool("p", nil)
	kubelet, err := NodeKubeletConfig(np, NodeModel{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sizeTypes(offered, kubelet, NodeModel{}.nodeOptions(), "")
		}
	})
	b.Run("memoised", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LaunchableTypes(np, offered, NodeModel{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
