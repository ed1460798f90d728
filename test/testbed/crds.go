package testbed

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	joinerycrd "github.com/joinery-dev/joinery/config/crd"
)

// The upstream CRDs, copied from the module cache for the versions in go.mod.
//
//go:generate ./crds/copy.sh
//go:embed crds/*.yaml
var upstreamCRDs embed.FS

// contractLabels are the labels CAPI reads on a CRD to learn which contract
// (and which of the CRD's API versions) a provider implements
// (internal/contract.GetLatestContractAndAPIVersionFromContract). Upstream
// adds them with kustomize, so the bases in the modules lack them.
var contractLabels = map[string]map[string]string{
	// CAPI's own kubeadm bootstrap provider: config/crd/kustomization.yaml.
	"bootstrap.cluster.x-k8s.io": {"cluster.x-k8s.io/v1beta1": "v1beta1", "cluster.x-k8s.io/v1beta2": "v1beta2"},
	// CAPA v2.13 implements the v1beta1 contract with its v1beta2 API
	// (config/crd/kustomization.yaml: cluster.x-k8s.io/v1beta1: v1beta1_v1beta2);
	// CAPI v1.14 accepts v1beta1-contract providers.
	"infrastructure.cluster.x-k8s.io": {"cluster.x-k8s.io/v1beta1": "v1beta1_v1beta2"},
}

// CRDs returns every CRD the management cluster needs: CAPI core (Cluster,
// Machine, MachineSet, MachineDeployment, MachinePool, MachineDrainRule,
// MachineHealthCheck), the kubeadm bootstrap provider, CAPA's AWSCluster,
// AWSMachine and AWSMachineTemplate (with the contract labels CAPI looks
// for), the testbed's control plane and Joinery's own CRDs.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	add := func(fsys fs.FS, dir string) error {
		more, err := readCRDs(fsys, dir)
		crds = append(crds, more...)
		return err
	}
	if err := add(upstreamCRDs, "crds"); err != nil {
		return nil, err
	}
	if err := add(joinerycrd.Bases, "bases"); err != nil {
		return nil, err
	}
	return append(crds, controlPlaneCRD()), nil
}

// WorkloadCRDs are the CRDs every workload cluster gets, as a user installs
// them there (config/crd/workload): CapacityBuffer.
func WorkloadCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return readCRDs(joinerycrd.Workload, "workload")
}

func readCRDs(fsys fs.FS, dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	add := func(fsys fs.FS, dir string) error {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if path.Ext(e.Name()) != ".yaml" || e.Name() == "kustomization.yaml" {
				continue
			}
			data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(data, crd); err != nil {
				return fmt.Errorf("CRD file %s: %w", e.Name(), err)
			}
			if labels, ok := contractLabels[crd.Spec.Group]; ok {
				if crd.Labels == nil {
					crd.Labels = map[string]string{}
				}
				for k, v := range labels {
					crd.Labels[k] = v
				}
			}
			crds = append(crds, crd)
		}
		return nil
	}
	err := add(fsys, dir)
	return crds, err
}

// The testbed's control plane provider: one object per workload cluster,
// standing for the real kube-apiserver the testbed runs for it.
const (
	ControlPlaneGroup   = "controlplane.testbed.joinery.dev"
	ControlPlaneVersion = "v1beta2"
	ControlPlaneKind    = "TestbedControlPlane"
)

// controlPlaneCRD is a minimal CRD honouring CAPI's v1beta2 control plane
// contract: spec.controlPlaneEndpoint, spec.version,
// status.initialization.controlPlaneInitialized,
// status.externalManagedControlPlane, status.version, status.conditions.
func controlPlaneCRD() *apiextensionsv1.CustomResourceDefinition {
	obj := func(props map[string]apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props}
	}
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	boolean := apiextensionsv1.JSONSchemaProps{Type: "boolean"}
	anything := apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "testbedcontrolplanes." + ControlPlaneGroup,
			Labels: map[string]string{"cluster.x-k8s.io/v1beta2": ControlPlaneVersion},
		},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: ControlPlaneGroup,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "testbedcontrolplanes", Singular: "testbedcontrolplane", Kind: ControlPlaneKind,
				ListKind: ControlPlaneKind + "List", Categories: []string{"cluster-api"},
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: ControlPlaneVersion, Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"apiVersion": str, "kind": str, "metadata": {Type: "object"},
						"spec": obj(map[string]apiextensionsv1.JSONSchemaProps{
							"controlPlaneEndpoint": obj(map[string]apiextensionsv1.JSONSchemaProps{
								"host": str, "port": {Type: "integer", Format: "int32"},
							}),
							"version": str,
						}),
						"status": obj(map[string]apiextensionsv1.JSONSchemaProps{
							"initialization":              obj(map[string]apiextensionsv1.JSONSchemaProps{"controlPlaneInitialized": boolean}),
							"externalManagedControlPlane": boolean,
							"version":                     str,
							"conditions":                  {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &anything}},
						}),
					},
				}},
			}},
		},
	}
}
