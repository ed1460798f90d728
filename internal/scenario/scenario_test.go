package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

func TestLoadFilesReadsEveryKindOfInput(t *testing.T) {
	s, err := LoadFiles("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.NodePools); got != 1 {
		t.Fatalf("NodePools: got %d, want 1", got)
	}
	pool := s.NodePools[0]
	if pool.Namespace != "default" || pool.Spec.ClusterName != "workload-1" {
		t.Errorf("pool %s/%s for cluster %q", pool.Namespace, pool.Name, pool.Spec.ClusterName)
	}
	// Defaults come from the CRD schema, as from the apiserver.
	if pool.Spec.Template.Spec.ExpireAfter != "720h" || pool.Spec.Disruption.ConsolidationPolicy != v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized {
		t.Errorf("defaults not applied: expireAfter %q, consolidationPolicy %q", pool.Spec.Template.Spec.ExpireAfter, pool.Spec.Disruption.ConsolidationPolicy)
	}
	var names []string
	for _, p := range s.Pods {
		names = append(names, p.Namespace+"/"+p.Name+"@"+p.Spec.NodeName)
	}
	if got, want := strings.Join(names, " "), "shop/web-1@ default/web-2@ shop/db-0@existing-1"; got != want {
		t.Errorf("pods: got %q, want %q", got, want)
	}
	if len(s.Nodes) != 1 || s.Nodes[0].Name != "existing-1" || s.Nodes[0].Status.Allocatable.Cpu().MilliValue() != 1930 {
		t.Errorf("nodes: %+v", s.Nodes)
	}
	if len(s.DaemonSets) != 1 || s.DaemonSets[0].Namespace != "kube-system" {
		t.Errorf("daemonsets: %+v", s.DaemonSets)
	}
}

// Karpenter's scheduler reads RuntimeClass overhead (admission-set pod
// overhead), StorageClasses and Namespaces; so does simulate.
func TestLoadFilesAppliesRuntimeClassesAndKeepsClusterObjects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.yaml")
	input := `
apiVersion: v1
kind: Pod
metadata: {name: sandboxed}
spec:
  runtimeClassName: kata
  containers: [{name: c, image: i, resources: {requests: {cpu: "1"}}}]
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: kata}
handler: kata
overhead: {podFixed: {cpu: 250m, memory: 160Mi}}
scheduling:
  nodeSelector: {sandbox: "true"}
  tolerations: [{key: sandbox, operator: Exists, effect: NoSchedule}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {team: a}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gp3}
provisioner: ebs.csi.aws.com
volumeBindingMode: WaitForFirstConsumer
allowedTopologies: [{matchLabelExpressions: [{key: topology.ebs.csi.aws.com/zone, values: [us-east-1a]}]}]
`
	if err := os.WriteFile(path, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	pod := s.Pods[0]
	if pod.Spec.Overhead.Cpu().MilliValue() != 250 || pod.Spec.Overhead.Memory().Value() != 160<<20 {
		t.Errorf("overhead %v, want the RuntimeClass's podFixed", pod.Spec.Overhead)
	}
	if pod.Spec.NodeSelector["sandbox"] != "true" || len(pod.Spec.Tolerations) != 1 {
		t.Errorf("scheduling not merged: nodeSelector %v, tolerations %v", pod.Spec.NodeSelector, pod.Spec.Tolerations)
	}
	if len(s.Namespaces) != 1 || s.Namespaces[0].Labels["team"] != "a" {
		t.Errorf("namespaces %v", s.Namespaces)
	}
	if len(s.StorageClasses) != 1 || len(s.StorageClasses[0].AllowedTopologies) != 1 {
		t.Errorf("storage classes %v", s.StorageClasses)
	}
}

func TestLoadFilesReportsWhereInputIsWrong(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		input string
		want  []string
	}{
		{"a misspelt pod field names the field", `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: i, resorces: {}}]`, []string{"in.yaml: document 1 (Pod default/p)", `unknown field "spec.containers[0].resorces"`}},
		{"an invalid NodePool gets the apiserver's message", `
apiVersion: joinery.dev/v1alpha1
kind: NodePool
metadata: {name: gpu-pool}
spec:
  clusterName: c
  template:
    spec:
      requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [preemptible]}]
      infrastructureTemplateRef: {apiGroup: g, kind: K, name: tmpl}
      bootstrapTemplateRef: {apiGroup: g, kind: K, name: tmpl}`, []string{"document 1 (NodePool default/gpu-pool)", "spec.template.spec.requirements[0]", "karpenter.sh/capacity-type values are spot, on-demand and reserved"}},
		{"an object that is no planning input says what is", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}`, []string{"(Deployment d)", "not an input of a planning run", "give Pods, Nodes, Namespaces", "RuntimeClasses (node.k8s.io/v1)"}},
		{"a nameless object", `
apiVersion: v1
kind: Pod
metadata: {}`, []string{"document 1 (Pod)", "metadata.name is required"}},
		{"an object defined twice", `
apiVersion: v1
kind: Node
metadata: {name: node-1}
---
apiVersion: v1
kind: Node
metadata: {name: node-1}`, []string{"document 2 (Node node-1)", "defined twice: first in", "in.yaml document 1"}},
		{"every problem is reported, not only the first", `
apiVersion: v1
kind: Pod
metadata: {}
---
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {a: b}}
spec: {nodeNme: x}`, []string{"document 1 (Pod)", "document 2 (Pod default/p)", `unknown field "spec.nodeNme"`}},
		{"a pod naming an unknown RuntimeClass", `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {runtimeClassName: kata, containers: [{name: c, image: i}]}`, []string{"document 1 (Pod default/p)", `spec.runtimeClassName "kata" names no RuntimeClass`}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.yaml")
			if err := os.WriteFile(path, []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFiles(path)
			if err == nil {
				t.Fatal("no error")
			}
			var inputErr *InputError
			if !errors.As(err, &inputErr) {
				t.Errorf("error is not an InputError: %T", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
