package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// badInput is one input the apiserver would refuse, and what the error
// must say: where (file, document, object) and which field.
type badInput struct {
	rule  string
	input string
	want  []string
}

func podWith(spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n" + spec
}

func podWithMeta(meta string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: " + meta + "\nspec:\n  containers: [{name: c, image: i}]\n"
}

func container(resources string) string {
	return "  containers: [{name: c, image: i, resources: " + resources + "}]\n"
}

const okContainer = "  containers: [{name: c, image: i}]\n"

func nodeWith(spec, status string) string {
	return "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: " + spec + "\nstatus: " + status + "\n"
}

// badInputs are the apiserver's rules for the fields a planning run reads.
func badInputs() []badInput {
	where := "document 1 (Pod shop/p)"
	return []badInput{
		{"negative cpu request", podWith(container("{requests: {cpu: -1}}")), []string{where, "spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0"}},
		{"negative memory limit", podWith(container("{limits: {memory: -1Gi}}")), []string{where, "spec.containers[0].resources.limits[memory]", "must be greater than or equal to 0"}},
		{"negative init container request", podWith(okContainer + "  initContainers: [{name: init, image: i, resources: {requests: {cpu: -500m}}}]\n"), []string{"spec.initContainers[0].resources.requests[cpu]", "must be greater than or equal to 0"}},
		{"negative gpu request", podWith(container("{requests: {nvidia.com/gpu: -1}, limits: {nvidia.com/gpu: -1}}")), []string{"spec.containers[0].resources.requests[nvidia.com/gpu]", "must be greater than or equal to 0"}},
		{"request above its limit", podWith(container("{requests: {cpu: '2'}, limits: {cpu: '1'}}")), []string{"spec.containers[0].resources.requests[cpu]", "must be less than or equal to cpu limit of 1"}},
		{"extended resource without a domain", podWith(container("{requests: {gpu: 1}}")), []string{"spec.containers[0].resources.requests[gpu]", "extended resource with a domain"}},
		{"resource name that is no qualified name", podWith(container("{requests: {'example.com/bad name': 1}}")), []string{"spec.containers[0].resources.requests[example.com/bad name]"}},
		{"negative pod overhead", podWith(okContainer + "  overhead: {cpu: -1}\n"), []string{"spec.overhead[cpu]", "must be greater than or equal to 0"}},
		{"pod without containers", podWith("  containers: []\n"), []string{"spec.containers", "a pod needs at least one container"}},
		{"container without a name", podWith("  containers: [{image: i}]\n"), []string{"spec.containers[0].name", "Required value"}},
		{"container name with capitals", podWith("  containers: [{name: Web, image: i}]\n"), []string{"spec.containers[0].name", "RFC 1123 label"}},
		{"toleration operator Matches", podWith(okContainer + "  tolerations: [{key: gpu, operator: Matches, value: x}]\n"), []string{"spec.tolerations[0].operator", `Unsupported value: "Matches"`}},
		{"toleration Exists with a value", podWith(okContainer + "  tolerations: [{key: gpu, operator: Exists, value: x}]\n"), []string{"spec.tolerations[0].value", "value must be empty when `operator` is 'Exists'"}},
		{"toleration without key, Equal", podWith(okContainer + "  tolerations: [{operator: Equal, value: x}]\n"), []string{"spec.tolerations[0].operator", "operator must be Exists when `key` is empty"}},
		{"toleration with an unknown effect", podWith(okContainer + "  tolerations: [{key: gpu, operator: Exists, effect: Never}]\n"), []string{"spec.tolerations[0].effect", `Unsupported value: "Never"`}},
		{"tolerationSeconds without NoExecute", podWith(okContainer + "  tolerations: [{key: gpu, operator: Exists, effect: NoSchedule, tolerationSeconds: 30}]\n"), []string{"spec.tolerations[0].effect", "effect must be 'NoExecute' when `tolerationSeconds` is set"}},
		{"toleration key that is no label key", podWith(okContainer + "  tolerations: [{key: 'bad key', operator: Exists}]\n"), []string{"spec.tolerations[0].key", "name part must consist of"}},
		{"toleration value of 64 characters", podWith(okContainer + "  tolerations: [{key: gpu, operator: Equal, value: " + strings.Repeat("v", 64) + "}]\n"), []string{"spec.tolerations[0].value", "must be no more than 63 bytes"}},
		{"nodeSelector key that is no label key", podWith(okContainer + "  nodeSelector: {'bad key!': x}\n"), []string{"spec.nodeSelector", "name part must consist of"}},
		{"nodeSelector value with spaces", podWith(okContainer + "  nodeSelector: {team: 'a b'}\n"), []string{"spec.nodeSelector", "a valid label must be"}},
		{"node affinity operator Like", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: Like, values: [a]}]}]}}}\n"), []string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator", `Unsupported value: "Like"`}},
		{"node affinity In without values", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In}]}]}}}\n"), []string{"matchExpressions[0].values", "must be specified when `operator` is 'In' or 'NotIn'"}},
		{"node affinity Exists with values", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: Exists, values: [a]}]}]}}}\n"), []string{"matchExpressions[0].values", "may not be specified when `operator` is 'Exists'"}},
		{"node affinity Gt past int64", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: cpu, operator: Gt, values: ['99999999999999999999']}]}]}}}\n"), []string{"matchExpressions[0].values[0]", "must be an integer that fits int64"}},
		{"node affinity Lt with two values", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: cpu, operator: Lt, values: ['1', '2']}]}]}}}\n"), []string{"matchExpressions[0].values", "must be specified single value"}},
		{"node affinity without terms", podWith(okContainer + "  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}\n"), []string{"nodeSelectorTerms", "must have at least one node selector term"}},
		{"preferred node affinity of weight 0", podWith(okContainer + "  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 0, preference: {matchExpressions: [{key: zone, operator: Exists}]}}]}}\n"), []string{"preferredDuringSchedulingIgnoredDuringExecution[0].weight", "must be in the range 1-100"}},
		{"pod affinity without topologyKey", podWith(okContainer + "  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: db}}}]}}\n"), []string{"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", "can not be empty"}},
		{"pod anti-affinity selector operator Equals", podWith(okContainer + "  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}}]}}\n"), []string{"podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].operator", `"Equals"`}},
		{"preferred pod anti-affinity of weight 101", podWith(okContainer + "  affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 101, podAffinityTerm: {topologyKey: zone}}]}}\n"), []string{"preferredDuringSchedulingIgnoredDuringExecution[0].weight", "must be in the range 1-100"}},
		{"spread with maxSkew 0", podWith(okContainer + "  topologySpreadConstraints: [{maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n"), []string{"spec.topologySpreadConstraints[0].maxSkew", "must be greater than zero"}},
		{"spread without topologyKey", podWith(okContainer + "  topologySpreadConstraints: [{maxSkew: 1, whenUnsatisfiable: DoNotSchedule}]\n"), []string{"spec.topologySpreadConstraints[0].topologyKey", "can not be empty"}},
		{"spread with whenUnsatisfiable Sometimes", podWith(okContainer + "  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: Sometimes}]\n"), []string{"spec.topologySpreadConstraints[0].whenUnsatisfiable", `Unsupported value: "Sometimes"`}},
		{"spread with minDomains 0", podWith(okContainer + "  topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, minDomains: 0}]\n"), []string{"spec.topologySpreadConstraints[0].minDomains", "must be greater than zero"}},
		{"pod bound to a node the input lacks", podWith(okContainer + "  nodeName: ghost\n"), []string{where, "spec.nodeName", `"ghost"`, "no Node of that name in the input"}},
		{"pod name with capitals", podWithMeta("{name: Web-1}"), []string{"metadata.name", "RFC 1123 subdomain"}},
		{"pod name of 300 characters", podWithMeta("{name: " + strings.Repeat("p", 300) + "}"), []string{"metadata.name", "must be no more than 253 characters"}},
		{"namespace with a dot", podWithMeta("{name: p, namespace: a.b}"), []string{"metadata.namespace", "must not contain dots"}},
		{"label value of 64 characters", podWithMeta("{name: p, labels: {app: " + strings.Repeat("x", 64) + "}}"), []string{"metadata.labels", "must be no more than 63 bytes"}},
		{"label key that is no label key", podWithMeta("{name: p, labels: {'a b': x}}"), []string{"metadata.labels", "name part must consist of"}},
		{"annotations over 256 KiB", podWithMeta("{name: p, annotations: {big: " + strings.Repeat("a", 300*1024) + "}}"), []string{"metadata.annotations", "may not be more than 262144 bytes"}},
		{"annotation key that is no qualified name", podWithMeta("{name: p, annotations: {'no spaces please': x}}"), []string{"metadata.annotations", "name part must consist of"}},
		{"duplicate key in a pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeName: a\n  nodeName: b\n" + okContainer, []string{"document 1 (Pod default/p)", `key "nodeName" already set in map`}},
		{"duplicate key in a NodePool", "apiVersion: joinery.dev/v1alpha1\nkind: NodePool\nmetadata: {name: np}\nspec:\n  clusterName: a\n  clusterName: b\n" +
			"  template:\n    spec:\n      infrastructureTemplateRef: {apiGroup: g, kind: K, name: t}\n      bootstrapTemplateRef: {apiGroup: g, kind: K, name: t}\n", []string{"document 1 (NodePool default/np)", `key "clusterName" already set in map`}},
		{"node with a negative allocatable", nodeWith("{}", "{allocatable: {cpu: -2}}"), []string{"document 1 (Node n1)", "status.allocatable[cpu]", "must be greater than or equal to 0"}},
		{"node with a negative capacity", nodeWith("{}", "{capacity: {memory: -1Gi}}"), []string{"status.capacity[memory]", "must be greater than or equal to 0"}},
		{"node taint without effect", nodeWith("{taints: [{key: gpu}]}", "{}"), []string{"spec.taints[0].effect", "a taint needs an effect"}},
		{"node taint with an unknown effect", nodeWith("{taints: [{key: gpu, effect: Sometimes}]}", "{}"), []string{"spec.taints[0].effect", `Unsupported value: "Sometimes"`}},
		{"node taint key that is no label key", nodeWith("{taints: [{key: 'a b', effect: NoSchedule}]}", "{}"), []string{"spec.taints[0].key"}},
		{"node name with an underscore", "apiVersion: v1\nkind: Node\nmetadata: {name: node_1}\n", []string{"metadata.name", "RFC 1123 subdomain"}},
		{"daemonset without selector", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds, namespace: kube-system}\nspec:\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n    " + okContainer, []string{"DaemonSet kube-system/ds", "spec.selector", "non-empty selector"}},
		{"daemonset selector not matching its template", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  selector: {matchLabels: {app: other}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n    " + okContainer, []string{"spec.template.metadata.labels", "`selector` does not match template `labels`"}},
		{"daemonset with a negative request", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers: [{name: c, image: i, resources: {requests: {memory: -1}}}]\n", []string{"spec.template.spec.containers[0].resources.requests[memory]", "must be greater than or equal to 0"}},
		{"persistent volume with a negative capacity", "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv}\nspec: {capacity: {storage: -1Gi}}\n", []string{"PersistentVolume pv", "spec.capacity[storage]", "must be greater than or equal to 0"}},
		{"persistent volume node affinity operator Near", "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv}\nspec: {nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: Near, values: [a]}]}]}}}\n", []string{"spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].operator", `Unsupported value: "Near"`}},
		{"claim with a negative request", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {resources: {requests: {storage: -5Gi}}}\n", []string{"PersistentVolumeClaim default/data", "spec.resources.requests[storage]", "must be greater than or equal to 0"}},
	}
}

func TestLoadFilesRejectsWhatTheApiserverWould(t *testing.T) {
	for _, tc := range badInputs() {
		t.Run(tc.rule, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.yaml")
			if err := os.WriteFile(path, []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFiles(path)
			if err == nil {
				t.Fatal("accepted")
			}
			var inputErr *InputError
			if !errors.As(err, &inputErr) {
				t.Errorf("error is not an InputError: %T %v", err, err)
			}
			for _, want := range append([]string{"in.yaml: document 1"}, tc.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", truncate(err.Error()), want)
				}
			}
		})
	}
}

func truncate(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}

// With JOINERY_INPUTS_TABLE set, the verdict on every bad input is written
// there as Markdown rows (docs/hardening-inputs.md is made from them).
func TestWriteBadInputsTable(t *testing.T) {
	out := os.Getenv("JOINERY_INPUTS_TABLE")
	if out == "" {
		t.Skip("JOINERY_INPUTS_TABLE not set")
	}
	var rows strings.Builder
	for _, r := range badInputRows(t) {
		rows.WriteString("| simulate | " + r[0] + " | " + r[1] + " |\n")
	}
	if err := os.WriteFile(out, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// badInputRows are the rule and the verdict of every bad input, as
// docs/hardening-inputs.md shows them.
func badInputRows(t *testing.T) [][2]string {
	t.Helper()
	var rows [][2]string
	for _, tc := range badInputs() {
		path := filepath.Join(t.TempDir(), "in.yaml")
		if err := os.WriteFile(path, []byte(tc.input), 0o644); err != nil {
			t.Fatal(err)
		}
		verdict := "accepted"
		if _, err := LoadFiles(path); err != nil {
			verdict = strings.ReplaceAll(strings.TrimPrefix(err.Error(), path), "|", "\\|")
			verdict = "in.yaml" + truncate(strings.ReplaceAll(verdict, "\n", " "))
		}
		rows = append(rows, [2]string{tc.rule, verdict})
	}
	return rows
}

// docs/hardening-inputs.md lists every bad simulate input with today's
// message (the NodePool half is checked in api/v1alpha1).
func TestHardeningInputsDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hardening-inputs.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range badInputRows(t) {
		if r[1] == "accepted" {
			t.Errorf("%s: accepted", r[0])
			continue
		}
		row := regexp.MustCompile(`(?m)^\| simulate \| ` + regexp.QuoteMeta(r[0]) + ` \| (yes|no) \| ` + regexp.QuoteMeta(r[1]) + ` \|$`)
		if !row.Match(doc) {
			t.Errorf("docs/hardening-inputs.md has no row for %q with today's message %q; regenerate it (see the doc)", r[0], r[1])
		}
	}
}
