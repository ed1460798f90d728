package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/admission"
)

// The NodeOverlay CRD's schema and CEL rules, applied offline with the
// CRD's own schema (as `joinery simulate` admits its inputs). The cases
// follow Karpenter's pkg/apis/v1alpha1/nodeoverlay_validation_test.go
// ("CEL/Validation"), test by test where the rule exists here.
func TestNodeOverlayAdmission(t *testing.T) {
	offline, err := admission.ForEmbeddedCRD("joinery.dev_nodeoverlays.yaml", "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec string
		// want is empty for a valid overlay, else substrings of the error.
		want []string
	}{
		// Requirements
		{"should fail for no values for In operator", `requirements: [{key: node.kubernetes.io/instance-type, operator: In}]`, []string{"spec.requirements", "operator In needs at least one value"}},
		{"should fail for no values for NotIn operator", `requirements: [{key: node.kubernetes.io/instance-type, operator: NotIn}]`, []string{"spec.requirements", "operator NotIn needs at least one value"}},
		{"should succeed for valid requirement keys", `requirements: [{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}], priceAdjustment: "-10%"`, nil},
		{"should allow for the karpenter.sh/nodepool label", `requirements: [{key: karpenter.sh/nodepool, operator: In, values: [default]}], price: "0.1"`, nil},
		{"should fail for invalid requirement keys", `requirements: [{key: "not a key!", operator: Exists}]`, []string{"spec.requirements[0].key"}},
		{"should allow supported ops", `requirements: [{key: a, operator: In, values: [x]}, {key: b, operator: NotIn, values: [x]}, {key: c, operator: Exists}, {key: d, operator: DoesNotExist}, {key: e, operator: Gt, values: ["1"]}, {key: f, operator: Lt, values: ["1"]}, {key: g, operator: Gte, values: ["1"]}, {key: h, operator: Lte, values: ["1"]}]`, nil},
		{"should fail for unsupported ops", `requirements: [{key: a, operator: Matches, values: [x]}]`, []string{"spec.requirements[0].operator", "Unsupported value"}},
		{"should allow empty requirements", `price: "0.2"`, nil},
		{"should fail with invalid GT or LT values", `requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ["-1"]}]`, []string{"single non-negative integer"}},
		{"should fail with invalid GTE or LTE values", `requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: ["1", "2"]}]`, []string{"single non-negative integer"}},
		{"Exists takes no values", `requirements: [{key: a, operator: Exists, values: [x]}]`, []string{"Exists and DoesNotExist take no values"}},
		// price and priceAdjustment
		{"should not be able to set both price and priceAdjustment", `price: "0.1", priceAdjustment: "-10%"`, []string{"set either price", "not both"}},
		{"should not allow an unsigned priceAdjustment percentage", `priceAdjustment: "10%"`, []string{"spec.priceAdjustment"}},
		{"should not allow an unsigned priceAdjustment integer", `priceAdjustment: "10"`, []string{"spec.priceAdjustment"}},
		{"should not allow an unsigned priceAdjustment float", `priceAdjustment: "0.5"`, []string{"spec.priceAdjustment"}},
		{"should not allow a discount beyond -100%", `priceAdjustment: "-150%"`, []string{"spec.priceAdjustment"}},
		{"should allow positive percentage value for priceAdjustment field", `priceAdjustment: "+10%"`, nil},
		{"should allow negative percentage less then 0%", `priceAdjustment: "-40%"`, nil},
		{"should allow negative percentage -100%", `priceAdjustment: "-100%"`, nil},
		{"should allow positive percentage greater then 100%", `priceAdjustment: "+150.5%"`, nil},
		{"should allow positive integer value", `priceAdjustment: "+2"`, nil},
		{"should allow negative integer value", `priceAdjustment: "-2"`, nil},
		{"should allow positive float value", `priceAdjustment: "+0.25"`, nil},
		{"should allow negative float value", `priceAdjustment: "-0.25"`, nil},
		{"price: should not allow a signed value", `price: "-1"`, []string{"spec.price"}},
		{"price: should not allow a percentage", `price: "10%"`, []string{"spec.price"}},
		{"price: should allow integer value", `price: "1"`, nil},
		{"price: should allow float value", `price: "0.042"`, nil},
		// Capacity
		{"should allow custom resources", `capacity: {smarter-devices/fuse: "1", hugepages-2Mi: 100Mi}`, nil},
		{"should not allow cpu resources override", `capacity: {cpu: "2"}`, []string{"spec.capacity", "cpu, memory, ephemeral-storage and pods cannot be overlaid"}},
		{"should not allow memory resources override", `capacity: {memory: 1Gi}`, []string{"spec.capacity", "cannot be overlaid"}},
		{"should not allow ephemeral-storage resources override", `capacity: {ephemeral-storage: 1Gi}`, []string{"spec.capacity", "cannot be overlaid"}},
		{"should not allow pod resources override", `capacity: {pods: "10"}`, []string{"spec.capacity", "cannot be overlaid"}},
		// weight
		{"weight below 1 is refused", `weight: 0, price: "1"`, []string{"spec.weight"}},
		{"weight above 10000 is refused", `weight: 10001, price: "1"`, []string{"spec.weight"}},
		{"weight 10000 is accepted", `weight: 10000, price: "1"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{}
			doc := "apiVersion: joinery.dev/v1alpha1\nkind: NodeOverlay\nmetadata: {name: o}\nspec: {" + tc.spec + "}\n"
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			errs := offline.Admit(context.Background(), obj)
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("rejected: %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			got := errs.ToAggregate().Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("error %q lacks %q", got, w)
				}
			}
		})
	}
}

func TestNodeOverlaySamplesAreAdmitted(t *testing.T) {
	offline, err := admission.ForEmbeddedCRD("joinery.dev_nodeoverlays.yaml", "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	samples, _ := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	found := 0
	for _, path := range samples {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			obj := map[string]any{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if obj["kind"] != "NodeOverlay" {
				continue
			}
			found++
			if errs := offline.Admit(context.Background(), obj); len(errs) > 0 {
				t.Errorf("%s: %v", path, errs.ToAggregate())
			}
		}
	}
	if found == 0 {
		t.Error("no NodeOverlay in config/samples")
	}
}
