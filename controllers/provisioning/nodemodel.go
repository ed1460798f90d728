package provisioning

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/solverinput"
)

// nodeModel reads what a pool's templates say about the node CAPA and
// kubeadm will make: the bootstrap template's kubelet flags, the
// AWSMachineTemplate's root volume, and the architecture of its AMI. notes
// are assumptions the model had to make, in words a person can act on;
// they are logged and reported, never silent.
//
// Templates are read from the apiserver (unstructured objects are not
// cached by the manager), so a model is kept for nodeModelTTL per pool,
// generation and region: a pass runs on every Machine, Node and pod event,
// and two GETs per pool each time would load the management cluster for
// nothing. A template edited since is planned with at most that much
// later; launches always clone the current template.
func (ps *pass) nodeModel(np *v1alpha1.NodePool) (solverinput.NodeModel, []string, error) {
	key := fmt.Sprintf("%s/%s/%d/%s", np.Namespace, np.Name, np.Generation, ps.region)
	ps.modelCache.mu.Lock()
	cached, ok := ps.modelCache.entries[key]
	ps.modelCache.mu.Unlock()
	if ok && ps.now.Sub(cached.at) < nodeModelTTL {
		return cached.model, cached.notes, nil
	}
	model, notes, err := ps.readNodeModel(np)
	if err != nil {
		return model, notes, err
	}
	ps.modelCache.mu.Lock()
	if ps.modelCache.entries == nil {
		ps.modelCache.entries = map[string]cachedModel{}
	}
	for k, e := range ps.modelCache.entries {
		if ps.now.Sub(e.at) >= nodeModelTTL {
			delete(ps.modelCache.entries, k)
		}
	}
	ps.modelCache.entries[key] = cachedModel{model: model, notes: notes, at: ps.now}
	ps.modelCache.mu.Unlock()
	return model, notes, nil
}

// nodeModelTTL is how long a pool's node model is reused.
const nodeModelTTL = 15 * time.Second

type nodeModels struct {
	mu      sync.Mutex
	entries map[string]cachedModel
}

type cachedModel struct {
	model solverinput.NodeModel
	notes []string
	at    time.Time
}

func (ps *pass) readNodeModel(np *v1alpha1.NodePool) (model solverinput.NodeModel, notes []string, err error) {
	model.VMMemoryOverheadPercent = ps.Options.VMMemoryOverheadPercent
	spec := np.Spec.Template.Spec
	// A template that cannot be read is reported by the launch that
	// needs it; planning goes on with the defaults and says so.
	bootstrap, _, err := ps.templates.get(ps.ctx, np.Namespace, spec.BootstrapTemplateRef)
	if err != nil {
		return model, []string{fmt.Sprintf("spec.template.spec.bootstrapTemplateRef: %v; planning for the kubelet's defaults", err)}, nil
	}
	if model.KubeletArgs, err = TemplateKubeletArgs(bootstrap); err != nil {
		return model, nil, fmt.Errorf("NodePool %s/%s: %s %s: %w", np.Namespace, np.Name, bootstrap.GetKind(), bootstrap.GetName(), err)
	}
	infra, _, err := ps.templates.get(ps.ctx, np.Namespace, spec.InfrastructureTemplateRef)
	if err != nil {
		return model, []string{fmt.Sprintf("spec.template.spec.infrastructureTemplateRef: %v; planning for an %s root volume and either architecture", err, cloud.DefaultRootVolumeSize.String())}, nil
	}
	size, hasSize, err := unstructured.NestedInt64(infra.Object, "spec", "template", "spec", "rootVolume", "size")
	if err != nil {
		return model, nil, fmt.Errorf("NodePool %s/%s: %s %s: spec.template.spec.rootVolume.size: %w", np.Namespace, np.Name, infra.GetKind(), infra.GetName(), err)
	}
	if hasSize && size > 0 {
		model.RootVolume = *resource.NewQuantity(size<<30, resource.BinarySI)
	}
	amiID, _, _ := unstructured.NestedString(infra.Object, "spec", "template", "spec", "ami", "id")
	if amiID == "" {
		// CAPA looks the AMI up by name per instance type and
		// architecture: both architectures are fine.
		return model, nil, nil
	}
	var lookupErr error
	if ps.Images != nil {
		img, err := ps.Images.Image(ps.ctx, ps.region, amiID)
		if err == nil {
			model.Arch = img.Arch
			if !hasSize && !img.RootDeviceSize.IsZero() {
				model.RootVolume = img.RootDeviceSize
			}
			return model, nil, nil
		}
		lookupErr = err
	}
	if pinsArch(np) {
		// The pool chose its architecture; the solver keeps to it.
		return model, nil, nil
	}
	model.Arch = cloud.ArchAMD64
	why := "without EC2 access"
	if lookupErr != nil {
		why = fmt.Sprintf("(%v)", lookupErr)
	}
	notes = append(notes, fmt.Sprintf("AMI %s architecture unknown %s; assuming amd64; set requirement %s to choose", amiID, why, v1alpha1.LabelArch))
	return model, notes, nil
}

// pinsArch reports whether the pool has a requirement on kubernetes.io/arch.
func pinsArch(np *v1alpha1.NodePool) bool {
	return slices.ContainsFunc(np.Spec.Template.Spec.Requirements, func(r v1alpha1.NodeSelectorRequirementWithMinValues) bool {
		return r.Key == v1alpha1.LabelArch
	})
}

// TemplateKubeletArgs reads a KubeadmConfigTemplate's
// spec.template.spec.joinConfiguration.nodeRegistration.kubeletExtraArgs
// (CAPI v1beta2: a list of name/value). Other bootstrap templates have
// none Joinery can read.
func TemplateKubeletArgs(template *unstructured.Unstructured) ([]solverinput.KubeletArg, error) {
	if template.GetKind() != "KubeadmConfigTemplate" {
		return nil, nil
	}
	path := []string{"spec", "template", "spec", "joinConfiguration", "nodeRegistration", "kubeletExtraArgs"}
	value, found, err := unstructured.NestedFieldNoCopy(template.Object, path...)
	if err != nil || !found || value == nil {
		return nil, err
	}
	list, ok := value.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is a %T; CAPI v1beta2 takes a list of {name, value}", strings.Join(path, "."), value)
	}
	return kubeletArgsOf(list), nil
}

func kubeletArgsOf(list []any) []solverinput.KubeletArg {
	args := make([]solverinput.KubeletArg, 0, len(list))
	for _, a := range list {
		if m, ok := a.(map[string]any); ok {
			name, _ := m["name"].(string)
			value, _ := m["value"].(string)
			args = append(args, solverinput.KubeletArg{Name: name, Value: value})
		}
	}
	return args
}

// zoneNote says, when the catalog does not know the account's zone names
// for region, which mapping planning assumes; "" when it knows them.
func zoneNote(catalog *cloud.Catalog, region string) string {
	if catalog == nil || catalog.ZoneNamesKnown(region) {
		return ""
	}
	names := catalog.ZoneNames(region)
	ids := make([]string, 0, len(names))
	for id := range names {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(names[a], names[b]) })
	pairs := make([]string, len(ids))
	for i, id := range ids {
		pairs[i] = names[id] + "=" + id
	}
	return fmt.Sprintf("zone names of %s are assumed, not read from EC2 (%s): give the manager --catalog-regions=%s so DescribeAvailabilityZones names them; until then zone-ID requirements and per-zone prices may be another zone's",
		region, strings.Join(pairs, ", "), region)
}

// reportNotes logs a pool's assumptions and records an Event when they
// change, so a person sees them once per change, not once per pass.
// (A cluster's state is only touched by the one worker reconciling it.)
func (ps *pass) reportNotes(np *v1alpha1.NodePool, notes []string) {
	msg := strings.Join(notes, "; ")
	st := ps.state(ps.key)
	if st.notes == nil {
		st.notes = map[string]string{}
	}
	if st.notes[np.Name] == msg {
		return
	}
	st.notes[np.Name] = msg
	if msg == "" {
		return
	}
	ps.log.Info("planning with assumptions", "nodePool", np.Name, "assumptions", msg)
	ps.Recorder.Eventf(np, corev1.EventTypeWarning, "NodeModelAssumed", "cluster %s: %s", ps.cluster.Name, msg)
}
