package provisioning

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// templates reads the objects a NodePool and a Cluster reference by API
// group and kind (CAPI's contract references carry no version): the
// management cluster's REST mapper names the served version.
type templates struct {
	client client.Client
	mapper meta.RESTMapper
}

func (t *templates) kindVersion(group, kind string) (schema.GroupVersionKind, error) {
	mapping, err := t.mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("the management cluster serves no kind %s in API group %s (is its provider installed?): %w", kind, group, err)
	}
	return mapping.GroupVersionKind, nil
}

func (t *templates) getObject(ctx context.Context, namespace, group, kind, name string) (*unstructured.Unstructured, error) {
	gvk, err := t.kindVersion(group, kind)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := t.client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj); err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", kind, namespace, name, err)
	}
	return obj, nil
}

// get returns a pool's template and the reference CAPI's cloning helpers
// take.
func (t *templates) get(ctx context.Context, namespace string, ref v1alpha1.TemplateReference) (*unstructured.Unstructured, *corev1.ObjectReference, error) {
	obj, err := t.getObject(ctx, namespace, ref.APIGroup, ref.Kind, ref.Name)
	if err != nil {
		return nil, nil, err
	}
	return obj, TemplateObjectReference(namespace, ref, obj.GroupVersionKind().Version), nil
}
