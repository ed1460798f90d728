package cloud

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// The expected values are Karpenter's labels for these types on its
// instance-types reference page (v1.14.1), restricted to the attributes
// v1alpha1.InstanceAttributeSuffixes lists.
func TestLabelsMatchKarpenter(t *testing.T) {
	for _, tc := range []struct {
		name string
		want map[string]string // suffix -> value, plus the three well-known keys
	}{
		{"m5.large", map[string]string{
			"instance-category": "m", "instance-cpu": "2", "instance-cpu-manufacturer": "intel",
			"instance-family": "m5", "instance-generation": "5", "instance-hypervisor": "nitro",
			"instance-memory": "8192", "instance-network-bandwidth": "750", "instance-size": "large",
			v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux", v1alpha1.LabelInstanceType: "m5.large",
		}},
		{"g5.xlarge", map[string]string{
			"instance-category": "g", "instance-cpu": "4", "instance-cpu-manufacturer": "amd",
			"instance-family": "g5", "instance-generation": "5", "instance-gpu-count": "1",
			"instance-gpu-manufacturer": "nvidia", "instance-gpu-memory": "22888", "instance-gpu-name": "a10g",
			"instance-hypervisor": "nitro", "instance-local-nvme": "250", "instance-memory": "16384",
			"instance-network-bandwidth": "2500", "instance-size": "xlarge",
			v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux", v1alpha1.LabelInstanceType: "g5.xlarge",
		}},
		{"inf2.xlarge", map[string]string{
			"instance-accelerator-count": "1", "instance-accelerator-manufacturer": "aws", "instance-accelerator-name": "inferentia2",
			"instance-category": "inf", "instance-cpu": "4", "instance-cpu-manufacturer": "amd",
			"instance-family": "inf2", "instance-generation": "2", "instance-hypervisor": "nitro",
			"instance-memory": "16384", "instance-network-bandwidth": "2083", "instance-size": "xlarge",
			v1alpha1.LabelArch: "amd64", v1alpha1.LabelOS: "linux", v1alpha1.LabelInstanceType: "inf2.xlarge",
		}},
		{"m6g.large", map[string]string{
			"instance-category": "m", "instance-cpu": "2", "instance-cpu-manufacturer": "aws",
			"instance-family": "m6g", "instance-generation": "6", "instance-hypervisor": "nitro",
			"instance-memory": "8192", "instance-network-bandwidth": "750", "instance-size": "large",
			v1alpha1.LabelArch: "arm64", v1alpha1.LabelOS: "linux", v1alpha1.LabelInstanceType: "m6g.large",
		}},
	} {
		t.Run(tc.name+" labels match Karpenter under both prefixes", func(t *testing.T) {
			want := map[string]string{}
			for k, v := range tc.want {
				if strings.HasPrefix(k, "instance-") {
					want[v1alpha1.AWSLabelPrefix+k] = v
					want[v1alpha1.JoineryLabelPrefix+k] = v
				} else {
					want[k] = v
				}
			}
			got := embeddedType(t, tc.name).Labels()
			if !maps.Equal(got, want) {
				for _, k := range slices.Sorted(maps.Keys(want)) {
					if got[k] != want[k] {
						t.Errorf("%s = %q, want %q", k, got[k], want[k])
					}
				}
				for _, k := range slices.Sorted(maps.Keys(got)) {
					if _, ok := want[k]; !ok {
						t.Errorf("unexpected label %s = %q", k, got[k])
					}
				}
			}
		})
	}
}

func TestLabelRules(t *testing.T) {
	c := embeddedCatalog(t)
	t.Run("every instance attribute label exists under both prefixes with one value", func(t *testing.T) {
		for _, it := range c.InstanceTypes() {
			labels := it.Labels()
			for _, suffix := range v1alpha1.InstanceAttributeSuffixes {
				aws, okAWS := labels[v1alpha1.AWSLabelPrefix+suffix]
				joinery, okJoinery := labels[v1alpha1.JoineryLabelPrefix+suffix]
				if okAWS != okJoinery || aws != joinery {
					t.Fatalf("%s %s: karpenter.k8s.aws=%q (%v), joinery.dev=%q (%v)", it.Name, suffix, aws, okAWS, joinery, okJoinery)
				}
			}
		}
	})
	t.Run("integer-valued labels are integers", func(t *testing.T) {
		for _, it := range c.InstanceTypes() {
			labels := it.Labels()
			for _, suffix := range v1alpha1.IntegerValuedSuffixes {
				if v, ok := labels[v1alpha1.AWSLabelPrefix+suffix]; ok {
					if _, err := strconv.ParseInt(v, 10, 64); err != nil {
						t.Fatalf("%s %s = %q, not an integer", it.Name, suffix, v)
					}
				}
			}
		}
	})
	t.Run("a type without an arch gets no arch label", func(t *testing.T) {
		labels := embeddedType(t, "mac-m4.metal").Labels()
		if v, ok := labels[v1alpha1.LabelArch]; ok {
			t.Errorf("mac-m4.metal has arch label %q; its arch is unknown", v)
		}
	})
	t.Run("a type without GPUs gets no GPU labels", func(t *testing.T) {
		labels := embeddedType(t, "m5.large").Labels()
		for _, suffix := range []string{v1alpha1.SuffixInstanceGPUCount, v1alpha1.SuffixInstanceGPUName, v1alpha1.SuffixInstanceGPUMemory, v1alpha1.SuffixInstanceGPUManufacturer} {
			if v, ok := labels[v1alpha1.AWSLabelPrefix+suffix]; ok {
				t.Errorf("m5.large has %s = %q", suffix, v)
			}
		}
	})
}

// A GPU query as a NodePool would write it: gpu-name In [a10g] and
// gpu-count >= 1. In the snapshot the A10G is exactly the g5 family.
func TestGPUQueryOnLabelsSelectsG5(t *testing.T) {
	c := embeddedCatalog(t)
	var got []string
	for _, it := range c.InstanceTypes() {
		labels := it.Labels()
		if labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceGPUName] != "a10g" {
			continue
		}
		count, err := strconv.Atoi(labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceGPUCount])
		if err != nil || count < 1 {
			continue
		}
		got = append(got, it.Name)
	}
	want := []string{"g5.12xlarge", "g5.16xlarge", "g5.24xlarge", "g5.2xlarge", "g5.48xlarge", "g5.4xlarge", "g5.8xlarge", "g5.xlarge"}
	if !slices.Equal(got, want) {
		t.Errorf("gpu-name In [a10g], gpu-count >= 1 selected %v, want %v", got, want)
	}
}
