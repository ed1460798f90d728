// Package convert turns Karpenter v1 NodePools and EC2NodeClasses (and
// v1alpha1 NodeOverlays) into Joinery NodePools, CAPA AWSMachineTemplates,
// CAPI KubeadmConfigTemplate stubs (and Joinery NodeOverlays), offline, as `joinery convert` does. What has no equivalent is not
// dropped silently: every such setting becomes a Warning naming the source
// object, the field and what to do instead.
package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/admission"
)

// Options are what the Karpenter objects do not say: which CAPI Clusters
// the NodePools serve and the namespace everything goes in.
type Options struct {
	// ClusterName or ClusterSelector (exactly one) becomes every
	// NodePool's spec.clusterName or spec.clusterSelector.
	ClusterName     string
	ClusterSelector *metav1.LabelSelector
	// Namespace of the output objects (default "default").
	Namespace string
}

// Validate says what is wrong with the options, in terms of the flags.
func (o Options) Validate() error {
	switch {
	case o.ClusterName == "" && o.ClusterSelector == nil:
		return errors.New("set --cluster-name NAME or --cluster-selector k=v: a Joinery NodePool serves CAPI Clusters, which Karpenter objects do not name")
	case o.ClusterName != "" && o.ClusterSelector != nil:
		return errors.New("set only one of --cluster-name and --cluster-selector")
	}
	if o.ClusterName != "" {
		if errs := validation.IsDNS1123Label(o.ClusterName); len(errs) > 0 {
			return fmt.Errorf("--cluster-name %q: %s", o.ClusterName, strings.Join(errs, "; "))
		}
	}
	if o.Namespace != "" {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
		}
	}
	return nil
}

// Warning is a Karpenter setting that was not carried over exactly.
type Warning struct {
	// Object is the source object, e.g. "EC2NodeClass default".
	Object string
	// Field is its path in the source object, e.g. "spec.userData".
	Field string
	// Message says what became of it and what to do.
	Message string
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Object + ": " + w.Message
	}
	return w.Object + ": " + w.Field + " " + w.Message
}

// Object is one output object with the comment written above it.
type Object struct {
	Comment string
	Value   any // *v1alpha1.NodePool, *infrav1.AWSMachineTemplate or *bootstrapv1.KubeadmConfigTemplate

	rewrite func(map[string]any) // applied to the written form
}

// toMap is the object as it is written.
func (o Object) toMap() (map[string]any, error) {
	obj, err := toMap(o.Value)
	if err != nil {
		return nil, err
	}
	if o.rewrite != nil {
		o.rewrite(obj)
	}
	return obj, nil
}

// Result is the converted objects, templates first (in EC2NodeClass
// order), then NodePools and NodeOverlays (in input order), and the
// warnings.
type Result struct {
	Objects  []Object
	Warnings []Warning
}

// NodePools returns the converted NodePools.
func (r *Result) NodePools() []*v1alpha1.NodePool { return objectsOf[*v1alpha1.NodePool](r) }

// NodeOverlays returns the converted NodeOverlays.
func (r *Result) NodeOverlays() []*v1alpha1.NodeOverlay {
	return objectsOf[*v1alpha1.NodeOverlay](r)
}

// AWSMachineTemplates returns the converted AWSMachineTemplates.
func (r *Result) AWSMachineTemplates() []*infrav1.AWSMachineTemplate {
	return objectsOf[*infrav1.AWSMachineTemplate](r)
}

// KubeadmConfigTemplates returns the KubeadmConfigTemplate stubs.
func (r *Result) KubeadmConfigTemplates() []*bootstrapv1.KubeadmConfigTemplate {
	return objectsOf[*bootstrapv1.KubeadmConfigTemplate](r)
}

func objectsOf[T any](r *Result) []T {
	var out []T
	for _, o := range r.Objects {
		if v, ok := o.Value.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// Convert converts every NodePool and EC2NodeClass in the input. Each
// NodePool is checked against the NodePool CRD's schema and CEL rules, so
// the output is one the apiserver accepts; a NodePool that would still be
// rejected is an *InputError naming its source.
func Convert(in *Input, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = metav1.NamespaceDefault
	}
	c := &converter{opts: opts, classes: map[string]*classResult{}}
	res := &Result{Warnings: append([]Warning(nil), in.Warnings...)}
	for _, src := range in.EC2NodeClasses {
		cr := c.convertEC2NodeClass(src)
		c.classes[src.Name()] = cr
		res.Objects = append(res.Objects,
			Object{Comment: cr.machineComment, Value: cr.machine},
			Object{Comment: cr.bootstrapComment, Value: cr.bootstrap})
	}
	validator, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, src := range in.NodePools {
		o := c.convertNodePool(src)
		if err := admit(validator, o); err != nil {
			errs = append(errs, &InputError{File: src.File, Document: src.Document, Object: "NodePool " + src.Name(),
				Err: fmt.Errorf("the converted Joinery NodePool would be rejected: %w; change the Karpenter NodePool (or its EC2NodeClass) so that it converts", err)})
			continue
		}
		res.Objects = append(res.Objects, o)
	}
	overlays, err := admission.ForEmbeddedCRD("joinery.dev_nodeoverlays.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		return nil, err
	}
	poolsOfClass := map[string][]string{}
	for _, src := range in.NodePools {
		if ref := src.pool.Spec.Template.Spec.NodeClassRef; ref != nil {
			poolsOfClass[ref.Name] = append(poolsOfClass[ref.Name], src.Name())
		}
	}
	for _, src := range in.NodeOverlays {
		o := c.convertNodeOverlay(src, poolsOfClass)
		if err := admit(overlays, o); err != nil {
			errs = append(errs, &InputError{File: src.File, Document: src.Document, Object: "NodeOverlay " + src.Name(),
				Err: fmt.Errorf("the converted Joinery NodeOverlay would be rejected: %w; fix the Karpenter NodeOverlay so that it converts", err)})
			continue
		}
		res.Objects = append(res.Objects, o)
	}
	res.Warnings = append(res.Warnings, c.warnings...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// admit runs a CRD's admission (unknown fields, defaults, schema, CEL) on
// the written form of a NodePool or NodeOverlay.
func admit(v *admission.Validator, o Object) error {
	obj, err := o.toMap()
	if err != nil {
		return err
	}
	if errs := v.Admit(context.Background(), obj); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}

type converter struct {
	opts     Options
	classes  map[string]*classResult
	warnings []Warning
}

func (c *converter) warn(object, field, format string, args ...any) {
	c.warnings = append(c.warnings, Warning{Object: object, Field: field, Message: fmt.Sprintf(format, args...)})
}

// WriteYAML writes the objects as multi-document YAML, each with its
// comment above it.
func (r *Result) WriteYAML(w io.Writer) error {
	var buf bytes.Buffer
	for i, o := range r.Objects {
		if i > 0 {
			buf.WriteString("---\n")
		}
		for _, line := range strings.Split(strings.TrimRight(o.Comment, "\n"), "\n") {
			if line != "" {
				buf.WriteString("# " + line + "\n")
			}
		}
		obj, err := o.toMap()
		if err != nil {
			return err
		}
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		buf.Write(data)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// toMap is the object as the apiserver would store it from a client: JSON
// field names, omitempty honoured, no status, no empty creationTimestamp,
// and durations in their shortest form ("48h", not "48h0m0s").
func toMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	delete(obj, "status")
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	pruneEmptyMetadata(obj)
	shortenDurations(obj)
	return obj, nil
}

// pruneEmptyMetadata removes spec.template.metadata, and an AWSMachine's
// ami and cloudInit, when they are empty: the CAPI and CAPA types always
// write them.
func pruneEmptyMetadata(obj map[string]any) {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	if meta, ok := tmpl["metadata"].(map[string]any); ok && len(meta) == 0 {
		delete(tmpl, "metadata")
	}
	if obj["kind"] != "AWSMachineTemplate" {
		return
	}
	machine, _ := tmpl["spec"].(map[string]any)
	for _, key := range []string{"ami", "cloudInit"} {
		if m, ok := machine[key].(map[string]any); ok && len(m) == 0 {
			delete(machine, key)
		}
	}
}

// shortenDurations rewrites the metav1.Duration fields of a NodePool.
func shortenDurations(obj map[string]any) {
	spec, _ := obj["spec"].(map[string]any)
	if tmpl, ok := spec["template"].(map[string]any); ok {
		if ts, ok := tmpl["spec"].(map[string]any); ok {
			if s, ok := ts["terminationGracePeriod"].(string); ok {
				ts["terminationGracePeriod"] = shortDurationString(s)
			}
		}
	}
	if d, ok := spec["disruption"].(map[string]any); ok {
		budgets, _ := d["budgets"].([]any)
		for _, b := range budgets {
			if bm, ok := b.(map[string]any); ok {
				if s, ok := bm["duration"].(string); ok {
					bm["duration"] = shortDurationString(s)
				}
			}
		}
	}
}
