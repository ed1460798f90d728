package solver

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// state is one solve in progress.
type state struct {
	snap  *Snapshot
	opts  Options
	res   *resourceIndex
	cache *nodeCache // nil unless many solves share the existing nodes

	pools      []*poolState // weight descending, then name
	existing   []*nodeState
	planned    []*nodeState
	groups     []*podGroup
	daemonSets []*daemonSetOverhead

	classes  map[string]*constraintClass
	topoByID map[string]*topoGroup
	topos    []*topoGroup

	pvcs map[string]*corev1.PersistentVolumeClaim
	pvs  map[string]*corev1.PersistentVolume
	// storageClasses by name, for claims not bound yet.
	storageClasses map[string]*storagev1.StorageClass
	// nsLabels are the snapshot's namespace labels (nil: none given).
	nsLabels map[string]map[string]string

	// reservations are the capacity reservations of reserved offerings,
	// by ID, with the planned machines each carries.
	reservations map[string]*reservation

	order     []Placement
	usedNames map[string]bool
	classByID []*constraintClass
	podGroup  map[*corev1.Pod]*podGroup

	// scratch reused across evaluations to keep the hot path allocation-free
	eval         evaluation
	valScratch   []string
	priceScratch []float64

	// slack indexes s.planned by the room left on each node's chosen
	// offering (nil: scan them all).
	slack        *roomIndex
	slackScratch resVec
	// grown indexes s.planned by room at each of tierSteps (see fillGrow).
	grown        []*roomIndex
	grownScratch []resVec
	// fillGrow's scratch: the request asked of each of grown.
	growReqs    []resVec
	growScratch []resVec
	// groupsByLabel lists groups by "key\x00value" of their labels, in
	// s.groups order (see groupsMaybeSelected).
	groupsByLabel map[string][]*podGroup
	groupPos      map[*podGroup]int
	groupsIndexed int
	// commit's scratch: the load a kept candidate must hold
	needScratch resVec
	// trade's scratch: groups moved each way
	toBScratch, toAScratch []*podGroup
	// recandidate's scratch
	keptScratch          []int32
	hiScratch, loScratch resVec
	// openNode's and commit's scratch: the candidates a new node may be,
	// gathered before they are copied out at their size
	candBuf []int32
}

// Solve plans new machines and pod placements for a snapshot. The same
// snapshot always yields the same plan.
func Solve(snap *Snapshot, opts Options) (*Plan, error) {
	if snap == nil {
		return nil, errors.New("solver: nil snapshot")
	}
	s, err := place(snap, opts, nil)
	if err != nil {
		return nil, err
	}
	return s.plan(), nil
}

// place runs every placement phase; the state then holds the decisions
// (consolidation inspects and narrows them before the plan is built).
func place(snap *Snapshot, opts Options, cache *nodeCache) (*state, error) {
	s, err := newStateWith(snap, opts, cache)
	if err != nil {
		return nil, err
	}
	var free []*podGroup
	for _, g := range s.placementOrder() {
		if g.packable() {
			free = append(free, g)
			continue
		}
		s.placeGroup(g)
	}
	s.placeFree(free)
	s.retryAndRelax()
	s.improve()
	return s, nil
}

// plan builds the answer from a placed state.
func (s *state) plan() *Plan {
	plan := s.buildPlan()
	if !s.opts.SkipLowerBound {
		plan.LowerBoundPricePerHour = s.lowerBound(plan)
	}
	return plan
}

func newState(snap *Snapshot, opts Options) (*state, error) {
	return newStateWith(snap, opts, nil)
}

// newStateWith builds a solve's state; cache, when set, already indexed the
// snapshot's resources and existing nodes (see nodeCache).
func newStateWith(snap *Snapshot, opts Options, cache *nodeCache) (*state, error) {
	s := &state{
		snap: snap, opts: opts, cache: cache,
		classes: map[string]*constraintClass{}, topoByID: map[string]*topoGroup{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, pvs: map[string]*corev1.PersistentVolume{},
		usedNames: map[string]bool{}, nsLabels: snap.namespaceLabels(),
	}
	if cache != nil {
		s.res = cache.res.clone()
	} else {
		s.res = newResourceIndex()
		if err := observeSnapshot(s.res, snap); err != nil {
			return nil, err
		}
	}
	for _, pvc := range snap.PersistentVolumeClaims {
		if pvc != nil {
			s.pvcs[pvc.Namespace+"/"+pvc.Name] = pvc
		}
	}
	for _, pv := range snap.PersistentVolumes {
		if pv != nil {
			s.pvs[pv.Name] = pv
		}
	}
	s.storageClasses = make(map[string]*storagev1.StorageClass, len(snap.StorageClasses))
	for _, sc := range snap.StorageClasses {
		if sc != nil {
			s.storageClasses[sc.Name] = sc
		}
	}
	dsPods := DaemonSetPods(snap)
	for i, ds := range snap.DaemonSets {
		if ds == nil {
			continue
		}
		spec := &ds.Spec.Template.Spec
		d := &daemonSetOverhead{name: ds.Name, req: s.res.podRequests(dsPods[i]),
			selector: RequirementsFromLabels(spec.NodeSelector), tolerations: spec.Tolerations,
			ports: podHostPorts(dsPods[i])}
		if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil && spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			for _, t := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				d.terms = append(d.terms, RequirementsFromNodeSelector(t.MatchExpressions))
			}
		}
		s.daemonSets = append(s.daemonSets, d)
	}
	pools := append([]*Pool(nil), snap.Pools...)
	sort.SliceStable(pools, func(i, j int) bool {
		if pools[i].Weight != pools[j].Weight {
			return pools[i].Weight > pools[j].Weight
		}
		return pools[i].Name < pools[j].Name
	})
	for i, p := range pools {
		s.pools = append(s.pools, s.buildPool(p, i))
	}
	for _, n := range snap.Nodes {
		ns := s.buildExisting(n)
		s.existing = append(s.existing, ns)
		s.usedNames[ns.name] = true
		s.usedNames[ns.hostname] = true
	}
	s.slack = newRoomIndex(0, s.res.size())
	s.slackScratch = make(resVec, s.res.size())
	for range tierSteps {
		s.grown = append(s.grown, newRoomIndex(0, s.res.size()))
		s.grownScratch = append(s.grownScratch, make(resVec, s.res.size()))
		s.growScratch = append(s.growScratch, make(resVec, s.res.size()))
	}
	s.hiScratch, s.loScratch = make(resVec, s.res.size()), make(resVec, s.res.size())
	s.needScratch = make(resVec, s.res.size())
	s.groups = s.groupPods(snap.Pods)
	s.countBoundOwners()
	for _, g := range s.groups {
		if s.opts.IgnorePreferences {
			g.spec = g.spec.DeepCopy()
			g.relaxed = true
			stripPreferences(g.spec)
		}
		s.derive(g)
	}
	return s, nil
}

// derive computes a group's constraint class and topology rules from its
// (possibly relaxed) spec.
func (s *state) derive(g *podGroup) {
	g.class = s.classFor(nodeRequirements(g.spec, g.volumeReqs), g.spec.Spec.Tolerations)
	g.owned, g.ownedSelects = nil, nil
	for _, rule := range topologyRules(g.spec, s.nsLabels) {
		t := s.ensureTopology(rule)
		dup := false
		for _, o := range g.owned {
			dup = dup || o == t
		}
		if !dup {
			g.owned = append(g.owned, t)
			g.ownedSelects = append(g.ownedSelects, t.selects(g.ns, g.labels))
		}
	}
	g.pinKeysValid = false
}

func (s *state) classFor(reqs Requirements, tolerations []corev1.Toleration) *constraintClass {
	var b strings.Builder
	b.WriteString(reqs.String())
	for i := range tolerations {
		data, _ := tolerations[i].Marshal()
		b.Write(data)
		b.WriteByte(0)
	}
	key := b.String()
	if cl := s.classes[key]; cl != nil {
		return cl
	}
	cl := &constraintClass{id: len(s.classes), key: key, reqs: reqs, tolerations: tolerations}
	s.classes[key] = cl
	return cl
}

// pinKeysFor lists, sorted, the non-hostname keys whose domain a planned
// node must fix before carrying g.
func (s *state) pinKeysFor(g *podGroup) []string {
	if g.pinKeysValid {
		return g.pinKeys
	}
	var keys []string
	add := func(k string) {
		if k != v1alpha1.LabelHostname && !containsString(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, list := range [][]*topoGroup{g.owned, g.countedBy} {
		for _, t := range list {
			add(t.key)
			if t.kind == kindSpread {
				for _, k := range t.filter.keys() {
					add(k)
				}
			}
		}
	}
	sort.Strings(keys)
	g.pinKeys, g.pinKeysValid = keys, true
	return keys
}

func (s *state) allNodes() []*nodeState {
	out := make([]*nodeState, 0, len(s.existing)+len(s.planned))
	out = append(out, s.existing...)
	return append(out, s.planned...)
}

// placeGroup fills existing nodes first, then the slack of planned nodes
// (free), then grows planned nodes, then opens new ones, until the group is
// placed or nothing moves.
func (s *state) placeGroup(g *podGroup) {
	for g.remaining() > 0 {
		before := g.placed
		s.fill(g, s.existing, modeGrow)
		s.fillSlack(g)
		_, g.openCost = s.bestPool(g)
		s.fillGrow(g)
		for g.remaining() > 0 {
			ok, zoneLimited := s.open(g)
			if !ok || zoneLimited {
				break
			}
		}
		if g.placed == before {
			return
		}
	}
}

func (s *state) fill(g *podGroup, nodes []*nodeState, mode evalMode) {
	for _, n := range nodes {
		if g.remaining() == 0 {
			return
		}
		if ev := s.evaluate(g, n, mode); ev.k > 0 {
			s.commit(g, n, ev.k, ev.pins)
		}
	}
}

// fillSlack is fill(g, s.planned, modeSlack) looking only at the planned
// nodes whose chosen offering has room for a pod of g: placing one group
// after another on every planned node was quadratic in the pods.
func (s *state) fillSlack(g *podGroup) {
	if s.slack == nil {
		s.fill(g, s.planned, modeSlack)
		return
	}
	s.fillFrom(g, []*roomIndex{s.slack}, []resVec{g.req}, modeSlack, 0)
}

// fillGrow is fill(g, s.planned, modeGrow) looking only at the planned
// nodes that can take a pod of g within the ceiling evaluate sets: a node
// that carries pods takes g only at a cost per pod within g.openCost
// (opening a new node). A node whose cheapest way to take a pod steps its
// price up by more than tierSteps[j-1] costs that much over at most the
// pods its room at tierSteps[j] takes, so it can win only if that room
// takes step/openCost pods; and no step beyond openCost × the pods left
// can win. Asking each tier's index for room for that many pods, rather
// than one pod at the highest tier, keeps the nodes that have room but only
// for too few pods to be worth growing out of the walk: they were most of
// it, and their number grows with the plan. It stops after growTries
// refusals in a row.
func (s *state) fillGrow(g *podGroup) {
	ceiling := g.openCost * (1 + 1e-9)
	want := min(g.remaining(), g.perNodeBound())
	top := 0
	for top < len(tierSteps) && tierSteps[top] < ceiling*float64(want)*(1+1e-9)+1e-12 {
		top++
	}
	if s.slack == nil || top == len(tierSteps) {
		s.fill(g, s.planned, modeGrow)
		return
	}
	reqs := s.growReqs[:0]
	for j := 0; j <= top; j++ {
		m := int64(1)
		if j > 0 {
			// A step above tierSteps[j-1] within the ceiling needs more
			// than tierSteps[j-1]/ceiling pods; the margin keeps a node
			// rounding would put at the edge.
			m = max(1, int64(math.Floor(tierSteps[j-1]/(ceiling*(1+1e-6)))))
		}
		if m > int64(want) {
			reqs = append(reqs, nil)
			continue
		}
		r := s.growScratch[j]
		for d := range r {
			r[d] = g.req[d] * m
		}
		reqs = append(reqs, r)
	}
	s.growReqs = reqs
	s.fillFrom(g, s.grown[:top+1], reqs, modeGrow, growTries)
}

// fillFrom is fill(g, s.planned, mode) over the planned nodes some xs[j]
// says may take reqs[j] (see eachOf), in plan order. With tries > 0 it
// stops after that many nodes in a row refuse g.
func (s *state) fillFrom(g *podGroup, xs []*roomIndex, reqs []resVec, mode evalMode, tries int) {
	fails := 0
	eachOf(xs, reqs, func(i int) bool {
		if g.remaining() == 0 || (tries > 0 && fails >= tries) {
			return false
		}
		n := s.planned[i]
		if ev := s.evaluate(g, n, mode); ev.k > 0 {
			s.commit(g, n, ev.k, ev.pins)
			fails = 0
		} else {
			fails++
		}
		return true
	})
}

// growTries is how many planned nodes in a row may refuse a group in
// fillGrow before it stops asking and opens new nodes. Those that refuse
// have room but not where the group's rules put its pods (a zone spread
// retries every node after each zone step), so without a stop every
// group's every step walked most of the plan. On the scale bench the stop
// gave plans 0.1-0.3% cheaper at 5k and 20k and 0.12% dearer at 100k; on
// the golden and real-catalog workloads cheaper or equal (64 was dearer).
const growTries = 256

// noteSlack records a planned node's slack, and its room at each of
// tierSteps above its price, after it changed. The indexes serve placement
// only; improve, which changes nodes by other paths, drops them.
//
// tiered says s.grownScratch already holds what n's candidates offer at
// each step (commit takes it while narrowing them); else it is taken here.
func (s *state) noteSlack(n *nodeState, tiered bool) {
	if s.slack == nil {
		return
	}
	if n.seq >= len(s.planned) || s.planned[n.seq] != n {
		s.slack, s.grown = nil, nil // positions moved: scan instead
		return
	}
	s.slack.grow(len(s.planned))
	for _, x := range s.grown {
		x.grow(len(s.planned))
	}
	c := n.chosen()
	if c == nil {
		s.slack.set(n.seq, nil)
		for _, x := range s.grown {
			x.set(n.seq, nil)
		}
		return
	}
	if len(n.pool.minValues) > 0 {
		s.slack.set(n.seq, nil)
	} else {
		room := s.slackScratch
		for i := range room {
			room[i] = c.alloc[i] - n.used[i]
		}
		s.slack.set(n.seq, room)
	}
	if tiered {
		for _, room := range s.grownScratch {
			room.sub(n.used)
		}
	} else {
		n.tierRooms(s.grownScratch)
	}
	for j, x := range s.grown {
		x.set(n.seq, s.grownScratch[j])
	}
}

func (s *state) virtualNode(ps *poolState, cc *classCands, cl *constraintClass) *nodeState {
	return &nodeState{pool: ps, cands: cc.idx, maxAlloc: cc.maxAlloc.clone(),
		used: make(resVec, s.res.size()), classes: []int{cl.id}, hostname: "\x00new"}
}

// bestPool finds the pool a new node for g should come from: the highest
// weight that can take it, cheapest per pod among equal weights.
func (s *state) bestPool(g *podGroup) (*poolState, float64) {
	var best *poolState
	bestCost := math.Inf(1)
	for _, ps := range s.pools {
		if best != nil && ps.pool.Weight < best.pool.Weight {
			break
		}
		cc := s.forClass(ps, g.class)
		if len(cc.idx) == 0 {
			continue
		}
		ev := s.evaluate(g, s.virtualNode(ps, cc, g.class), modeGrow)
		if ev.k == 0 {
			continue
		}
		if best == nil || ev.perPod < bestCost {
			best, bestCost = ps, ev.perPod
		}
	}
	return best, bestCost
}

// open plans a new node for g on bestPool and places as many pods as the
// cheapest-per-pod candidate takes.
func (s *state) open(g *podGroup) (ok bool, zoneLimited bool) {
	best, _ := s.bestPool(g)
	if best == nil {
		return false, false
	}
	n := s.virtualNode(best, s.forClass(best, g.class), g.class)
	n.name = s.nextName(best)
	n.hostname = n.name
	ev := s.evaluate(g, n, modeGrow)
	if ev.k == 0 {
		return false, false
	}
	n.seq = len(s.planned)
	s.planned = append(s.planned, n)
	s.commit(g, n, ev.k, ev.pins)
	return true, ev.zoneLimited
}

func (s *state) nextName(ps *poolState) string {
	for {
		ps.nextID++
		name := fmt.Sprintf("%s-%d", ps.pool.Name, ps.nextID)
		if !s.usedNames[name] {
			s.usedNames[name] = true
			return name
		}
	}
}

// retryAndRelax retries failed groups while that makes progress (a later
// group may have created the domain an affinity needs), then relaxes soft
// constraints one step at a time, as Karpenter's preferences do.
func (s *state) retryAndRelax() {
	for {
		var failed []*podGroup
		for _, g := range s.groups {
			if g.remaining() > 0 {
				failed = append(failed, g)
			}
		}
		if len(failed) == 0 {
			return
		}
		progress := false
		for _, g := range failed {
			before := g.placed
			s.placeGroup(g)
			progress = progress || g.placed > before
		}
		if progress {
			continue
		}
		relaxed := false
		for _, g := range failed {
			if g.remaining() == 0 {
				continue
			}
			if !g.relaxed {
				g.spec = g.spec.DeepCopy()
				g.relaxed = true
			}
			if what := relax(g.spec, s.hasPreferNoSchedule()); what != "" {
				g.relaxLog = append(g.relaxLog, what)
				s.derive(g)
				s.placeGroup(g)
				relaxed = true
			}
		}
		if !relaxed {
			return
		}
	}
}

// placementOrder puts groups that need a node of their own per pod (self
// hostname anti-affinity, host ports) first: those nodes are needed anyway,
// and everything placed after fills their slack instead of opening more.
// Within each tier the queue stays largest first.
func (s *state) placementOrder() []*podGroup {
	order := make([]*podGroup, 0, len(s.groups))
	for pass := 0; pass < 2; pass++ {
		for _, g := range s.groups {
			if g.needsOwnNodes() == (pass == 0) {
				order = append(order, g)
			}
		}
	}
	return order
}

// observeSnapshot registers every resource name the snapshot mentions and
// rejects malformed input.
func observeSnapshot(res *resourceIndex, snap *Snapshot) error {
	seenPools := map[string]bool{}
	for _, p := range snap.Pools {
		if p == nil {
			return errors.New("solver: nil pool")
		}
		if seenPools[p.Name] {
			return fmt.Errorf("solver: duplicate pool %q", p.Name)
		}
		seenPools[p.Name] = true
		res.observe(p.Limits, p.InUse)
		for _, it := range p.InstanceTypes {
			if it != nil {
				res.observe(it.Allocatable, it.Capacity)
			}
		}
	}
	for _, n := range snap.Nodes {
		if n == nil || n.Node == nil {
			return errors.New("solver: node without a Node object")
		}
		res.observe(n.Node.Status.Allocatable)
		for _, p := range n.Pods {
			if p != nil {
				res.observePod(p)
			}
		}
	}
	for _, p := range snap.Pods {
		if p != nil {
			res.observePod(p)
		}
	}
	for _, ds := range snap.DaemonSets {
		if ds != nil {
			res.observePod(&corev1.Pod{Spec: ds.Spec.Template.Spec})
		}
	}
	res.vols = newVolumeResolver(snap)
	res.observeDrivers(snap.Pods)
	for _, n := range snap.Nodes {
		res.observeDrivers(n.Pods)
	}
	return nil
}

// hasPreferNoSchedule reports whether any pool has a PreferNoSchedule taint,
// so tolerating them is a relaxation worth trying (Karpenter's rule).
func (s *state) hasPreferNoSchedule() bool {
	for _, ps := range s.pools {
		for _, t := range ps.taints {
			if t.Effect == corev1.TaintEffectPreferNoSchedule {
				return true
			}
		}
	}
	return false
}
