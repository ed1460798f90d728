// Package scenario reads the Kubernetes objects a planning run starts from
// (pods, nodes, NodePools, DaemonSets, volumes) out of multi-document YAML
// files, the way `joinery simulate` takes them. Every error names the file,
// the document, the object and the field.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/admission"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
)

// Scenario is everything read from the files, in file order.
type Scenario struct {
	// Pods without spec.nodeName are pending; the others run on Nodes.
	Pods                   []*corev1.Pod
	Nodes                  []*corev1.Node
	NodePools              []*v1alpha1.NodePool
	DaemonSets             []*appsv1.DaemonSet
	PersistentVolumes      []*corev1.PersistentVolume
	PersistentVolumeClaims []*corev1.PersistentVolumeClaim
	// Namespaces label namespaces for (anti-)affinity namespaceSelectors.
	Namespaces []*corev1.Namespace
	// StorageClasses place unbound WaitForFirstConsumer claims.
	StorageClasses []*storagev1.StorageClass
	// CSINodes carry existing nodes' CSI attach limits.
	CSINodes []*storagev1.CSINode
	// RuntimeClasses are applied to the pods naming them when loading, as
	// the RuntimeClass admission plugin does: overhead and scheduling.
	RuntimeClasses []*nodev1.RuntimeClass
	// NodeOverlays adjust the prices and capacity the pools plan with.
	NodeOverlays []*v1alpha1.NodeOverlay
	// CapacityBuffers ask for headroom of PodTemplates' shape
	// (spec.podTemplateRef; a scalableRef names a workload a planning run
	// does not have).
	CapacityBuffers []*autoscalingv1beta1.CapacityBuffer
	PodTemplates    []*corev1.PodTemplate
}

// InputError is a problem with the input; it says where.
type InputError struct {
	File     string
	Document int    // 1-based position in the file
	Object   string // Kind namespace/name, when known
	Err      error
}

func (e *InputError) Error() string {
	where := fmt.Sprintf("%s: document %d", e.File, e.Document)
	if e.Object != "" {
		where += " (" + e.Object + ")"
	}
	return where + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// LoadFiles reads every file ("-" is standard input) and returns all the
// problems found, not only the first.
func LoadFiles(paths ...string) (*Scenario, error) {
	loader, err := newLoader()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, path := range paths {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, loader.read(path, data)...)
	}
	errs = append(errs, loader.applyRuntimeClasses()...)
	errs = append(errs, loader.checkBindings()...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return loader.scenario, nil
}

// applyRuntimeClasses does what the RuntimeClass admission plugin does to a
// pod naming a RuntimeClass: set spec.overhead from the class, merge the
// class's nodeSelector and add its tolerations.
func (l *loader) applyRuntimeClasses() []error {
	s := l.scenario
	classes := make(map[string]*nodev1.RuntimeClass, len(s.RuntimeClasses))
	for _, rc := range s.RuntimeClasses {
		classes[rc.Name] = rc
	}
	var errs []error
	for _, pod := range s.Pods {
		name := pod.Spec.RuntimeClassName
		if name == nil || *name == "" {
			continue
		}
		at := l.podAt[pod]
		fail := func(format string, args ...any) error {
			return &InputError{File: at.File, Document: at.Document, Object: at.Object, Err: fmt.Errorf(format, args...)}
		}
		rc := classes[*name]
		if rc == nil {
			errs = append(errs, fail("spec.runtimeClassName %q names no RuntimeClass in the inputs; add the RuntimeClass (node.k8s.io/v1) or remove the field", *name))
			continue
		}
		if rc.Overhead != nil && len(rc.Overhead.PodFixed) > 0 {
			if pod.Spec.Overhead != nil && !equality.Semantic.DeepEqual(pod.Spec.Overhead, rc.Overhead.PodFixed) {
				errs = append(errs, fail("spec.overhead differs from RuntimeClass %s's overhead.podFixed; remove spec.overhead (admission sets it)", *name))
				continue
			}
			pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
		}
		if rc.Scheduling == nil {
			continue
		}
		for k, v := range rc.Scheduling.NodeSelector {
			if have, ok := pod.Spec.NodeSelector[k]; ok && have != v {
				errs = append(errs, fail("spec.nodeSelector %s=%s conflicts with RuntimeClass %s's scheduling.nodeSelector %s=%s", k, have, *name, k, v))
				continue
			}
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			pod.Spec.NodeSelector[k] = v
		}
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, rc.Scheduling.Tolerations...)
	}
	return errs
}

type loader struct {
	scenario     *Scenario
	nodePools    *admission.Validator
	nodeOverlays *admission.Validator
	seen         map[string]string // kind/namespace/name -> where first defined
	// podAt says where each pod was read, for errors found across files.
	podAt map[*corev1.Pod]*InputError
}

// checkBindings: a pod with spec.nodeName runs on that node, so the node
// must be in the input; otherwise its requests would count nowhere.
func (l *loader) checkBindings() []error {
	nodes := map[string]bool{}
	for _, n := range l.scenario.Nodes {
		nodes[n.Name] = true
	}
	var errs []error
	for _, p := range l.scenario.Pods {
		if p.Spec.NodeName == "" || nodes[p.Spec.NodeName] {
			continue
		}
		at := *l.podAt[p]
		at.Err = field.Invalid(field.NewPath("spec", "nodeName"), p.Spec.NodeName, "no Node of that name in the input: add the Node, or remove spec.nodeName to make the pod pending")
		errs = append(errs, &at)
	}
	return errs
}

func newLoader() (*loader, error) {
	nodePools, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		return nil, err
	}
	nodeOverlays, err := admission.ForEmbeddedCRD("joinery.dev_nodeoverlays.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		return nil, err
	}
	return &loader{scenario: &Scenario{}, nodePools: nodePools, nodeOverlays: nodeOverlays, seen: map[string]string{}, podAt: map[*corev1.Pod]*InputError{}}, nil
}

func (l *loader) read(file string, data []byte) []error {
	return ReadDocuments(file, data, func(doc int, raw []byte) error { return l.readObject(file, doc, raw) })
}

func (l *loader) readObject(file string, doc int, raw []byte) error {
	fail := func(object string, err error) error {
		return &InputError{File: file, Document: doc, Object: object, Err: err}
	}
	head, err := ReadHead(raw)
	if err != nil {
		return fail("", err)
	}
	if head.Kind == "List" {
		var errs []error
		for i, item := range head.Items {
			if err := l.readObject(file, doc, item); err != nil {
				errs = append(errs, fmt.Errorf("items[%d]: %w", i, err))
			}
		}
		return errors.Join(errs...)
	}
	namespace := head.Metadata.Namespace
	object := head.Kind + " " + head.Metadata.Name
	if head.Metadata.Name == "" {
		return fail(head.Kind, errors.New("metadata.name is required"))
	}

	var target runtime.Object
	namespaced := true
	switch gk := head.APIVersion + "/" + head.Kind; gk {
	case "v1/Pod":
		pod := &corev1.Pod{}
		target = pod
		defer func() {
			l.scenario.Pods = append(l.scenario.Pods, pod)
			l.podAt[pod] = &InputError{File: file, Document: doc, Object: "Pod " + pod.Namespace + "/" + pod.Name}
		}()
	case "v1/Node":
		node := &corev1.Node{}
		target, namespaced = node, false
		defer func() { l.scenario.Nodes = append(l.scenario.Nodes, node) }()
	case "apps/v1/DaemonSet":
		ds := &appsv1.DaemonSet{}
		target = ds
		defer func() { l.scenario.DaemonSets = append(l.scenario.DaemonSets, ds) }()
	case "v1/PersistentVolume":
		pv := &corev1.PersistentVolume{}
		target, namespaced = pv, false
		defer func() { l.scenario.PersistentVolumes = append(l.scenario.PersistentVolumes, pv) }()
	case "v1/PersistentVolumeClaim":
		pvc := &corev1.PersistentVolumeClaim{}
		target = pvc
		defer func() { l.scenario.PersistentVolumeClaims = append(l.scenario.PersistentVolumeClaims, pvc) }()
	case "v1/Namespace":
		ns := &corev1.Namespace{}
		target, namespaced = ns, false
		defer func() { l.scenario.Namespaces = append(l.scenario.Namespaces, ns) }()
	case "storage.k8s.io/v1/StorageClass":
		sc := &storagev1.StorageClass{}
		target, namespaced = sc, false
		defer func() { l.scenario.StorageClasses = append(l.scenario.StorageClasses, sc) }()
	case "storage.k8s.io/v1/CSINode":
		cn := &storagev1.CSINode{}
		target, namespaced = cn, false
		defer func() { l.scenario.CSINodes = append(l.scenario.CSINodes, cn) }()
	case "node.k8s.io/v1/RuntimeClass":
		rc := &nodev1.RuntimeClass{}
		target, namespaced = rc, false
		defer func() { l.scenario.RuntimeClasses = append(l.scenario.RuntimeClasses, rc) }()
	case "v1/PodTemplate":
		pt := &corev1.PodTemplate{}
		target = pt
		defer func() { l.scenario.PodTemplates = append(l.scenario.PodTemplates, pt) }()
	case autoscalingv1beta1.GroupVersion.String() + "/CapacityBuffer":
		cb := &autoscalingv1beta1.CapacityBuffer{}
		target = cb
		defer func() { l.scenario.CapacityBuffers = append(l.scenario.CapacityBuffers, cb) }()
	case v1alpha1.GroupVersion.String() + "/NodePool":
		if namespace == "" {
			namespace = "default"
		}
		pool, err := l.admitNodePool(raw, namespace)
		if err != nil {
			return fail("NodePool "+namespace+"/"+head.Metadata.Name, err)
		}
		if err := l.remember("NodePool", namespace, pool.Name, file, doc); err != nil {
			return fail("NodePool "+namespace+"/"+pool.Name, err)
		}
		l.scenario.NodePools = append(l.scenario.NodePools, pool)
		return nil
	case v1alpha1.GroupVersion.String() + "/NodeOverlay":
		// Cluster-scoped, and admitted with the CRD's own schema, as
		// NodePools are.
		o := &v1alpha1.NodeOverlay{}
		if err := l.admit(l.nodeOverlays, raw, o); err != nil {
			return fail("NodeOverlay "+head.Metadata.Name, err)
		}
		if err := l.remember("NodeOverlay", "", o.Name, file, doc); err != nil {
			return fail("NodeOverlay "+o.Name, err)
		}
		l.scenario.NodeOverlays = append(l.scenario.NodeOverlays, o)
		return nil
	default:
		return fail(object, fmt.Errorf("%s %s is not an input of a planning run: give Pods, Nodes, Namespaces, PersistentVolumes, PersistentVolumeClaims and PodTemplates (v1), NodePools and NodeOverlays (%s), DaemonSets (apps/v1), StorageClasses and CSINodes (storage.k8s.io/v1), RuntimeClasses (node.k8s.io/v1) and CapacityBuffers (%s)",
			head.APIVersion, head.Kind, v1alpha1.GroupVersion, autoscalingv1beta1.GroupVersion))
	}
	if namespaced && namespace == "" {
		namespace = "default"
	}
	if namespaced {
		object = head.Kind + " " + namespace + "/" + head.Metadata.Name
	}
	// Strict, as kubectl applies: a misspelt field or a key given twice is
	// an error naming its path, not a silently ignored one.
	jsonData, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return fail(object, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(jsonData, target)
	if err != nil {
		return fail(object, err)
	}
	if len(strictErrs) > 0 {
		return fail(object, errors.Join(strictErrs...))
	}
	if m, ok := target.(interface{ SetNamespace(string) }); ok && namespaced {
		m.SetNamespace(namespace)
	}
	if errs := validateObject(target); len(errs) > 0 {
		return fail(object, errs.ToAggregate())
	}
	if err := l.remember(head.Kind, namespace, head.Metadata.Name, file, doc); err != nil {
		return fail(object, err)
	}
	return nil
}

func (l *loader) admitNodePool(raw []byte, namespace string) (*v1alpha1.NodePool, error) {
	obj := map[string]any{}
	if err := yaml.UnmarshalStrict(raw, &obj); err != nil {
		return nil, err
	}
	if errs := l.nodePools.Admit(context.Background(), obj); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	pool := &v1alpha1.NodePool{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, pool); err != nil {
		return nil, err
	}
	pool.Namespace = namespace
	return pool, nil
}

// admit checks raw against a CRD's schema (defaults applied) and decodes
// it into into.
func (l *loader) admit(v *admission.Validator, raw []byte, into any) error {
	obj := map[string]any{}
	if err := yaml.UnmarshalStrict(raw, &obj); err != nil {
		return err
	}
	if errs := v.Admit(context.Background(), obj); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
}

func (l *loader) remember(kind, namespace, name, file string, doc int) error {
	key := kind + "/" + namespace + "/" + name
	here := fmt.Sprintf("%s document %d", file, doc)
	if first, ok := l.seen[key]; ok {
		return fmt.Errorf("defined twice: first in %s; give each object a unique name", first)
	}
	l.seen[key] = here
	return nil
}

// Headroom resolves the CapacityBuffers against the PodTemplates given and
// returns their chunks, pods that exist only in planning
// (internal/capacitybuffer). A buffer whose template is not in the input
// is an error naming it.
func (s *Scenario) Headroom() ([]*corev1.Pod, error) {
	templates := map[string]*corev1.PodTemplate{}
	for _, pt := range s.PodTemplates {
		templates[pt.Namespace+"/"+pt.Name] = pt
	}
	var pods []*corev1.Pod
	var errs []error
	for _, cb := range s.CapacityBuffers {
		if cb.UID == "" {
			// Stable chunk UIDs, as the apiserver would give one.
			cb.UID = types.UID("capacitybuffer-" + cb.Namespace + "-" + cb.Name)
		}
		var src *capacitybuffer.Source
		var srcErr error
		if ref := cb.Spec.PodTemplateRef; ref != nil {
			if pt := templates[cb.Namespace+"/"+ref.Name]; pt != nil {
				src = &capacitybuffer.Source{Template: pt.Template, PodTemplate: pt.Name}
			} else {
				srcErr = fmt.Errorf("spec.podTemplateRef.name: PodTemplate %s/%s is not in the input; add it", cb.Namespace, ref.Name)
			}
		}
		r := capacitybuffer.Resolve(cb, src, srcErr, srcErr != nil)
		if !r.Ready {
			errs = append(errs, errors.New(r.Message))
			continue
		}
		pods = append(pods, r.Pods...)
	}
	return pods, errors.Join(errs...)
}
