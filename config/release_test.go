// Tests of the packaging: metadata.yaml and the release manifests as
// clusterctl reads them (release_test.go), and config/default installed into
// a real apiserver and run as its ServiceAccount (install_test.go).
package config_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	clusterctlv1 "sigs.k8s.io/cluster-api/cmd/clusterctl/api/v1alpha3"
	clusterctl "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/testenv"
)

const (
	providerName    = "joinery"
	providerLabel   = "addon-joinery" // clusterctlv1.ManifestLabel(providerName, AddonProviderType)
	targetNamespace = "joinery-system"
	deploymentName  = "joinery-controller-manager"
)

// releaseVersion is the Makefile's RELEASE_VERSION: the version
// `make release-manifests` and `make image-binary` stamp.
func releaseVersion(t *testing.T) string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RELEASE_VERSION \?= (v\S+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("the Makefile sets no RELEASE_VERSION ?= vX.Y.Z")
	}
	return string(m[1])
}

// metadata.yaml is clusterctl's Metadata, and the release series of the
// version being released speaks the contract of the CAPI in go.mod.
func TestMetadataHasASeriesForTheReleaseVersion(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "metadata.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	md := &clusterctlv1.Metadata{}
	if err := yaml.UnmarshalStrict(data, md); err != nil {
		t.Fatalf("metadata.yaml: %v", err)
	}
	if md.APIVersion != clusterctlv1.GroupVersion.String() || md.Kind != "Metadata" {
		t.Errorf("metadata.yaml is %s %s, want %s Metadata", md.APIVersion, md.Kind, clusterctlv1.GroupVersion)
	}
	v := version.MustParseSemantic(releaseVersion(t))
	series := md.GetReleaseSeriesForVersion(v)
	if series == nil {
		t.Fatalf("metadata.yaml has no release series %d.%d for RELEASE_VERSION %s", v.Major(), v.Minor(), v)
	}
	if series.Contract != clusterv1.GroupVersion.Version {
		t.Errorf("release series %d.%d: contract %q, want %q (the contract of CAPI in go.mod)", series.Major, series.Minor, series.Contract, clusterv1.GroupVersion.Version)
	}
	if latest := md.GetReleaseSeriesForContract(clusterv1.GroupVersion.Version); latest == nil || latest.Major != series.Major || latest.Minor != series.Minor {
		t.Errorf("the newest release series for contract %s is %+v, not RELEASE_VERSION's %+v", clusterv1.GroupVersion.Version, latest, series)
	}
}

// kustomizePath is bin/kustomize, built by `make tools`.
func kustomizePath(t *testing.T) string {
	t.Helper()
	bin, err := testenv.BinDir()
	if err == nil {
		if _, err = os.Stat(filepath.Join(bin, "kustomize")); err == nil {
			return filepath.Join(bin, "kustomize")
		}
	}
	if testing.Short() {
		t.Skipf("no bin/kustomize (%v); run make tools", err)
	}
	t.Fatalf("no bin/kustomize (%v); run make tools", err)
	return ""
}

// releaseRepository runs hack/release-manifests.sh into a clusterctl local
// repository, {dir}/addon-joinery/{version}/, and returns dir.
func releaseRepository(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	out := filepath.Join(repo, providerLabel, releaseVersion(t))
	cmd := exec.Command(filepath.Join("..", "hack", "release-manifests.sh"), out)
	cmd.Env = append(os.Environ(), "RELEASE_VERSION="+releaseVersion(t), "KUSTOMIZE="+kustomizePath(t))
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/release-manifests.sh: %v\n%s", err, output)
	}
	return repo
}

// providerComponents reads the components as `clusterctl init --addon
// joinery` (and `clusterctl generate provider --addon joinery`) does, from
// the provider entry config/README.md documents, with its URL pointing at
// the local repository and "latest" version: clusterctl picks the newest
// version whose metadata.yaml speaks CAPI's current contract.
func providerComponents(t *testing.T, repo string, variables map[string]string) clusterctl.Components {
	t.Helper()
	ctx := context.Background()
	reader := config.NewMemoryReader()
	if _, err := reader.AddProvider(providerName, clusterctlv1.AddonProviderType, "file://"+filepath.Join(repo, providerLabel, "latest", "addon-components.yaml")); err != nil {
		t.Fatal(err)
	}
	for k, v := range variables {
		reader.Set(k, v)
	}
	cfg, err := config.New(ctx, "", config.InjectReader(reader))
	if err != nil {
		t.Fatal(err)
	}
	c, err := clusterctl.New(ctx, "", clusterctl.InjectConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	comps, err := c.GetProviderComponents(ctx, providerName, clusterctlv1.AddonProviderType, clusterctl.ComponentsOptions{})
	if err != nil {
		t.Fatalf("clusterctl reading the joinery AddonProvider: %v", err)
	}
	return comps
}

func TestReleaseManifestsLoadWithClusterctl(t *testing.T) {
	repo := releaseRepository(t)
	dir := filepath.Join(repo, providerLabel, releaseVersion(t))
	for _, f := range []string{"addon-components.yaml", "metadata.yaml", "cluster-template.yaml", "cluster-template-spot.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("release asset missing: %v", err)
		}
	}

	comps := providerComponents(t, repo, nil)
	if comps.Version() != releaseVersion(t) {
		t.Errorf("clusterctl chose version %s, want %s", comps.Version(), releaseVersion(t))
	}
	if comps.TargetNamespace() != targetNamespace {
		t.Errorf("target namespace %q, want %q", comps.TargetNamespace(), targetNamespace)
	}
	if inv := comps.InventoryObject(); inv.Name != providerLabel || inv.Type != string(clusterctlv1.AddonProviderType) {
		t.Errorf("inventory %s of type %s, want %s %s", inv.Name, inv.Type, providerLabel, clusterctlv1.AddonProviderType)
	}
	wantImage := "ghcr.io/joinery-dev/joinery:" + releaseVersion(t)
	if !slices.Equal(comps.Images(), []string{wantImage}) {
		t.Errorf("images %v, want [%s]", comps.Images(), wantImage)
	}
	wantVars := []string{"JOINERY_IMAGE", "JOINERY_LOG_LEVEL", "JOINERY_SPOT_TO_SPOT_CONSOLIDATION"}
	if !slices.Equal(comps.Variables(), wantVars) {
		t.Errorf("variables %v, want %v (document new ones in config/README.md)", comps.Variables(), wantVars)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range comps.Variables() {
		if !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("config/README.md does not document %s", v)
		}
	}
	kinds := map[string]int{}
	for _, o := range comps.Objs() {
		kinds[o.GetKind()]++
		// The label config/default sets, and the one clusterctl adds, agree.
		if got := o.GetLabels()[clusterv1.ProviderNameLabel]; got != providerLabel {
			t.Errorf("%s %s: label %s=%q, want %q", o.GetKind(), o.GetName(), clusterv1.ProviderNameLabel, got, providerLabel)
		}
	}
	t.Logf("%d objects: %v", len(comps.Objs()), kinds)
	// Two ClusterRoles: the manager's and metrics-reader, for scrapers. Two
	// CRDs: NodePool and NodeOverlay.
	want := map[string]int{"Namespace": 1, "CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 1, "Service": 1, "Deployment": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s, want %d", kinds[k], k, n)
		}
	}
	if len(kinds) != len(want) {
		t.Errorf("kinds %v, want exactly %v", kinds, want)
	}

	// clusterctl's variables and image overrides reach the Deployment.
	comps = providerComponents(t, repo, map[string]string{"JOINERY_IMAGE": "registry.example.com/joinery:test", "JOINERY_LOG_LEVEL": "debug"})
	d := deployment(t, comps.Objs())
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/joinery:test" {
		t.Errorf("JOINERY_IMAGE: image %q", got)
	}
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--zap-log-level=debug") {
		t.Errorf("JOINERY_LOG_LEVEL: args %v", d.Spec.Template.Spec.Containers[0].Args)
	}
}

func deployment(t *testing.T, objs []unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetName() == deploymentName {
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, d, true); err != nil {
				t.Fatalf("Deployment %s: %v", deploymentName, err)
			}
			return d
		}
	}
	t.Fatalf("no Deployment %s", deploymentName)
	return nil
}

// The Deployment's arguments, with clusterctl's defaults, are flags `joinery
// manager` has, give the defaults of internal/manager, and the ports and
// probes match the addresses they bind.
func TestManagerDeploymentMatchesTheManagerFlags(t *testing.T) {
	d := deployment(t, providerComponents(t, releaseRepository(t), nil).Objs())
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Command, []string{"/joinery"}) || len(c.Args) == 0 || c.Args[0] != "manager" {
		t.Fatalf("command %v args %v, want /joinery manager ...", c.Command, c.Args)
	}
	// The flag set of cmd/joinery's manager command.
	opts := manager.DefaultOptions()
	opts.LeaderElect = false // the Deployment must turn it on
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	manager.BindFlags(fs, &opts)
	goFlags := flag.NewFlagSet("", flag.ContinueOnError)
	(&zap.Options{}).BindFlags(goFlags)
	fs.AddGoFlagSet(goFlags)
	if err := fs.Parse(c.Args[1:]); err != nil {
		t.Fatalf("joinery manager %v: %v", c.Args[1:], err)
	}
	if err := opts.Validate(); err != nil {
		t.Error(err)
	}
	defaults := manager.DefaultOptions()
	if !opts.LeaderElect {
		t.Error("the Deployment does not pass --leader-elect")
	}
	// With every variable at its default, the Deployment runs the manager
	// with its defaults.
	if opts.Disruption.SpotToSpot != defaults.Disruption.SpotToSpot {
		t.Errorf("clusterctl default --spot-to-spot-consolidation=%v differs from the manager's %v", opts.Disruption.SpotToSpot, defaults.Disruption.SpotToSpot)
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = fmt.Sprintf(":%d", p.ContainerPort)
	}
	if ports["metrics"] != opts.MetricsAddr || ports["healthz"] != opts.ProbeAddr {
		t.Errorf("ports %v, but the manager binds metrics to %s and probes to %s", ports, opts.MetricsAddr, opts.ProbeAddr)
	}
	for probe, path := range map[string]string{"liveness": "/healthz", "readiness": "/readyz"} {
		p := c.LivenessProbe
		if probe == "readiness" {
			p = c.ReadinessProbe
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "healthz" {
			t.Errorf("%s probe %+v, want GET %s on port healthz", probe, p, path)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		d.Spec.Template.Spec.SecurityContext == nil || d.Spec.Template.Spec.SecurityContext.RunAsNonRoot == nil || !*d.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("security context %+v / pod %+v: want non-root, read-only root filesystem, no privilege escalation", sc, d.Spec.Template.Spec.SecurityContext)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
}
