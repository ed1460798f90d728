// Tests of the clusterctl cluster templates: they render with clusterctl's
// own client (the code behind `clusterctl generate cluster --from`), refuse
// to render without a required variable, and every object they make is one
// the management cluster accepts: NodePools pass the CRD's schema and CEL
// rules, CAPI and CAPA objects decode strictly into their API types, and
// every reference points at an object of the same template.
package templates_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	controlplanev1 "sigs.k8s.io/cluster-api/api/controlplane/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	clusterctl "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	utilyaml "sigs.k8s.io/cluster-api/util/yaml"
	kjson "sigs.k8s.io/json"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/admission"
)

// The values a user passes: the clusterctl flags, and the variables
// templates/README.md asks for (from the environment or clusterctl.yaml).
const (
	clusterName       = "prod-eu-1"
	namespace         = "team-a"
	kubernetesVersion = "v1.33.1"
	controlPlaneCount = 3
)

var requiredVariables = map[string]string{
	"AWS_REGION":                     "eu-west-1",
	"AWS_SSH_KEY_NAME":               "platform",
	"AWS_CONTROL_PLANE_MACHINE_TYPE": "m6i.xlarge",
}

// flagVariables are set by clusterctl generate cluster from its arguments and
// flags (the cluster name, --target-namespace, --kubernetes-version,
// --control-plane-machine-count).
var flagVariables = []string{"CLUSTER_NAME", "NAMESPACE", "KUBERNETES_VERSION", "CONTROL_PLANE_MACHINE_COUNT"}

func templateFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("cluster-template*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want at least the default and one more flavour, found %v", files)
	}
	return files
}

// render runs clusterctl's GetClusterTemplate on a local file, with
// variables from memory only (not the environment, so the test does not
// depend on what the shell exports).
func render(file string, variables map[string]string) (clusterctl.Template, error) {
	ctx := context.Background()
	reader := config.NewMemoryReader()
	for k, v := range variables {
		reader.Set(k, v)
	}
	cfg, err := config.New(ctx, "", config.InjectReader(reader))
	if err != nil {
		return nil, err
	}
	c, err := clusterctl.New(ctx, "", clusterctl.InjectConfig(cfg))
	if err != nil {
		return nil, err
	}
	path, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return c.GetClusterTemplate(ctx, clusterctl.GetClusterTemplateOptions{
		URLSource:                &clusterctl.URLSourceOptions{URL: path},
		TargetNamespace:          namespace,
		ClusterName:              clusterName,
		KubernetesVersion:        kubernetesVersion,
		ControlPlaneMachineCount: ptr.To[int64](controlPlaneCount),
	})
}

// rendered is a template's objects, each strictly decoded into its type.
type rendered struct {
	objs          []unstructured.Unstructured
	cluster       *clusterv1.Cluster
	awsCluster    *infrav1.AWSCluster
	controlPlane  *controlplanev1.KubeadmControlPlane
	machines      map[string]*infrav1.AWSMachineTemplate
	bootstrap     map[string]*bootstrapv1.KubeadmConfigTemplate
	resourceSets  []*addonsv1.ClusterResourceSet
	configMaps    map[string]*corev1.ConfigMap
	pools         []*v1alpha1.NodePool
	kindsRendered map[string]int
}

// decode admits every NodePool with the CRD's schema and CEL rules (as the
// apiserver would) and decodes every object strictly into the Go type of
// its apiVersion and kind: a misspelt or misplaced field fails.
func decode(t *testing.T, tmpl clusterctl.Template) *rendered {
	t.Helper()
	validator, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{
		objs:          tmpl.Objs(),
		machines:      map[string]*infrav1.AWSMachineTemplate{},
		bootstrap:     map[string]*bootstrapv1.KubeadmConfigTemplate{},
		configMaps:    map[string]*corev1.ConfigMap{},
		kindsRendered: map[string]int{},
	}
	for _, u := range r.objs {
		gvk := u.GroupVersionKind()
		id := fmt.Sprintf("%s %s", gvk.Kind, u.GetName())
		if gvk.Version == "" || gvk.Kind == "" || u.GetName() == "" {
			t.Errorf("object without apiVersion, kind or name: %v", u.Object)
			continue
		}
		if u.GetNamespace() != namespace {
			t.Errorf("%s: namespace %q, want the target namespace %q", id, u.GetNamespace(), namespace)
		}
		r.kindsRendered[gvk.Kind]++
		var target any
		switch gvk.GroupVersion().String() + " " + gvk.Kind {
		case "cluster.x-k8s.io/v1beta2 Cluster":
			r.cluster = &clusterv1.Cluster{}
			target = r.cluster
		case "infrastructure.cluster.x-k8s.io/v1beta2 AWSCluster":
			r.awsCluster = &infrav1.AWSCluster{}
			target = r.awsCluster
		case "controlplane.cluster.x-k8s.io/v1beta2 KubeadmControlPlane":
			r.controlPlane = &controlplanev1.KubeadmControlPlane{}
			target = r.controlPlane
		case "infrastructure.cluster.x-k8s.io/v1beta2 AWSMachineTemplate":
			m := &infrav1.AWSMachineTemplate{}
			r.machines[u.GetName()] = m
			target = m
		case "bootstrap.cluster.x-k8s.io/v1beta2 KubeadmConfigTemplate":
			b := &bootstrapv1.KubeadmConfigTemplate{}
			r.bootstrap[u.GetName()] = b
			target = b
		case "addons.cluster.x-k8s.io/v1beta2 ClusterResourceSet":
			crs := &addonsv1.ClusterResourceSet{}
			r.resourceSets = append(r.resourceSets, crs)
			target = crs
		case "v1 ConfigMap":
			cm := &corev1.ConfigMap{}
			r.configMaps[u.GetName()] = cm
			target = cm
		case "joinery.dev/v1alpha1 NodePool":
			obj := u.DeepCopy().Object
			if errs := validator.Admit(context.Background(), obj); len(errs) > 0 {
				t.Errorf("%s: rejected by the NodePool CRD's admission: %v", id, errs.ToAggregate())
			}
			pool := &v1alpha1.NodePool{}
			r.pools = append(r.pools, pool)
			target = pool
		default:
			t.Errorf("%s: unexpected %s in a cluster template", id, gvk)
			continue
		}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		strictErrs, err := kjson.UnmarshalStrict(data, target)
		if err != nil || len(strictErrs) > 0 {
			t.Errorf("%s does not decode strictly into %T: %v %v", id, target, err, strictErrs)
		}
	}
	return r
}

func TestTemplatesRenderWithClusterctl(t *testing.T) {
	for _, file := range templateFiles(t) {
		t.Run(file, func(t *testing.T) {
			tmpl, err := render(file, requiredVariables)
			if err != nil {
				t.Fatalf("clusterctl generate cluster --from %s: %v", file, err)
			}
			out, err := tmpl.Yaml()
			if err != nil {
				t.Fatal(err)
			}
			if i := strings.Index(string(out), "${"); i >= 0 {
				t.Errorf("a variable is left unreplaced: %q", string(out[i:min(len(out), i+60)]))
			}
			r := decode(t, tmpl)
			t.Logf("%d objects: %v", len(r.objs), r.kindsRendered)
			if r.cluster == nil || r.awsCluster == nil || r.controlPlane == nil {
				t.Fatalf("want one Cluster, AWSCluster and KubeadmControlPlane, got %v", r.kindsRendered)
			}
			checkCluster(t, r)
			checkWorkers(t, r)
			checkResourceSets(t, r)
		})
	}
}

// checkCluster: the Cluster, its infrastructure and control plane reference
// each other and carry the values given to clusterctl.
func checkCluster(t *testing.T, r *rendered) {
	t.Helper()
	c := r.cluster
	if c.Name != clusterName {
		t.Errorf("Cluster name %q, want %q", c.Name, clusterName)
	}
	if ref := c.Spec.InfrastructureRef; ref.Kind != "AWSCluster" || ref.APIGroup != infrav1.GroupVersion.Group || ref.Name != r.awsCluster.Name {
		t.Errorf("Cluster infrastructureRef %+v does not name AWSCluster %s", ref, r.awsCluster.Name)
	}
	if ref := c.Spec.ControlPlaneRef; ref.Kind != "KubeadmControlPlane" || ref.APIGroup != controlplanev1.GroupVersion.Group || ref.Name != r.controlPlane.Name {
		t.Errorf("Cluster controlPlaneRef %+v does not name KubeadmControlPlane %s", ref, r.controlPlane.Name)
	}
	if got := r.awsCluster.Spec.Region; got != requiredVariables["AWS_REGION"] {
		t.Errorf("AWSCluster region %q, want AWS_REGION %q", got, requiredVariables["AWS_REGION"])
	}
	kcp := r.controlPlane.Spec
	if kcp.Version != kubernetesVersion || kcp.Replicas == nil || *kcp.Replicas != controlPlaneCount {
		t.Errorf("KubeadmControlPlane version %q replicas %v, want %s and %d", kcp.Version, kcp.Replicas, kubernetesVersion, controlPlaneCount)
	}
	ref := kcp.MachineTemplate.Spec.InfrastructureRef
	cp := r.machines[ref.Name]
	if ref.Kind != "AWSMachineTemplate" || cp == nil {
		t.Fatalf("KubeadmControlPlane infrastructureRef %+v is not an AWSMachineTemplate of the template", ref)
	}
	if got := cp.Spec.Template.Spec.InstanceType; got != requiredVariables["AWS_CONTROL_PLANE_MACHINE_TYPE"] {
		t.Errorf("control plane instance type %q, want AWS_CONTROL_PLANE_MACHINE_TYPE", got)
	}
	for name, m := range r.machines {
		if got := m.Spec.Template.Spec.SSHKeyName; got == nil || *got != requiredVariables["AWS_SSH_KEY_NAME"] {
			t.Errorf("AWSMachineTemplate %s: sshKeyName %v, want AWS_SSH_KEY_NAME", name, got)
		}
	}
}

// checkWorkers: every NodePool serves the template's Cluster and clones
// templates the template creates; every worker template is used.
func checkWorkers(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.pools) == 0 {
		t.Fatal("no NodePool: nothing would create workers")
	}
	used := map[string]bool{}
	for _, p := range r.pools {
		if p.Spec.ClusterName != r.cluster.Name {
			t.Errorf("NodePool %s serves cluster %q, want %q", p.Name, p.Spec.ClusterName, r.cluster.Name)
		}
		infra, boot := p.Spec.Template.Spec.InfrastructureTemplateRef, p.Spec.Template.Spec.BootstrapTemplateRef
		if infra.APIGroup != infrav1.GroupVersion.Group || infra.Kind != "AWSMachineTemplate" || r.machines[infra.Name] == nil {
			t.Errorf("NodePool %s: infrastructureTemplateRef %+v is not an AWSMachineTemplate of the template", p.Name, infra)
		}
		if boot.APIGroup != bootstrapv1.GroupVersion.Group || boot.Kind != "KubeadmConfigTemplate" || r.bootstrap[boot.Name] == nil {
			t.Errorf("NodePool %s: bootstrapTemplateRef %+v is not a KubeadmConfigTemplate of the template", p.Name, boot)
		}
		if r.controlPlane != nil && infra.Name == r.controlPlane.Spec.MachineTemplate.Spec.InfrastructureRef.Name {
			t.Errorf("NodePool %s clones the control plane's AWSMachineTemplate", p.Name)
		}
		used[infra.Name], used[boot.Name] = true, true
		if _, ok := p.Spec.Limits[v1alpha1.LimitPricePerHour]; !ok {
			t.Errorf("NodePool %s has no pricePerHour limit", p.Name)
		}
	}
	for name := range r.bootstrap {
		if !used[name] {
			t.Errorf("KubeadmConfigTemplate %s is used by no NodePool", name)
		}
	}
}

// checkResourceSets: each ClusterResourceSet selects the Cluster and its
// ConfigMaps exist and hold Kubernetes objects.
func checkResourceSets(t *testing.T, r *rendered) {
	t.Helper()
	for _, crs := range r.resourceSets {
		sel, err := metav1.LabelSelectorAsSelector(&crs.Spec.ClusterSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(r.cluster.Labels)) {
			t.Errorf("ClusterResourceSet %s does not select Cluster %s (labels %v): %v", crs.Name, r.cluster.Name, r.cluster.Labels, err)
		}
		for _, res := range crs.Spec.Resources {
			cm := r.configMaps[res.Name]
			if res.Kind != "ConfigMap" || cm == nil {
				t.Errorf("ClusterResourceSet %s: resource %s %s is not in the template", crs.Name, res.Kind, res.Name)
				continue
			}
			for key, data := range cm.Data {
				objs, err := utilyaml.ToUnstructured([]byte(data))
				if err != nil || len(objs) == 0 {
					t.Errorf("ConfigMap %s key %s: not Kubernetes objects: %v", cm.Name, key, err)
				}
				for _, o := range objs {
					if o.GetAPIVersion() == "" || o.GetKind() == "" {
						t.Errorf("ConfigMap %s key %s: object without apiVersion/kind: %v", cm.Name, key, o.Object)
					}
				}
			}
		}
	}
}

// A variable without a default must be given: clusterctl names it, as it
// does on the command line.
func TestTemplatesFailWithoutARequiredVariable(t *testing.T) {
	for _, file := range templateFiles(t) {
		for missing := range requiredVariables {
			t.Run(file+"/"+missing, func(t *testing.T) {
				vars := map[string]string{}
				for k, v := range requiredVariables {
					if k != missing {
						vars[k] = v
					}
				}
				_, err := render(file, vars)
				if err == nil {
					t.Fatalf("rendered without %s", missing)
				}
				want := fmt.Sprintf("value for variables [%s] is not set", missing)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			})
		}
	}
}

// Optional variables have defaults and take the values given.
func TestTemplatesOptionalVariables(t *testing.T) {
	vars := map[string]string{
		"JOINERY_CPU_LIMIT":            "64",
		"JOINERY_PRICE_PER_HOUR_LIMIT": "3.5",
		"KUBERNETES_AWS_CCM_VERSION":   "v1.33.0",
	}
	for k, v := range requiredVariables {
		vars[k] = v
	}
	for _, file := range templateFiles(t) {
		t.Run(file, func(t *testing.T) {
			tmpl, err := render(file, vars)
			if err != nil {
				t.Fatal(err)
			}
			r := decode(t, tmpl)
			for _, p := range r.pools {
				cpu, price := p.Spec.Limits["cpu"], p.Spec.Limits[v1alpha1.LimitPricePerHour]
				if cpu.String() != "64" || price.String() != "3500m" {
					t.Errorf("NodePool %s limits cpu=%s pricePerHour=%s, want 64 and 3.5", p.Name, cpu.String(), price.String())
				}
			}
			out, _ := tmpl.Yaml()
			if !strings.Contains(string(out), "cloud-controller-manager:v1.33.0") {
				t.Error("KUBERNETES_AWS_CCM_VERSION does not set the cloud controller manager's image")
			}
		})
	}
}

// Every variable a template uses is documented in templates/README.md, and
// the README documents no variable that no template uses.
func TestTemplateVariablesAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	used := map[string]bool{}
	for _, file := range templateFiles(t) {
		tmpl, err := render(file, requiredVariables)
		if err != nil {
			t.Fatal(err)
		}
		for name, def := range tmpl.VariableMap() {
			used[name] = true
			if !documented[name] {
				t.Errorf("%s uses ${%s}, which README.md does not document", file, name)
			}
			_, given := requiredVariables[name]
			required := def == nil && !slices.Contains(flagVariables, name)
			if required != given {
				t.Errorf("%s: ${%s} required=%v, but the test's required variables say %v", file, name, required, given)
			}
		}
	}
	for name := range documented {
		if !used[name] && name != "NAMESPACE" {
			t.Errorf("README.md documents %s, which no template uses", name)
		}
	}
}

// The flavours differ only in their NodePools: the cluster itself (Cluster,
// AWSCluster, control plane, worker templates, add-ons) is the same, so a
// fix to one flavour cannot be forgotten in another.
func TestFlavoursShareEverythingButNodePools(t *testing.T) {
	var base []unstructured.Unstructured
	var baseFile string
	for _, file := range templateFiles(t) {
		tmpl, err := render(file, requiredVariables)
		if err != nil {
			t.Fatal(err)
		}
		var shared []unstructured.Unstructured
		for _, o := range tmpl.Objs() {
			if o.GetKind() != "NodePool" {
				shared = append(shared, o)
			}
		}
		sort.Slice(shared, func(i, j int) bool {
			return shared[i].GetKind()+"/"+shared[i].GetName() < shared[j].GetKind()+"/"+shared[j].GetName()
		})
		if base == nil {
			base, baseFile = shared, file
			continue
		}
		if len(shared) != len(base) {
			t.Errorf("%s has %d objects besides NodePools, %s has %d", file, len(shared), baseFile, len(base))
			continue
		}
		for i := range shared {
			if !reflect.DeepEqual(shared[i].Object, base[i].Object) {
				t.Errorf("%s %s differs between %s and %s", shared[i].GetKind(), shared[i].GetName(), file, baseFile)
			}
		}
	}
}
