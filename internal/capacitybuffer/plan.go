package capacitybuffer

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/joinery-dev/joinery/solver"
)

// Placements counts, per buffer (namespace/name), where a plan put its
// chunks. Pods already bound are not chunks and are not counted.
func Placements(plan *solver.Plan) map[string]*Placement {
	out := map[string]*Placement{}
	get := func(pod *corev1.Pod) *Placement {
		key := BufferOf(pod)
		if key == "" {
			return nil
		}
		p := out[key]
		if p == nil {
			p = &Placement{Nodes: map[string]int{}}
			out[key] = p
		}
		return p
	}
	if plan == nil {
		return out
	}
	for _, pl := range plan.Existing {
		if p := get(pl.Pod); p != nil {
			p.Existing++
			p.Nodes[pl.NodeName]++
		}
	}
	for _, n := range plan.NewNodes {
		for _, pod := range n.Pods {
			if p := get(pod); p != nil {
				p.New++
			}
		}
	}
	for _, u := range plan.Unschedulable {
		if p := get(u.Pod); p != nil {
			p.Unplaced++
			if len(p.Reasons) == 0 || p.Reasons[len(p.Reasons)-1] != u.Reason {
				p.Reasons = append(p.Reasons, u.Reason)
			}
		}
	}
	return out
}

// Solve plans for a snapshot whose pending pods may include virtual pods,
// so real pods never lose to headroom: if some real pod fits nowhere in the
// plan that holds the chunks (a pool limit the chunks used up, say), the
// plan is made again without them and the chunks wait. Karpenter plans
// both in one pass and lets the queue order decide; a buffer must never
// cost a real pod its node. withoutHeadroom reports the fallback.
func Solve(snap *solver.Snapshot, opts solver.Options) (plan *solver.Plan, withoutHeadroom bool, err error) {
	plan, err = solver.Solve(snap, opts)
	if err != nil {
		return nil, false, err
	}
	hasVirtual, realLost := false, false
	for _, p := range snap.Pods {
		if IsVirtual(p) {
			hasVirtual = true
			break
		}
	}
	for _, u := range plan.Unschedulable {
		if !IsVirtual(u.Pod) {
			realLost = true
			break
		}
	}
	if !hasVirtual || !realLost {
		return plan, false, nil
	}
	real := *snap
	real.Pods = RealPods(snap.Pods)
	plan, err = solver.Solve(&real, opts)
	if err != nil {
		return nil, false, err
	}
	return plan, true, nil
}

// RealPods is pods without the virtual ones.
func RealPods(pods []*corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(pods))
	for _, p := range pods {
		if !IsVirtual(p) {
			out = append(out, p)
		}
	}
	return out
}

// Headroom names, per existing node, the buffers whose chunks a plan put
// there ("default/web ×2"), for people reading why a node is kept.
func Headroom(placements map[string]*Placement) map[string]string {
	byNode := map[string][]string{}
	for key, p := range placements {
		for node, n := range p.Nodes {
			byNode[node] = append(byNode[node], fmt.Sprintf("%s ×%d", key, n))
		}
	}
	out := make(map[string]string, len(byNode))
	for node, list := range byNode {
		sort.Strings(list)
		out[node] = strings.Join(list, ", ")
	}
	return out
}

func nodeList(nodes map[string]int) string {
	names := make([]string, 0, len(nodes))
	for n, c := range nodes {
		names = append(names, fmt.Sprintf("%s ×%d", n, c))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// KeepForHeadroom decides which of the empty nodes named may go without
// losing headroom: removing them together must leave as many chunks on
// existing capacity (nodes and machines booting) as fit there now. It
// tries them in the order given; kept says, per node kept, why. Karpenter's
// emptiness skips every node its last provisioning pass put a virtual pod
// on; asking whether the chunks still fit elsewhere keeps only the nodes
// the headroom needs, and needs no memory of an earlier pass.
func KeepForHeadroom(snap *solver.Snapshot, headroom []*corev1.Pod, empty []string) (removable []string, kept map[string]string, err error) {
	if len(headroom) == 0 || len(empty) == 0 {
		return empty, nil, nil
	}
	withHeadroom := *snap
	withHeadroom.Pods = append(append(make([]*corev1.Pod, 0, len(snap.Pods)+len(headroom)), snap.Pods...), headroom...)
	onExisting := func(remove []string) (int, map[string]*Placement, error) {
		plan, err := solver.SimulateRemoval(&withHeadroom, remove, solver.Options{SkipLowerBound: true})
		if err != nil {
			return 0, nil, err
		}
		placed := Placements(plan)
		n := 0
		for _, p := range placed {
			n += p.Existing
		}
		return n, placed, nil
	}
	now, placedNow, err := onExisting(nil)
	if err != nil {
		return nil, nil, err
	}
	where := Headroom(placedNow)
	kept = map[string]string{}
	for _, name := range empty {
		n, _, err := onExisting(append(append([]string(nil), removable...), name))
		if err != nil {
			return nil, nil, err
		}
		if n >= now {
			removable = append(removable, name)
			continue
		}
		why := fmt.Sprintf("it holds CapacityBuffer headroom: without it %d chunk(s) would need a new machine", now-n)
		if h := where[name]; h != "" {
			why = fmt.Sprintf("it holds CapacityBuffer headroom (%s): without it %d chunk(s) would need a new machine", h, now-n)
		}
		kept[name] = why
	}
	return removable, kept, nil
}
