package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePool is a policy for the machines Joinery may create in the CAPI
// Clusters it selects: which instance types, zones and capacity types, with
// which labels and taints, up to which limits, and how they may later be
// disrupted. Field names and meanings follow Karpenter v1's NodePool where
// the concept is the same.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas
// +kubebuilder:resource:shortName=np;nps,categories=joinery;cluster-api
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodes`
// +kubebuilder:printcolumn:name="CPU",type=string,JSONPath=`.status.resources.cpu`
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.status.resources.memory`
// +kubebuilder:printcolumn:name="$/h",type=string,JSONPath=`.status.pricePerHour`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`,priority=1
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.weight`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name: a NodePool name must be a DNS label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit) because Machine names and the joinery.dev/nodepool node label are made from it"
type NodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NodePoolSpec   `json:"spec"`
	Status NodePoolStatus `json:"status,omitempty"`
}

// NodePoolSpec is what a NodePool allows.
//
// +kubebuilder:validation:XValidation:rule="has(self.clusterName) != has(self.clusterSelector)",message="set exactly one of spec.clusterName (one CAPI Cluster) or spec.clusterSelector (a fleet of Clusters in this namespace)"
// +kubebuilder:validation:XValidation:rule="has(self.replicas) == has(oldSelf.replicas)",message="spec.replicas cannot be added to or removed from an existing NodePool: a static pool (replicas set) and a dynamic one (replicas unset) are different kinds of pool; create a new NodePool instead"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || !has(self.weight)",message="spec.weight orders pools for pending pods, which a static pool (spec.replicas set) never launches for; remove spec.weight"
type NodePoolSpec struct {
	// ClusterName is the CAPI Cluster, in the NodePool's namespace, whose
	// pending pods this pool serves.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ClusterName string `json:"clusterName,omitempty"`

	// ClusterSelector selects CAPI Clusters in the NodePool's namespace by
	// label, so that one policy serves a fleet.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="spec.clusterSelector.matchExpressions: operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && size(e.values) > 0))",message="spec.clusterSelector.matchExpressions: operators In and NotIn need at least one value"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0)",message="spec.clusterSelector.matchExpressions: operators Exists and DoesNotExist take no values"
	// +optional
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`

	// Template describes the machines and nodes this pool creates.
	Template NodeClaimTemplate `json:"template"`

	// Disruption says when Joinery may remove or replace this pool's machines.
	// +kubebuilder:default={consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: "0s", budgets: {{nodes: "10%"}}}
	// +optional
	Disruption Disruption `json:"disruption"`

	// Limits cap what this pool's machines may add up to, per served
	// cluster: resources (cpu, memory, nvidia.com/gpu, ...) as node
	// capacity, and "pricePerHour" in USD per hour.
	// +kubebuilder:validation:XValidation:rule="self.all(k, k == 'pricePerHour' || k.matches('^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$'))",message="spec.limits keys are resource names (cpu, memory, nvidia.com/gpu, ...) or pricePerHour"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="spec.limits values may not be negative"
	// +kubebuilder:validation:XValidation:rule="self.all(k, quantity(string(self[k])).compareTo(quantity('1P')) <= 0)",message="spec.limits values are at most 1P (10^15): a larger limit cannot be compared with node capacity"
	// At most 12 keys: the apiserver bounds the cost of the CEL rule that
	// parses each value as a quantity by the number of keys.
	// +kubebuilder:validation:MaxProperties=12
	// +optional
	Limits corev1.ResourceList `json:"limits,omitempty"`

	// Weight orders pools: when several can fit a pod, the one with the
	// highest weight is tried first.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Weight *int32 `json:"weight,omitempty"`

	// Replicas makes the pool static: it keeps exactly this many machines
	// in each cluster it serves, whatever pods are pending (Karpenter's
	// static NodePools). A static pool never launches for pending pods
	// and is never consolidated; its machines are still replaced on
	// drift and expiry, one at a time within the budgets, and repaired
	// when unhealthy. spec.limits still apply: replicas beyond them are
	// not launched and the LimitReached condition says so. It cannot be
	// added to or removed from an existing pool.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// Static reports whether the pool keeps a fixed number of machines
// (spec.replicas) rather than launching for pending pods.
func (np *NodePool) Static() bool { return np.Spec.Replicas != nil }

// LimitPricePerHour is the key in spec.limits that caps the pool's cost in
// USD per hour.
const LimitPricePerHour corev1.ResourceName = "pricePerHour"

// NodeClaimTemplate describes the nodes a pool creates.
type NodeClaimTemplate struct {
	// +optional
	ObjectMeta TemplateMetadata `json:"metadata,omitempty"`
	Spec       NodeClaimSpec    `json:"spec"`
}

// TemplateMetadata is put on every node the pool creates.
type TemplateMetadata struct {
	// Labels for the nodes. Keys in the kubernetes.io, k8s.io,
	// karpenter.sh, karpenter.k8s.aws and joinery.dev domains are set by
	// Joinery and Kubernetes and cannot be given here (except under
	// node-restriction.kubernetes.io and node.kubernetes.io).
	// +kubebuilder:validation:MaxProperties=100
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('^([^/]*\\\\.)?(kubernetes\\\\.io|k8s\\\\.io)/') || k.startsWith('node-restriction.kubernetes.io/') || k.startsWith('node.kubernetes.io/'))",message="spec.template.metadata.labels: label domains kubernetes.io and k8s.io are restricted (only node-restriction.kubernetes.io/ and node.kubernetes.io/ are allowed); use your own domain"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('^([^/]*\\\\.)?(karpenter\\\\.sh|karpenter\\\\.k8s\\\\.aws|joinery\\\\.dev)/'))",message="spec.template.metadata.labels: label domains karpenter.sh, karpenter.k8s.aws and joinery.dev are set by Joinery; use spec.template.spec.requirements to choose them"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 316 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="spec.template.metadata.labels: keys must be qualified names ([prefix/]name, prefix ≤ 253 and name ≤ 63 characters of [A-Za-z0-9-_.])"
	// +optional
	Labels map[string]LabelValue `json:"labels,omitempty"`
	// Annotations for the nodes.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// LabelValue is a node label value: at most 63 characters of [A-Za-z0-9-_.],
// starting and ending with a letter or digit.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// EvictionThreshold is a quantity ("100Mi") or a percentage ("10%") of at
// most 100%.
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^(([0-9]+(\.[0-9]+)?%)|([0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?))$`
// +kubebuilder:validation:XValidation:rule="!self.endsWith('%') || self.matches('^(100(\\\\.0+)?|[0-9]{1,2}(\\\\.[0-9]+)?)%$')",message="a percentage threshold is at most 100%"
// +kubebuilder:validation:XValidation:rule="self.endsWith('%') || quantity(self).compareTo(quantity('1P')) <= 0",message="a quantity threshold is at most 1P (10^15)"
type EvictionThreshold string

// GracePeriod is a duration in Go's notation without fractions ("30s",
// "1m30s"), as the kubelet's flags take it.
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^([0-9]+(ns|us|ms|s|m|h))+$`
type GracePeriod string

// ReservedQuantity is a resource quantity held back from a node ("100m", "1Gi").
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`
// +kubebuilder:validation:XValidation:rule="quantity(self).compareTo(quantity('1P')) <= 0",message="a reserved quantity is at most 1P (10^15)"
type ReservedQuantity string

// NodeClaimSpec is the machine and node part of the template.
type NodeClaimSpec struct {
	// Requirements constrain the instance types, zones, capacity types and
	// any node label of the machines, with the operators of node affinity
	// plus Gte and Lte. The pool's nodes carry the labels the requirements
	// allow, so pods can select them.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Requirements []NodeSelectorRequirementWithMinValues `json:"requirements,omitempty"`

	// Taints are put on every node and must be tolerated by its pods.
	// +listType=atomic
	// +optional
	Taints []Taint `json:"taints,omitempty"`

	// StartupTaints are put on nodes at start and expected to be removed by
	// another agent (a CNI, a GPU operator); pods need not tolerate them.
	// +listType=atomic
	// +optional
	StartupTaints []Taint `json:"startupTaints,omitempty"`

	// ExpireAfter is how long a machine may live before it is replaced
	// ("720h"), or "Never".
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == 'Never' || self.matches('^([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,9}s)?$')",message="expireAfter is Never or hours, minutes and seconds in that order (720h, 1h30m), at most 999999h, 9999999m and 999999999s, so that it fits a Go time.Duration"
	// +kubebuilder:default="720h"
	// +optional
	ExpireAfter string `json:"expireAfter,omitempty"`

	// TerminationGracePeriod bounds how long draining a node may take when
	// Joinery deletes its Machine (CAPI's nodeDrainTimeout); pods still
	// there after it are removed whatever their PodDisruptionBudgets say.
	// Unset means drain waits for as long as it takes.
	// +kubebuilder:validation:Pattern=`^([0-9]+(s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,9}s)?$') && duration(self) <= duration('596523h')",message="terminationGracePeriod is hours, minutes and seconds in that order (1h, 10m30s), at most 596523h (CAPI's nodeDrainTimeoutSeconds is an int32)"
	// +kubebuilder:validation:Type=string
	// +optional
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`

	// InfrastructureTemplateRef names the template each machine's
	// infrastructure is cloned from (an AWSMachineTemplate in this namespace).
	InfrastructureTemplateRef TemplateReference `json:"infrastructureTemplateRef"`

	// BootstrapTemplateRef names the template each machine's bootstrap
	// config is cloned from (a KubeadmConfigTemplate in this namespace).
	BootstrapTemplateRef TemplateReference `json:"bootstrapTemplateRef"`

	// Kubelet shapes each node's allocatable resources, as it shapes the
	// kubelet's own: the settings are merged into the bootstrap template's
	// kubeletExtraArgs (these win) and planning sizes nodes for the result.
	// +optional
	Kubelet *KubeletConfiguration `json:"kubelet,omitempty"`

	// CapacityReservationSelectorTerms select the EC2 capacity
	// reservations (on-demand capacity reservations and capacity blocks)
	// the pool may launch into, as Karpenter's EC2NodeClass does: a
	// reservation is selected when any term matches it. Each active one
	// becomes offerings of capacity type "reserved" for its instance type
	// and zone, preferred over spot and on-demand (already paid for) and
	// limited to the instances it still holds; the pool's
	// karpenter.sh/capacity-type requirement must allow "reserved" for them
	// to be used.
	// +kubebuilder:validation:MaxItems=30
	// +listType=atomic
	// +optional
	CapacityReservationSelectorTerms []CapacityReservationSelectorTerm `json:"capacityReservationSelectorTerms,omitempty"`
}

// CapacityReservationSelectorTerm selects capacity reservations by id, or
// by tags (optionally of one owning account). Karpenter's field names.
//
// +kubebuilder:validation:XValidation:rule="has(self.id) != has(self.tags)",message="capacityReservationSelectorTerms: each term selects by id or by tags, exactly one of them"
// +kubebuilder:validation:XValidation:rule="!has(self.id) || !has(self.ownerID)",message="capacityReservationSelectorTerms: ownerID narrows a selection by tags; a term with an id selects that reservation alone, remove ownerID"
type CapacityReservationSelectorTerm struct {
	// ID is a capacity reservation id (cr-0123456789abcdef0).
	// +kubebuilder:validation:Pattern=`^cr-[0-9a-z]+$`
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ID string `json:"id,omitempty"`
	// Tags select reservations carrying every one of these tags; "*" as a
	// value matches any value of the key.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, k != '' && self[k] != '')",message="capacityReservationSelectorTerms: empty tag keys or values are not supported; use \"*\" to match any value"
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// OwnerID is the AWS account (12 digits) that owns the reservations,
	// for reservations shared with this account.
	// +kubebuilder:validation:Pattern=`^[0-9]{12}$`
	// +optional
	OwnerID string `json:"ownerID,omitempty"`
}

// NodeSelectorRequirementWithMinValues is a node selector requirement with
// the extra operators Gte and Lte and an optional minimum number of
// distinct values the pool must keep choosing from.
//
// +kubebuilder:validation:XValidation:rule="self.operator != 'In' || (has(self.values) && size(self.values) > 0)",message="requirements: operator In needs at least one value"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",message="requirements: operators Exists and DoesNotExist take no values"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['Gt', 'Lt', 'Gte', 'Lte']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^[0-9]{1,18}$'))",message="requirements: operators Gt, Lt, Gte and Lte take exactly one value, a non-negative integer of at most 18 digits"
// +kubebuilder:validation:XValidation:rule="!has(self.minValues) || (self.operator in ['In', 'Exists'] && (self.operator == 'Exists' || self.minValues <= size(self.values)))",message="requirements: minValues works with In (and may not exceed the number of values) or Exists"
// +kubebuilder:validation:XValidation:rule="self.key != 'karpenter.sh/capacity-type' || !(self.operator in ['In', 'NotIn']) || self.values.all(v, v in ['spot', 'on-demand', 'reserved'])",message="requirements: karpenter.sh/capacity-type values are spot, on-demand and reserved"
// +kubebuilder:validation:XValidation:rule="!(self.key in ['kubernetes.io/hostname', 'joinery.dev/nodepool', 'karpenter.sh/nodepool'])",message="requirements: kubernetes.io/hostname, joinery.dev/nodepool and karpenter.sh/nodepool are set by Joinery and cannot be required"
// +kubebuilder:validation:XValidation:rule="!(self.key in ['karpenter.k8s.aws/instance-cpu', 'karpenter.k8s.aws/instance-memory', 'karpenter.k8s.aws/instance-generation', 'karpenter.k8s.aws/instance-gpu-count', 'karpenter.k8s.aws/instance-gpu-memory', 'karpenter.k8s.aws/instance-local-nvme', 'karpenter.k8s.aws/instance-network-bandwidth', 'joinery.dev/instance-cpu', 'joinery.dev/instance-memory', 'joinery.dev/instance-generation', 'joinery.dev/instance-gpu-count', 'joinery.dev/instance-gpu-memory', 'joinery.dev/instance-local-nvme', 'joinery.dev/instance-network-bandwidth']) || !(self.operator in ['In', 'NotIn']) || self.values.all(v, v.matches('^[0-9]{1,18}$'))",message="requirements: values of numeric instance attributes (instance-cpu, instance-memory, ...) are non-negative integers of at most 18 digits"
// +kubebuilder:validation:XValidation:rule="!self.key.matches('^([^/]*\\\\.)?(kubernetes\\\\.io|k8s\\\\.io)/') || self.key in ['kubernetes.io/arch', 'kubernetes.io/os', 'kubernetes.io/hostname', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region'] || self.key.startsWith('node.kubernetes.io/') || self.key.startsWith('node-restriction.kubernetes.io/')",message="requirements: label domains kubernetes.io and k8s.io are restricted (their labels are the kubelet's and the control plane's, e.g. node-role.kubernetes.io/control-plane): require kubernetes.io/arch, kubernetes.io/os, topology.kubernetes.io/zone, topology.kubernetes.io/region, a node.kubernetes.io/ or node-restriction.kubernetes.io/ key, or a key in your own domain"
// +kubebuilder:validation:XValidation:rule="!self.key.matches('^([^/]*\\\\.)?karpenter\\\\.sh/') || self.key in ['karpenter.sh/capacity-type', 'karpenter.sh/nodepool']",message="requirements: label domain karpenter.sh is restricted: only karpenter.sh/capacity-type may be required"
// +kubebuilder:validation:XValidation:rule="!self.key.matches('^([^/]*\\\\.)?(joinery\\\\.dev|karpenter\\\\.k8s\\\\.aws)/') || self.key == 'joinery.dev/nodepool' || self.key.matches('^(joinery\\\\.dev|karpenter\\\\.k8s\\\\.aws)/instance-(family|category|generation|size|cpu|cpu-manufacturer|memory|gpu-name|gpu-count|gpu-memory|gpu-manufacturer|accelerator-name|accelerator-count|local-nvme|network-bandwidth|hypervisor)$')",message="requirements: label domains joinery.dev and karpenter.k8s.aws are restricted to the instance attributes (instance-family, instance-cpu, ... as listed in docs/nodepool.md)"
type NodeSelectorRequirementWithMinValues struct {
	// Key is a node label key, e.g. node.kubernetes.io/instance-type.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	Key string `json:"key"`
	// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist;Gt;Lt;Gte;Lte
	Operator NodeSelectorOperator `json:"operator"`
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
	// +listType=atomic
	// +optional
	Values []string `json:"values,omitempty"`
	// MinValues is the least number of distinct values of Key the pool
	// must keep choosing from (for flexibility, e.g. spot diversity).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	// +optional
	MinValues *int `json:"minValues,omitempty"`
}

// NodeSelectorOperator is a requirement operator.
type NodeSelectorOperator string

const (
	OpIn           NodeSelectorOperator = "In"
	OpNotIn        NodeSelectorOperator = "NotIn"
	OpExists       NodeSelectorOperator = "Exists"
	OpDoesNotExist NodeSelectorOperator = "DoesNotExist"
	OpGt           NodeSelectorOperator = "Gt"
	OpLt           NodeSelectorOperator = "Lt"
	OpGte          NodeSelectorOperator = "Gte"
	OpLte          NodeSelectorOperator = "Lte"
)

// Taint is a node taint as in corev1, validated at admission.
type Taint struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	Key string `json:"key"`
	// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$`
	// +optional
	Value string `json:"value,omitempty"`
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	Effect corev1.TaintEffect `json:"effect"`
}

// ToCore returns the corev1 form of t.
func (t Taint) ToCore() corev1.Taint {
	return corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
}

// TemplateReference names a template in the NodePool's namespace.
type TemplateReference struct {
	// APIGroup of the template, e.g. infrastructure.cluster.x-k8s.io.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIGroup string `json:"apiGroup"`
	// Kind of the template, e.g. AWSMachineTemplate.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Z][A-Za-z0-9]*$`
	Kind string `json:"kind"`
	// Name of the template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// KubeletConfiguration is Karpenter's kubelet block: settings Joinery
// passes to each node's kubelet as flags in its bootstrap config, and of
// which maxPods, podsPerCore, systemReserved, kubeReserved and evictionHard
// also shape the allocatable Joinery plans with.
//
// +kubebuilder:validation:XValidation:rule="has(self.evictionSoft) == has(self.evictionSoftGracePeriod) && (!has(self.evictionSoft) || (self.evictionSoft.all(k, k in self.evictionSoftGracePeriod) && self.evictionSoftGracePeriod.all(k, k in self.evictionSoft)))",message="kubelet: evictionSoft and evictionSoftGracePeriod go together, with the same signals (the kubelet refuses a soft threshold without a grace period)"
// +kubebuilder:validation:XValidation:rule="!has(self.imageGCHighThresholdPercent) || !has(self.imageGCLowThresholdPercent) || self.imageGCHighThresholdPercent > self.imageGCLowThresholdPercent",message="kubelet: imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"
type KubeletConfiguration struct {
	// MaxPods caps the pods per node (--max-pods; default: the
	// bootstrap template's, else the kubelet's 110).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxPods *int32 `json:"maxPods,omitempty"`
	// PodsPerCore caps the pods per node at this many per vCPU.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	PodsPerCore *int32 `json:"podsPerCore,omitempty"`
	// SystemReserved is held back for OS daemons (--system-reserved).
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage', 'pid'])",message="kubelet.systemReserved keys are cpu, memory, ephemeral-storage and pid"
	// +kubebuilder:validation:MaxProperties=4
	// +optional
	SystemReserved map[string]ReservedQuantity `json:"systemReserved,omitempty"`
	// KubeReserved is held back for Kubernetes daemons (--kube-reserved;
	// default: the bootstrap template's, else nothing).
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage', 'pid'])",message="kubelet.kubeReserved keys are cpu, memory, ephemeral-storage and pid"
	// +kubebuilder:validation:MaxProperties=4
	// +optional
	KubeReserved map[string]ReservedQuantity `json:"kubeReserved,omitempty"`
	// EvictionHard are the kubelet's hard eviction thresholds, as
	// quantities ("100Mi") or percentages ("10%"); they replace the same
	// signals of the bootstrap template's --eviction-hard, else of the
	// kubelet's defaults (memory.available 100Mi, nodefs.available 10%,
	// nodefs.inodesFree 5%, imagefs.available 15%, imagefs.inodesFree 5%).
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['memory.available', 'nodefs.available', 'nodefs.inodesFree', 'imagefs.available', 'imagefs.inodesFree', 'pid.available'])",message="kubelet.evictionHard keys are memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree and pid.available"
	// +kubebuilder:validation:MaxProperties=6
	// +optional
	EvictionHard map[string]EvictionThreshold `json:"evictionHard,omitempty"`
	// EvictionSoft are the kubelet's soft eviction thresholds
	// (--eviction-soft), merged with the bootstrap template's by signal.
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['memory.available', 'nodefs.available', 'nodefs.inodesFree', 'imagefs.available', 'imagefs.inodesFree', 'pid.available'])",message="kubelet.evictionSoft keys are memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree and pid.available"
	// +kubebuilder:validation:MaxProperties=6
	// +optional
	EvictionSoft map[string]EvictionThreshold `json:"evictionSoft,omitempty"`
	// EvictionSoftGracePeriod is how long each soft threshold must hold
	// before pods are evicted (--eviction-soft-grace-period), e.g. "1m30s".
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['memory.available', 'nodefs.available', 'nodefs.inodesFree', 'imagefs.available', 'imagefs.inodesFree', 'pid.available'])",message="kubelet.evictionSoftGracePeriod keys are memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree and pid.available"
	// +kubebuilder:validation:MaxProperties=6
	// +optional
	EvictionSoftGracePeriod map[string]GracePeriod `json:"evictionSoftGracePeriod,omitempty"`
	// EvictionMaxPodGracePeriod caps, in seconds, the termination grace
	// period of pods evicted for a soft threshold
	// (--eviction-max-pod-grace-period).
	// +kubebuilder:validation:Minimum=0
	// +optional
	EvictionMaxPodGracePeriod *int32 `json:"evictionMaxPodGracePeriod,omitempty"`
	// ImageGCHighThresholdPercent is the disk usage at which image garbage
	// collection always runs (--image-gc-high-threshold).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	ImageGCHighThresholdPercent *int32 `json:"imageGCHighThresholdPercent,omitempty"`
	// ImageGCLowThresholdPercent is the disk usage image garbage
	// collection frees down to (--image-gc-low-threshold).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	ImageGCLowThresholdPercent *int32 `json:"imageGCLowThresholdPercent,omitempty"`
	// CPUCFSQuota enforces container cpu limits with CFS quota
	// (--cpu-cfs-quota; the kubelet's default is true).
	// +optional
	CPUCFSQuota *bool `json:"cpuCFSQuota,omitempty"`
	// ClusterDNS are the DNS server IPs containers use (--cluster-dns).
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:Pattern=`^[0-9a-fA-F.:]+$`
	// +listType=atomic
	// +optional
	ClusterDNS []string `json:"clusterDNS,omitempty"`
}

// Disruption says when a pool's machines may be removed or replaced.
type Disruption struct {
	// ConsolidationPolicy: WhenEmpty removes only machines with no pods
	// but DaemonSet pods; WhenEmptyOrUnderutilized also moves pods to
	// pack them onto fewer or cheaper machines; Balanced does so only
	// when a move's share of the pool's cost saved is at least half its
	// share of the pool's disruption (Karpenter's Balanced, k = 2).
	// +kubebuilder:validation:Enum=WhenEmpty;WhenEmptyOrUnderutilized;Balanced
	// +kubebuilder:default=WhenEmptyOrUnderutilized
	// +optional
	ConsolidationPolicy ConsolidationPolicy `json:"consolidationPolicy,omitempty"`
	// ConsolidateAfter is how long a machine must stay unchanged (no pod
	// added or removed) before it may be consolidated, or "Never".
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == 'Never' || self.matches('^([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,9}s)?$')",message="consolidateAfter is Never or hours, minutes and seconds in that order (30s, 1h30m), at most 999999h, 9999999m and 999999999s, so that it fits a Go time.Duration"
	// +kubebuilder:default="0s"
	// +optional
	ConsolidateAfter string `json:"consolidateAfter,omitempty"`
	// Budgets cap how many of the pool's nodes may be disrupting at once.
	// The most restrictive active budget applies.
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:default={{nodes: "10%"}}
	// +listType=atomic
	// +optional
	Budgets []Budget `json:"budgets,omitempty"`
}

// ConsolidationPolicy is when a pool's machines may be consolidated.
type ConsolidationPolicy string

const (
	ConsolidationPolicyWhenEmpty                ConsolidationPolicy = "WhenEmpty"
	ConsolidationPolicyWhenEmptyOrUnderutilized ConsolidationPolicy = "WhenEmptyOrUnderutilized"
	ConsolidationPolicyBalanced                 ConsolidationPolicy = "Balanced"
)

// Budget caps disruptions, optionally only during a schedule and only for
// some reasons.
//
// +kubebuilder:validation:XValidation:rule="has(self.schedule) == has(self.duration)",message="budgets: schedule and duration go together: a schedule needs a duration (how long each window lasts) and a duration needs a schedule"
type Budget struct {
	// Nodes is how many nodes may be disrupting at once: a count ("3") or
	// a percentage of the pool's nodes ("10%", rounded up).
	// +kubebuilder:validation:Pattern=`^((100|[0-9]{1,2})%|[0-9]{1,9})$`
	// +kubebuilder:default="10%"
	Nodes string `json:"nodes"`
	// Schedule is a cron expression (UTC, five fields, or @yearly, @monthly,
	// @weekly, @daily, @hourly) for when the budget starts being active, as
	// github.com/robfig/cron/v3 reads it (so names like MON-FRI work).
	// Out-of-range fields ("0 25 * * *") and schedules that never fire
	// ("0 0 30 2 *") pass admission and are reported on the NodePool (the
	// BudgetsValid condition and an InvalidBudget Event); the budget then
	// blocks disruption rather than allowing it.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*?/,-]+(\s+[0-9A-Za-z*?/,-]+){4})$`
	// +optional
	Schedule *string `json:"schedule,omitempty"`
	// Duration is how long the budget is active after each scheduled start.
	// A trailing "0s" is accepted, as Karpenter accepts it: a Go client's
	// metav1.Duration always writes one ("1h30m0s").
	// +kubebuilder:validation:Pattern=`^([0-9]+(m|h))+(0s)?$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,6}h)?([0-9]{1,7}m)?(0s)?$')",message="a budget duration is hours and minutes in that order (8h, 1h30m), at most 999999h and 9999999m, so that it fits a Go time.Duration"
	// +kubebuilder:validation:Type=string
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
	// Reasons limits the budget to these disruption reasons (all when empty).
	// +listType=atomic
	// +optional
	Reasons []DisruptionReason `json:"reasons,omitempty"`
}

// DisruptionReason is why a machine is disrupted, for budgets.
// +kubebuilder:validation:Enum=Underutilized;Empty;Drifted;Expired;Unhealthy
type DisruptionReason string

const (
	DisruptionReasonUnderutilized DisruptionReason = "Underutilized"
	DisruptionReasonEmpty         DisruptionReason = "Empty"
	DisruptionReasonDrifted       DisruptionReason = "Drifted"
	DisruptionReasonExpired       DisruptionReason = "Expired"
	// DisruptionReasonUnhealthy paces repair: replacing Machines a
	// MachineHealthCheck, or the node's own conditions, found unhealthy.
	DisruptionReasonUnhealthy DisruptionReason = "Unhealthy"
)

// NodePoolStatus is what the pool has made, per all the clusters it serves.
type NodePoolStatus struct {
	// Conditions: Ready says whether the pool can create machines, and if
	// not, why, in words.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Nodes is the number of the pool's machines that have a ready node.
	// +optional
	Nodes int32 `json:"nodes"`
	// Machines is the number of the pool's machines, ready or not.
	// +optional
	Machines int32 `json:"machines"`
	// Replicas is, for a static pool, the number of its machines that
	// count towards spec.replicas (not being deleted; a replacement once
	// the machine it replaces is being deleted) in the served cluster
	// that has the fewest (spec.replicas is per cluster), so it equals spec.replicas
	// once every cluster has them; 0 for a dynamic pool. It is what
	// kubectl scale and the scale subresource read.
	// +optional
	Replicas int32 `json:"replicas"`
	// Resources is the capacity of the pool's machines, added up.
	// +optional
	Resources corev1.ResourceList `json:"resources,omitempty"`
	// PricePerHour is what the pool's machines cost, in USD per hour.
	// +optional
	PricePerHour string `json:"pricePerHour,omitempty"`
	// Clusters is the state of each CAPI Cluster the pool serves.
	// +listType=map
	// +listMapKey=name
	// +optional
	Clusters []ClusterStatus `json:"clusters,omitempty"`
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ClusterStatus is a served cluster as the pool sees it.
type ClusterStatus struct {
	Name string `json:"name"`
	// Reachable is false while the workload cluster's apiserver cannot be
	// reached; the pool then makes no decision for that cluster.
	Reachable bool `json:"reachable"`
	// Message explains an unreachable cluster or a limit reached.
	// +optional
	Message string `json:"message,omitempty"`
	// Machines is the number of the pool's machines in this cluster.
	// +optional
	Machines int32 `json:"machines"`
	// LimitReached is true while pending pods in this cluster would need
	// more than spec.limits allows; Message says what.
	// +optional
	LimitReached bool `json:"limitReached,omitempty"`
	// LaunchProblem is what in the pool's templates fights the offerings
	// decided for this cluster, if anything.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	LaunchProblem string `json:"launchProblem,omitempty"`
	// LaunchBlocked is true while the pool launches nothing in this
	// cluster because EC2 or CAPA refused a launch for its configuration.
	// +optional
	LaunchBlocked bool `json:"launchBlocked,omitempty"`
	// LaunchFailed is true when a launch of the pool failed in the last
	// pass for this cluster (its objects could not be made).
	// +optional
	LaunchFailed bool `json:"launchFailed,omitempty"`
}

// Condition types and reasons of a NodePool.
const (
	// ConditionReady is True when the pool can create machines: its
	// templates exist.
	ConditionReady = "Ready"
	// ConditionLimitReached is True while pending pods in some served
	// cluster would need more than spec.limits allows.
	ConditionLimitReached = "LimitReached"
	// ConditionDisruptionBudgetsValid is False while a budget cannot be
	// applied (a schedule robfig/cron cannot read or that never fires);
	// its message names the field. The pool's machines are not disrupted
	// meanwhile.
	ConditionDisruptionBudgetsValid = "DisruptionBudgetsValid"
)

// NodePoolList is a list of NodePools.
//
// +kubebuilder:object:root=true
type NodePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodePool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodePool{}, &NodePoolList{})
}
