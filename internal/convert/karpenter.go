package convert

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The types below mirror the parts of Karpenter v1's API that a user
// writes (karpenter.sh/v1 NodePool, karpenter.k8s.aws/v1 EC2NodeClass),
// with the same JSON names, so that input decodes strictly: a field that is
// not in Karpenter v1 is an error naming its path. Status is accepted (for
// `kubectl get -o yaml` output) and ignored.

const (
	karpenterGroup    = "karpenter.sh"
	karpenterAWSGroup = "karpenter.k8s.aws"

	karpenterNodePoolAPIVersion     = karpenterGroup + "/v1"
	karpenterEC2NodeClassAPIVersion = karpenterAWSGroup + "/v1"
	karpenterNodeOverlayAPIVersion  = karpenterGroup + "/v1alpha1"

	// kubeletCompatibilityAnnotation holds, on a NodePool migrated from
	// v1beta1, the kubelet settings that v1 moved to the EC2NodeClass.
	kubeletCompatibilityAnnotation = "compatibility.karpenter.sh/v1beta1-kubelet-conversion"
)

// karpenterNodeOverlay is karpenter.sh/v1alpha1 NodeOverlay (Karpenter
// v1.15, pkg/apis/v1alpha1/nodeoverlay.go).
type karpenterNodeOverlay struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Requirements    []overlayRequirement `json:"requirements,omitempty"`
		PriceAdjustment *string              `json:"priceAdjustment,omitempty"`
		Price           *string              `json:"price,omitempty"`
		Capacity        corev1.ResourceList  `json:"capacity,omitempty"`
		Weight          *int32               `json:"weight,omitempty"`
	} `json:"spec"`
	Status json.RawMessage `json:"status,omitempty"`
}

type overlayRequirement struct {
	Key      string                      `json:"key"`
	Operator corev1.NodeSelectorOperator `json:"operator"`
	Values   []string                    `json:"values,omitempty"`
}

type karpenterNodePool struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       nodePoolSpec      `json:"spec"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

type nodePoolSpec struct {
	Template   nodeClaimTemplate   `json:"template"`
	Disruption *disruption         `json:"disruption,omitempty"`
	Limits     map[string]quantity `json:"limits,omitempty"`
	Weight     *int32              `json:"weight,omitempty"`
	Replicas   *int64              `json:"replicas,omitempty"`
}

// quantity is a resource quantity that keeps the text it was written as
// ("2000" stays "2000", where resource.Quantity would write "2k").
type quantity struct {
	text  string
	value resource.Quantity
}

func (q *quantity) UnmarshalJSON(data []byte) error {
	if err := q.value.UnmarshalJSON(data); err != nil {
		return err
	}
	q.text = strings.Trim(string(data), `"`)
	return nil
}

func (q quantity) String() string { return q.text }

type nodeClaimTemplate struct {
	Metadata templateMetadata      `json:"metadata,omitempty"`
	Spec     nodeClaimTemplateSpec `json:"spec"`
}

type templateMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type nodeClaimTemplateSpec struct {
	Taints                 []corev1.Taint   `json:"taints,omitempty"`
	StartupTaints          []corev1.Taint   `json:"startupTaints,omitempty"`
	Requirements           []requirement    `json:"requirements,omitempty"`
	NodeClassRef           *nodeClassRef    `json:"nodeClassRef,omitempty"`
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`
	ExpireAfter            *string          `json:"expireAfter,omitempty"`
}

type requirement struct {
	Key       string   `json:"key"`
	Operator  string   `json:"operator"`
	Values    []string `json:"values,omitempty"`
	MinValues *int     `json:"minValues,omitempty"`
}

type nodeClassRef struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

type disruption struct {
	ConsolidateAfter       *string  `json:"consolidateAfter,omitempty"`
	ConsolidationPolicy    string   `json:"consolidationPolicy,omitempty"`
	ConsolidateWhen        string   `json:"consolidateWhen,omitempty"`
	DecisionRatioThreshold *float64 `json:"decisionRatioThreshold,omitempty"`
	Budgets                []budget `json:"budgets,omitempty"`
}

type budget struct {
	Reasons  []string         `json:"reasons,omitempty"`
	Nodes    string           `json:"nodes"`
	Schedule *string          `json:"schedule,omitempty"`
	Duration *metav1.Duration `json:"duration,omitempty"`
}

type karpenterEC2NodeClass struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       ec2NodeClassSpec  `json:"spec"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

type ec2NodeClassSpec struct {
	SubnetSelectorTerms              []subnetSelectorTerm              `json:"subnetSelectorTerms,omitempty"`
	SecurityGroupSelectorTerms       []securityGroupSelectorTerm       `json:"securityGroupSelectorTerms,omitempty"`
	CapacityReservationSelectorTerms []capacityReservationSelectorTerm `json:"capacityReservationSelectorTerms,omitempty"`
	AssociatePublicIPAddress         *bool                             `json:"associatePublicIPAddress,omitempty"`
	IPPrefixCount                    *int32                            `json:"ipPrefixCount,omitempty"`
	AMISelectorTerms                 []amiSelectorTerm                 `json:"amiSelectorTerms,omitempty"`
	AMIFamily                        *string                           `json:"amiFamily,omitempty"`
	UserData                         *string                           `json:"userData,omitempty"`
	Role                             string                            `json:"role,omitempty"`
	InstanceProfile                  *string                           `json:"instanceProfile,omitempty"`
	Tags                             map[string]string                 `json:"tags,omitempty"`
	Kubelet                          *kubeletConfiguration             `json:"kubelet,omitempty"`
	BlockDeviceMappings              []blockDeviceMapping              `json:"blockDeviceMappings,omitempty"`
	InstanceStorePolicy              *string                           `json:"instanceStorePolicy,omitempty"`
	DetailedMonitoring               *bool                             `json:"detailedMonitoring,omitempty"`
	MetadataOptions                  *metadataOptions                  `json:"metadataOptions,omitempty"`
	EnclaveOptions                   *enclaveOptions                   `json:"enclaveOptions,omitempty"`
	Context                          *string                           `json:"context,omitempty"`
}

type subnetSelectorTerm struct {
	Tags map[string]string `json:"tags,omitempty"`
	ID   string            `json:"id,omitempty"`
}

type securityGroupSelectorTerm struct {
	Tags map[string]string `json:"tags,omitempty"`
	ID   string            `json:"id,omitempty"`
	Name string            `json:"name,omitempty"`
}

type capacityReservationSelectorTerm struct {
	Tags                  map[string]string `json:"tags,omitempty"`
	ID                    string            `json:"id,omitempty"`
	OwnerID               string            `json:"ownerID,omitempty"`
	InstanceMatchCriteria string            `json:"instanceMatchCriteria,omitempty"`
}

type amiSelectorTerm struct {
	Alias        string            `json:"alias,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	ID           string            `json:"id,omitempty"`
	Name         string            `json:"name,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	SSMParameter string            `json:"ssmParameter,omitempty"`
}

type kubeletConfiguration struct {
	ClusterDNS                  []string          `json:"clusterDNS,omitempty"`
	MaxPods                     *int32            `json:"maxPods,omitempty"`
	PodsPerCore                 *int32            `json:"podsPerCore,omitempty"`
	SystemReserved              map[string]string `json:"systemReserved,omitempty"`
	KubeReserved                map[string]string `json:"kubeReserved,omitempty"`
	EvictionHard                map[string]string `json:"evictionHard,omitempty"`
	EvictionSoft                map[string]string `json:"evictionSoft,omitempty"`
	EvictionSoftGracePeriod     map[string]string `json:"evictionSoftGracePeriod,omitempty"`
	EvictionMaxPodGracePeriod   *int32            `json:"evictionMaxPodGracePeriod,omitempty"`
	ImageGCHighThresholdPercent *int32            `json:"imageGCHighThresholdPercent,omitempty"`
	ImageGCLowThresholdPercent  *int32            `json:"imageGCLowThresholdPercent,omitempty"`
	CPUCFSQuota                 *bool             `json:"cpuCFSQuota,omitempty"`
}

type blockDeviceMapping struct {
	DeviceName *string      `json:"deviceName,omitempty"`
	EBS        *blockDevice `json:"ebs,omitempty"`
	RootVolume bool         `json:"rootVolume,omitempty"`
}

type blockDevice struct {
	DeleteOnTermination      *bool              `json:"deleteOnTermination,omitempty"`
	Encrypted                *bool              `json:"encrypted,omitempty"`
	IOPS                     *int64             `json:"iops,omitempty"`
	KMSKeyID                 *string            `json:"kmsKeyID,omitempty"`
	SnapshotID               *string            `json:"snapshotID,omitempty"`
	Throughput               *int64             `json:"throughput,omitempty"`
	VolumeInitializationRate *int32             `json:"volumeInitializationRate,omitempty"`
	VolumeSize               *resource.Quantity `json:"volumeSize,omitempty"`
	VolumeType               *string            `json:"volumeType,omitempty"`
}

type metadataOptions struct {
	HTTPEndpoint            *string `json:"httpEndpoint,omitempty"`
	HTTPProtocolIPv6        *string `json:"httpProtocolIPv6,omitempty"`
	HTTPPutResponseHopLimit *int64  `json:"httpPutResponseHopLimit,omitempty"`
	HTTPTokens              *string `json:"httpTokens,omitempty"`
}

type enclaveOptions struct {
	Enabled *bool `json:"enabled,omitempty"`
}
