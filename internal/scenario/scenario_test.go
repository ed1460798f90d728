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
      bootstrapTemplateRef: {apiGroup: g, kind: K, name: tmpl}`, []string{"document 1 (NodePool default/gpu-pool)", "spec.template.spec.requirements[0]", "karpenter.sh/capacity-type values are spot and on-demand"}},
		{"an object that is no planning input says what is", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}`, []string{"(Deployment d)", "not an input of a planning run", "give Pods, Nodes, NodePools"}},
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
