// Package provisioning turns pending pods in the workload clusters a
// NodePool serves into CAPI Machines. This file builds the objects of one
// launch; it reads and writes nothing.
//
// A launch is crash-safe by construction:
//   - The Machine is created first, under a name derived from the decision
//     (cluster, pool and the pods it is for), so a retry after a crash or a
//     lost response gets AlreadyExists instead of a duplicate.
//   - The Machine records the whole decision in an annotation, so whoever
//     finds a Machine without its infrastructure or bootstrap object can
//     create them from the Machine alone.
//   - Those two objects are created with the Machine as owner, under the
//     Machine's name: they can never be orphans, and creating them twice
//     is AlreadyExists.
//   - A Machine counts as in-flight capacity as soon as it exists, so the
//     next plan does not launch again for the same pods.
package provisioning

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/controllers/external"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/capacitybuffer"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
)

// Annotations and labels Joinery puts on the Machines it creates.
const (
	// AnnotationDecision holds the Decision as JSON.
	AnnotationDecision = v1alpha1.Group + "/decision"
	// AnnotationPricePerHour is the chosen offering's price in USD.
	AnnotationPricePerHour = v1alpha1.Group + "/price-per-hour"

	// maxRecordedFallbacks and maxRecordedPods keep the decision annotation
	// well under the 256 KiB limit on all annotations of an object.
	maxRecordedFallbacks = 20
	maxRecordedPods      = 100
)

// Decision is why a Machine exists. The controllers and `joinery explain`
// read the same record.
type Decision struct {
	NodePool string   `json:"nodePool"`
	Offering Offering `json:"offering"`
	// Fallbacks fit the same pods, cheapest first (the first few).
	Fallbacks []Offering `json:"fallbacks,omitempty"`
	// Rejected are the cheaper offerings passed over, grouped by why.
	Rejected []Rejected `json:"rejected,omitempty"`
	// Pods are the pending pods the machine is for (the first few), as
	// namespace/name, and how many there were.
	Pods      []string    `json:"pods"`
	PodCount  int         `json:"podCount"`
	DecidedAt metav1.Time `json:"decidedAt"`
	// SpotMaxPrice is the template's spotMarketOptions.maxPrice (USD per
	// hour): spot offerings above it were not chosen, and EC2 is asked
	// for no more.
	SpotMaxPrice string `json:"spotMaxPrice,omitempty"`
	// Headroom counts, per CapacityBuffer (namespace/name), the chunks
	// among Pods: capacity launched ahead of pods, not for pods waiting.
	Headroom map[string]int `json:"headroom,omitempty"`
}

// Rejected is one reason cheaper offerings were passed over: the cheapest
// few of them and how many there were.
type Rejected struct {
	Reason    string     `json:"reason"`
	Offerings []Offering `json:"offerings"`
	Count     int        `json:"count"`
}

// Offering is one (instance type, zone, capacity type) and its price.
type Offering struct {
	InstanceType string  `json:"instanceType"`
	Zone         string  `json:"zone"`
	ZoneID       string  `json:"zoneID,omitempty"`
	CapacityType string  `json:"capacityType"`
	PricePerHour float64 `json:"pricePerHour"`
	// PriceOverlay names the NodeOverlay that set PricePerHour, and
	// ListPricePerHour is the catalog's price it replaced.
	PriceOverlay     string  `json:"priceOverlay,omitempty"`
	ListPricePerHour float64 `json:"listPricePerHour,omitempty"`
	// For spot: EC2's placement score (1..10, 0 unknown), and the risk
	// the choice weighed its price by (solver.SpotRisk) with the recent
	// interruptions Joinery saw of it.
	PlacementScore      int     `json:"placementScore,omitempty"`
	InterruptionRisk    float64 `json:"interruptionRisk,omitempty"`
	RecentInterruptions float64 `json:"recentInterruptions,omitempty"`
	// ReservationID is the capacity reservation a reserved offering
	// launches into, ReservationType its kind (default, capacity-block).
	ReservationID   string `json:"reservationID,omitempty"`
	ReservationType string `json:"reservationType,omitempty"`
}

// NewDecision records what the solver decided for one new node.
func NewDecision(node *solver.NewNode, now metav1.Time) Decision {
	d := Decision{
		NodePool:  node.Pool,
		Offering:  offering(node.InstanceType.Name, node.Offering, node.SpotRiskNote),
		PodCount:  len(node.Pods),
		DecidedAt: now,
	}
	for _, f := range node.Fallbacks {
		if len(d.Fallbacks) == maxRecordedFallbacks {
			break
		}
		d.Fallbacks = append(d.Fallbacks, offering(f.InstanceType.Name, f.Offering, f.SpotRiskNote))
	}
	for _, r := range node.Rejected {
		rec := Rejected{Reason: r.Reason, Count: r.Count}
		for _, o := range r.Offerings {
			rec.Offerings = append(rec.Offerings, offering(o.InstanceType.Name, o.Offering, o.SpotRiskNote))
		}
		d.Rejected = append(d.Rejected, rec)
	}
	for _, p := range node.Pods {
		if b := capacitybuffer.BufferOf(p); b != "" {
			if d.Headroom == nil {
				d.Headroom = map[string]int{}
			}
			d.Headroom[b]++
		}
		if len(d.Pods) == maxRecordedPods {
			continue
		}
		d.Pods = append(d.Pods, p.Namespace+"/"+p.Name)
	}
	return d
}

func offering(instanceType string, o solver.Offering, risk solver.SpotRiskNote) Offering {
	return Offering{InstanceType: instanceType, Zone: o.Zone, ZoneID: o.ZoneID, CapacityType: o.CapacityType, PricePerHour: o.PricePerHour,
		PriceOverlay: o.PriceOverlay, ListPricePerHour: o.ListPricePerHour, ReservationID: o.ReservationID, ReservationType: o.ReservationType,
		PlacementScore: o.PlacementScore, InterruptionRisk: risk.Risk, RecentInterruptions: risk.RecentInterruptions}
}

// MachineName is derived from the decision's identity: the cluster, the
// pool and the pods the machine is for. The same decision made again after
// a restart gets the same name.
func MachineName(cluster, pool string, pods []*corev1.Pod) string {
	ids := make([]string, 0, len(pods))
	for _, p := range pods {
		if p.UID != "" {
			ids = append(ids, string(p.UID))
		} else {
			ids = append(ids, p.Namespace+"/"+p.Name)
		}
	}
	sort.Strings(ids)
	sum := sha256.Sum256([]byte(cluster + "\x00" + pool + "\x00" + strings.Join(ids, "\x00")))
	suffix := hex.EncodeToString(sum[:])[:10]
	// Machine names become object names of the infrastructure and bootstrap
	// objects too; keep them a DNS label.
	if max := 63 - len(suffix) - 1; len(pool) > max {
		pool = strings.TrimRight(pool[:max], "-.")
	}
	return pool + "-" + suffix
}

// LaunchSpec is everything one launch needs besides the templates.
type LaunchSpec struct {
	Cluster  *clusterv1.Cluster
	NodePool *v1alpha1.NodePool
	Node     *solver.NewNode
	// Version is the Kubernetes version the machine runs (the control
	// plane's); CAPI's bootstrap needs it.
	Version  string
	Decision Decision
	// Replacing names the Machines this one replaces (disruption), so a
	// replacement for the same pods made later gets a name of its own.
	Replacing []string
	// Relaunch counts the Machines of the same decision found being
	// deleted under the names before this one (see RelaunchName).
	Relaunch int
	// TemplateHash is TemplateHash of the pool's templates ("" records
	// none, and the Machine never drifts on their content).
	TemplateHash string
}

// RelaunchName is the name of the n-th Machine of a decision: n is 0 but
// when the Machines under the earlier names are being deleted (a launch
// EC2 refused, a node that never registered), so a relaunch for the same
// pods never collides with, and never adopts, the Machine it replaces.
// The sequence is fixed by the decision, so a process that restarts
// between two creates walks it again and finds what it made.
func RelaunchName(l LaunchSpec) string {
	cluster := l.Cluster.Name
	if len(l.Replacing) > 0 {
		cluster += "\x00" + strings.Join(l.Replacing, ",")
	}
	if l.Relaunch > 0 {
		cluster += fmt.Sprintf("\x00relaunch-%d", l.Relaunch)
	}
	return MachineName(cluster, l.NodePool.Name, l.Node.Pods)
}

// BuildMachine returns the Machine of a launch. It references its
// infrastructure and bootstrap objects by its own name; they are created
// after it, with it as their owner.
func BuildMachine(l LaunchSpec, infraRef, bootstrapRef v1alpha1.TemplateReference) (*clusterv1.Machine, error) {
	decision, err := json.Marshal(l.Decision)
	if err != nil {
		return nil, err
	}
	name := RelaunchName(l)
	m := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: l.Cluster.Namespace,
			Labels: map[string]string{
				clusterv1.ClusterNameLabel: l.Cluster.Name,
				v1alpha1.LabelNodePool:     l.NodePool.Name,
				v1alpha1.LabelInstanceType: l.Decision.Offering.InstanceType,
				v1alpha1.LabelZone:         l.Decision.Offering.Zone,
				v1alpha1.LabelCapacityType: l.Decision.Offering.CapacityType,
			},
			Annotations: map[string]string{
				AnnotationDecision:     string(decision),
				AnnotationPricePerHour: fmt.Sprintf("%.6f", l.Decision.Offering.PricePerHour),
				AnnotationPoolHash:     PoolHash(l.NodePool),
			},
			// Deleting a NodePool deletes its Machines (CAPI drains them), as
			// deleting a Karpenter NodePool deletes its NodeClaims. The pool
			// is the controller: CAPI then does not adopt the Machine as a
			// standalone Machine of the Cluster, whose ownership would keep
			// it alive after its pool is gone.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "NodePool",
				Name:       l.NodePool.Name,
				UID:        l.NodePool.UID,
				Controller: ptr.To(true),
			}},
		},
		Spec: clusterv1.MachineSpec{
			ClusterName:   l.Cluster.Name,
			Version:       l.Version,
			FailureDomain: l.Decision.Offering.Zone,
			InfrastructureRef: clusterv1.ContractVersionedObjectReference{
				APIGroup: infraRef.APIGroup, Kind: strings.TrimSuffix(infraRef.Kind, clusterv1.TemplateSuffix), Name: name,
			},
			Bootstrap: clusterv1.Bootstrap{ConfigRef: clusterv1.ContractVersionedObjectReference{
				APIGroup: bootstrapRef.APIGroup, Kind: strings.TrimSuffix(bootstrapRef.Kind, clusterv1.TemplateSuffix), Name: name,
			}},
		},
	}
	if l.TemplateHash != "" {
		m.Annotations[AnnotationTemplateHash] = l.TemplateHash
		m.Annotations[AnnotationTemplateHashVersion] = TemplateHashVersion
	}
	if len(l.Replacing) > 0 {
		m.Annotations[AnnotationReplaces] = strings.Join(l.Replacing, ",")
	}
	if id := l.Decision.Offering.ReservationID; id != "" {
		m.Labels[v1alpha1.LabelCapacityReservationID] = id
	}
	if grace := l.NodePool.Spec.Template.Spec.TerminationGracePeriod; grace != nil {
		m.Spec.Deletion.NodeDrainTimeoutSeconds = ptr.To(int32(grace.Duration.Seconds()))
	}
	return m, nil
}

// machineOwner makes the Machine the controlling owner of what is cloned for it.
func machineOwner(m *clusterv1.Machine) *metav1.OwnerReference {
	return &metav1.OwnerReference{
		APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: m.Name, UID: m.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// BuildInfrastructure clones the pool's infrastructure template for a
// Machine and sets the decision's offering on it. An AWSMachine's spec is
// immutable, so instance type and market are set here, at creation; the
// zone comes from the Machine's failureDomain.
func BuildInfrastructure(template *unstructured.Unstructured, ref *corev1.ObjectReference, m *clusterv1.Machine, d Decision) (*unstructured.Unstructured, error) {
	obj, err := external.GenerateTemplate(&external.GenerateTemplateInput{
		Template: template, TemplateRef: ref, Namespace: m.Namespace, Name: m.Name,
		ClusterName: m.Spec.ClusterName, OwnerRef: machineOwner(m),
		Labels: map[string]string{v1alpha1.LabelNodePool: d.NodePool},
	})
	if err != nil {
		return nil, err
	}
	switch obj.GetKind() {
	case "AWSMachine":
		if err := setAWSOffering(obj, d.Offering); err != nil {
			return nil, fmt.Errorf("AWSMachine %s: %w", m.Name, err)
		}
		if err := setAWSTags(obj, m, d.NodePool); err != nil {
			return nil, fmt.Errorf("AWSMachine %s: %w", m.Name, err)
		}
	default:
		return nil, fmt.Errorf("infrastructure template %s %s clones to a %s; Joinery launches AWSMachines (AWSMachineTemplate)", ref.Kind, ref.Name, obj.GetKind())
	}
	return obj, nil
}

func setAWSOffering(obj *unstructured.Unstructured, o Offering) error {
	if err := unstructured.SetNestedField(obj.Object, o.InstanceType, "spec", "instanceType"); err != nil {
		return err
	}
	// The template's market settings give way to the decision's market,
	// so a spot template used for an on-demand launch carries no spot
	// options; the user's spot maxPrice stays (the decision respected it),
	// and a capacity block or reservation stays what it is (the pool's
	// constraints never choose spot for it).
	maxPrice, _, _ := unstructured.NestedString(obj.Object, "spec", "spotMarketOptions", "maxPrice")
	market, _, _ := unstructured.NestedString(obj.Object, "spec", "marketType")
	reservation, _, _ := unstructured.NestedString(obj.Object, "spec", "capacityReservationId")
	unstructured.RemoveNestedField(obj.Object, "spec", "spotMarketOptions")
	if market != string(infrav1.MarketTypeCapacityBlock) {
		unstructured.RemoveNestedField(obj.Object, "spec", "marketType")
	}
	if o.CapacityType == v1alpha1.CapacityTypeReserved && o.ReservationID != "" {
		return setAWSReservation(obj, o)
	}
	if o.CapacityType != v1alpha1.CapacityTypeSpot {
		return nil
	}
	// CAPA's webhook refuses spot with a capacity block, and CAPA refuses
	// to launch spot with a reservation: never write either.
	if market == string(infrav1.MarketTypeCapacityBlock) || reservation != "" {
		return fmt.Errorf("a spot launch cannot use the template's capacity reservation (spec.template.spec.capacityReservationId / marketType); the pool's constraints should have excluded spot")
	}
	if pref, _, _ := unstructured.NestedString(obj.Object, "spec", "capacityReservationPreference"); pref == string(infrav1.CapacityReservationPreferenceOnly) {
		return fmt.Errorf("a spot launch cannot use the template's capacityReservationPreference %s", pref)
	}
	spot := map[string]any{}
	if maxPrice != "" {
		spot["maxPrice"] = maxPrice
	}
	return unstructured.SetNestedMap(obj.Object, spot, "spec", "spotMarketOptions")
}

// setAWSReservation targets the decision's capacity reservation, as
// Karpenter's launch template does for a reserved offering: CAPA sends
// capacityReservationId as the RunInstances CapacityReservationTarget, and
// a capacity block needs marketType CapacityBlock besides. The template's
// own reservation settings give way; a preference other than
// CapacityReservationsOnly is dropped, since CAPA's webhook refuses it
// next to an id.
func setAWSReservation(obj *unstructured.Unstructured, o Offering) error {
	if err := unstructured.SetNestedField(obj.Object, o.ReservationID, "spec", "capacityReservationId"); err != nil {
		return err
	}
	if o.ReservationType == v1alpha1.CapacityReservationTypeBlock {
		if err := unstructured.SetNestedField(obj.Object, string(infrav1.MarketTypeCapacityBlock), "spec", "marketType"); err != nil {
			return err
		}
	} else {
		unstructured.RemoveNestedField(obj.Object, "spec", "marketType")
	}
	if pref, _, _ := unstructured.NestedString(obj.Object, "spec", "capacityReservationPreference"); pref != string(infrav1.CapacityReservationPreferenceOnly) {
		unstructured.RemoveNestedField(obj.Object, "spec", "capacityReservationPreference")
	}
	return nil
}

// Tags Joinery puts on the instances it launches (through the
// AWSMachine's additionalTags), for cost allocation and for tools that
// know Karpenter's.
const (
	TagNodePool          = v1alpha1.Group + "/nodepool"
	TagNodePoolNamespace = v1alpha1.Group + "/nodepool-namespace"
	TagCluster           = v1alpha1.Group + "/cluster"
	TagKarpenterNodePool = "karpenter.sh/nodepool"
	// maxAdditionalTags is the 50 user tags CAPA's webhook allows.
	maxAdditionalTags = 50
)

// setAWSTags merges the pool's and cluster's tags into the clone's
// additionalTags; Joinery's keys win over the template's.
func setAWSTags(obj *unstructured.Unstructured, m *clusterv1.Machine, pool string) error {
	tags, _, err := unstructured.NestedStringMap(obj.Object, "spec", "additionalTags")
	if err != nil {
		return fmt.Errorf("spec.additionalTags: %w", err)
	}
	if tags == nil {
		tags = map[string]string{}
	}
	tags[TagNodePool] = pool
	tags[TagNodePoolNamespace] = m.Namespace
	tags[TagCluster] = m.Spec.ClusterName
	tags[TagKarpenterNodePool] = pool
	if len(tags) > maxAdditionalTags {
		return fmt.Errorf("the template's spec.template.spec.additionalTags and Joinery's 4 tags make %d tags; CAPA allows %d: remove some from the template", len(tags), maxAdditionalTags)
	}
	return unstructured.SetNestedStringMap(obj.Object, tags, "spec", "additionalTags")
}

// BuildBootstrap clones the pool's bootstrap template for a Machine. For a
// KubeadmConfig the node's labels and taints become kubelet arguments, so
// the node registers with them whatever CAPI's label sync covers, and the
// NodePool's kubelet settings are merged into the template's kubelet flags
// (solverinput.KubeletArgs: the NodePool wins), the same flags planning
// sized the node for.
func BuildBootstrap(template *unstructured.Unstructured, ref *corev1.ObjectReference, m *clusterv1.Machine, labels map[string]string, taints []corev1.Taint, kubelet *v1alpha1.KubeletConfiguration) (*unstructured.Unstructured, error) {
	obj, err := external.GenerateTemplate(&external.GenerateTemplateInput{
		Template: template, TemplateRef: ref, Namespace: m.Namespace, Name: m.Name,
		ClusterName: m.Spec.ClusterName, OwnerRef: machineOwner(m),
		Labels: map[string]string{v1alpha1.LabelNodePool: m.Labels[v1alpha1.LabelNodePool]},
	})
	if err != nil {
		return nil, err
	}
	if obj.GetKind() != "KubeadmConfig" {
		// Other bootstrap providers get the plain clone; the provisioning
		// controller labels and taints the Node itself once it registers.
		return obj, nil
	}
	path := []string{"spec", "joinConfiguration", "nodeRegistration"}
	args, _, err := unstructured.NestedSlice(obj.Object, append(path, "kubeletExtraArgs")...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(append(path, "kubeletExtraArgs"), "."), err)
	}
	merged, err := solverinput.KubeletArgs(kubeletArgsOf(args), kubelet)
	if err != nil {
		return nil, fmt.Errorf("KubeadmConfig %s: spec.template.spec.kubelet of NodePool %s: %w", m.Name, m.Labels[v1alpha1.LabelNodePool], err)
	}
	args = make([]any, 0, len(merged)+1)
	for _, a := range merged {
		args = append(args, map[string]any{"name": a.Name, "value": a.Value})
	}
	args = setArg(args, "node-labels", mergeNodeLabels(argValue(args, "node-labels"), KubeletLabels(labels)))
	if err := unstructured.SetNestedSlice(obj.Object, args, append(path, "kubeletExtraArgs")...); err != nil {
		return nil, err
	}
	if len(taints) > 0 {
		existing, _, err := unstructured.NestedSlice(obj.Object, append(path, "taints")...)
		if err != nil {
			return nil, err
		}
		for _, t := range taints {
			existing = append(existing, map[string]any{"key": t.Key, "value": t.Value, "effect": string(t.Effect)})
		}
		if err := unstructured.SetNestedSlice(obj.Object, existing, append(path, "taints")...); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// KubeletLabels keeps the labels a kubelet may set on its own Node. The
// NodeRestriction admission plugin forbids kubelets other labels in the
// kubernetes.io and k8s.io domains, and a kubelet asked to set one fails to
// register; hostname, zone, instance type, arch and os are set by the
// kubelet and cloud provider themselves.
func KubeletLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		domain, _, hasDomain := strings.Cut(k, "/")
		if !hasDomain {
			out[k] = v
			continue
		}
		restricted := domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io") || domain == "k8s.io" || strings.HasSuffix(domain, ".k8s.io")
		allowed := domain == "node.kubernetes.io" || strings.HasSuffix(domain, ".node.kubernetes.io") ||
			domain == "kubelet.kubernetes.io" || strings.HasSuffix(domain, ".kubelet.kubernetes.io")
		if k == v1alpha1.LabelInstanceType || (restricted && !allowed) {
			continue
		}
		out[k] = v
	}
	return out
}

func argValue(args []any, name string) string {
	for _, a := range args {
		if m, ok := a.(map[string]any); ok && m["name"] == name {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

func setArg(args []any, name, value string) []any {
	for _, a := range args {
		if m, ok := a.(map[string]any); ok && m["name"] == name {
			m["value"] = value
			return args
		}
	}
	return append(args, map[string]any{"name": name, "value": value})
}

// mergeNodeLabels adds labels to a --node-labels value, keeping the
// template's own labels unless Joinery sets the same key.
func mergeNodeLabels(existing string, labels map[string]string) string {
	merged := map[string]string{}
	for _, kv := range strings.Split(existing, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			merged[k] = v
		}
	}
	for k, v := range labels {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + merged[k]
	}
	return strings.Join(parts, ",")
}

// TemplateObjectReference is the corev1 form CAPI's cloning helpers take.
func TemplateObjectReference(namespace string, ref v1alpha1.TemplateReference, version string) *corev1.ObjectReference {
	return &corev1.ObjectReference{
		APIVersion: schema.GroupVersion{Group: ref.APIGroup, Version: version}.String(),
		Kind:       ref.Kind, Name: ref.Name, Namespace: namespace,
	}
}
