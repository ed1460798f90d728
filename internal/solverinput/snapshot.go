package solverinput

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/internal/overlay"
	"github.com/joinery-dev/joinery/solver"
)

// Objects is what one planning run looks at in one workload cluster.
type Objects struct {
	// Pods: those without spec.nodeName are pending, unless
	// status.nominatedNodeName names one of Nodes (then they count there,
	// like bound pods); the others count on their nodes. Finished pods are
	// ignored.
	Pods                   []*corev1.Pod
	Nodes                  []*corev1.Node
	NodePools              []*v1alpha1.NodePool
	DaemonSets             []*appsv1.DaemonSet
	PersistentVolumes      []*corev1.PersistentVolume
	PersistentVolumeClaims []*corev1.PersistentVolumeClaim
	// Namespaces and StorageClasses are passed to the solver as they are
	// (namespaceSelectors; unbound WaitForFirstConsumer claims).
	Namespaces     []*corev1.Namespace
	StorageClasses []*storagev1.StorageClass
	// CSINodes give existing nodes' CSI attach limits.
	CSINodes []*storagev1.CSINode
	// InFlight names nodes (by node name) that are machines still booting.
	InFlight map[string]bool
	// NodeModels are what each pool's templates say about its nodes, by
	// pool name; a pool without one plans for NodeModel's defaults.
	NodeModels map[string]NodeModel
	// Overlays adjust the prices and capacity of the pools' offerings
	// (see package overlay).
	Overlays []*v1alpha1.NodeOverlay
}

// Snapshot builds the solver's input. offered is the catalog for the
// cluster's region and zones; prices of existing nodes, for the pools'
// pricePerHour limits, are looked up there too.
func Snapshot(objs Objects, offered []cloud.InstanceTypeOfferings, unavailable solver.UnavailableOfferings) (*solver.Snapshot, error) {
	snap := &solver.Snapshot{
		DaemonSets:             objs.DaemonSets,
		PersistentVolumes:      objs.PersistentVolumes,
		PersistentVolumeClaims: objs.PersistentVolumeClaims,
		StorageClasses:         objs.StorageClasses,
		CSINodes:               objs.CSINodes,
		Namespaces:             objs.Namespaces,
		Unavailable:            unavailable,
	}
	bound := map[string][]*corev1.Pod{}
	nodeNames := make(map[string]bool, len(objs.Nodes))
	for _, node := range objs.Nodes {
		nodeNames[node.Name] = true
	}
	for _, pod := range objs.Pods {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		switch {
		case pod.Spec.NodeName != "":
			bound[pod.Spec.NodeName] = append(bound[pod.Spec.NodeName], pod)
		case nodeNames[pod.Status.NominatedNodeName]:
			// kube-scheduler is preempting room for it on that node: it
			// needs no new machine (Karpenter skips preempting pods), and
			// the room is taken, as the scheduler reserves it.
			n := pod.Status.NominatedNodeName
			bound[n] = append(bound[n], pod)
		default:
			snap.Pods = append(snap.Pods, pod)
		}
	}
	inUse := map[string]*usage{}
	for _, node := range objs.Nodes {
		pool := node.Labels[v1alpha1.LabelNodePool]
		snap.Nodes = append(snap.Nodes, &solver.Node{
			Node:     node,
			Pods:     bound[node.Name],
			InFlight: objs.InFlight[node.Name],
			Pool:     pool,
		})
		if pool == "" {
			continue
		}
		u := inUse[pool]
		if u == nil {
			u = &usage{resources: corev1.ResourceList{}}
			inUse[pool] = u
		}
		addTo(u.resources, node.Status.Capacity)
		u.nodes = append(u.nodes, node.Labels)
	}
	pools, _, err := Pools(objs, offered)
	if err != nil {
		return nil, err
	}
	withOverlaidCapacity(snap.Nodes, pools)
	prices := NewPrices(offered)
	for _, pool := range pools {
		if u := inUse[pool.Name]; u != nil {
			// What the pool's machines cost counts against its
			// pricePerHour limit at the price planning uses for them:
			// overlaid, as what a new machine would cost.
			pool.InUse = u.resources
			overlaid := poolPrices(pool)
			for _, labels := range u.nodes {
				if p, ok := overlaid.of(labels); ok {
					pool.InUsePricePerHour += p
				} else {
					pool.InUsePricePerHour += prices.Of(labels)
				}
			}
		}
		snap.Pools = append(snap.Pools, pool)
	}
	return snap, nil
}

// Pools is the solver's view of every NodePool of objs, with the overlays
// of objs applied, and the overlays left out for a conflict. The pools'
// InUse is left to the caller.
func Pools(objs Objects, offered []cloud.InstanceTypeOfferings) ([]*solver.Pool, []overlay.Conflict, error) {
	// Invalid overlays are left out here and reported on their status.
	set, _ := overlay.Compile(objs.Overlays)
	seen := map[string]string{}
	pools := make([]*solver.Pool, 0, len(objs.NodePools))
	for _, np := range objs.NodePools {
		if other, ok := seen[np.Name]; ok && other != np.Namespace {
			return nil, nil, fmt.Errorf("NodePools %s/%s and %s/%s serve the same cluster under one name; rename one, since nodes record their pool by name", other, np.Name, np.Namespace, np.Name)
		}
		seen[np.Name] = np.Namespace
		pool, err := Pool(np, offered, objs.NodeModels[np.Name], nil, 0)
		if err != nil {
			return nil, nil, err
		}
		pools = append(pools, pool)
	}
	conflicts := set.Apply(pools)
	return pools, conflicts, nil
}

// withOverlaidCapacity gives in-flight nodes the resources their pool's
// (overlaid) instance type has and they do not show yet, as Karpenter
// plans an in-flight NodeClaim with its instance type's capacity: a
// machine launched for a pod that asks for an extended resource a
// NodeOverlay adds (smarter-devices/fuse, hugepages) must count as room
// for it while it boots, or every pass would launch another. Nodes are
// copied before they change: they may be the cache's.
func withOverlaidCapacity(nodes []*solver.Node, pools []*solver.Pool) {
	types := map[string]map[string]*solver.InstanceType{}
	for _, p := range pools {
		byName := make(map[string]*solver.InstanceType, len(p.InstanceTypes))
		for _, it := range p.InstanceTypes {
			byName[it.Name] = it
		}
		types[p.Name] = byName
	}
	for _, n := range nodes {
		if !n.InFlight || n.Pool == "" {
			continue
		}
		it := types[n.Pool][n.Node.Labels[v1alpha1.LabelInstanceType]]
		if it == nil {
			continue
		}
		copied := false
		for name, q := range it.Allocatable {
			if _, ok := n.Node.Status.Allocatable[name]; ok {
				continue
			}
			if !copied {
				n.Node = n.Node.DeepCopy()
				if n.Node.Status.Allocatable == nil {
					n.Node.Status.Allocatable = corev1.ResourceList{}
				}
				if n.Node.Status.Capacity == nil {
					n.Node.Status.Capacity = corev1.ResourceList{}
				}
				copied = true
			}
			n.Node.Status.Allocatable[name] = q.DeepCopy()
			if _, ok := n.Node.Status.Capacity[name]; !ok {
				n.Node.Status.Capacity[name] = it.Capacity[name].DeepCopy()
			}
		}
	}
}

type usage struct {
	resources corev1.ResourceList
	nodes     []map[string]string // the labels of the pool's nodes
}

// poolPriceIndex is a pool's (overlaid) offering prices.
type poolPriceIndex map[priceKey]float64

func poolPrices(pool *solver.Pool) poolPriceIndex {
	index := poolPriceIndex{}
	for _, it := range pool.InstanceTypes {
		for _, o := range it.Offerings {
			index[priceKey{it.Name, o.Zone, o.CapacityType}] = o.PricePerHour
		}
	}
	return index
}

func (p poolPriceIndex) of(labels map[string]string) (float64, bool) {
	capacityType := labels[v1alpha1.LabelCapacityType]
	if capacityType == "" {
		capacityType = v1alpha1.CapacityTypeOnDemand
	}
	price, ok := p[priceKey{labels[v1alpha1.LabelInstanceType], labels[v1alpha1.LabelZone], capacityType}]
	return price, ok
}

// Pool is the solver's view of a NodePool: its requirements, labels,
// taints, limits (and what its machines already use: inUse capacity and
// inUsePricePerHour), and every type it may launch sized for the node its
// templates and kubelet settings make (model).
func Pool(np *v1alpha1.NodePool, offered []cloud.InstanceTypeOfferings, model NodeModel, inUse corev1.ResourceList, inUsePricePerHour float64) (*solver.Pool, error) {
	spec := np.Spec.Template.Spec
	pool := &solver.Pool{
		Name:          np.Name,
		Requirements:  Requirements(spec.Requirements),
		Labels:        stringMap(np.Spec.Template.ObjectMeta.Labels),
		Taints:        coreTaints(spec.Taints),
		StartupTaints: coreTaints(spec.StartupTaints),
	}
	if np.Spec.Weight != nil {
		pool.Weight = *np.Spec.Weight
	}
	for name, quantity := range np.Spec.Limits {
		if name == v1alpha1.LimitPricePerHour {
			usd := quantity.AsApproximateFloat64()
			pool.PricePerHourLimit = &usd
			continue
		}
		if pool.Limits == nil {
			pool.Limits = corev1.ResourceList{}
		}
		pool.Limits[name] = quantity
	}
	pool.InUse = inUse
	pool.InUsePricePerHour = inUsePricePerHour
	types, err := LaunchableTypes(np, offered, model)
	if err != nil {
		return nil, err
	}
	pool.InstanceTypes = make([]*solver.InstanceType, 0, len(types))
	for _, t := range types {
		it := &solver.InstanceType{
			Name:         t.Name,
			Labels:       t.Labels,
			Capacity:     t.Capacity,
			Allocatable:  t.Allocatable,
			Offerings:    make([]solver.Offering, 0, len(t.Offerings)),
			VolumeLimits: t.VolumeLimits,
		}
		for _, o := range t.Offerings {
			off := solver.Offering{
				Zone: o.Zone, ZoneID: o.ZoneID, Region: o.Region, CapacityType: o.CapacityType, PricePerHour: o.PricePerHour, Available: o.Available,
				PlacementScore: o.PlacementScore,
			}
			if r := o.Reservation; r != nil {
				// The catalog offers every reservation of the region; a
				// pool launches into those its terms select.
				if !cloud.SelectsAny(spec.CapacityReservationSelectorTerms, r) {
					continue
				}
				off.ReservationID, off.ReservationType, off.ReservationCapacity = r.ID, r.Type, r.Available
			}
			it.Offerings = append(it.Offerings, off)
		}
		pool.InstanceTypes = append(pool.InstanceTypes, it)
	}
	return pool, nil
}

// Requirements converts a pool's requirements to the solver's algebra; the
// operators mean the same in both.
func Requirements(in []v1alpha1.NodeSelectorRequirementWithMinValues) solver.Requirements {
	out := make(solver.Requirements, 0, len(in))
	for _, r := range in {
		out = append(out, solver.Requirement{
			Key: r.Key, Operator: solver.Operator(r.Operator), Values: r.Values, MinValues: r.MinValues,
		})
	}
	return out
}

func coreTaints(in []v1alpha1.Taint) []corev1.Taint {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Taint, len(in))
	for i, t := range in {
		out[i] = t.ToCore()
	}
	return out
}

func addTo(sum, add corev1.ResourceList) {
	for name, q := range add {
		total := sum[name]
		total.Add(q)
		sum[name] = total
	}
}

// Prices finds what a running node costs from its labels.
type Prices map[priceKey]float64

type priceKey struct{ instanceType, zone, capacityType string }

// NewPrices indexes the offerings' prices.
func NewPrices(offered []cloud.InstanceTypeOfferings) Prices {
	index := Prices{}
	for _, o := range offered {
		for _, off := range o.Offerings {
			index[priceKey{off.InstanceType, off.Zone, off.CapacityType}] = off.PricePerHour
		}
	}
	return index
}

// Of returns the node's price, 0 when the catalog does not know its
// offering (a node not launched from this catalog). A node without a
// capacity-type label is taken as on-demand, as EC2 launches by default.
func (p Prices) Of(labels map[string]string) float64 {
	capacityType := labels[v1alpha1.LabelCapacityType]
	if capacityType == "" {
		capacityType = v1alpha1.CapacityTypeOnDemand
	}
	return p[priceKey{labels[v1alpha1.LabelInstanceType], labels[v1alpha1.LabelZone], capacityType}]
}
