package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/admission"
	"github.com/joinery-dev/joinery/test/testenv"
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

func setLimits(limits map[string]any) mutation {
	return func(spec map[string]any) { spec["limits"] = limits }
}

func setReservationTerms(terms ...map[string]any) mutation {
	return func(spec map[string]any) {
		list := make([]any, len(terms))
		for i, t := range terms {
			list[i] = t
		}
		template(spec)["capacityReservationSelectorTerms"] = list
	}
}

func setClusterSelector(expr map[string]any) mutation {
	return func(spec map[string]any) {
		delete(spec, "clusterName")
		spec["clusterSelector"] = map[string]any{"matchExpressions": []any{expr}}
	}
}

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

	invalid := invalidNodePools()
	if len(invalid) < 30 {
		t.Fatalf("the issue asks for at least 30 invalid NodePools, have %d", len(invalid))
	}
	for i, tc := range invalid {
		t.Run("rejects "+tc.rule, func(t *testing.T) {
			g := NewWithT(t)
			obj := mutated(t, tc, fmt.Sprintf("invalid-%d", i))
			_, err := client.Create(ctx, obj.DeepCopy(), createOpts)
			g.Expect(err).To(HaveOccurred(), "the apiserver accepted a NodePool with %s", tc.rule)
			offlineErrs := offline.Admit(ctx, obj.Object)
			g.Expect(offlineErrs).NotTo(BeEmpty(), "offline admission accepted a NodePool with %s", tc.rule)
			for _, want := range tc.message {
				g.Expect(err.Error()).To(ContainSubstring(want))
				g.Expect(offlineErrs.ToAggregate().Error()).To(ContainSubstring(want))
			}
		})
	}

	for i, tc := range validVariants() {
		t.Run("accepts "+tc.rule, func(t *testing.T) {
			obj := mutated(t, tc, fmt.Sprintf("valid-%d", i))
			if _, err := client.Create(ctx, obj.DeepCopy(), createOpts); err != nil {
				t.Errorf("the apiserver rejected it: %v", err)
			}
			if errs := offline.Admit(ctx, obj.Object); len(errs) > 0 {
				t.Errorf("offline admission rejected it: %v", errs.ToAggregate())
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

	// Karpenter's NodePool CEL: "Cannot transition NodePool between static
	// (replicas set) and dynamic (replicas unset) provisioning modes".
	t.Run("scales a static pool but never turns a pool static or dynamic", func(t *testing.T) {
		g := NewWithT(t)
		static := parseNodePool(t, validNodePool)
		static.SetName("static")
		static.Object["spec"].(map[string]any)["replicas"] = int64(3)
		created, err := client.Create(ctx, static, createOpts)
		g.Expect(err).NotTo(HaveOccurred())
		created.Object["spec"].(map[string]any)["replicas"] = int64(5)
		created, err = client.Update(ctx, created, metav1.UpdateOptions{})
		g.Expect(err).NotTo(HaveOccurred(), "changing spec.replicas of a static pool")
		delete(created.Object["spec"].(map[string]any), "replicas")
		_, err = client.Update(ctx, created, metav1.UpdateOptions{})
		g.Expect(err).To(MatchError(ContainSubstring("spec.replicas cannot be added to or removed from an existing NodePool")))

		dynamic := parseNodePool(t, validNodePool)
		dynamic.SetName("dynamic")
		created, err = client.Create(ctx, dynamic, createOpts)
		g.Expect(err).NotTo(HaveOccurred())
		created.Object["spec"].(map[string]any)["replicas"] = int64(2)
		_, err = client.Update(ctx, created, metav1.UpdateOptions{})
		g.Expect(err).To(MatchError(ContainSubstring("spec.replicas cannot be added to or removed from an existing NodePool")))
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

// invalidCase is a NodePool the apiserver must reject: valid NodePool
// changed by mutate, and every substring of message in the answer.
type invalidCase struct {
	rule    string
	mutate  mutation
	message []string
	// name replaces the NodePool's name when set.
	name string
}

func invalidNodePools() []invalidCase {
	return []invalidCase{
		{rule: "neither clusterName nor clusterSelector", mutate: func(s map[string]any) { delete(s, "clusterName") },
			message: []string{"set exactly one of spec.clusterName"}},
		{rule: "both clusterName and clusterSelector", mutate: func(s map[string]any) {
			s["clusterSelector"] = map[string]any{"matchLabels": map[string]any{"env": "prod"}}
		}, message: []string{"set exactly one of spec.clusterName"}},
		{rule: "clusterName that is not a DNS label", mutate: func(s map[string]any) { s["clusterName"] = "My_Cluster" },
			message: []string{"spec.clusterName", "should match"}},
		{rule: "unknown requirement operator", mutate: setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "Like", "values": []any{"amd64"}}),
			message: []string{"spec.template.spec.requirements[0].operator", `Unsupported value: "Like"`}},
		{rule: "In without values", mutate: setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "In"}),
			message: []string{"operator In needs at least one value"}},
		{rule: "Exists with values", mutate: setRequirement(map[string]any{"key": "kubernetes.io/arch", "operator": "Exists", "values": []any{"amd64"}}),
			message: []string{"Exists and DoesNotExist take no values"}},
		{rule: "DoesNotExist with values", mutate: setRequirement(map[string]any{"key": "example.com/gpu", "operator": "DoesNotExist", "values": []any{"x"}}),
			message: []string{"Exists and DoesNotExist take no values"}},
		{rule: "Gt with a word", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": []any{"five"}}),
			message: []string{"Gt, Lt, Gte and Lte take exactly one value, a non-negative integer"}},
		{rule: "Lt with two values", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": []any{"8", "16"}}),
			message: []string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{rule: "Gte with a decimal", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-memory", "operator": "Gte", "values": []any{"1.5"}}),
			message: []string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{rule: "Lte without a value", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte"}),
			message: []string{"Gt, Lt, Gte and Lte take exactly one value"}},
		{rule: "minValues above the number of values", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": []any{"m5", "c5"}, "minValues": 3}),
			message: []string{"minValues works with In (and may not exceed the number of values)"}},
		{rule: "minValues with NotIn", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "NotIn", "values": []any{"t2"}, "minValues": 1}),
			message: []string{"minValues works with In"}},
		{rule: "minValues of zero", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": []any{"m5"}, "minValues": 0}),
			message: []string{"requirements[0].minValues", "greater than or equal to 1"}},
		{rule: "unknown capacity type", mutate: setRequirement(map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"preemptible"}}),
			message: []string{"karpenter.sh/capacity-type values are spot, on-demand and reserved"}},
		{rule: "hostname requirement", mutate: setRequirement(map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": []any{"node-1"}}),
			message: []string{"kubernetes.io/hostname, joinery.dev/nodepool and karpenter.sh/nodepool are set by Joinery"}},
		{rule: "word for a numeric attribute", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": []any{"four"}}),
			message: []string{"values of numeric instance attributes"}},
		{rule: "numeric joinery attribute with a word", mutate: setRequirement(map[string]any{"key": "joinery.dev/instance-gpu-count", "operator": "NotIn", "values": []any{"many"}}),
			message: []string{"values of numeric instance attributes"}},
		{rule: "requirement key that is not a label key", mutate: setRequirement(map[string]any{"key": "bad key!", "operator": "Exists"}),
			message: []string{"spec.template.spec.requirements[0].key", "should match"}},
		{rule: "taint with an unknown effect", mutate: setTemplateField("taints", []any{map[string]any{"key": "gpu", "effect": "Sometimes"}}),
			message: []string{"spec.template.spec.taints[0].effect", `Unsupported value: "Sometimes"`}},
		{rule: "taint without a key", mutate: setTemplateField("taints", []any{map[string]any{"effect": "NoSchedule"}}),
			message: []string{"spec.template.spec.taints[0].key", "Required value"}},
		{rule: "startup taint with an unknown effect", mutate: setTemplateField("startupTaints", []any{map[string]any{"key": "cni", "effect": "Later"}}),
			message: []string{"spec.template.spec.startupTaints[0].effect", "Unsupported value"}},
		{rule: "expireAfter in days", mutate: setTemplateField("expireAfter", "30d"),
			message: []string{"spec.template.spec.expireAfter", "should match"}},
		{rule: "terminationGracePeriod that is no duration", mutate: setTemplateField("terminationGracePeriod", "an hour"),
			message: []string{"spec.template.spec.terminationGracePeriod", "should match"}},
		{rule: "infrastructure template kind in lower case", mutate: setTemplateField("infrastructureTemplateRef", map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "awsmachinetemplate", "name": "w"}),
			message: []string{"spec.template.spec.infrastructureTemplateRef.kind", "should match"}},
		{rule: "infrastructure template without a name", mutate: setTemplateField("infrastructureTemplateRef", map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSMachineTemplate"}),
			message: []string{"spec.template.spec.infrastructureTemplateRef.name", "Required value"}},
		{rule: "no bootstrap template", mutate: func(s map[string]any) { delete(template(s), "bootstrapTemplateRef") },
			message: []string{"spec.template.spec.bootstrapTemplateRef", "Required value"}},
		{rule: "unknown consolidation policy", mutate: setDisruption("consolidationPolicy", "Always"),
			message: []string{"spec.disruption.consolidationPolicy", `Unsupported value: "Always"`}},
		{rule: "consolidateAfter that is no duration", mutate: setDisruption("consolidateAfter", "soon"),
			message: []string{"spec.disruption.consolidateAfter", "should match"}},
		{rule: "budget nodes as a word", mutate: setBudget(map[string]any{"nodes": "ten"}),
			message: []string{"spec.disruption.budgets[0].nodes", "should match"}},
		{rule: "budget over 100%", mutate: setBudget(map[string]any{"nodes": "150%"}),
			message: []string{"spec.disruption.budgets[0].nodes", "should match"}},
		{rule: "budget schedule without duration", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "0 9 * * 1-5"}),
			message: []string{"schedule and duration go together"}},
		{rule: "budget duration without schedule", mutate: setBudget(map[string]any{"nodes": "1", "duration": "8h"}),
			message: []string{"schedule and duration go together"}},
		{rule: "budget schedule that is no cron expression", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "weekdays", "duration": "8h"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "budget with an unknown reason", mutate: setBudget(map[string]any{"nodes": "1", "reasons": []any{"Bored"}}),
			message: []string{"spec.disruption.budgets[0].reasons[0]", `Unsupported value: "Bored"`}},
		{rule: "misspelt field", mutate: func(s map[string]any) { s["weigth"] = 5 },
			message: []string{"unknown field", "weigth"}},
		{rule: "weight of zero", mutate: func(s map[string]any) { s["weight"] = 0 },
			message: []string{"spec.weight", "greater than or equal to 1"}},
		{rule: "weight above 100", mutate: func(s map[string]any) { s["weight"] = 101 },
			message: []string{"spec.weight", "less than or equal to 100"}},
		{rule: "template label in kubernetes.io", mutate: setLabels(map[string]any{"kubernetes.io/role": "worker"}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "template label in a k8s.io subdomain", mutate: setLabels(map[string]any{"foo.k8s.io/x": "y"}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "template label in karpenter.sh", mutate: setLabels(map[string]any{"karpenter.sh/capacity-type": "spot"}),
			message: []string{"label domains karpenter.sh, karpenter.k8s.aws and joinery.dev are set by Joinery"}},
		{rule: "template label in joinery.dev", mutate: setLabels(map[string]any{"joinery.dev/nodepool": "other"}),
			message: []string{"label domains karpenter.sh, karpenter.k8s.aws and joinery.dev are set by Joinery"}},
		{rule: "template label value with spaces", mutate: setLabels(map[string]any{"team": "pay ments"}),
			message: []string{`spec.template.metadata.labels.team: Invalid value: "pay ments"`, "should match"}},
		{rule: "template label key that is not a label key", mutate: setLabels(map[string]any{"bad key": "x"}),
			message: []string{"spec.template.metadata.labels: keys must be qualified names"}},
		{rule: "limit on something that is no resource name", mutate: func(s map[string]any) { s["limits"] = map[string]any{"dollars per hour!": "5"} },
			message: []string{"spec.limits keys are resource names"}},
		// Karpenter's EC2NodeClass capacityReservationSelectorTerms rules.
		{rule: "capacity reservation term with neither id nor tags", mutate: setReservationTerms(map[string]any{"ownerID": "123456789012"}),
			message: []string{"each term selects by id or by tags"}},
		{rule: "capacity reservation term with both id and tags", mutate: setReservationTerms(map[string]any{"id": "cr-0123abcd", "tags": map[string]any{"team": "ml"}}),
			message: []string{"each term selects by id or by tags"}},
		{rule: "capacity reservation term with id and ownerID", mutate: setReservationTerms(map[string]any{"id": "cr-0123abcd", "ownerID": "123456789012"}),
			message: []string{"ownerID narrows a selection by tags"}},
		{rule: "capacity reservation id that is no reservation id", mutate: setReservationTerms(map[string]any{"id": "sg-0123abcd"}),
			message: []string{"capacityReservationSelectorTerms[0].id"}},
		{rule: "capacity reservation tag with an empty value", mutate: setReservationTerms(map[string]any{"tags": map[string]any{"team": ""}}),
			message: []string{"empty tag keys or values are not supported"}},
		{rule: "capacity reservation ownerID that is no account", mutate: setReservationTerms(map[string]any{"tags": map[string]any{"team": "ml"}, "ownerID": "me"}),
			message: []string{"capacityReservationSelectorTerms[0].ownerID"}},
		{rule: "kubelet maxPods of zero", mutate: setKubelet(map[string]any{"maxPods": 0}),
			message: []string{"spec.template.spec.kubelet.maxPods", "greater than or equal to 1"}},
		{rule: "kubelet eviction signal that does not exist", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"disk.available": "10%"}}),
			message: []string{"kubelet.evictionHard keys are memory.available"}},
		{rule: "kubelet eviction threshold that is no quantity", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"memory.available": "lots"}}),
			message: []string{`spec.template.spec.kubelet.evictionHard.memory.available: Invalid value: "lots"`, "should match"}},
		{rule: "kubelet systemReserved that is no quantity", mutate: setKubelet(map[string]any{"systemReserved": map[string]any{"memory": "a lot"}}),
			message: []string{`spec.template.spec.kubelet.systemReserved.memory: Invalid value: "a lot"`, "should match"}},
		{rule: "requirement value longer than a label value", mutate: setRequirement(map[string]any{"key": "example.com/team", "operator": "In", "values": []any{strings.Repeat("x", 64)}}),
			message: []string{"spec.template.spec.requirements[0].values[0]", "may not be more than 63"}},
		{rule: "kubelet systemReserved for gpus", mutate: setKubelet(map[string]any{"systemReserved": map[string]any{"nvidia.com/gpu": "1"}}),
			message: []string{"kubelet.systemReserved keys are cpu, memory, ephemeral-storage and pid"}},
		{rule: "kubelet evictionSoft without a grace period", mutate: setKubelet(map[string]any{"evictionSoft": map[string]any{"memory.available": "500Mi"}}),
			message: []string{"kubelet: evictionSoft and evictionSoftGracePeriod go together"}},
		{rule: "kubelet evictionSoftGracePeriod that is no duration", mutate: setKubelet(map[string]any{
			"evictionSoft": map[string]any{"memory.available": "500Mi"}, "evictionSoftGracePeriod": map[string]any{"memory.available": "soon"}}),
			message: []string{`spec.template.spec.kubelet.evictionSoftGracePeriod.memory.available: Invalid value: "soon"`, "should match"}},
		{rule: "kubelet image GC high threshold under the low one", mutate: setKubelet(map[string]any{"imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 80}),
			message: []string{"kubelet: imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"}},
		// Values the schema used to admit but the controllers cannot hold.
		{rule: "expireAfter past time.Duration", mutate: setTemplateField("expireAfter", "9999999999h"),
			message: []string{"spec.template.spec.expireAfter", "so that it fits a Go time.Duration"}},
		{rule: "expireAfter of 20 digits of seconds", mutate: setTemplateField("expireAfter", "99999999999999999999s"),
			message: []string{"spec.template.spec.expireAfter", "so that it fits a Go time.Duration"}},
		{rule: "expireAfter with units out of order", mutate: setTemplateField("expireAfter", "30m2562047h"),
			message: []string{"spec.template.spec.expireAfter", "in that order"}},
		{rule: "consolidateAfter past time.Duration", mutate: setDisruption("consolidateAfter", "9999999999h"),
			message: []string{"spec.disruption.consolidateAfter", "so that it fits a Go time.Duration"}},
		{rule: "consolidateAfter of 3 million hours", mutate: setDisruption("consolidateAfter", "3000000h"),
			message: []string{"spec.disruption.consolidateAfter", "at most 999999h"}},
		{rule: "terminationGracePeriod past int32 seconds", mutate: setTemplateField("terminationGracePeriod", "600000h"),
			message: []string{"spec.template.spec.terminationGracePeriod", "at most 596523h"}},
		{rule: "terminationGracePeriod past time.Duration", mutate: setTemplateField("terminationGracePeriod", "9999999999h"),
			message: []string{"spec.template.spec.terminationGracePeriod", "at most 596523h"}},
		{rule: "budget duration past time.Duration", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "@daily", "duration": "9999999999h"}),
			message: []string{"spec.disruption.budgets[0].duration", "so that it fits a Go time.Duration"}},
		{rule: "budget duration with seconds", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "@daily", "duration": "1m30s"}),
			message: []string{"spec.disruption.budgets[0].duration"}},
		{rule: "budget duration of 11 digits of minutes", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "@daily", "duration": "99999999999m"}),
			message: []string{"spec.disruption.budgets[0].duration", "so that it fits a Go time.Duration"}},
		{rule: "negative cpu limit", mutate: setLimits(map[string]any{"cpu": "-1"}),
			message: []string{"spec.limits values may not be negative"}},
		{rule: "memory limit of 1e1000", mutate: setLimits(map[string]any{"memory": "1e1000"}),
			message: []string{"spec.limits values are at most 1P"}},
		{rule: "negative pricePerHour", mutate: setLimits(map[string]any{"pricePerHour": "-5"}),
			message: []string{"spec.limits values may not be negative"}},
		{rule: "negative integer cpu limit", mutate: setLimits(map[string]any{"cpu": -4}),
			message: []string{"spec.limits values may not be negative"}},
		{rule: "cpu limit of 2E", mutate: setLimits(map[string]any{"cpu": "2E"}),
			message: []string{"spec.limits values are at most 1P"}},
		{rule: "gpu limit of 1e16", mutate: setLimits(map[string]any{"nvidia.com/gpu": "1e16"}),
			message: []string{"spec.limits values are at most 1P"}},
		{rule: "pricePerHour of 1e19", mutate: setLimits(map[string]any{"pricePerHour": "1e19"}),
			message: []string{"spec.limits values are at most 1P"}},
		{rule: "systemReserved memory past int64", mutate: setKubelet(map[string]any{"systemReserved": map[string]any{"memory": "999999999999Ei"}}),
			message: []string{"spec.template.spec.kubelet.systemReserved[memory]", "a reserved quantity is at most 1P"}},
		{rule: "kubeReserved cpu of 2E", mutate: setKubelet(map[string]any{"kubeReserved": map[string]any{"cpu": "2E"}}),
			message: []string{"spec.template.spec.kubelet.kubeReserved[cpu]", "a reserved quantity is at most 1P"}},
		{rule: "evictionHard quantity past int64", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"memory.available": "99999Ei"}}),
			message: []string{"spec.template.spec.kubelet.evictionHard[memory.available]", "a quantity threshold is at most 1P"}},
		{rule: "evictionHard of 150%", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"nodefs.available": "150%"}}),
			message: []string{"spec.template.spec.kubelet.evictionHard[nodefs.available]", "a percentage threshold is at most 100%"}},
		{rule: "evictionHard of 100.5%", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"imagefs.available": "100.5%"}}),
			message: []string{"spec.template.spec.kubelet.evictionHard[imagefs.available]", "a percentage threshold is at most 100%"}},
		{rule: "evictionHard of 1000%", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"memory.available": "1000%"}}),
			message: []string{"a percentage threshold is at most 100%"}},
		{rule: "budget of 101%", mutate: setBudget(map[string]any{"nodes": "101%"}),
			message: []string{"spec.disruption.budgets[0].nodes", "should match"}},
		{rule: "budget node count past int", mutate: setBudget(map[string]any{"nodes": "99999999999999999999"}),
			message: []string{"spec.disruption.budgets[0].nodes", "should match"}},
		{rule: "Gt bound past int64", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-memory", "operator": "Gt", "values": []any{"99999999999999999999"}}),
			message: []string{"a non-negative integer of at most 18 digits"}},
		{rule: "Lte bound of 2^63", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte", "values": []any{"9223372036854775808"}}),
			message: []string{"a non-negative integer of at most 18 digits"}},
		{rule: "numeric attribute In past int64", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": []any{"99999999999999999999"}}),
			message: []string{"values of numeric instance attributes", "at most 18 digits"}},
		{rule: "Gt on an example.com key past int64", mutate: setRequirement(map[string]any{"key": "example.com/rack", "operator": "Lt", "values": []any{"123456789012345678901"}}),
			message: []string{"a non-negative integer of at most 18 digits"}},
		// Static pools.
		{rule: "negative replicas", mutate: func(spec map[string]any) { spec["replicas"] = -1 },
			message: []string{"spec.replicas"}},
		{rule: "replicas past 1000", mutate: func(spec map[string]any) { spec["replicas"] = 1001 },
			message: []string{"spec.replicas"}},
		{rule: "weight on a static pool", mutate: func(spec map[string]any) { spec["replicas"] = 3; spec["weight"] = 10 },
			message: []string{"spec.weight orders pools for pending pods, which a static pool (spec.replicas set) never launches for"}},
		{rule: "unknown budget reason", mutate: setBudget(map[string]any{"nodes": "1", "reasons": []any{"Broken"}}),
			message: []string{"Unhealthy"}},
		// Names and selectors.
		{rule: "NodePool name with dots", name: "general.purpose", mutate: func(map[string]any) {},
			message: []string{"metadata.name: a NodePool name must be a DNS label"}},
		{rule: "NodePool name of 64 characters", name: strings.Repeat("a", 64), mutate: func(map[string]any) {},
			message: []string{"metadata.name: a NodePool name must be a DNS label"}},
		{rule: "NodePool name of 200 characters", name: strings.Repeat("p", 200), mutate: func(map[string]any) {},
			message: []string{"metadata.name: a NodePool name must be a DNS label"}},
		{rule: "clusterSelector with operator Equals", mutate: setClusterSelector(map[string]any{"key": "env", "operator": "Equals", "values": []any{"prod"}}),
			message: []string{"spec.clusterSelector.matchExpressions: operator must be In, NotIn, Exists or DoesNotExist"}},
		{rule: "clusterSelector with operator in lower case", mutate: setClusterSelector(map[string]any{"key": "env", "operator": "in", "values": []any{"prod"}}),
			message: []string{"operator must be In, NotIn, Exists or DoesNotExist"}},
		{rule: "clusterSelector with operator Gt", mutate: setClusterSelector(map[string]any{"key": "size", "operator": "Gt", "values": []any{"3"}}),
			message: []string{"operator must be In, NotIn, Exists or DoesNotExist"}},
		{rule: "clusterSelector In without values", mutate: setClusterSelector(map[string]any{"key": "env", "operator": "In"}),
			message: []string{"spec.clusterSelector.matchExpressions: operators In and NotIn need at least one value"}},
		{rule: "clusterSelector Exists with values", mutate: setClusterSelector(map[string]any{"key": "env", "operator": "Exists", "values": []any{"prod"}}),
			message: []string{"spec.clusterSelector.matchExpressions: operators Exists and DoesNotExist take no values"}},
		// Protected labels: a single-value In requirement becomes a node label.
		{rule: "requirement on node-role.kubernetes.io/control-plane", mutate: setRequirement(map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "In", "values": []any{"true"}}),
			message: []string{"requirements: label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on kubernetes.io/role", mutate: setRequirement(map[string]any{"key": "kubernetes.io/role", "operator": "In", "values": []any{"master"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on node-role.kubernetes.io/worker Exists", mutate: setRequirement(map[string]any{"key": "node-role.kubernetes.io/worker", "operator": "Exists"}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on kubelet.kubernetes.io", mutate: setRequirement(map[string]any{"key": "kubelet.kubernetes.io/config", "operator": "In", "values": []any{"x"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on a k8s.io subdomain", mutate: setRequirement(map[string]any{"key": "foo.k8s.io/bar", "operator": "In", "values": []any{"x"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on k8s.io itself", mutate: setRequirement(map[string]any{"key": "k8s.io/x", "operator": "In", "values": []any{"x"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on beta.kubernetes.io/arch", mutate: setRequirement(map[string]any{"key": "beta.kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted", "require kubernetes.io/arch"}},
		{rule: "requirement on topology.kubernetes.io/rack", mutate: setRequirement(map[string]any{"key": "topology.kubernetes.io/rack", "operator": "In", "values": []any{"r1"}}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "requirement on karpenter.sh/do-not-disrupt", mutate: setRequirement(map[string]any{"key": "karpenter.sh/do-not-disrupt", "operator": "In", "values": []any{"true"}}),
			message: []string{"requirements: label domain karpenter.sh is restricted"}},
		{rule: "requirement on karpenter.sh/registered", mutate: setRequirement(map[string]any{"key": "karpenter.sh/registered", "operator": "Exists"}),
			message: []string{"label domain karpenter.sh is restricted"}},
		{rule: "requirement on a karpenter.sh subdomain", mutate: setRequirement(map[string]any{"key": "x.karpenter.sh/y", "operator": "In", "values": []any{"z"}}),
			message: []string{"label domain karpenter.sh is restricted"}},
		{rule: "requirement on joinery.dev/cluster", mutate: setRequirement(map[string]any{"key": "joinery.dev/cluster", "operator": "In", "values": []any{"other"}}),
			message: []string{"requirements: label domains joinery.dev and karpenter.k8s.aws are restricted to the instance attributes"}},
		{rule: "requirement on joinery.dev/disrupted", mutate: setRequirement(map[string]any{"key": "joinery.dev/disrupted", "operator": "DoesNotExist"}),
			message: []string{"label domains joinery.dev and karpenter.k8s.aws are restricted"}},
		{rule: "requirement on karpenter.k8s.aws/ec2nodeclass", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/ec2nodeclass", "operator": "In", "values": []any{"default"}}),
			message: []string{"label domains joinery.dev and karpenter.k8s.aws are restricted"}},
		{rule: "template label node-role.kubernetes.io/control-plane", mutate: setLabels(map[string]any{"node-role.kubernetes.io/control-plane": ""}),
			message: []string{"label domains kubernetes.io and k8s.io are restricted"}},
		{rule: "template label key of 400 characters", mutate: setLabels(map[string]any{strings.Repeat("a", 396) + ".com/x": "y"}),
			message: []string{"spec.template.metadata.labels: keys must be qualified names"}},
		{rule: "taint key of 400 characters", mutate: setTemplateField("taints", []any{map[string]any{"key": strings.Repeat("a", 396) + ".com/x", "effect": "NoSchedule"}}),
			message: []string{"spec.template.spec.taints[0].key", "may not be more than 316"}},
		// Cron schedules that pass a loose pattern and fail at run time.
		{rule: "schedule with a trailing word after @hourly", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "@hourly now", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "schedule with six fields", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "0 * * * * *", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "schedule with four fields", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "0 9 * *", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "schedule with a TZ prefix", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "TZ=Europe/Paris 0 9 * * *", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "schedule with a dollar sign", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "0 9 * * $", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
		{rule: "schedule of 200 characters", mutate: setBudget(map[string]any{"nodes": "1", "schedule": strings.Repeat("1,", 96) + "1 * * * *", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "may not be more than 128"}},
		{rule: "@every interval (robfig extension, not cron)", mutate: setBudget(map[string]any{"nodes": "1", "schedule": "@every 1h", "duration": "10m"}),
			message: []string{"spec.disruption.budgets[0].schedule", "should match"}},
	}
}

// validVariants are edge values the rules above must keep admitting:
// Karpenter accepts them, and tightening a bound must not cost a real pool.
func validVariants() []invalidCase {
	return []invalidCase{
		{rule: "expireAfter of 999999h", mutate: setTemplateField("expireAfter", "999999h")},
		{rule: "expireAfter Never", mutate: setTemplateField("expireAfter", "Never")},
		{rule: "expireAfter of 1h30m45s", mutate: setTemplateField("expireAfter", "1h30m45s")},
		{rule: "consolidateAfter of 90s", mutate: setDisruption("consolidateAfter", "90s")},
		// Karpenter v1.15's third policy.
		{rule: "consolidationPolicy Balanced", mutate: setDisruption("consolidationPolicy", "Balanced")},
		{rule: "terminationGracePeriod of 596523h", mutate: setTemplateField("terminationGracePeriod", "596523h")},
		{rule: "terminationGracePeriod of 48h", mutate: setTemplateField("terminationGracePeriod", "48h")},
		{rule: "budget schedule MON-FRI", mutate: setBudget(map[string]any{"nodes": "0", "schedule": "0 9 * * MON-FRI", "duration": "8h"})},
		{rule: "budget schedule @daily", mutate: setBudget(map[string]any{"nodes": "20%", "schedule": "@daily", "duration": "1h30m"})},
		{rule: "budget schedule with steps and lists", mutate: setBudget(map[string]any{"nodes": "100%", "schedule": "*/15 0-6,22,23 * JAN-MAR,DEC sun", "duration": "10m"})},
		// Karpenter's budget duration pattern ends in an optional 0s for
		// the same reason (karpenter v1 NodePool Budget.Duration).
		{rule: "budget duration as a Go client writes it (metav1.Duration)", mutate: setBudget(map[string]any{"nodes": "0", "schedule": "*/5 * * * *",
			"duration": (&metav1.Duration{Duration: time.Minute}).Duration.String()})},
		{rule: "budget duration of 1h30m0s", mutate: setBudget(map[string]any{"nodes": "0", "schedule": "@daily", "duration": "1h30m0s"})},
		{rule: "budget of 999999999 nodes", mutate: setBudget(map[string]any{"nodes": "999999999"})},
		{rule: "static pool of 3 replicas", mutate: func(spec map[string]any) { spec["replicas"] = 3 }},
		{rule: "static pool of 0 replicas", mutate: func(spec map[string]any) { spec["replicas"] = 0 }},
		{rule: "budget for reason Unhealthy (repair)", mutate: setBudget(map[string]any{"nodes": "1", "reasons": []any{"Unhealthy", "Drifted"}})},
		{rule: "limits of 1P cpu, 0 memory and 12.5 pricePerHour", mutate: setLimits(map[string]any{"cpu": "1P", "memory": "0", "pricePerHour": "12.5"})},
		{rule: "integer limits", mutate: setLimits(map[string]any{"cpu": 1000, "nvidia.com/gpu": 8})},
		{rule: "evictionHard of 100% and 500Mi", mutate: setKubelet(map[string]any{"evictionHard": map[string]any{"nodefs.available": "100%", "memory.available": "500Mi", "imagefs.available": "7.5%"}})},
		{rule: "kubeReserved of 100m cpu and 1Gi", mutate: setKubelet(map[string]any{"kubeReserved": map[string]any{"cpu": "100m", "memory": "1Gi"}})},
		{rule: "Lte of 18 digits", mutate: setRequirement(map[string]any{"key": "karpenter.k8s.aws/instance-memory", "operator": "Lte", "values": []any{"999999999999999999"}})},
		{rule: "requirement on node.kubernetes.io/instance-type", mutate: setRequirement(map[string]any{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": []any{"m5.large"}})},
		{rule: "requirement on topology.kubernetes.io/zone", mutate: setRequirement(map[string]any{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": []any{"us-east-1a"}})},
		{rule: "requirement on topology.k8s.aws/zone-id", mutate: setRequirement(map[string]any{"key": "topology.k8s.aws/zone-id", "operator": "In", "values": []any{"use1-az1"}})},
		{rule: "requirement on kubernetes.io/os", mutate: setRequirement(map[string]any{"key": "kubernetes.io/os", "operator": "In", "values": []any{"linux"}})},
		{rule: "requirement on node-restriction.kubernetes.io", mutate: setRequirement(map[string]any{"key": "node-restriction.kubernetes.io/team", "operator": "In", "values": []any{"a"}})},
		{rule: "requirement on joinery.dev/instance-hypervisor", mutate: setRequirement(map[string]any{"key": "joinery.dev/instance-hypervisor", "operator": "In", "values": []any{"nitro"}})},
		// Karpenter v1 admits reserved (capacity reservations) beside spot and on-demand.
		{rule: "capacity reservations by id and by tags of an owner", mutate: setReservationTerms(
			map[string]any{"id": "cr-0123456789abcdef0"},
			map[string]any{"tags": map[string]any{"team": "ml", "env": "*"}, "ownerID": "123456789012"})},
		{rule: "capacity type reserved alone", mutate: setRequirement(map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"reserved"}})},
		{rule: "capacity types reserved and on-demand", mutate: setRequirement(map[string]any{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []any{"reserved", "on-demand"}})},
		{rule: "capacity type NotIn reserved", mutate: setRequirement(map[string]any{"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": []any{"reserved"}})},
		{rule: "requirement on your own domain", mutate: setRequirement(map[string]any{"key": "example.com/kubernetes.io", "operator": "Exists"})},
		{rule: "clusterSelector with In and Exists", mutate: func(s map[string]any) {
			delete(s, "clusterName")
			s["clusterSelector"] = map[string]any{"matchExpressions": []any{
				map[string]any{"key": "env", "operator": "In", "values": []any{"prod"}},
				map[string]any{"key": "tier", "operator": "Exists"},
			}}
		}},
		{rule: "NodePool name of 63 characters", name: strings.Repeat("a", 62) + "1", mutate: func(map[string]any) {}},
	}
}

// TestNodePoolAdmissionOffline runs every case of TestNodePoolAdmission
// through the offline admission alone: it needs no apiserver, so a rule
// whose offline verdict drifts shows up in a plain `go test`.
func TestNodePoolAdmissionOffline(t *testing.T) {
	offline, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, tc := range invalidNodePools() {
		t.Run("rejects "+tc.rule, func(t *testing.T) {
			obj := mutated(t, tc, fmt.Sprintf("invalid-%d", i))
			errs := offline.Admit(ctx, obj.Object)
			if len(errs) == 0 {
				t.Fatalf("offline admission accepted a NodePool with %s", tc.rule)
			}
			for _, want := range tc.message {
				if got := errs.ToAggregate().Error(); !strings.Contains(got, want) {
					t.Errorf("message %q lacks %q", got, want)
				}
			}
		})
	}
	for i, tc := range validVariants() {
		t.Run("accepts "+tc.rule, func(t *testing.T) {
			obj := mutated(t, tc, fmt.Sprintf("valid-%d", i))
			if errs := offline.Admit(ctx, obj.Object); len(errs) > 0 {
				t.Fatalf("rejected: %v", errs.ToAggregate())
			}
		})
	}
}

// mutated is validNodePool named name (or tc.name) with tc applied.
func mutated(t *testing.T, tc invalidCase, name string) *unstructured.Unstructured {
	t.Helper()
	obj := parseNodePool(t, validNodePool)
	obj.SetName(name)
	if tc.name != "" {
		obj.SetName(tc.name)
	}
	tc.mutate(obj.Object["spec"].(map[string]any))
	return normalized(t, obj)
}

// With JOINERY_INPUTS_TABLE set, the offline verdict on every invalid
// NodePool is written there as Markdown rows (docs/hardening-inputs.md).
func TestWriteInvalidNodePoolsTable(t *testing.T) {
	out := os.Getenv("JOINERY_INPUTS_TABLE")
	if out == "" {
		t.Skip("JOINERY_INPUTS_TABLE not set")
	}
	var rows strings.Builder
	for _, r := range invalidNodePoolRows(t) {
		rows.WriteString("| NodePool | " + r[0] + " | " + r[1] + " |\n")
	}
	if err := os.WriteFile(out, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// invalidNodePoolRows are the rule and the offline verdict of every
// invalid NodePool, as docs/hardening-inputs.md shows them.
func invalidNodePoolRows(t *testing.T) [][2]string {
	t.Helper()
	offline, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", "v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][2]string
	for i, tc := range invalidNodePools() {
		verdict := "accepted"
		if errs := offline.Admit(context.Background(), mutated(t, tc, fmt.Sprintf("invalid-%d", i)).Object); len(errs) > 0 {
			verdict = errs.ToAggregate().Error()
			if len(verdict) > 400 {
				verdict = verdict[:400] + "..."
			}
			verdict = strings.ReplaceAll(strings.ReplaceAll(verdict, "|", "\\|"), "\n", " ")
		}
		rows = append(rows, [2]string{tc.rule, verdict})
	}
	return rows
}

// docs/hardening-inputs.md lists every invalid NodePool with today's
// message: a case added or a message changed without the table fails here
// (it had fallen 8 NodePools and 2 messages behind).
func TestHardeningInputsDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hardening-inputs.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range invalidNodePoolRows(t) {
		if r[1] == "accepted" {
			t.Errorf("%s: accepted", r[0])
			continue
		}
		// | NodePool | rule | accepted before | message now |
		row := regexp.MustCompile(`(?m)^\| NodePool \| ` + regexp.QuoteMeta(r[0]) + ` \| (yes|no) \| ` + regexp.QuoteMeta(r[1]) + ` \|$`)
		if !row.Match(doc) {
			t.Errorf("docs/hardening-inputs.md has no row for %q with today's message %q; regenerate it (see the doc)", r[0], r[1])
		}
	}
}
