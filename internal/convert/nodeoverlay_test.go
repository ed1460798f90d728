package convert

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// Karpenter's NodeOverlays (karpenter.sh/v1alpha1) convert field for
// field; a requirement on the EC2NodeClass becomes one on the NodePools of
// the input using that class (Joinery's nodes carry no class label); the
// written YAML reads back as a NodeOverlay the CRD admits (Convert admits
// every object it writes).
func TestConvertNodeOverlays(t *testing.T) {
	res, out := convertFiles(t, clusterOpts, "testdata/overlay.yaml")
	overlays := res.NodeOverlays()
	if len(overlays) != 2 {
		t.Fatalf("converted %d NodeOverlays, want 2:\n%s", len(overlays), out)
	}
	plan, fuse := overlays[0], overlays[1]
	if plan.Name != "m5-savings-plan" || plan.Spec.PriceAdjustment == nil || *plan.Spec.PriceAdjustment != "-40%" || plan.Spec.Weight == nil || *plan.Spec.Weight != 10 {
		t.Errorf("m5-savings-plan: %+v", plan.Spec)
	}
	want := []v1alpha1.NodeOverlayRequirement{
		{Key: "karpenter.k8s.aws/instance-family", Operator: v1alpha1.OpIn, Values: []string{"m5"}},
		{Key: v1alpha1.LabelKarpenterNodePool, Operator: v1alpha1.OpIn, Values: []string{"general"}},
	}
	if len(plan.Spec.Requirements) != 2 || plan.Spec.Requirements[0].Key != want[0].Key || plan.Spec.Requirements[1].Key != want[1].Key ||
		strings.Join(plan.Spec.Requirements[1].Values, ",") != "general" {
		t.Errorf("requirements %+v, want %+v", plan.Spec.Requirements, want)
	}
	if q := fuse.Spec.Capacity["smarter-devices/fuse"]; q.String() != "1" || len(fuse.Status.Conditions) != 0 {
		t.Errorf("fuse: capacity %v, status %+v (Karpenter's status is not carried over)", fuse.Spec.Capacity, fuse.Status)
	}
	var written []map[string]any
	for _, doc := range strings.Split(string(out), "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["kind"] == "NodeOverlay" {
			written = append(written, obj)
			if obj["apiVersion"] != "joinery.dev/v1alpha1" || obj["metadata"].(map[string]any)["namespace"] != nil || obj["status"] != nil {
				t.Errorf("written NodeOverlay: %v", obj)
			}
		}
	}
	if len(written) != 2 {
		t.Errorf("wrote %d NodeOverlays:\n%s", len(written), out)
	}
}

func TestConvertNodeOverlayOfAnUnusedClassSelectsNothingAndWarns(t *testing.T) {
	in, err := Load("in.yaml", []byte(`apiVersion: karpenter.sh/v1alpha1
kind: NodeOverlay
metadata: {name: gpu-premium}
spec:
  requirements: [{key: karpenter.k8s.aws/ec2nodeclass, operator: In, values: [gpu]}]
  priceAdjustment: "+10%"
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(in, clusterOpts)
	if err != nil {
		t.Fatal(err)
	}
	o := res.NodeOverlays()[0]
	if r := o.Spec.Requirements[0]; r.Key != v1alpha1.LabelKarpenterNodePool || r.Values[0] != "no-nodepool-uses-gpu" {
		t.Errorf("requirement %+v: it must select no pool", r)
	}
	if w := warningStrings(res); !strings.Contains(w, "NodeOverlay gpu-premium: spec.requirements[0] selects EC2NodeClasses [gpu], which no NodePool of the input uses") {
		t.Errorf("warnings:\n%s", w)
	}
}

func TestConvertRejectsAnOverlayTheCRDRejects(t *testing.T) {
	in, err := Load("in.yaml", []byte(`apiVersion: karpenter.sh/v1alpha1
kind: NodeOverlay
metadata: {name: both}
spec: {price: "1", priceAdjustment: "-1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Convert(in, clusterOpts)
	if err == nil || !strings.Contains(err.Error(), "in.yaml: document 1 (NodeOverlay both)") || !strings.Contains(err.Error(), "set either price") {
		t.Errorf("err = %v", err)
	}
}
