package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func runJoinery(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestSimulateJSONIsTheDocumentedShape(t *testing.T) {
	out, err := runJoinery(t, "simulate", "-f", "../../internal/scenario/testdata/web.yaml", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got, want := sortedKeys(raw), "lowerBoundPricePerHour nodes solveSeconds totalPricePerHour unschedulable"; got != want {
		t.Errorf("top-level keys %q, want %q", got, want)
	}
	var nodes []map[string]json.RawMessage
	if err := json.Unmarshal(raw["nodes"], &nodes); err != nil || len(nodes) == 0 {
		t.Fatalf("nodes: %v %s", err, raw["nodes"])
	}
	for _, n := range nodes {
		if got, want := sortedKeys(n), "capacityType existing instanceType name nodePool pods pricePerHour zone"; got != want {
			t.Errorf("node keys %q, want %q", got, want)
		}
	}

	var result simulateResult
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatal(err)
	}
	// Both pending pods are placed exactly once; the bound pod is not re-placed.
	placed := map[string]int{}
	var total float64
	for _, n := range result.Nodes {
		for _, p := range n.Pods {
			placed[p]++
		}
		if !n.Existing {
			total += n.PricePerHour
			if n.NodePool != "general" || n.InstanceType == "" || n.Zone == "" || n.PricePerHour <= 0 {
				t.Errorf("new node without a concrete offering: %+v", n)
			}
		}
	}
	if placed["shop/web-1"] != 1 || placed["default/web-2"] != 1 || placed["shop/db-0"] != 0 || len(placed) != 2 {
		t.Errorf("placements: %v", placed)
	}
	if len(result.Unschedulable) != 0 {
		t.Errorf("unschedulable: %+v", result.Unschedulable)
	}
	if diff := total - result.TotalPricePerHour; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("totalPricePerHour %v is not the sum of new nodes' prices %v", result.TotalPricePerHour, total)
	}
	if result.LowerBoundPricePerHour <= 0 || result.LowerBoundPricePerHour > result.TotalPricePerHour {
		t.Errorf("lower bound %v must be in (0, total %v]", result.LowerBoundPricePerHour, result.TotalPricePerHour)
	}
}

func TestSimulateReportsPodsThatFitNowhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	pool, err := os.ReadFile("../../internal/scenario/testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.SplitN(string(pool), "---", 2)[0] + `---
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers: [{name: c, image: i, resources: {requests: {cpu: "5000"}}}]
`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runJoinery(t, "simulate", "-f", path, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var result simulateResult
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatal(err)
	}
	if len(result.Unschedulable) != 1 || result.Unschedulable[0].Pod != "default/huge" || !strings.Contains(result.Unschedulable[0].Reason, `"general"`) {
		t.Errorf("want default/huge unschedulable with a reason naming pool \"general\", got %+v", result.Unschedulable)
	}
}

// A NodePool of reserved capacity only is admitted (as Karpenter's is) and,
// while no offering carries reserved capacity, simulate says why its pods
// wait rather than reporting a misfit; with on-demand allowed too they fit.
func TestSimulateReservedCapacityType(t *testing.T) {
	web, err := os.ReadFile("../../internal/scenario/testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		values        string
		unschedulable int
	}{{"[reserved]", 1}, {"[reserved, on-demand]", 0}} {
		path := filepath.Join(t.TempDir(), "reserved.yaml")
		doc := strings.Replace(string(web), "values: [spot, on-demand]", "values: "+tc.values, 1)
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runJoinery(t, "simulate", "-f", path, "-o", "json")
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.values, err, out)
		}
		var result simulateResult
		if err := json.Unmarshal([]byte(out), &result); err != nil {
			t.Fatal(err)
		}
		if len(result.Unschedulable) != tc.unschedulable {
			t.Fatalf("%s: %d unschedulable, want %d: %+v", tc.values, len(result.Unschedulable), tc.unschedulable, result.Unschedulable)
		}
		for _, u := range result.Unschedulable {
			if !strings.Contains(u.Reason, `nodepool "general": no reserved offering`) {
				t.Errorf("%s: %s: reason %q does not say there is no reserved offering", tc.values, u.Pod, u.Reason)
			}
		}
		for _, n := range result.Nodes {
			if !n.Existing && n.CapacityType != "on-demand" {
				t.Errorf("%s: new node %s is %s, want on-demand", tc.values, n.Name, n.CapacityType)
			}
		}
	}
}

// simulate reads CSINodes: an existing node whose EBS driver attaches 2
// volumes takes one pod of two claims, and the second pod, which would fit
// the node's cpu and memory, goes to a new node.
func TestSimulateHonoursCSINodeAttachLimits(t *testing.T) {
	web, err := os.ReadFile("../../internal/scenario/testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.SplitN(string(web), "---", 2)[0] + `---
apiVersion: v1
kind: Node
metadata:
  name: existing-1
  labels: {node.kubernetes.io/instance-type: m5.2xlarge, topology.kubernetes.io/zone: us-east-1a}
status:
  allocatable: {cpu: "8", memory: 30Gi, pods: "58"}
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: existing-1}
spec:
  drivers: [{name: ebs.csi.aws.com, nodeID: i-0123, allocatable: {count: 2}}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gp3}
provisioner: ebs.csi.aws.com
volumeBindingMode: WaitForFirstConsumer
`
	for _, pod := range []string{"db-0", "db-1"} {
		doc += `---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data-` + pod + `}, spec: {storageClassName: gp3, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}
- {apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: logs-` + pod + `}, spec: {storageClassName: gp3, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}
- apiVersion: v1
  kind: Pod
  metadata: {name: ` + pod + `}
  spec:
    containers: [{name: db, image: db, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
    volumes:
    - {name: data, persistentVolumeClaim: {claimName: data-` + pod + `}}
    - {name: logs, persistentVolumeClaim: {claimName: logs-` + pod + `}}
`
	}
	path := filepath.Join(t.TempDir(), "csinode.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runJoinery(t, "simulate", "-f", path, "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var result simulateResult
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatal(err)
	}
	onExisting, onNew := 0, 0
	for _, n := range result.Nodes {
		if n.Existing {
			onExisting += len(n.Pods)
		} else {
			onNew += len(n.Pods)
		}
	}
	if len(result.Unschedulable) != 0 || onExisting != 1 || onNew != 1 {
		t.Fatalf("%d pods on the existing node, %d on new ones, unschedulable %+v; want 1 and 1", onExisting, onNew, result.Unschedulable)
	}
}

func TestSimulateInputErrorsExitWithCodeTwo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}], nodeSelecter: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	podOnly := filepath.Join(t.TempDir(), "pod-only.yaml")
	if err := os.WriteFile(podOnly, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	negative := filepath.Join(t.TempDir(), "negative.yaml")
	if err := os.WriteFile(negative, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i, resources: {requests: {cpu: -1}}}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule string
		args []string
		want []string
	}{
		{"a misspelt field names file, object and field", []string{"simulate", "-f", bad}, []string{"bad.yaml: document 1 (Pod default/p)", `unknown field "spec.nodeSelecter"`}},
		{"a value the apiserver refuses names file, object and field", []string{"simulate", "-f", negative, "-f", "../../internal/scenario/testdata/web.yaml"}, []string{"negative.yaml: document 1 (Pod default/p)", "spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0"}},
		{"a missing file", []string{"simulate", "-f", "does-not-exist.yaml"}, []string{"does-not-exist.yaml"}},
		{"no NodePool", []string{"simulate", "-f", podOnly}, []string{"no NodePool in the input"}},
		{"an unknown region", []string{"simulate", "-f", "../../internal/scenario/testdata/web.yaml", "--region", "mars-1"}, []string{"--region", "mars-1"}},
		{"an unknown output format", []string{"simulate", "-f", "../../internal/scenario/testdata/web.yaml", "-o", "yaml"}, []string{`-o "yaml"`, "json or table"}},
		{"a catalog directory that is not one", []string{"simulate", "-f", "../../internal/scenario/testdata/web.yaml", "--catalog", t.TempDir()}, []string{"--catalog"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := runJoinery(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2 (%v)", code, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " ")
}

// simulate accepts NodeOverlays: testdata/overlay.yaml's -40% on m5 makes
// m5 the cheaper family where c5 is at list prices (the same input without
// the overlay is checked to choose c5, so the flip is the overlay's doing).
func TestSimulateAppliesNodeOverlays(t *testing.T) {
	run := func(file string) simulateResult {
		t.Helper()
		out, err := runJoinery(t, "simulate", "-f", file, "-o", "json")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var result simulateResult
		if err := json.Unmarshal([]byte(out), &result); err != nil {
			t.Fatal(err)
		}
		return result
	}
	const input = "../../internal/scenario/testdata/overlay.yaml"
	data, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, d := range strings.Split(string(data), "\n---\n") {
		if !strings.Contains(d, "kind: NodeOverlay") {
			docs = append(docs, d)
		}
	}
	without := filepath.Join(t.TempDir(), "without.yaml")
	if err := os.WriteFile(without, []byte(strings.Join(docs, "\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, family, overlay string
	}{{without, "c5.", ""}, {input, "m5.", "m5-savings-plan"}} {
		result := run(tc.file)
		if len(result.Nodes) == 0 {
			t.Fatalf("%s: no nodes", tc.file)
		}
		for _, n := range result.Nodes {
			if !strings.HasPrefix(n.InstanceType, tc.family) || n.PriceOverlay != tc.overlay {
				t.Errorf("%s: node %s is a %s priced by %q, want %s* priced by %q", filepath.Base(tc.file), n.Name, n.InstanceType, n.PriceOverlay, tc.family, tc.overlay)
			}
		}
	}
}

// CapacityBuffers in simulate's input: their chunks are planned with the
// pending pods (as Karpenter's provisioner adds its virtual pods) and the
// output says which pods are headroom.
func TestSimulatePlansCapacityBufferHeadroom(t *testing.T) {
	out, err := runJoinery(t, "simulate", "-f", "../../internal/scenario/testdata/buffer.yaml", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var result simulateResult
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatal(err)
	}
	if len(result.Nodes) != 1 || result.Nodes[0].Headroom != 3 || len(result.Nodes[0].Pods) != 4 || len(result.Unschedulable) != 0 {
		t.Fatalf("want one new m5.xlarge holding api-1 and 3 chunks: %s", out)
	}
	table, err := runJoinery(t, "simulate", "-f", "../../internal/scenario/testdata/buffer.yaml")
	if err != nil || !strings.Contains(table, "headroom: general-1 holds 3 CapacityBuffer chunk(s) of its 4 pod(s)") {
		t.Errorf("table (%v):\n%s", err, table)
	}
}

func TestSimulateRefusesBuffersItCannotResolve(t *testing.T) {
	write := func(name, body string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noTemplate := write("no-template.yaml", "apiVersion: autoscaling.x-k8s.io/v1beta1\nkind: CapacityBuffer\nmetadata: {name: web}\nspec: {podTemplateRef: {name: web}, replicas: 2}\n")
	scalable := write("scalable.yaml", "apiVersion: autoscaling.x-k8s.io/v1beta1\nkind: CapacityBuffer\nmetadata: {name: web}\nspec: {scalableRef: {kind: Deployment, name: web}, percentage: 10}\n")
	noCount := write("no-count.yaml", "apiVersion: autoscaling.x-k8s.io/v1beta1\nkind: CapacityBuffer\nmetadata: {name: web}\nspec: {podTemplateRef: {name: web}}\n")
	for _, tc := range []struct {
		rule string
		file string
		want []string
	}{
		{"a template not in the input", noTemplate, []string{"CapacityBuffer default/web", "spec.podTemplateRef.name", "PodTemplate default/web is not in the input"}},
		{"a scalableRef", scalable, []string{"scalable.yaml: document 1 (CapacityBuffer default/web)", "spec.scalableRef"}},
		{"neither replicas nor limits", noCount, []string{"spec.replicas", "replicas or limits must also be set"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := runJoinery(t, "simulate", "-f", tc.file, "-f", "../../internal/scenario/testdata/web.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2 (%v)", code, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
