package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/admission"
	"github.com/joinery-dev/joinery/internal/testenv"
)

var nodePoolGVR = schema.GroupVersionResource{Group: "joinery.dev", Version: "v1alpha1", Resource: "nodepools"}

// validNodePool is a Karpenter-style pool every invalid case starts from.
const validNodePool = `
apiVersion: joinery.dev/v1alpha1
kind: NodePool
metadata:
  name: base
  namespace: default
spec:
  clusterName: workload-1
  template:
    metadata:
      labels:
        team: payments
    spec:
      requirements:
      - key: kubernetes.io/arch
        operator: In
        values: [amd64]
      - key: karpenter.sh/capacity-type
        operator: In
        values: [spot, on-demand]
      - key: karpenter.k8s.aws/instance-category
        operator: In
        values: [c, m, r]
        minValues: 2
      - key: karpenter.k8s.aws/instance-generation
        operator: Gt
        values: ["4"]
      infrastructureTemplateRef:
        apiGroup: infrastructure.cluster.x-k8s.io
        kind: AWSMachineTemplate
        name: workers
      bootstrapTemplateRef:
        apiGroup: bootstrap.cluster.x-k8s.io
        kind: KubeadmConfigTemplate
        name: workers
`

type mutation func(spec map[string]any)

func template(spec map[string]any) map[string]any {
	return spec["template"].(map[string]any)["spec"].(map[string]any)
}

func setRequirement(req map[string]any) mutation {
	return func(spec map[string]any) { template(spec)["requirements"] = []any{req} }
}

func setTemplateField(field string, value any) mutation {
	return func(spec map[string]any) { template(spec)[field] = value }
}

func setDisruption(field string, value any) mutation {
	return func(spec map[string]any) {
		d, _ := spec["disruption"].(map[string]any)
		if d == nil {
			d = map[string]any{}
			spec["disruption"] = d
		}
		d[field] = value
	}
}

func setBudget(budget map[string]any) mutation { return setDisruption("budgets", []any{budget}) }

func setLabels(labels map[string]any) mutation {
	return func(spec map[string]any) {
		spec["template"].(map[string]any)["metadata"] = map[string]any{"labels": labels}
	}
}

func setKubelet(kubelet map[string]any) mutation { return setTemplateField("kubelet", kubelet) }

func TestNodePoolAdmission(t *testing.T) {
	cluster := testenv.New(t, testenv.Options{
		Name:              "nodepool-crd",
		CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")},
		WithoutScheduler:  true,
		WithoutKwok:       true,
	})
	client := dynamic.NewForConfigOrDie(cluster.Config).Resource(nodePoolGVR).Namespace("default")
	ctx := context.Background()
	// joinery simulate admits NodePools offline with the CRD's own schema;
	// every case below must get the same verdict there as from the apiserver.
	offline, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}

	invalid := []struct {
		rule    string
		mutate  mutation
		message []string // every substring must appear in the apiserver's answer
	}{
		{"neither clusterName nor clusterSelector", func(s map[string]any) { delete(s, "clusterName") },
			[]string{"set exactly one of spec.clusterName"}},
		{"both clusterName and clusterSelector", func(s map[string]any) {
			s["clusterSelector"] = map[string]any{"matchLabels": map[string]any{"env": "prod"}}
		}, []string{"set exactly one of spec.clusterName"}},
		{"clusterName that is not a DNS label", func(s map[string]any) { s["clusterName"] = "My_Cluster" },
			[]string{"spec.clusterName", "should match"}},
		{"unknown requirement operator", setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "Like", "values": []any{"amd64"}}),
			[]string{"spec.template.spec.requirements[0].operator", `Unsupported value: "Like"`}},
		{"In without values", setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "In"}),
			[]string{"operator In needs at least one value"}},
		{"Exists with values", setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "Exists", "values": []any{"amd64"}}),
			[]string{"Exists and DoesNotExist take no values"}},
		{"DoesNotExist with values", setRequirement(map[string]any{"key": "example.com/gpu", "operator": "DoesNotExist", "values": []any{"x"}}),
			[]string{"Exists and DoesNotExist take no values"}},
		{"Gt with a word", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": []any{"five"}}),
			[]string{"Gt, Lt, Gte and Lte take exactly one value, a non-negative integer"}},
		{"Lt with two values", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": []any{"8", "16"}}),
			[]string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{"Gte with a decimal", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-memory", "operator": "Gte", "values": []any{"1.5"}}),
			[]string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{"Lte without a value", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte"}),
			[]string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{"minValues above the number of values", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": []any{"m5", "c5"}, "minValues": 3}),
			[]string{"minValues works with In (and may not exceed the number of values)"}},
		{"minValues with NotIn", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "NotIn", "values": []any{"t2"}, "minValues": 1}),
			[]string{"minValues works with In"}},
		{"minValues of zero", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": []any{"m5"}, "minValues": 0}),
			[]string{"requirements[0].minValues", "greater than or equal to 1"}},
		{"unknown capacity type", setRequirement(map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"preemptible"}}),
			[]string{"karpenter.sh/capacity-type values are spot and on-demand"}},
		{"hostname requirement", setRequirement(map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": []any{"node-1"}}),
			[]string{"kubernetes.io/hostname, joinery.dev/nodepool and karpenter.sh/nodepool are set by Joinery"}},
		{"word for a numeric attribute", setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": []any{"four"}}),
			[]string{"values of numeric instance attributes"}},
		{"numeric joinery attribute with a word", setRequirement(map[string]any{"key": "joinery.dev/instance-gpu-count", "operator": "NotIn", "values": []any{"many"}}),
			[]string{"values of numeric instance attributes"}},
		{"requirement key that is not a label key", setRequirement(map[string]any{"key": "bad key!", "operator": "Exists"}),
			[]string{"spec.template.spec.requirements[0].key", "should match"}},
		{"taint with an unknown effect", setTemplateField("taints", []any{map[string]any{"key": "gpu", "effect": "Sometimes"}}),
			[]string{"spec.template.spec.taints[0].effect", `Unsupported value: "Sometimes"`}},
		{"taint without a key", setTemplateField("taints", []any{map[string]any{"effect": "NoSchedule"}}),
			[]string{"spec.template.spec.taints[0].key", "Required value"}},
		{"startup taint with an unknown effect", setTemplateField("startupTaints", []any{map[string]any{"key": "cni", "effect": "Later"}}),
			[]string{"spec.template.spec.startupTaints[0].effect", "Unsupported value"}},
		{"expireAfter in days", setTemplateField("expireAfter", "30d"),
			[]string{"spec.template.spec.expireAfter", "should match"}},
		{"terminationGracePeriod that is no duration", setTemplateField("terminationGracePeriod", "an hour"),
			[]string{"spec.template.spec.terminationGracePeriod", "should match"}},
		{"infrastructure template kind in lower case", setTemplateField("infrastructureTemplateRef", map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "awsmachinetemplate", "name": "w"}),
			[]string{"spec.template.spec.infrastructureTemplateRef.kind", "should match"}},
		{"infrastructure template without a name", setTemplateField("infrastructureTemplateRef", map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSMachineTemplate"}),
			[]string{"spec.template.spec.infrastructureTemplateRef.name", "Required value"}},
		{"no bootstrap template", func(s map[string]any) { delete(template(s), "bootstrapTemplateRef") },
			[]string{"spec.template.spec.bootstrapTemplateRef", "Required value"}},
		{"unknown consolidation policy", setDisruption("consolidationPolicy", "Always"),
			[]string{"spec.disruption.consolidationPolicy", `Unsupported value: "Always"`}},
		{"consolidateAfter that is no duration", setDisruption("consolidateAfter", "soon"),
			[]string{"spec.disruption.consolidateAfter", "should match"}},
		{"budget nodes as a word", setBudget(map[string]any{"nodes": "ten"}),
			[]string{"spec.disruption.budgets[0].nodes", "should match"}},
		{"budget over 100%", setBudget(map[string]any{"nodes": "150%"}),
			[]string{"spec.disruption.budgets[0].nodes", "should match"}},
		{"budget schedule without duration", setBudget(map[string]any{"nodes": "1", "schedule": "0 9 * * 1-5"}),
			[]string{"schedule and duration go together"}},
		{"budget duration without schedule", setBudget(map[string]any{"nodes": "1", "duration": "8h"}),
			[]string{"schedule and duration go together"}},
		{"budget schedule that is no cron expression", setBudget(map[string]any{"nodes": "1", "schedule": "weekdays", "duration": "8h"}),
			[]string{"spec.disruption.budgets[0].schedule", "should match"}},
		{"budget with an unknown reason", setBudget(map[string]any{"nodes": "1", "reasons": []any{"Bored"}}),
			[]string{"spec.disruption.budgets[0].reasons[0]", `Unsupported value: "Bored"`}},
		{"misspelt field", func(s map[string]any) { s["weigth"] = 5 },
			[]string{"unknown field", "weigth"}},
		{"weight of zero", func(s map[string]any) { s["weight"] = 0 },
			[]string{"spec.weight", "greater than or equal to 1"}},
		{"weight above 100", func(s map[string]any) { s["weight"] = 101 },
			[]string{"spec.weight", "less than or equal to 100"}},
		{"template label in kubernetes.io", setLabels(map[string]any{"kubernetes.io/role": "worker"}),
			[]string{"label domains kubernetes.io and k8s.io are restricted"}},
		{"template label in a k8s.io subdomain", setLabels(map[string]any{"foo.k8s.io/x": "y"}),
			[]string{"label domains kubernetes.io and k8s.io are restricted"}},
		{"template label in karpenter.sh", setLabels(map[string]any{"karpenter.sh/capacity-type": "spot"}),
			[]string{"label domains karpenter.sh, karpenter.k8s.aws and joinery.dev are set by Joinery"}},
		{"template label in joinery.dev", setLabels(map[string]any{"joinery.dev/nodepool": "other"}),
			[]string{"label domains karpenter.sh, karpenter.k8s.aws and joinery.dev are set by Joinery"}},
		{"template label value with spaces", setLabels(map[string]any{"team": "pay ments"}),
			[]string{`spec.template.metadata.labels.team: Invalid value: "pay ments"`, "should match"}},
		{"template label key that is not a label key", setLabels(map[string]any{"bad key": "x"}),
			[]string{"spec.template.metadata.labels: keys must be qualified names"}},
		{"limit on something that is no resource name", func(s map[string]any) { s["limits"] = map[string]any{"dollars per hour!": "5"} },
			[]string{"spec.limits keys are resource names"}},
		{"kubelet maxPods of zero", setKubelet(map[string]any{"maxPods": 0}),
			[]string{"spec.template.spec.kubelet.maxPods", "greater than or equal to 1"}},
		{"kubelet eviction signal that does not exist", setKubelet(map[string]any{"evictionHard": map[string]any{"disk.available": "10%"}}),
			[]string{"kubelet.evictionHard keys are memory.available"}},
		{"kubelet eviction threshold that is no quantity", setKubelet(map[string]any{"evictionHard": map[string]any{"memory.available": "lots"}}),
			[]string{`spec.template.spec.kubelet.evictionHard.memory.available: Invalid value: "lots"`, "should match"}},
		{"kubelet systemReserved that is no quantity", setKubelet(map[string]any{"systemReserved": map[string]any{"memory": "a lot"}}),
			[]string{`spec.template.spec.kubelet.systemReserved.memory: Invalid value: "a lot"`, "should match"}},
		{"requirement value longer than a label value", setRequirement(map[string]any{"key": "example.com/team", "operator": "In", "values": []any{strings.Repeat("x", 64)}}),
			[]string{"spec.template.spec.requirements[0].values[0]", "may not be more than 63"}},
		{"kubelet systemReserved for gpus", setKubelet(map[string]any{"systemReserved": map[string]any{"nvidia.com/gpu": "1"}}),
			[]string{"kubelet.systemReserved keys are cpu, memory, ephemeral-storage and pid"}},
		{"kubelet evictionSoft without a grace period", setKubelet(map[string]any{"evictionSoft": map[string]any{"memory.available": "500Mi"}}),
			[]string{"kubelet: evictionSoft and evictionSoftGracePeriod go together"}},
		{"kubelet evictionSoftGracePeriod that is no duration", setKubelet(map[string]any{
			"evictionSoft": map[string]any{"memory.available": "500Mi"}, "evictionSoftGracePeriod": map[string]any{"memory.available": "soon"}}),
			[]string{`spec.template.spec.kubelet.evictionSoftGracePeriod.memory.available: Invalid value: "soon"`, "should match"}},
		{"kubelet image GC high threshold under the low one", setKubelet(map[string]any{"imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 80}),
			[]string{"kubelet: imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"}},
	}
	if len(invalid) < 30 {
		t.Fatalf("the issue asks for at least 30 invalid NodePools, have %d", len(invalid))
	}
	for i, tc := range invalid {
		t.Run("rejects "+tc.rule, func(t *testing.T) {
			g := NewWithT(t)
			obj := parseNodePool(t, validNodePool)
			obj.SetName(fmt.Sprintf("invalid-%d", i))
			spec := obj.Object["spec"].(map[string]any)
			tc.mutate(spec)
			_, err := client.Create(ctx, normalized(t, obj), createOpts)
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted a NodePool with %s", tc.rule)
			offlineErrs := offline.Admit(ctx, normalized(t, obj).Object)
			g.Expect(offlineErrs).NotTo(BeEmpty(), "offline admission accepted a NodePool with %s", tc.rule)
			for _, want := range tc.message {
				g.Expect(err.Error()).To(ContainSubstring(want))
				g.Expect(offlineErrs.ToAggregate().Error()).To(ContainSubstring(want))
			}
		})
	}

	t.Run("accepts a Karpenter-style pool and fills in defaults", func(t *testing.T) {
		g := NewWithT(t)
		created, err := client.Create(ctx, parseNodePool(t, validNodePool), createOpts)
		g.Expect(err).NotTo(HaveOccurred())
		offlineObj := parseNodePool(t, validNodePool)
		g.Expect(offline.Admit(ctx, offlineObj.Object)).To(BeEmpty())
		for _, spec := range []map[string]any{created.Object["spec"].(map[string]any), offlineObj.Object["spec"].(map[string]any)} {
			g.Expect(template(spec)["expireAfter"]).To(Equal("720h"))
			g.Expect(spec["disruption"]).To(Equal(map[string]any{
				"consolidationPolicy": "WhenEmptyOrUnderutilized",
				"consolidateAfter":    "0s",
				"budgets":             []any{map[string]any{"nodes": "10%"}},
			}))
		}
		// The offline defaults are the apiserver's, field for field.
		g.Expect(offlineObj.Object["spec"]).To(Equal(created.Object["spec"]))
	})

	t.Run("accepts every sample in config/samples", func(t *testing.T) {
		samples, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
		if err != nil || len(samples) == 0 {
			t.Fatalf("no samples found: %v", err)
		}
		for _, path := range samples {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range strings.Split(string(data), "\n---\n") {
				obj := parseNodePool(t, doc)
				if obj.GetKind() != "NodePool" {
					continue
				}
				obj.SetNamespace("default")
				if errs := offline.Admit(ctx, obj.DeepCopy().Object); len(errs) > 0 {
					t.Errorf("%s: NodePool %q rejected offline: %v", path, obj.GetName(), errs.ToAggregate())
				}
				if _, err := client.Create(ctx, obj, createOpts); err != nil {
					t.Errorf("%s: NodePool %q rejected: %v", path, obj.GetName(), err)
				}
			}
		}
	})
}

// Strict, as kubectl sends it: unknown fields are errors, not warnings.
var createOpts = metav1.CreateOptions{FieldValidation: "Strict"}

// normalized round-trips obj through JSON so that the Go ints the cases
// write become the float64s unstructured objects hold.
func normalized(t *testing.T, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	data, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	return parseNodePool(t, string(data))
}

func parseNodePool(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatalf("parsing NodePool: %v", err)
	}
	return &unstructured.Unstructured{Object: obj}
}
