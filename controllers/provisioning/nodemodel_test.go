package provisioning

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

// fakeImages is EC2 DescribeImages as cloud.Images sees it.
type fakeImages map[string]cloud.Image

func (f fakeImages) Image(_ context.Context, region, id string) (cloud.Image, error) {
	if img, ok := f[id]; ok {
		return img, nil
	}
	return cloud.Image{}, errors.New("DescribeImages " + id + " in " + region + ": InvalidAMIID.NotFound")
}

func modelPass(t *testing.T, infraSpec map[string]any, args []any, images cloud.Images) *pass {
	t.Helper()
	infra := awsMachineTemplate(infraSpec)
	bootstrap := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate",
		"metadata": map[string]any{"name": "workers", "namespace": "team-a"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"joinConfiguration": map[string]any{"nodeRegistration": map[string]any{
			"kubeletExtraArgs": args,
		}}}}},
	}}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{
		{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta2"}, {Group: "bootstrap.cluster.x-k8s.io", Version: "v1beta2"},
	})
	mapper.Add(schema.GroupVersionKind{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta2", Kind: "AWSMachineTemplate"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "bootstrap.cluster.x-k8s.io", Version: "v1beta2", Kind: "KubeadmConfigTemplate"}, meta.RESTScopeNamespace)
	c := fake.NewClientBuilder().WithRESTMapper(mapper).WithObjects(infra, bootstrap).Build()
	p := &Provisioner{Options: DefaultOptions(), Images: images, templates: &templates{client: c, mapper: mapper}}
	return &pass{Provisioner: p, ctx: context.Background(), log: logr.Discard(), region: "us-east-1"}
}

func modelPool(requirements ...v1alpha1.NodeSelectorRequirementWithMinValues) *v1alpha1.NodePool {
	return &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "general", Namespace: "team-a"},
		Spec: v1alpha1.NodePoolSpec{Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
			Requirements: requirements, InfrastructureTemplateRef: awsTemplateRef, BootstrapTemplateRef: kubeadmTemplateRef,
		}}},
	}
}

func TestNodeModelReadsTheTemplatesAndTheAMI(t *testing.T) {
	armAMI := fakeImages{"ami-arm": {ID: "ami-arm", Arch: cloud.ArchARM64, RootDeviceSize: resource.MustParse("30Gi")}}
	pinned := v1alpha1.NodeSelectorRequirementWithMinValues{Key: v1alpha1.LabelArch, Operator: v1alpha1.OpIn, Values: []string{"arm64"}}
	for _, tc := range []struct {
		rule      string
		infra     map[string]any
		images    cloud.Images
		pool      *v1alpha1.NodePool
		arch      string
		root      string
		wantNote  string
		wantNoted bool
	}{
		{"an AMI lookup (no ami.id) allows both architectures and assumes nothing",
			map[string]any{"instanceType": "m5.large"}, nil, modelPool(), "", "0", "", false},
		{"rootVolume.size is the root volume",
			map[string]any{"rootVolume": map[string]any{"size": int64(100)}}, nil, modelPool(), "", "100Gi", "", false},
		{"with EC2, the AMI's architecture and root device size rule",
			map[string]any{"ami": map[string]any{"id": "ami-arm"}}, armAMI, modelPool(), cloud.ArchARM64, "30Gi", "", false},
		{"with EC2, the template's rootVolume.size beats the AMI's",
			map[string]any{"ami": map[string]any{"id": "ami-arm"}, "rootVolume": map[string]any{"size": int64(40)}}, armAMI, modelPool(), cloud.ArchARM64, "40Gi", "", false},
		{"without EC2, an ami.id means amd64, and says so",
			map[string]any{"ami": map[string]any{"id": "ami-0abc"}}, nil, modelPool(), cloud.ArchAMD64, "0",
			"AMI ami-0abc architecture unknown without EC2 access; assuming amd64; set requirement kubernetes.io/arch to choose", true},
		{"without EC2, a pool that pins kubernetes.io/arch is trusted",
			map[string]any{"ami": map[string]any{"id": "ami-0abc"}}, nil, modelPool(pinned), "", "0", "", false},
		{"an AMI EC2 does not know is assumed amd64, with EC2's answer",
			map[string]any{"ami": map[string]any{"id": "ami-gone"}}, armAMI, modelPool(), cloud.ArchAMD64, "0", "InvalidAMIID.NotFound", true},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			ps := modelPass(t, tc.infra, []any{map[string]any{"name": "max-pods", "value": "40"}}, tc.images)
			model, notes, err := ps.nodeModel(tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			if model.Arch != tc.arch || model.RootVolume.Cmp(resource.MustParse(tc.root)) != 0 {
				t.Errorf("model arch %q root %s, want %q and %s", model.Arch, model.RootVolume.String(), tc.arch, tc.root)
			}
			if len(model.KubeletArgs) != 1 || model.KubeletArgs[0] != (solverinput.KubeletArg{Name: "max-pods", Value: "40"}) {
				t.Errorf("kubelet args from the template: %v", model.KubeletArgs)
			}
			if model.VMMemoryOverheadPercent != cloud.DefaultVMMemoryOverheadPercent {
				t.Errorf("VM memory overhead %v, want the option's", model.VMMemoryOverheadPercent)
			}
			got := strings.Join(notes, "; ")
			if (got != "") != tc.wantNoted || !strings.Contains(got, tc.wantNote) {
				t.Errorf("notes %q, want noted=%v containing %q", got, tc.wantNoted, tc.wantNote)
			}
		})
	}
}

func TestZoneNamesAreReportedWhenAssumed(t *testing.T) {
	embedded, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	note := zoneNote(embedded, "us-east-1")
	for _, want := range []string{"zone names of us-east-1 are assumed", "us-east-1a=use1-az1", "--catalog-regions=us-east-1"} {
		if !strings.Contains(note, want) {
			t.Errorf("zone note %q lacks %q", note, want)
		}
	}
	names := embedded.ZoneNames("us-east-1")
	var zones []cloud.Zone
	for id, name := range names {
		zones = append(zones, cloud.Zone{Region: "us-east-1", ZoneID: id, ZoneName: name})
	}
	known, err := embedded.Update(cloud.RegionUpdate{Region: "us-east-1", Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	if note := zoneNote(known, "us-east-1"); note != "" {
		t.Errorf("zone names read from EC2 are still reported as assumed: %q", note)
	}
}

func TestNodeModelIsReusedForAWhilePerPoolGeneration(t *testing.T) {
	ps := modelPass(t, map[string]any{"rootVolume": map[string]any{"size": int64(100)}}, nil, nil)
	ps.now = time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	pool := modelPool()
	if _, _, err := ps.nodeModel(pool); err != nil {
		t.Fatal(err)
	}
	// The template grows; within the TTL the pool's model is the one read.
	infra := awsMachineTemplate(nil)
	if err := ps.templates.client.Get(ps.ctx, client.ObjectKey{Namespace: "team-a", Name: "workers"}, infra); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(infra.Object, int64(200), "spec", "template", "spec", "rootVolume", "size"); err != nil {
		t.Fatal(err)
	}
	if err := ps.templates.client.Update(ps.ctx, infra); err != nil {
		t.Fatal(err)
	}
	root := func() string {
		m, _, err := ps.nodeModel(pool)
		if err != nil {
			t.Fatal(err)
		}
		return m.RootVolume.String()
	}
	ps.now = ps.now.Add(nodeModelTTL - time.Second)
	if got := root(); got != "100Gi" {
		t.Errorf("within the TTL the model was read again: root %s", got)
	}
	pool.Generation++
	if got := root(); got != "200Gi" {
		t.Errorf("a new pool generation kept the old model: root %s", got)
	}
	pool.Generation--
	ps.now = ps.now.Add(2 * time.Second)
	if got := root(); got != "200Gi" {
		t.Errorf("after the TTL the template was not read again: root %s", got)
	}
}
