package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func runConvertCommand(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"convert"}, args...))
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestConvertWritesYAMLAndWarnings(t *testing.T) {
	out, warnings, err := runConvertCommand(t, "", "-f", "../../internal/convert/testdata/general.yaml", "-f", "../../internal/convert/testdata/budgets.yaml",
		"--cluster-name", "workload-1", "--namespace", "team-a")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("../../internal/convert/testdata/general.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The command prints file names as given; the golden file was made
	// from paths relative to internal/convert.
	if got := strings.ReplaceAll(out, "../../internal/convert/", ""); got != string(golden) {
		t.Errorf("stdout is not the golden output:\n%s", out)
	}
	for _, want := range []string{
		`warning: EC2NodeClass default: spec.amiSelectorTerms[0].alias "al2023@latest" has no CAPA equivalent; set spec.ami.id on AWSMachineTemplate default`,
		`warning: NodePool batch: spec.limits.nodes 100 has no Joinery equivalent`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("stderr does not say %q:\n%s", want, warnings)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("warnings on stdout:\n%s", out)
	}
}

func TestConvertReadsStdinAndWritesAFile(t *testing.T) {
	input, err := os.ReadFile("../../internal/convert/testdata/gpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "joinery.yaml")
	out, _, err := runConvertCommand(t, string(input), "-f", "-", "--cluster-selector", "env=prod", "-o", path)
	if err != nil {
		t.Fatal(err)
	}
	if out != "" {
		t.Errorf("stdout should be empty with -o, got:\n%s", out)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, doc := range strings.Split(string(written), "\n---\n") {
		var head struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				ClusterSelector struct{ MatchLabels map[string]string } `json:"clusterSelector"`
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, head.Kind+"/"+head.Metadata.Namespace+"/"+head.Metadata.Name)
		if head.Kind == "NodePool" && head.Spec.ClusterSelector.MatchLabels["env"] != "prod" {
			t.Errorf("NodePool clusterSelector: %+v", head.Spec.ClusterSelector)
		}
	}
	if got, want := strings.Join(kinds, " "), "AWSMachineTemplate/default/gpu-nodes KubeadmConfigTemplate/default/gpu-nodes NodePool/default/gpu"; got != want {
		t.Errorf("objects %q, want %q", got, want)
	}
}

func TestConvertInputErrorsExitWithCodeTwo(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("bad.yaml", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: general}\nspec: {template: {spec: {requirments: []}}}\n")
	old := write("old.yaml", "apiVersion: karpenter.sh/v1beta1\nkind: NodePool\nmetadata: {name: general}\n")
	nothing := write("nothing.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	gpu := "../../internal/convert/testdata/gpu.yaml"
	for _, tc := range []struct {
		rule string
		args []string
		want []string
	}{
		{"a misspelt field names file, object and field", []string{"-f", bad, "--cluster-name", "c"}, []string{"bad.yaml: document 1 (NodePool general)", `unknown field "spec.template.spec.requirments"`}},
		{"a v1beta1 object", []string{"-f", old, "--cluster-name", "c"}, []string{"old.yaml: document 1 (NodePool general)", "convert takes Karpenter v1"}},
		{"nothing to convert", []string{"-f", nothing, "--cluster-name", "c"}, []string{"nothing to convert"}},
		{"no input", []string{"--cluster-name", "c"}, []string{"no input: pass -f FILE"}},
		{"a missing file", []string{"-f", "does-not-exist.yaml", "--cluster-name", "c"}, []string{"does-not-exist.yaml"}},
		{"no cluster", []string{"-f", gpu}, []string{"set --cluster-name NAME or --cluster-selector k=v"}},
		{"both cluster flags", []string{"-f", gpu, "--cluster-name", "c", "--cluster-selector", "a=b"}, []string{"only one of --cluster-name and --cluster-selector"}},
		{"a bad selector", []string{"-f", gpu, "--cluster-selector", "a in"}, []string{`--cluster-selector "a in"`}},
		{"a bad namespace", []string{"-f", gpu, "--cluster-name", "c", "-n", "Team_A"}, []string{`--namespace "Team_A"`}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, _, err := runConvertCommand(t, "", tc.args...)
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
