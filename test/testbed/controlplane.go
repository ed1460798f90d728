package testbed

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// SetControlPlaneVersion upgrades a workload cluster's control plane the
// way CAPI's control plane contract shows it: spec.version is the version
// asked for, and status.version (the lowest version the control plane's
// machines run) follows once the provider finished rolling them. The
// testbed's control plane is the running apiserver and rolls nothing, so
// rolled says whether to report it done at once (status.version =
// version) or to leave it mid-upgrade until a second call.
func (tb *Testbed) SetControlPlaneVersion(ctx context.Context, cluster, version string, rolled bool) error {
	cp := &unstructured.Unstructured{}
	cp.SetAPIVersion(ControlPlaneGroup + "/" + ControlPlaneVersion)
	cp.SetKind(ControlPlaneKind)
	key := types.NamespacedName{Namespace: tb.Namespace, Name: cluster}
	if err := tb.Client.Get(ctx, key, cp); err != nil {
		return fmt.Errorf("reading %s %s: %w", ControlPlaneKind, key, err)
	}
	if err := unstructured.SetNestedField(cp.Object, version, "spec", "version"); err != nil {
		return err
	}
	if err := tb.Client.Update(ctx, cp); err != nil {
		return fmt.Errorf("setting %s %s spec.version to %s: %w", ControlPlaneKind, key, version, err)
	}
	if !rolled {
		return nil
	}
	if err := unstructured.SetNestedField(cp.Object, version, "status", "version"); err != nil {
		return err
	}
	if err := tb.Client.Status().Update(ctx, cp); err != nil {
		return fmt.Errorf("setting %s %s status.version to %s: %w", ControlPlaneKind, key, version, err)
	}
	return nil
}
