package solver

// Consolidation follows Karpenter's disruption methods
// (pkg/controllers/disruption: multinodeconsolidation.go,
// singlenodeconsolidation.go, consolidation.go): remove nodes when their pods
// fit on the rest of the cluster plus at most one new machine that costs less
// than the nodes removed. Every simulation goes through the ordinary
// placement code (place) on a snapshot without the removed nodes, so each
// scheduling constraint the solver knows holds after the move. A cheap
// relaxation (summed free capacity, cheapest type that covers the shortfall)
// rejects hopeless candidate sets before a simulation is run.

import (
	"errors"
	"fmt"
	"math"
	"sort"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// Candidate is an existing node that may be disrupted.
type Candidate struct {
	// Name is the node's name in Snapshot.Nodes.
	Name string
	// PricePerHour is what the node costs now.
	PricePerHour float64
	// CapacityType is "spot" or "on-demand".
	CapacityType string
	// DisruptionCost orders candidates: cheapest to disrupt first (Karpenter:
	// pod count weighted by pod deletion cost and priority, scaled by
	// remaining lifetime).
	DisruptionCost float64
	// Pool names the node's pool; Balanced scoring is per pool.
	Pool string
	// RescheduleDisruptionCost is what moving the node's pods costs in
	// Balanced scoring (RescheduleDisruptionCost of its pods).
	RescheduleDisruptionCost float64
}

// ConsolidationOptions tunes Consolidate. The zero value is usable.
type ConsolidationOptions struct {
	// MaxCandidates bounds the multi-node search; zero means 100, as in Karpenter.
	MaxCandidates int
	// SpotToSpot allows replacing spot nodes with a cheaper spot node. A
	// single spot node is then replaced only if at least MinSpotTypes
	// instance types are cheaper (Karpenter's rule against churning through
	// the spot market); otherwise spot nodes are only deleted.
	SpotToSpot bool
	// MinSpotTypes is zero for Karpenter's 15.
	MinSpotTypes int
	// Solver tunes the simulations (IgnorePreferences, MaxFallbacks); the
	// lower bound is never computed.
	Solver Options
	// Reserved are pods that do not exist but whose room must survive a
	// consolidation (CapacityBuffer headroom): each simulation places them
	// after the pending pods, and one that leaves any of them without a
	// place is rejected, as one that strands a moved pod is. Karpenter's
	// consolidation simulates its buffers' virtual pods the same way.
	Reserved []*corev1.Pod
	// Balanced scores moves of the pools it lists and takes only those
	// worth their disruption; nil scores none.
	Balanced *BalancedOptions
}

func (o ConsolidationOptions) maxCandidates() int {
	if o.MaxCandidates <= 0 {
		return 100
	}
	return o.MaxCandidates
}

func (o ConsolidationOptions) minSpotTypes() int {
	if o.MinSpotTypes <= 0 {
		return 15
	}
	return o.MinSpotTypes
}

// ConsolidationAction is one consolidation decision.
type ConsolidationAction struct {
	// Remove names the nodes to delete, in the order the candidates were given.
	Remove []string
	// Replacement is the one machine to launch first; nil means delete only.
	// Its offering and every fallback cost less than the removed nodes.
	Replacement *NewNode
	// SavingsPerHour is the removed nodes' price minus the replacement's (> 0).
	SavingsPerHour float64
	// Reason says why, for events and logs.
	Reason string
	// Scores are the Balanced pools' verdicts on the move (none when no
	// removed node's pool is Balanced).
	Scores []BalancedScore
	// Plan is the simulation behind the decision, for
	// RemovalSnapshot(snap, Remove): where every moved pod (and pending pod)
	// lands.
	Plan *Plan
}

// Consolidate finds the action that saves money, Karpenter's way:
// multi-node first (candidates sorted by DisruptionCost, the largest prefix
// of at most MaxCandidates that is consolidatable, found by binary search),
// then single-node (each candidate alone, in the same order: delete if its
// pods fit elsewhere, else replace it with one cheaper node). In-flight
// nodes are never removed. It returns nil when nothing saves money.
//
// Pending pods of the snapshot take part in every simulation, as in
// Karpenter: they compete for the room the moved pods need, and a plan
// that needs a machine for them counts that machine as the replacement.
func Consolidate(snap *Snapshot, candidates []Candidate, opts ConsolidationOptions) (*ConsolidationAction, error) {
	action, _, err := ConsolidateWithReasons(snap, candidates, opts)
	return action, err
}

// Kept is a candidate no consolidation removes, and why.
type Kept struct {
	Name   string
	Reason string
	// Scores are the Balanced verdicts that kept it, when that is why.
	Scores []BalancedScore
}

// ConsolidateWithReasons is Consolidate that, when nothing saves money,
// also says why each candidate stays (in the candidates' given order).
// The reasons come from the single-node simulations Consolidate runs
// anyway, so they cost nothing extra.
func ConsolidateWithReasons(snap *Snapshot, candidates []Candidate, opts ConsolidationOptions) (*ConsolidationAction, []Kept, error) {
	c, err := newConsolidator(snap, candidates, opts)
	if err != nil {
		return nil, nil, err
	}
	action, err := c.multiNode()
	if action != nil || err != nil {
		return action, nil, err
	}
	return c.singleNode()
}

// consolidator holds what every simulation of one Consolidate call shares.
type consolidator struct {
	snap       *Snapshot
	opts       ConsolidationOptions
	solverOpts Options
	// cands are the eligible candidates, cheapest to disrupt first.
	cands   []*nodeCandidate
	pending map[*corev1.Pod]bool
	// cache indexes the existing nodes once for every simulation; base is
	// the snapshot's nodes and pools, for the relaxation.
	cache *nodeCache
	base  *state
	// free sums every node's free capacity; maxAlloc is the element-wise
	// largest allocatable a new machine can have.
	free     resVec
	maxAlloc resVec
	scratch  resVec
}

// nodeCandidate is a Candidate resolved against the snapshot.
type nodeCandidate struct {
	Candidate
	given        int // position in the caller's list
	node         int // position in Snapshot.Nodes
	instanceType string
	pods         int    // reschedulable pods
	moved        resVec // their requests
	free         resVec // the node's free capacity
}

func newConsolidator(snap *Snapshot, candidates []Candidate, opts ConsolidationOptions) (*consolidator, error) {
	if snap == nil {
		return nil, errors.New("solver: nil snapshot")
	}
	solverOpts := opts.Solver
	solverOpts.SkipLowerBound = true
	cache, err := newNodeCache(snap)
	if err != nil {
		return nil, err
	}
	// The relaxation needs the nodes and pools, not the pods to place.
	base, err := newStateWith(&Snapshot{Nodes: snap.Nodes, DaemonSets: snap.DaemonSets, Pools: snap.Pools,
		PersistentVolumeClaims: snap.PersistentVolumeClaims, PersistentVolumes: snap.PersistentVolumes, StorageClasses: snap.StorageClasses,
		CSINodes: snap.CSINodes, Unavailable: snap.Unavailable, SpotRisk: snap.SpotRisk, Namespaces: snap.Namespaces}, solverOpts, cache)
	if err != nil {
		return nil, err
	}
	c := &consolidator{snap: snap, opts: opts, solverOpts: solverOpts, cache: cache, base: base,
		pending: make(map[*corev1.Pod]bool, len(snap.Pods))}
	for _, p := range snap.Pods {
		c.pending[p] = true
	}
	if len(opts.Reserved) > 0 {
		// Not pending: an action that cannot place them is rejected.
		withReserved := *snap
		withReserved.Pods = append(append(make([]*corev1.Pod, 0, len(snap.Pods)+len(opts.Reserved)), snap.Pods...), opts.Reserved...)
		c.snap = &withReserved
	}
	size := base.res.size()
	c.free, c.maxAlloc, c.scratch = make(resVec, size), make(resVec, size), make(resVec, size)
	frees := make([]resVec, len(base.existing))
	for i, n := range base.existing {
		f := n.maxAlloc.clone()
		f.sub(n.used)
		for r := range f {
			f[r] = max(f[r], 0)
		}
		frees[i] = f
		c.free.add(f)
	}
	for _, ps := range base.pools {
		for i := range ps.cands {
			c.maxAlloc.maxWith(ps.cands[i].alloc)
		}
	}
	byName := make(map[string]int, len(snap.Nodes))
	for i, n := range snap.Nodes {
		byName[n.Node.Name] = i
	}
	seen := make(map[string]bool, len(candidates))
	for gi, cand := range candidates {
		i, ok := byName[cand.Name]
		if !ok {
			return nil, fmt.Errorf("solver: consolidation candidate %q is not a node of the snapshot", cand.Name)
		}
		if seen[cand.Name] {
			return nil, fmt.Errorf("solver: consolidation candidate %q is listed twice", cand.Name)
		}
		seen[cand.Name] = true
		n := snap.Nodes[i]
		if n.InFlight {
			continue // still launching: capacity, never a candidate
		}
		// Every node costs at least the base to disrupt (Karpenter's
		// floor); a caller that leaves it unset must not make moves free.
		cand.RescheduleDisruptionCost = max(cand.RescheduleDisruptionCost, PerNodeBaseDisruptionCost)
		nc := &nodeCandidate{Candidate: cand, given: gi, node: i, free: frees[i], moved: make(resVec, size),
			instanceType: n.Node.Labels[v1alpha1.LabelInstanceType]}
		for _, p := range n.Pods {
			if Reschedulable(p) {
				nc.pods++
				nc.moved.add(base.res.podRequests(p))
			}
		}
		c.cands = append(c.cands, nc)
	}
	if opts.Balanced != nil && len(opts.Balanced.Totals) > 0 {
		// Karpenter sorts by savings ratio when Balanced is in play, so
		// the prefixes tried first are the ones most worth their
		// disruption; the binary search still shrinks to what fits.
		sort.SliceStable(c.cands, func(i, j int) bool { return c.cands[i].savingsRatio() > c.cands[j].savingsRatio() })
	} else {
		sort.SliceStable(c.cands, func(i, j int) bool { return c.cands[i].DisruptionCost < c.cands[j].DisruptionCost })
	}
	return c, nil
}

// multiNode binary-searches the largest consolidatable prefix of the
// candidates (at least two), as Karpenter's firstNConsolidationOption does.
// The relaxation first caps the prefix length: beyond it, the moved pods
// outgrow the free room plus the largest machine.
func (c *consolidator) multiNode() (*ConsolidationAction, error) {
	cands := c.cands[:min(len(c.cands), c.opts.maxCandidates())]
	lo, hi := 2, c.roomBound(cands)
	var best *ConsolidationAction
	for lo <= hi {
		mid := (lo + hi) / 2
		action, _, _, err := c.evaluateScored(cands[:mid])
		if err != nil {
			return nil, err
		}
		if action != nil {
			best, lo = action, mid+1
		} else {
			hi = mid - 1
		}
	}
	return best, nil
}

// singleNode returns the first candidate that can go on its own, or why
// none can.
func (c *consolidator) singleNode() (*ConsolidationAction, []Kept, error) {
	kept := make([]Kept, 0, len(c.cands))
	for i := range c.cands {
		if s, ok := c.opts.Balanced.canPass(c.cands[i]); !ok {
			kept = append(kept, Kept{Name: c.cands[i].Name, Reason: "Balanced: even deleting it outright is not worth the disruption: " + s.String(), Scores: []BalancedScore{s}})
			continue
		}
		action, why, scores, err := c.evaluateScored(c.cands[i : i+1])
		if action != nil || err != nil {
			return action, nil, err
		}
		kept = append(kept, Kept{Name: c.cands[i].Name, Reason: why, Scores: scores})
	}
	given := make(map[string]int, len(c.cands))
	for _, nc := range c.cands {
		given[nc.Name] = nc.given
	}
	sort.Slice(kept, func(i, j int) bool { return given[kept[i].Name] < given[kept[j].Name] })
	return nil, kept, nil
}

// roomBound is the longest prefix whose moved requests could still fit in
// the remaining free room plus one machine of the largest allocatable.
// Growing the prefix only adds demand and removes room, so it is monotone.
func (c *consolidator) roomBound(cands []*nodeCandidate) int {
	deficit := c.scratch
	copy(deficit, c.free)
	for r := range deficit {
		deficit[r] = -deficit[r]
	}
	for k, nc := range cands {
		deficit.add(nc.moved)
		deficit.add(nc.free)
		for r := range deficit {
			if deficit[r] > c.maxAlloc[r] {
				return k
			}
		}
	}
	return len(cands)
}

// mayPay is the relaxation for one set: the shortfall of summed free room
// must fit on one machine cheaper than the set.
func (c *consolidator) mayPay(set []*nodeCandidate, price float64) bool {
	if price <= 0 {
		return false
	}
	deficit := c.scratch
	copy(deficit, c.free)
	for r := range deficit {
		deficit[r] = -deficit[r]
	}
	for _, nc := range set {
		deficit.add(nc.moved)
		deficit.add(nc.free)
	}
	short := false
	for _, x := range deficit {
		short = short || x > 0
	}
	if !short {
		return true
	}
	for _, ps := range c.base.pools {
		for i := range ps.cands { // price order: the first that covers it is the pool's cheapest
			cand := &ps.cands[i]
			if cand.price >= price {
				break
			}
			if geVec(cand.alloc, deficit) {
				return true
			}
		}
	}
	return false
}

// evaluate simulates removing set and returns the action, or nil and why
// not: the moved pods do not all fit, more than one machine is needed, or
// nothing is saved.
func (c *consolidator) evaluate(set []*nodeCandidate) (*ConsolidationAction, string, error) {
	price := 0.0
	for _, nc := range set {
		price += nc.PricePerHour
	}
	if !c.mayPay(set, price) {
		return nil, fmt.Sprintf("its pods need more room than the other nodes have free, and no machine cheaper than $%.3f/h covers the rest", price), nil
	}
	idx := make([]int, len(set))
	for i, nc := range set {
		idx[i] = nc.node
	}
	sort.Ints(idx)
	s, err := place(removalSnapshot(c.snap, idx), c.solverOpts, c.cache)
	if err != nil {
		return nil, "", err
	}
	for _, g := range s.groups {
		for _, p := range g.pods[g.placed:] {
			if !c.pending[p] {
				return nil, "pod " + p.Namespace + "/" + p.Name + " would have nowhere to go", nil
			}
		}
	}
	repl, several := s.onlyMachine()
	if several {
		s.mergePlanned()
		if repl, several = s.onlyMachine(); several {
			// Karpenter never turns nodes into several.
			return nil, "its pods would need more than one new machine", nil
		}
	}
	if repl != nil {
		if why := c.narrowReplacement(repl, set, price); why != "" {
			return nil, why, nil
		}
	}
	plan := s.plan()
	action := &ConsolidationAction{SavingsPerHour: price, Plan: plan}
	if len(plan.NewNodes) == 1 {
		action.Replacement = plan.NewNodes[0]
		action.SavingsPerHour -= action.Replacement.Offering.PricePerHour
	}
	if action.SavingsPerHour <= 0 {
		return nil, fmt.Sprintf("the machines its pods need cost at least the $%.3f/h it saves", price), nil
	}
	given := append([]*nodeCandidate(nil), set...)
	sort.Slice(given, func(i, j int) bool { return given[i].given < given[j].given })
	for _, nc := range given {
		action.Remove = append(action.Remove, nc.Name)
	}
	action.Reason = c.reason(set, action)
	return action, "", nil
}

// evaluateScored is evaluate followed by the Balanced pools' verdict: a
// move that saves money but not enough for its disruption is declined
// with its scores.
func (c *consolidator) evaluateScored(set []*nodeCandidate) (*ConsolidationAction, string, []BalancedScore, error) {
	action, why, err := c.evaluate(set)
	if action == nil || err != nil {
		return action, why, nil, err
	}
	scores, ok := c.opts.Balanced.scoreMove(set, action.SavingsPerHour)
	if !ok {
		for _, s := range scores {
			if !s.Approved() {
				return nil, "Balanced: the move is not worth its disruption: " + s.String(), scores, nil
			}
		}
	}
	action.Scores = scores
	if len(scores) > 0 {
		action.Reason += "; Balanced " + scores[0].String()
		for _, s := range scores[1:] {
			action.Reason += "; pool " + s.Pool + " " + s.String()
		}
	}
	return action, "", nil, nil
}

// narrowReplacement keeps the replacement's (type, offering) candidates
// that make the move worth it, Karpenter's filters:
//   - each costs less than the removed nodes together;
//   - for several nodes, a type already among them must cost less than that
//     node (else keeping it and deleting the others disrupts less);
//   - when every removed node is spot and the replacement may be spot, it
//     must be spot, SpotToSpot must be on and, for a single node, at least
//     MinSpotTypes cheaper types must remain; the launch then offers only
//     the cheapest MinSpotTypes of them, so the next round does not replace
//     it again;
//   - the pool's minValues still hold.
//
// The cheapest survivor becomes the chosen offering. It says why when none
// survives ("" when one does).
func (c *consolidator) narrowReplacement(n *nodeState, set []*nodeCandidate, price float64) string {
	ps := n.pool
	var sameType map[string]float64
	allSpot := true
	for _, nc := range set {
		allSpot = allSpot && nc.CapacityType == v1alpha1.CapacityTypeSpot
		if len(set) > 1 && nc.instanceType != "" {
			if sameType == nil {
				sameType = map[string]float64{}
			}
			if p, ok := sameType[nc.instanceType]; !ok || nc.PricePerHour < p {
				sameType[nc.instanceType] = nc.PricePerHour
			}
		}
	}
	kept := make([]int32, 0, len(n.cands))
	spot := false
	for _, i := range n.cands {
		cand := &ps.cands[i]
		if cand.price >= price {
			break // price order
		}
		if p, ok := sameType[cand.it.Name]; ok && cand.price >= p {
			continue
		}
		kept = append(kept, i)
		spot = spot || cand.off.CapacityType == v1alpha1.CapacityTypeSpot
	}
	if len(kept) == 0 {
		return fmt.Sprintf("no replacement that carries its pods costs less than $%.3f/h", price)
	}
	if allSpot && spot {
		if !c.opts.SpotToSpot {
			return "spot nodes are only deleted, not replaced, while spot-to-spot consolidation is off"
		}
		kept = keepCands(kept, func(i int32) bool { return ps.cands[i].off.CapacityType == v1alpha1.CapacityTypeSpot })
		if len(set) == 1 {
			want := c.opts.minSpotTypes()
			var types []string
			for _, i := range kept {
				if name := ps.cands[i].it.Name; !containsString(types, name) {
					types = append(types, name)
				}
			}
			if len(types) < want {
				return fmt.Sprintf("only %d spot instance types are cheaper; replacing a spot node needs %d", len(types), want)
			}
			if len(ps.minValues) == 0 {
				types = types[:want]
				kept = keepCands(kept, func(i int32) bool { return containsString(types, ps.cands[i].it.Name) })
			}
		}
	}
	for _, r := range ps.minValues {
		var values []string
		for _, i := range kept {
			if v, ok := ps.cands[i].Label(r.Key); ok && !containsString(values, v) {
				values = append(values, v)
			}
		}
		if len(values) < *r.MinValues {
			return fmt.Sprintf("the cheaper replacements offer %d values of %s, below the pool's minValues %d", len(values), r.Key, *r.MinValues)
		}
	}
	// A new chosen offering must keep the pool within its limits.
	old := n.chosen()
	for len(kept) > 0 && &ps.cands[kept[0]] != old && !ps.withinLimits(old, &ps.cands[kept[0]]) {
		kept = kept[1:]
	}
	if len(kept) == 0 {
		return "every cheaper replacement would exceed the pool's limits"
	}
	ps.swap(old, &ps.cands[kept[0]])
	n.cands, n.ownsCands = kept, true
	return ""
}

// onlyMachine returns the one planned machine, if any, and whether there
// are more.
func (s *state) onlyMachine() (n *nodeState, several bool) {
	for _, p := range s.planned {
		if p.chosen() == nil {
			continue
		}
		if n != nil {
			return nil, true
		}
		n = p
	}
	return n, false
}

// mergePlanned tries to carry every pod planned on new machines on one of
// them, whatever that costs: the solver minimizes price, and two small
// machines may cost what one larger does, but a consolidation launches at
// most one and compares its price afterwards. Like improve, it moves only
// packable pods within simple pools.
func (s *state) mergePlanned() {
	var nodes []*nodeState
	for _, n := range s.planned {
		if n.chosen() == nil {
			continue
		}
		if !n.pool.simple() {
			return
		}
		nodes = append(nodes, n)
	}
	podGroupOf := map[*corev1.Pod]*podGroup{}
	for _, g := range s.groups {
		for _, p := range g.pods[:g.placed] {
			podGroupOf[p] = g
		}
	}
	moved := map[*corev1.Pod]*nodeState{}
	defer s.finishMoves(moved)
	// Empty the least loaded first: they have the fewest pods to move.
	victims := append([]*nodeState(nil), nodes...)
	sort.SliceStable(victims, func(i, j int) bool { return victims[i].used[resCPU] < victims[j].used[resCPU] })
	t := s.newTargets(nodes)
	for _, v := range victims {
		if len(t.removed) == len(nodes)-1 {
			return
		}
		packable := true
		for _, gc := range v.groups {
			packable = packable && gc.group.packable()
		}
		if packable && s.tryEmpty(v, t, podGroupOf, moved, math.Inf(1)) {
			t.remove(v)
		}
	}
}

func keepCands(cands []int32, keep func(int32) bool) []int32 {
	out := cands[:0]
	for _, i := range cands {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out
}

// reason reads like "3 nodes' 41 pods fit on the other nodes and one spot
// c6a.xlarge ($0.153/h); saves $0.512/h".
func (c *consolidator) reason(set []*nodeCandidate, a *ConsolidationAction) string {
	pods := 0
	for _, nc := range set {
		pods += nc.pods
	}
	who, whose := "node "+set[0].Name, "node "+set[0].Name+"'s"
	if len(set) > 1 {
		who = fmt.Sprintf("%d nodes", len(set))
		whose = who + "'"
	}
	saves := fmt.Sprintf("saves $%.3f/h", a.SavingsPerHour)
	if pods == 0 && a.Replacement == nil {
		if len(set) == 1 {
			return who + " has no pods to move; " + saves
		}
		return who + " have no pods to move; " + saves
	}
	what := whose + " " + plural(pods, "pod") + " fit"
	if pods == 1 {
		what += "s"
	}
	if a.Replacement == nil {
		return what + " on the other nodes; " + saves
	}
	onExisting := 0
	for _, p := range a.Plan.Existing {
		if !c.pending[p.Pod] {
			onExisting++
		}
	}
	r := a.Replacement
	machine := fmt.Sprintf("one %s %s ($%.3f/h)", r.Offering.CapacityType, r.InstanceType.Name, r.Offering.PricePerHour)
	if onExisting == 0 {
		return what + " on " + machine + "; " + saves
	}
	return what + " on the other nodes and " + machine + "; " + saves
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
