package solver

import (
	"sort"
	"strconv"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

type topoKind uint8

const (
	kindSpread topoKind = iota
	kindAffinity
	kindAntiAffinity
)

func (k topoKind) String() string {
	switch k {
	case kindSpread:
		return "topology spread"
	case kindAffinity:
		return "pod affinity"
	}
	return "pod anti-affinity"
}

// topoGroup tracks one topology rule shared by all pods that declare it
// (deduplicated like Karpenter's TopologyGroup): per domain, how many
// selected pods it holds and, for anti-affinity, how many owners, so the
// inverse rule (a pod must not land next to an owner that repels it) is O(1).
type topoGroup struct {
	kind       topoKind
	key        string
	allNS      bool
	namespaces []string
	selector   labels.Selector
	maxSkew    int32
	minDomains int32
	// preferred marks a preferred anti-affinity term: it steers its own pod
	// while present but never repels others (Karpenter ignores the inverse
	// of preferred anti-affinity, and kube-scheduler only scores it).
	preferred bool
	// filter (spread only) decides which nodes count: nodeAffinityPolicy and
	// nodeTaintsPolicy.
	filter *nodeFilter
	id     string

	counts map[string]int32
	owners map[string]int32
	// total counts selected pods anywhere (affinity bootstrap rule).
	total int32
	// universe is every domain of key a pod could reach (spread, non-hostname).
	universe []string
	// hosts (hostname spread) is the existing nodes kube-scheduler counts
	// as domains for a pod placed on one of them.
	hosts *hostDomains
}

// hostDomains keeps the minimum a hostname spread has over the existing
// nodes its filter admits. Planned nodes are no domain for a pod bound to
// an existing node: kube-scheduler binds it now, before any new machine
// joins. Counts on existing nodes only grow during a solve, so the minimum
// is recomputed only when the last domain holding it grows.
type hostDomains struct {
	eligible map[string]bool
	min      int32
	atMin    int
	valid    bool
}

// nodeFilter is a spread constraint's view of which nodes are domains.
type nodeFilter struct {
	selector    Requirements
	terms       []Requirements
	honorTaints bool
	tolerations []corev1.Toleration
	key         string
}

func (f *nodeFilter) matches(l LabelGetter, taints []corev1.Taint) bool {
	if f == nil {
		return true
	}
	if !f.selector.Matches(l) {
		return false
	}
	if len(f.terms) > 0 {
		ok := false
		for _, t := range f.terms {
			if t.Matches(l) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.honorTaints {
		if _, ok := tolerates(f.tolerations, taints); !ok {
			return false
		}
	}
	return true
}

func (f *nodeFilter) keys() []string {
	if f == nil {
		return nil
	}
	var keys []string
	for _, r := range f.selector {
		keys = append(keys, r.Key)
	}
	for _, t := range f.terms {
		for _, r := range t {
			keys = append(keys, r.Key)
		}
	}
	return keys
}

func (t *topoGroup) selects(ns string, podLabels map[string]string) bool {
	if !t.allNS && !containsString(t.namespaces, ns) {
		return false
	}
	return t.selector.Matches(labels.Set(podLabels))
}

// minCount is the global minimum for skew on a planned node: zero for
// hostname (a new node is always a possible empty domain) or when fewer
// than minDomains exist.
func (t *topoGroup) minCount() int32 {
	if t.key == v1alpha1.LabelHostname || len(t.universe) == 0 {
		return 0
	}
	if t.minDomains > 0 && int32(len(t.universe)) < t.minDomains {
		return 0
	}
	min := int32(1 << 30)
	for _, d := range t.universe {
		if c := t.counts[d]; c < min {
			min = c
		}
	}
	return min
}

// existingMinCount is the global minimum for skew on an existing node.
// For hostname it is kube-scheduler's: the least any existing node the
// rule's filter admits holds (zero when fewer than minDomains are
// admitted). Karpenter takes zero, as for a planned node, and launches a
// machine for a pod kube-scheduler would bind to an existing node. Other
// keys keep minCount: their universe already holds the domains existing
// nodes have.
func (t *topoGroup) existingMinCount() int32 {
	h := t.hosts
	if h == nil {
		return t.minCount()
	}
	if t.minDomains > 0 && int32(len(h.eligible)) < t.minDomains {
		return 0
	}
	if !h.valid {
		h.min, h.atMin = 1<<30, 0
		for d := range h.eligible {
			switch c := t.counts[d]; {
			case c < h.min:
				h.min, h.atMin = c, 1
			case c == h.min:
				h.atMin++
			}
		}
		if h.atMin == 0 {
			h.min = 0
		}
		h.valid = true
	}
	return h.min
}

func selectorFor(ls *metav1.LabelSelector, pod *corev1.Pod, matchKeys, mismatchKeys []string) labels.Selector {
	if ls == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing()
	}
	for _, k := range matchKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.In, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, k := range mismatchKeys {
		if v, ok := pod.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.NotIn, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	return sel
}

// termNamespaces resolves the namespaces a pod affinity term looks at, as
// kube-scheduler does: the union of term.namespaces and the namespaces its
// namespaceSelector matches; the pod's own when both are empty. nsLabels
// (nil when the snapshot has no Namespace objects) resolves the selector.
func termNamespaces(term *corev1.PodAffinityTerm, pod *corev1.Pod, nsLabels map[string]map[string]string) (bool, []string) {
	sel := term.NamespaceSelector
	if sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return true, nil // {} selects every namespace
	}
	ns := append([]string(nil), term.Namespaces...)
	if sel != nil && nsLabels != nil {
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			for name, l := range nsLabels {
				if s.Matches(labels.Set(l)) && !containsString(ns, name) {
					ns = append(ns, name)
				}
			}
		}
	} else if sel != nil && !containsString(ns, pod.Namespace) {
		ns = append(ns, pod.Namespace)
	}
	if len(ns) == 0 && (sel == nil || nsLabels == nil) {
		ns = []string{pod.Namespace}
	}
	sort.Strings(ns)
	return false, ns
}

// topologyRules reads the topology rules a (possibly relaxed) pod declares.
// Preferred terms count as required until relaxed away, as in Karpenter.
func topologyRules(pod *corev1.Pod, nsLabels map[string]map[string]string) []*topoGroup {
	var out []*topoGroup
	for _, c := range pod.Spec.TopologySpreadConstraints {
		t := &topoGroup{kind: kindSpread, key: c.TopologyKey, namespaces: []string{pod.Namespace}, maxSkew: c.MaxSkew,
			selector: selectorFor(c.LabelSelector, pod, c.MatchLabelKeys, nil)}
		if c.MinDomains != nil {
			t.minDomains = *c.MinDomains
		}
		f := &nodeFilter{}
		if c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor {
			f.selector = RequirementsFromLabels(pod.Spec.NodeSelector)
			if aff := pod.Spec.Affinity; aff != nil && aff.NodeAffinity != nil && aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
					f.terms = append(f.terms, RequirementsFromNodeSelector(term.MatchExpressions))
				}
			}
		}
		if c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor {
			f.honorTaints = true
			f.tolerations = pod.Spec.Tolerations
		}
		f.key = filterKey(f)
		if f.key == "" {
			f = nil
		}
		t.filter = f
		out = append(out, t)
	}
	aff := pod.Spec.Affinity
	if aff == nil {
		return out
	}
	addTerm := func(kind topoKind, term *corev1.PodAffinityTerm, preferred bool) {
		t := &topoGroup{kind: kind, key: term.TopologyKey, preferred: preferred && kind == kindAntiAffinity,
			selector: selectorFor(term.LabelSelector, pod, term.MatchLabelKeys, term.MismatchLabelKeys)}
		t.allNS, t.namespaces = termNamespaces(term, pod, nsLabels)
		out = append(out, t)
	}
	if pa := aff.PodAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			addTerm(kindAffinity, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], false)
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			addTerm(kindAffinity, &pa.PreferredDuringSchedulingIgnoredDuringExecution[i].PodAffinityTerm, true)
		}
	}
	if pa := aff.PodAntiAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			addTerm(kindAntiAffinity, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], false)
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			addTerm(kindAntiAffinity, &pa.PreferredDuringSchedulingIgnoredDuringExecution[i].PodAffinityTerm, true)
		}
	}
	return out
}

func requiredAntiAffinityRules(pod *corev1.Pod, nsLabels map[string]map[string]string) []*topoGroup {
	if pod.Spec.Affinity == nil || pod.Spec.Affinity.PodAntiAffinity == nil {
		return nil
	}
	var out []*topoGroup
	for i := range pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		term := &pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i]
		t := &topoGroup{kind: kindAntiAffinity, key: term.TopologyKey,
			selector: selectorFor(term.LabelSelector, pod, term.MatchLabelKeys, term.MismatchLabelKeys)}
		t.allNS, t.namespaces = termNamespaces(term, pod, nsLabels)
		out = append(out, t)
	}
	return out
}

func filterKey(f *nodeFilter) string {
	var b strings.Builder
	b.WriteString(f.selector.String())
	for _, t := range f.terms {
		b.WriteString("|")
		b.WriteString(t.String())
	}
	if f.honorTaints {
		b.WriteString("|taints:")
		for _, t := range f.tolerations {
			b.WriteString(t.Key + "=" + t.Value + ":" + string(t.Effect) + string(t.Operator) + ";")
		}
	}
	if b.String() == "[]" {
		return ""
	}
	return b.String()
}

func (t *topoGroup) identity() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(t.kind)))
	b.WriteByte('|')
	b.WriteString(t.key)
	b.WriteByte('|')
	if t.allNS {
		b.WriteString("*")
	} else {
		b.WriteString(strings.Join(t.namespaces, ","))
	}
	b.WriteByte('|')
	b.WriteString(t.selector.String())
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(int(t.maxSkew)))
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(int(t.minDomains)))
	if t.preferred {
		b.WriteString("|preferred")
	}
	if t.filter != nil {
		b.WriteByte('|')
		b.WriteString(t.filter.key)
	}
	return b.String()
}

// ensureTopology returns the shared group for a rule, creating it with counts
// of everything already bound or placed.
func (s *state) ensureTopology(spec *topoGroup) *topoGroup {
	id := spec.identity()
	if t := s.topoByID[id]; t != nil {
		return t
	}
	t := spec
	t.id = id
	t.counts = map[string]int32{}
	if t.kind == kindAntiAffinity {
		t.owners = map[string]int32{}
	}
	s.topoByID[id] = t
	s.topos = append(s.topos, t)
	if t.kind == kindSpread && t.key != v1alpha1.LabelHostname {
		t.universe = s.spreadUniverse(t)
	}
	if t.kind == kindSpread && t.key == v1alpha1.LabelHostname {
		t.hosts = &hostDomains{eligible: map[string]bool{}}
		for _, n := range s.existing {
			if t.filter.matches(LabelMap(n.labels), n.nodeTaints) {
				t.hosts.eligible[n.hostname] = true
			}
		}
	}
	s.countBound(t)
	// Count pods this solve placed so far and link groups the rule selects.
	for _, g := range s.groupsMaybeSelected(t) {
		if !t.selects(g.ns, g.labels) {
			continue
		}
		g.countedBy = append(g.countedBy, t)
		g.pinKeysValid = false
	}
	for _, n := range s.allNodes() {
		for _, gc := range n.groups {
			if t.selects(gc.group.ns, gc.group.labels) {
				if !n.existing && t.key != v1alpha1.LabelHostname {
					s.pinToChosen(n, t.key)
					for _, k := range t.filter.keys() {
						s.pinToChosen(n, k)
					}
				}
				s.count(t, n, int32(gc.count))
			}
		}
	}
	return t
}

// count adds pods selected by t on node n to n's domain.
func (s *state) count(t *topoGroup, n *nodeState, k int32) {
	d, ok := n.domain(t.key)
	if !ok {
		return
	}
	if t.kind == kindSpread && t.filter != nil && !t.filter.matches(n.labelGetter(), n.taints()) {
		return
	}
	if h := t.hosts; h != nil && h.valid && n.existing && t.counts[d] == h.min && h.eligible[d] {
		if h.atMin--; h.atMin == 0 {
			h.valid = false
		}
	}
	t.counts[d] += k
	t.total += k
}

// spreadUniverse lists every domain a spread rule's pods could land in:
// values on existing nodes and on every launchable candidate, filtered by
// the rule's node filter.
func (s *state) spreadUniverse(t *topoGroup) []string {
	seen := map[string]bool{}
	for _, n := range s.existing {
		if v, ok := n.labels[t.key]; ok && t.filter.matches(LabelMap(n.labels), n.nodeTaints) {
			seen[v] = true
		}
	}
	for _, ps := range s.pools {
		for i := range ps.cands {
			c := &ps.cands[i]
			if v, ok := c.Label(t.key); ok && !seen[v] && t.filter.matches(c, ps.taints) {
				seen[v] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// groupsMaybeSelected lists, in s.groups order, the groups rule t may
// select: when its selector requires a label to have one of some values,
// only the groups with such a label, from an index of groups by label;
// else every group. Matching every rule against every group made deriving
// the rules quadratic in the deployments.
func (s *state) groupsMaybeSelected(t *topoGroup) []*podGroup {
	reqs, ok := t.selector.Requirements()
	if !ok {
		return s.groups
	}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		if s.groupsByLabel == nil || s.groupsIndexed != len(s.groups) {
			s.indexGroupsByLabel()
		}
		vals := r.Values().UnsortedList()
		if len(vals) == 1 {
			return s.groupsByLabel[r.Key()+"\x00"+vals[0]]
		}
		var idx []int
		for _, v := range vals {
			for _, g := range s.groupsByLabel[r.Key()+"\x00"+v] {
				idx = append(idx, s.groupPos[g])
			}
		}
		sort.Ints(idx)
		out := make([]*podGroup, 0, len(idx))
		for i, j := range idx {
			if i == 0 || idx[i-1] != j {
				out = append(out, s.groups[j])
			}
		}
		return out
	}
	return s.groups
}

func (s *state) indexGroupsByLabel() {
	s.groupsByLabel = map[string][]*podGroup{}
	s.groupPos = make(map[*podGroup]int, len(s.groups))
	for i, g := range s.groups {
		s.groupPos[g] = i
		for k, v := range g.labels {
			s.groupsByLabel[k+"\x00"+v] = append(s.groupsByLabel[k+"\x00"+v], g)
		}
	}
	s.groupsIndexed = len(s.groups)
}
