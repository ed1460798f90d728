package provisioning

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// What a Machine records at launch so that drift can tell later that its
// templates' content changed, as Karpenter stamps a NodeClaim with its
// EC2NodeClass's hash (karpenter.k8s.aws/ec2nodeclass-hash and
// -hash-version).
const (
	AnnotationTemplateHash        = v1alpha1.Group + "/template-hash"
	AnnotationTemplateHashVersion = v1alpha1.Group + "/template-hash-version"
	// TemplateHashVersion names how TemplateHash hashes. Change it with
	// any change to the hashing: Machines stamped under another version
	// are then not drifted by the hash (nothing about them changed but
	// how it is computed), and are stamped again instead.
	TemplateHashVersion = "v1"
)

// awsMachineFieldsSet are the AWSMachine fields every launch overwrites
// from its decision (setAWSOffering): a template edit of them changes no
// Machine Joinery makes, so it must not drift any.
var awsMachineFieldsSet = [][]string{{"instanceType"}, {"spotMarketOptions"}}

// TemplateHash hashes what a Machine clones from its pool's templates:
// spec.template.spec of the infrastructure template (less what every
// launch overwrites) and of the bootstrap template. Template metadata
// (labels, annotations) is not cloned into what the instance runs and is
// left out.
func TemplateHash(infra, bootstrap *unstructured.Unstructured) (string, error) {
	infraSpec, _, err := unstructured.NestedMap(infra.Object, "spec", "template", "spec")
	if err != nil {
		return "", fmt.Errorf("%s %s: spec.template.spec: %w", infra.GetKind(), infra.GetName(), err)
	}
	if infra.GetKind() == "AWSMachineTemplate" {
		for _, f := range awsMachineFieldsSet {
			unstructured.RemoveNestedField(infraSpec, f...)
		}
	}
	bootSpec, _, err := unstructured.NestedMap(bootstrap.Object, "spec", "template", "spec")
	if err != nil {
		return "", fmt.Errorf("%s %s: spec.template.spec: %w", bootstrap.GetKind(), bootstrap.GetName(), err)
	}
	// encoding/json writes map keys sorted: the same content hashes the
	// same whatever order the apiserver returned it in.
	b, err := json.Marshal([]any{infra.GetKind(), infraSpec, bootstrap.GetKind(), bootSpec})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// PoolTemplateHash reads a pool's two templates in the Cluster's
// namespace and hashes them.
func (p *Provisioner) PoolTemplateHash(ctx context.Context, namespace string, pool *v1alpha1.NodePool) (string, error) {
	if p.templates == nil {
		return "", fmt.Errorf("the provisioner is not set up")
	}
	spec := pool.Spec.Template.Spec
	infra, _, err := p.templates.get(ctx, namespace, spec.InfrastructureTemplateRef)
	if err != nil {
		return "", fmt.Errorf("NodePool %s: spec.template.spec.infrastructureTemplateRef: %w", pool.Name, err)
	}
	boot, _, err := p.templates.get(ctx, namespace, spec.BootstrapTemplateRef)
	if err != nil {
		return "", fmt.Errorf("NodePool %s: spec.template.spec.bootstrapTemplateRef: %w", pool.Name, err)
	}
	return TemplateHash(infra, boot)
}

// ClusterVersion is the Kubernetes version a Cluster's workers should run:
// spec.topology.version for a Cluster with a topology, else its control
// plane's spec.version (CAPI's control plane contract). ready is false
// while the control plane is still upgrading to it (its status.version,
// the lowest version its machines run, is another): workers must not
// get ahead of the apiserver (Kubernetes' version skew policy), so drift
// waits for ready, as CAPI's topology controller waits before it rolls
// MachineDeployments. A control plane that reports no status.version is
// taken at its word.
func (p *Provisioner) ClusterVersion(ctx context.Context, cluster *clusterv1.Cluster) (version string, ready bool, err error) {
	version = cluster.Spec.Topology.Version
	ref := cluster.Spec.ControlPlaneRef
	if ref.Name == "" || p.templates == nil {
		if version == "" {
			return "", false, fmt.Errorf("Cluster %s/%s has neither spec.topology.version nor spec.controlPlaneRef; Joinery cannot tell which Kubernetes version its Machines run", cluster.Namespace, cluster.Name)
		}
		return version, true, nil
	}
	cp, err := p.templates.getObject(ctx, cluster.Namespace, ref.APIGroup, ref.Kind, ref.Name)
	if err != nil {
		if version != "" {
			return version, true, nil
		}
		return "", false, fmt.Errorf("Cluster %s/%s: reading its control plane %s %s: %w", cluster.Namespace, cluster.Name, ref.Kind, ref.Name, err)
	}
	if version == "" {
		version, _, _ = unstructured.NestedString(cp.Object, "spec", "version")
	}
	if version == "" {
		return "", false, fmt.Errorf("Cluster %s/%s: control plane %s %s has no spec.version", cluster.Namespace, cluster.Name, ref.Kind, ref.Name)
	}
	status, found, _ := unstructured.NestedString(cp.Object, "status", "version")
	return version, !found || status == "" || SameVersion(status, version), nil
}

// SameVersion compares Kubernetes versions with or without the leading v.
func SameVersion(a, b string) bool {
	return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v")
}
