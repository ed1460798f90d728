package templates_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/test/testenv"
)

// moduleDir is where the Go module cache holds a module of go.mod.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v (run 'go mod download')", module, err)
	}
	return strings.TrimSpace(string(out))
}

// TestRenderedTemplatesApplyToAManagementCluster applies every rendered
// template with server-side apply and strict field validation to a real
// kube-apiserver with the CRDs of CAPI v1.14 (Cluster, KubeadmControlPlane,
// KubeadmConfigTemplate, ClusterResourceSet), CAPA (AWSCluster,
// AWSMachineTemplate) and Joinery: the CRDs' schemas and CEL rules accept
// every object and no field is unknown. (CAPI's and CAPA's webhooks do not
// run here.)
func TestRenderedTemplatesApplyToAManagementCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	capi := moduleDir(t, "sigs.k8s.io/cluster-api")
	cluster := testenv.New(t, testenv.Options{
		Name: "templates",
		CRDDirectoryPaths: []string{
			filepath.Join("..", "test", "testbed", "crds"), // CAPI core, kubeadm bootstrap, CAPA (as go.mod pins them)
			filepath.Join(capi, "controlplane", "kubeadm", "config", "crd", "bases", "controlplane.cluster.x-k8s.io_kubeadmcontrolplanes.yaml"),
			filepath.Join(capi, "core", "config", "crd", "bases", "addons.cluster.x-k8s.io_clusterresourcesets.yaml"),
			filepath.Join("..", "config", "crd", "bases"),
		},
		WithoutScheduler: true,
		WithoutKwok:      true,
	})
	c, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cluster.Config)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	for _, file := range templateFiles(t) {
		t.Run(file, func(t *testing.T) {
			tmpl, err := render(file, requiredVariables)
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range tmpl.Objs() {
				mapping, err := c.RESTMapper().RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
				if err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
					continue
				}
				data, err := obj.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				// Each flavour creates the same cluster: apply it as the
				// flavour's own field manager, forcing, as `kubectl apply
				// --server-side --force-conflicts` of the other file would.
				_, err = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
					FieldManager:    "test-" + strings.TrimSuffix(file, ".yaml"),
					Force:           ptr.To(true),
					FieldValidation: metav1.FieldValidationStrict,
				})
				if err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}
