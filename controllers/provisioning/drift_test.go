package provisioning

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func awsTemplate(spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachineTemplate",
		"metadata": map[string]any{"name": "workers", "labels": map[string]any{"team": "a"}},
		"spec":     map[string]any{"template": map[string]any{"spec": spec}},
	}}
	return u
}

func kubeadmTemplate(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate",
		"metadata": map[string]any{"name": "workers"},
		"spec":     map[string]any{"template": map[string]any{"spec": spec}},
	}}
}

// TestTemplateHash pins what changes a Machine's template hash, as
// Karpenter's EC2NodeClass hash tests do (pkg/apis/v1/ec2nodeclass_hash_test.go:
// "should match static hash", "should change hash when ... is changed",
// "should not change hash when ... (hash:ignore) is changed").
func TestTemplateHash(t *testing.T) {
	base := func() (map[string]any, map[string]any) {
		return map[string]any{"ami": map[string]any{"id": "ami-1"}, "instanceType": "m5.large", "iamInstanceProfile": "nodes",
				"additionalTags": map[string]any{"a": "1", "b": "2"}},
			map[string]any{"joinConfiguration": map[string]any{"nodeRegistration": map[string]any{"name": "{{ ds.meta_data.local_hostname }}"}}}
	}
	hash := func(mutate func(infra, boot map[string]any)) string {
		infra, boot := base()
		mutate(infra, boot)
		h, err := TemplateHash(awsTemplate(infra), kubeadmTemplate(boot))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	same := hash(func(map[string]any, map[string]any) {})
	if same != hash(func(map[string]any, map[string]any) {}) {
		t.Fatal("the same templates hash differently")
	}
	for _, tc := range []struct {
		name    string
		mutate  func(infra, boot map[string]any)
		changes bool
	}{
		{"a new AMI", func(i, _ map[string]any) { i["ami"] = map[string]any{"id": "ami-2"} }, true},
		{"a new instance profile", func(i, _ map[string]any) { i["iamInstanceProfile"] = "other" }, true},
		{"a new tag", func(i, _ map[string]any) { i["additionalTags"].(map[string]any)["c"] = "3" }, true},
		{"a bootstrap change", func(_, b map[string]any) { b["preKubeadmCommands"] = []any{"echo hi"} }, true},
		{"the template's instanceType, which every launch overwrites", func(i, _ map[string]any) { i["instanceType"] = "c5.xlarge" }, false},
		{"the template's spot options, which every launch overwrites", func(i, _ map[string]any) { i["spotMarketOptions"] = map[string]any{"maxPrice": "0.1"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hash(tc.mutate) != same; got != tc.changes {
				t.Errorf("hash changed = %v, want %v", got, tc.changes)
			}
		})
	}
	// The template's own labels are not what a Machine runs.
	infra, boot := base()
	relabelled := awsTemplate(infra)
	relabelled.SetLabels(map[string]string{"team": "b"})
	if h, _ := TemplateHash(relabelled, kubeadmTemplate(boot)); h != same {
		t.Error("a template label changed the hash")
	}
}

func TestBuildMachineStampsTheTemplateHash(t *testing.T) {
	l := launchSpec()
	l.TemplateHash = "0123456789abcdef"
	m, err := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations[AnnotationTemplateHash] != "0123456789abcdef" || m.Annotations[AnnotationTemplateHashVersion] != TemplateHashVersion {
		t.Errorf("annotations %v lack the template hash and its version", m.Annotations)
	}
	if m.Spec.Version != l.Version {
		t.Errorf("the Machine runs %q, not the Cluster's %q", m.Spec.Version, l.Version)
	}
}
