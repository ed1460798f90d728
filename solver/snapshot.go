// Package solver turns a snapshot of pending pods, existing nodes and node
// pools into a provisioning plan: which machines to launch (one concrete
// offering each, plus ordered fallbacks) and where every pod lands.
//
// It is pure: no Kubernetes client, no I/O. The semantics follow Karpenter's
// scheduler (sigs.k8s.io/karpenter pkg/controllers/provisioning/scheduling),
// but identical pods are grouped and placed in batches, offerings are indexed
// once per pool, and feasibility on a planned node is kept incrementally.
package solver

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Snapshot is everything the solver looks at. It is never modified.
type Snapshot struct {
	// Pods are the pending pods to place.
	Pods []*corev1.Pod
	// Nodes are existing nodes and in-flight machines; they are filled before
	// any new machine is planned.
	Nodes []*Node
	// DaemonSets add overhead to every new node their pod template would land on.
	DaemonSets []*appsv1.DaemonSet
	Pools      []*Pool
	// PersistentVolumeClaims and PersistentVolumes pin pods to the zones of
	// their bound volumes.
	PersistentVolumeClaims []*corev1.PersistentVolumeClaim
	PersistentVolumes      []*corev1.PersistentVolume
	// StorageClasses limit the zones of pods whose claims are not bound yet:
	// a WaitForFirstConsumer claim gets its volume where the pod lands, so
	// the pod must land in the class's allowedTopologies.
	StorageClasses []*storagev1.StorageClass
	// CSINodes give existing nodes' attach limits per CSI driver
	// (spec.drivers[].allocatable.count); a pod's distinct claims on a
	// driver count against them.
	CSINodes []*storagev1.CSINode
	// Unavailable lists offerings the cloud refused recently; they are never chosen.
	Unavailable UnavailableOfferings
	// SpotRisk weighs spot offerings by their interruption risk (see
	// SpotRisk); the zero value chooses by price alone.
	SpotRisk SpotRisk
	// Namespaces give the labels a pod (anti-)affinity term's
	// namespaceSelector matches. Without them a selector other than {}
	// cannot be evaluated and means the pod's own namespace.
	Namespaces []*corev1.Namespace
}

// namespaceLabels indexes namespace labels by name (nil: none given).
func (s *Snapshot) namespaceLabels() map[string]map[string]string {
	if len(s.Namespaces) == 0 {
		return nil
	}
	out := make(map[string]map[string]string, len(s.Namespaces))
	for _, ns := range s.Namespaces {
		if ns != nil {
			out[ns.Name] = ns.Labels
		}
	}
	return out
}

// Node is an existing node or an in-flight machine.
type Node struct {
	Node *corev1.Node
	// Pods are already bound to the node; their requests are subtracted from
	// its allocatable and they count for topology.
	Pods     []*corev1.Pod
	InFlight bool
	// Pool names the pool that launched the node ("" for unmanaged nodes).
	Pool string
}

// Pool is a node pool: a template for new machines plus its limits.
type Pool struct {
	Name string
	// Weight orders pools: higher is tried first.
	Weight       int32
	Requirements Requirements
	Labels       map[string]string
	Taints       []corev1.Taint
	// StartupTaints are removed once the node is ready; they are ignored for
	// scheduling.
	StartupTaints []corev1.Taint
	// Limits caps the total capacity of the pool's machines; nil means unlimited.
	Limits            corev1.ResourceList
	PricePerHourLimit *float64
	// InUse and InUsePricePerHour are what the pool's existing and in-flight
	// machines already use against Limits and PricePerHourLimit.
	InUse             corev1.ResourceList
	InUsePricePerHour float64
	// InstanceTypes are what the pool may launch, allocatable already computed
	// for the pool's kubelet settings.
	InstanceTypes []*InstanceType
}

// InstanceType is one machine shape.
type InstanceType struct {
	Name string
	// Labels are the well-known labels a node of this type carries
	// (instance type, arch, os, instance family, ...).
	Labels      map[string]string
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	Offerings   []Offering
	// VolumeLimits is how many volumes each CSI driver can attach to a new
	// node of this type (Karpenter's VolumeAttachmentLimits); a driver not
	// listed has no known limit. A registered node's CSINode wins.
	VolumeLimits map[string]int
}

// Offering is a place and a purchase option where a type can be launched.
type Offering struct {
	Zone   string
	ZoneID string
	// Region is the node's topology.kubernetes.io/region ("" when unknown).
	Region       string
	CapacityType string // "spot", "on-demand" or "reserved"
	PricePerHour float64
	Available    bool
	// ReservationID is the capacity reservation of a reserved offering,
	// ReservationType its kind (default or capacity-block) and
	// ReservationCapacity how many more instances it takes: the solver
	// plans at most that many new machines on it, the rest fall back to the
	// pool's other offerings. A reserved offering without an ID is not
	// limited.
	ReservationID       string
	ReservationType     string
	ReservationCapacity int
	// PriceOverlay names the NodeOverlay that set PricePerHour ("" for
	// the catalog's price), and ListPricePerHour is the catalog's price
	// it replaced, so a decision can say why it cost what it did.
	PriceOverlay     string
	ListPricePerHour float64
	// PlacementScore is EC2's spot placement score for a spot offering,
	// 1 (a spot request is unlikely to succeed) to 10; 0 is unknown.
	PlacementScore int
}

// OfferingKey identifies an offering of a type across snapshots.
type OfferingKey struct {
	InstanceType string
	Zone         string
	CapacityType string
}

// UnavailableOfferings is the set of offerings the cloud refused recently.
type UnavailableOfferings map[OfferingKey]struct{}

// Has reports whether the offering was refused recently.
func (u UnavailableOfferings) Has(instanceType, zone, capacityType string) bool {
	if len(u) == 0 {
		return false
	}
	_, ok := u[OfferingKey{InstanceType: instanceType, Zone: zone, CapacityType: capacityType}]
	return ok
}

// Options tunes the solver. The zero value is usable.
type Options struct {
	// MaxFallbacks caps the fallback offerings listed per new node
	// (minValues may force more). Zero means 60, as Karpenter caps launch
	// requests at 60 instance types.
	MaxFallbacks int
	// IgnorePreferences treats preferred affinities and ScheduleAnyway spread
	// constraints as absent instead of trying them first.
	IgnorePreferences bool
	// SkipLowerBound leaves LowerBoundPricePerHour at zero.
	SkipLowerBound bool
	// RecordRejections fills NewNode.Rejected: why each cheaper offering
	// was passed over. It costs a scan of the pool's cheaper candidates per
	// new node, so only callers that record decisions ask for it.
	RecordRejections bool
}

func (o Options) maxFallbacks() int {
	if o.MaxFallbacks <= 0 {
		return 60
	}
	return o.MaxFallbacks
}
