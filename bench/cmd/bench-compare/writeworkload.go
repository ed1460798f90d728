package main

// -write-workload DIR writes one size of the workload as files
// `joinery simulate` reads:
//
//	joinery simulate -f DIR/pods.yaml --catalog DIR/catalog --region us-east-1
//
// Differences from the in-process comparison, all from the CSV catalog
// format (see cloud/catalog.go, load.go, offerings.go):
//
//   - Allocatable: the catalog path computes it as a kubeadm node's kubelet
//     reports it (cloud.Allocatable: 7.5% VM memory overhead, 110 pods,
//     nothing reserved, 100Mi and 10% hard eviction thresholds), not with
//     Karpenter's fake 100m/10Mi kube-reserved, so node counts and $/h on
//     these files differ from the in-process numbers.
//   - Zones: offerings.csv names zone IDs; use1-az1..3 get the default names
//     us-east-1a..c (cloud.DefaultZoneNames), not test-zone-1..3. No pod of
//     the workload names a zone, so only the names differ.
//   - Spot: the catalog offers spot wherever it offers the type, so spot
//     appears in the third zone too, where the fake types offer only
//     on-demand. Spot and on-demand cost the same on the fake types
//     (fake.PriceFromResources), so this adds no cheaper choice.
//   - Names: fake-it-N is not EC2's family.size, so Family "fake-it" and
//     Size "N" are given explicitly.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"

	"sigs.k8s.io/karpenter/pkg/cloudprovider/fake"
)

const (
	workloadRegion = "us-east-1"
)

var workloadZoneIDs = []string{"use1-az1", "use1-az2", "use1-az3"}

func writeWorkload(dir string, w *workload) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(fmt.Sprintf("# Karpenter's scheduling benchmark workload, makeDiversePods(%d), written by bench-compare.\n", len(w.pods)))
	pool := joineryNodePool(w)
	if err := appendDoc(&buf, pool); err != nil {
		return err
	}
	for _, p := range w.pods {
		out := p.DeepCopy()
		out.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		out.CreationTimestamp = metav1.Time{}
		out.Status = corev1.PodStatus{}
		if err := appendDoc(&buf, out); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pods.yaml"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	catalog, err := workloadCatalog(w)
	if err != nil {
		return err
	}
	return catalog.WriteDir(filepath.Join(dir, "catalog"))
}

func appendDoc(buf *bytes.Buffer, obj any) error {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	buf.WriteString("---\n")
	buf.Write(data)
	return nil
}

// joineryNodePool is the Joinery equivalent of the benchmark's NodePool: no
// requirements but spot and on-demand (what Karpenter allows a NodePool
// that names no capacity type, see convertNodePool), the same limits.
func joineryNodePool(w *workload) *v1alpha1.NodePool {
	limits := corev1.ResourceList{}
	for name, q := range w.nodePool.Spec.Limits {
		limits[name] = q
	}
	return &v1alpha1.NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodePool"},
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec: v1alpha1.NodePoolSpec{
			ClusterName: "bench",
			Template: v1alpha1.NodeClaimTemplate{
				Spec: v1alpha1.NodeClaimSpec{
					Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{{
						Key:      v1alpha1.LabelCapacityType,
						Operator: v1alpha1.NodeSelectorOperator(corev1.NodeSelectorOpIn),
						Values:   []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand},
					}},
					InfrastructureTemplateRef: v1alpha1.TemplateReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "AWSMachineTemplate", Name: "bench-workers"},
					BootstrapTemplateRef:      v1alpha1.TemplateReference{APIGroup: "bootstrap.cluster.x-k8s.io", Kind: "KubeadmConfigTemplate", Name: "bench-workers"},
				},
			},
			Limits: limits,
		},
	}
}

// workloadCatalog turns fake.InstanceTypes(400) into a CSV catalog for
// us-east-1: vCPUs and memory from the type's capacity, max pods from its
// pods capacity, on-demand and spot (min = max) at fake.PriceFromResources,
// offered in the three zones.
func workloadCatalog(w *workload) (*cloud.Catalog, error) {
	var t cloud.Tables
	for _, it := range w.instanceTypes {
		mem := it.Capacity[corev1.ResourceMemory]
		cpu := it.Capacity[corev1.ResourceCPU]
		pods := it.Capacity[corev1.ResourcePods]
		n := it.Name[len("fake-it-"):]
		t.InstanceTypes = append(t.InstanceTypes, cloud.InstanceType{
			Name:       it.Name,
			Family:     "fake-it",
			Size:       n,
			Class:      "general",
			Arch:       cloud.ArchAMD64,
			VCPU:       int(cpu.Value()),
			MemoryMiB:  mem.Value() / (1 << 20),
			MaxPodsENI: int(pods.Value()),
		})
		price := fake.PriceFromResources(it.Capacity)
		t.OnDemandPrices = append(t.OnDemandPrices, cloud.OnDemandPrice{Region: workloadRegion, InstanceType: it.Name, USDPerHour: price, Source: "karpenter-fake", AsOf: "2026-01-01"})
		t.SpotPrices = append(t.SpotPrices, cloud.SpotPrice{Region: workloadRegion, InstanceType: it.Name, MinUSDPerHour: price, MaxUSDPerHour: price, ZoneSamples: len(workloadZoneIDs)})
		for _, z := range workloadZoneIDs {
			t.Offerings = append(t.Offerings, cloud.ZoneOffering{Region: workloadRegion, ZoneID: z, InstanceType: it.Name})
		}
	}
	return cloud.New(t)
}
