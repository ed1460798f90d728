package solver

import (
	"sort"
	"strconv"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/klog/v2"
)

// podGroup is a set of pending pods that are interchangeable for scheduling:
// same namespace, labels, requests, node constraints, tolerations, topology
// and host ports. The solver places a group in batches instead of pod by pod.
type podGroup struct {
	idx  int
	key  string
	pods []*corev1.Pod
	// placed counts pods[:placed] that have a node.
	placed int
	// spec is the representative pod; a deep copy once preferences are relaxed.
	spec    *corev1.Pod
	relaxed bool
	ns      string
	labels  map[string]string
	req     resVec
	ports   []hostPort
	// volumeReqs pin the group to the zones of its bound volumes.
	volumeReqs Requirements

	class *constraintClass
	// owned are the topology groups this group's own constraints create.
	owned []*topoGroup
	// countedBy are the topology groups whose selector matches this group.
	countedBy []*topoGroup
	// pinKeys are the non-hostname topology keys a planned node must commit
	// to before it can carry this group (so topology counts are exact).
	pinKeys      []string
	pinKeysValid bool
	// ownedSelects[i] says whether owned[i]'s selector matches this group.
	ownedSelects []bool
	// openCost is the $/h per pod of opening a new node for this group (+Inf
	// when none can open); growing a planned node must not cost more.
	openCost float64
	// relaxLog lists the soft constraints dropped, in order.
	relaxLog []string
}

func (g *podGroup) remaining() int { return len(g.pods) - g.placed }

// constraintClass is what decides node compatibility: label requirements and
// tolerations. Many groups share one class (e.g. all unconstrained pods), so
// candidate compatibility is computed once per class and pool.
type constraintClass struct {
	id          int
	key         string
	reqs        Requirements
	tolerations []corev1.Toleration
}

type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
}

func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || a.ip == "" || b.ip == "" || a.ip == "0.0.0.0" || b.ip == "0.0.0.0"
}

func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for ci := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[ci].Ports {
			if p.HostPort > 0 {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out = append(out, hostPort{protocol: proto, ip: p.HostIP, port: p.HostPort})
			}
		}
	}
	return out
}

func portsConflict(a, b []hostPort) bool {
	for _, x := range a {
		for _, y := range b {
			if x.conflicts(y) {
				return true
			}
		}
	}
	return false
}

// volumeZoneRequirements returns zone requirements from the PVs bound to the
// pod's claims: a pod cannot run outside its volumes' zones. Zone keys are
// read through their aliases (failure-domain.beta.kubernetes.io/zone,
// topology.ebs.csi.aws.com/zone).
func (s *state) volumeZoneRequirements(pod *corev1.Pod) Requirements {
	var out Requirements
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		pvc := s.pvcs[pod.Namespace+"/"+vol.PersistentVolumeClaim.ClaimName]
		if pvc == nil {
			continue
		}
		if pvc.Spec.VolumeName == "" {
			out = append(out, s.unboundClaimZoneRequirements(pvc)...)
			continue
		}
		pv := s.pvs[pvc.Spec.VolumeName]
		if pv == nil {
			continue
		}
		for _, k := range []string{v1alpha1.LabelZone, v1alpha1.LabelFailureDomainZone} {
			if z, ok := pv.Labels[k]; ok {
				out = append(out, Requirement{Key: v1alpha1.LabelZone, Operator: OpIn, Values: []string{z}})
			}
		}
		if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
			continue
		}
		out = append(out, pvZoneRequirements(pv.Spec.NodeAffinity.Required.NodeSelectorTerms)...)
	}
	return out
}

// unboundClaimZoneRequirements: a claim of a WaitForFirstConsumer class is
// provisioned in the zone of the node its pod lands on, so the pod must land
// in one the class allows (allowedTopologies; terms ORed, keys read through
// their aliases). Karpenter's volumetopology does the same.
func (s *state) unboundClaimZoneRequirements(pvc *corev1.PersistentVolumeClaim) Requirements {
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return nil
	}
	sc := s.storageClasses[*pvc.Spec.StorageClassName]
	if sc == nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return nil
	}
	terms := make([]corev1.NodeSelectorTerm, 0, len(sc.AllowedTopologies))
	for _, t := range sc.AllowedTopologies {
		var term corev1.NodeSelectorTerm
		for _, e := range t.MatchLabelExpressions {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: e.Key, Operator: corev1.NodeSelectorOpIn, Values: e.Values})
		}
		terms = append(terms, term)
	}
	return pvZoneRequirements(terms)
}

// pvZoneRequirements reads the zone part of a PV's node affinity. Terms are
// ORed: when every term allows a set of zones (In), the pod may use any zone
// of their union; a term that does not limit zones leaves the pod free.
// Terms that only exclude zones (NotIn) are kept from the first term, as
// Karpenter does.
func pvZoneRequirements(terms []corev1.NodeSelectorTerm) Requirements {
	var union []string
	for _, term := range terms {
		var allowed []string
		inSeen, other := false, false
		for _, r := range term.MatchExpressions {
			if normalizeKey(r.Key) != v1alpha1.LabelZone {
				continue
			}
			if r.Operator != corev1.NodeSelectorOpIn {
				other = true
				continue
			}
			if !inSeen {
				allowed, inSeen = append([]string(nil), r.Values...), true
				continue
			}
			var both []string
			for _, v := range allowed {
				if containsString(r.Values, v) {
					both = append(both, v)
				}
			}
			allowed = both
		}
		if other {
			return firstTermZoneRequirements(terms)
		}
		if !inSeen {
			return nil
		}
		for _, v := range allowed {
			if !containsString(union, v) {
				union = append(union, v)
			}
		}
	}
	if len(terms) == 0 {
		return nil
	}
	sort.Strings(union)
	return Requirements{{Key: v1alpha1.LabelZone, Operator: OpIn, Values: union}}
}

func firstTermZoneRequirements(terms []corev1.NodeSelectorTerm) Requirements {
	var out Requirements
	for _, r := range terms[0].MatchExpressions {
		if normalizeKey(r.Key) == v1alpha1.LabelZone {
			out = append(out, Requirement{Key: v1alpha1.LabelZone, Operator: Operator(r.Operator), Values: r.Values})
		}
	}
	return out
}

// groupKey builds the identity of a pod's scheduling shape. Protobuf encoding
// of the API structs is deterministic (map keys are sorted).
func groupKey(pod *corev1.Pod, req resVec, volumeReqs Requirements) string {
	var b strings.Builder
	b.WriteString(pod.Namespace)
	b.WriteByte(0)
	writeSortedMap(&b, pod.Labels)
	for _, x := range req {
		b.WriteString(strconv.FormatInt(x, 36))
		b.WriteByte(',')
	}
	b.WriteByte(0)
	writeSortedMap(&b, pod.Spec.NodeSelector)
	if pod.Spec.Affinity != nil {
		data, _ := pod.Spec.Affinity.Marshal()
		b.Write(data)
	}
	b.WriteByte(0)
	for i := range pod.Spec.Tolerations {
		data, _ := pod.Spec.Tolerations[i].Marshal()
		b.Write(data)
		b.WriteByte(1)
	}
	b.WriteByte(0)
	for i := range pod.Spec.TopologySpreadConstraints {
		data, _ := pod.Spec.TopologySpreadConstraints[i].Marshal()
		b.Write(data)
		b.WriteByte(1)
	}
	b.WriteByte(0)
	for _, p := range podHostPorts(pod) {
		b.WriteString(string(p.protocol) + p.ip + strconv.Itoa(int(p.port)))
		b.WriteByte(1)
	}
	b.WriteByte(0)
	b.WriteString(volumeReqs.String())
	return b.String()
}

func writeSortedMap(b *strings.Builder, m map[string]string) {
	if len(m) == 0 {
		b.WriteByte(0)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(1)
	}
	b.WriteByte(0)
}

// groupPods buckets pods by shape and orders the buckets like Karpenter's
// queue (cpu, then memory, descending) so big pods open nodes first.
func (s *state) groupPods(pods []*corev1.Pod) []*podGroup {
	byKey := map[string]*podGroup{}
	var groups []*podGroup
	claimUse := s.res.claimUse(pods)
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		req := s.res.podRequests(pod)
		s.res.addVolumes(req, pod, claimUse)
		vreqs := s.volumeZoneRequirements(pod)
		key := groupKey(pod, req, vreqs)
		g := byKey[key]
		if g == nil {
			g = &podGroup{key: key, spec: pod, ns: pod.Namespace, labels: pod.Labels, req: req,
				ports: podHostPorts(pod), volumeReqs: vreqs}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.pods = append(g.pods, pod)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].req, groups[j].req
		if a[resCPU] != b[resCPU] {
			return a[resCPU] > b[resCPU]
		}
		if a[resMemory] != b[resMemory] {
			return a[resMemory] > b[resMemory]
		}
		return groups[i].key < groups[j].key
	})
	for i, g := range groups {
		g.idx = i
	}
	return groups
}

// nodeRequirements returns the label requirements a pod's node must meet,
// treating the first required affinity term and the heaviest preferred term
// as required, as Karpenter does before relaxing them.
func nodeRequirements(pod *corev1.Pod, volumeReqs Requirements) Requirements {
	reqs := RequirementsFromLabels(pod.Spec.NodeSelector)
	if aff := pod.Spec.Affinity; aff != nil && aff.NodeAffinity != nil {
		na := aff.NodeAffinity
		if na.RequiredDuringSchedulingIgnoredDuringExecution != nil && len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) > 0 {
			reqs = append(reqs, RequirementsFromNodeSelector(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions)...)
		}
		if len(na.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			best := 0
			for i, t := range na.PreferredDuringSchedulingIgnoredDuringExecution {
				if t.Weight > na.PreferredDuringSchedulingIgnoredDuringExecution[best].Weight {
					best = i
				}
			}
			reqs = append(reqs, RequirementsFromNodeSelector(na.PreferredDuringSchedulingIgnoredDuringExecution[best].Preference.MatchExpressions)...)
		}
	}
	return append(reqs, volumeReqs...)
}

// stripPreferences removes every soft constraint (Options.IgnorePreferences).
func stripPreferences(pod *corev1.Pod) {
	if aff := pod.Spec.Affinity; aff != nil {
		if aff.NodeAffinity != nil {
			aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = nil
		}
		if aff.PodAffinity != nil {
			aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = nil
		}
		if aff.PodAntiAffinity != nil {
			aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = nil
		}
	}
	var keep []corev1.TopologySpreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			keep = append(keep, c)
		}
	}
	pod.Spec.TopologySpreadConstraints = keep
}

// relax removes one soft constraint in Karpenter's order (preferences.go):
// an extra required node affinity term, a preferred pod affinity term, a
// preferred pod anti-affinity term, a preferred node affinity term, a
// ScheduleAnyway spread constraint, then (when preferNoSchedule: some pool
// has such a taint) a toleration of PreferNoSchedule taints. It reports
// what it relaxed, or "".
func relax(pod *corev1.Pod, preferNoSchedule bool) string {
	if aff := pod.Spec.Affinity; aff != nil {
		if na := aff.NodeAffinity; na != nil && na.RequiredDuringSchedulingIgnoredDuringExecution != nil &&
			len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) > 1 {
			na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[1:]
			return "required node affinity term"
		}
		if pa := aff.PodAffinity; pa != nil && len(pa.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			terms := pa.PreferredDuringSchedulingIgnoredDuringExecution
			sort.SliceStable(terms, func(i, j int) bool { return terms[i].Weight > terms[j].Weight })
			pa.PreferredDuringSchedulingIgnoredDuringExecution = terms[1:]
			return "preferred pod affinity term"
		}
		if pa := aff.PodAntiAffinity; pa != nil && len(pa.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			terms := pa.PreferredDuringSchedulingIgnoredDuringExecution
			sort.SliceStable(terms, func(i, j int) bool { return terms[i].Weight > terms[j].Weight })
			pa.PreferredDuringSchedulingIgnoredDuringExecution = terms[1:]
			return "preferred pod anti-affinity term"
		}
		if na := aff.NodeAffinity; na != nil && len(na.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			terms := na.PreferredDuringSchedulingIgnoredDuringExecution
			sort.SliceStable(terms, func(i, j int) bool { return terms[i].Weight > terms[j].Weight })
			na.PreferredDuringSchedulingIgnoredDuringExecution = terms[1:]
			return "preferred node affinity term"
		}
	}
	for i, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.ScheduleAnyway {
			pod.Spec.TopologySpreadConstraints = append(pod.Spec.TopologySpreadConstraints[:i:i], pod.Spec.TopologySpreadConstraints[i+1:]...)
			return "ScheduleAnyway topology spread constraint"
		}
	}
	if preferNoSchedule && !toleratesAllPreferNoSchedule(pod.Spec.Tolerations) {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectPreferNoSchedule})
		return "PreferNoSchedule taints"
	}
	return ""
}

func toleratesAllPreferNoSchedule(tolerations []corev1.Toleration) bool {
	for _, t := range tolerations {
		if t.Key == "" && t.Operator == corev1.TolerationOpExists && (t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule) {
			return true
		}
	}
	return false
}

// tolerates reports whether tolerations tolerate every taint that blocks
// scheduling (NoSchedule, NoExecute); PreferNoSchedule never blocks. It is
// the rule for daemonsets and spread node filters (kube-scheduler's).
func tolerates(tolerations []corev1.Toleration, taints []corev1.Taint) (corev1.Taint, bool) {
	return toleratesTaints(tolerations, taints, false)
}

// podTolerates is the rule for pending pods: PreferNoSchedule taints repel
// them too until relax tolerates them as a last resort, as in Karpenter.
func podTolerates(tolerations []corev1.Toleration, taints []corev1.Taint) (corev1.Taint, bool) {
	return toleratesTaints(tolerations, taints, true)
}

func toleratesTaints(tolerations []corev1.Toleration, taints []corev1.Taint, preferred bool) (corev1.Taint, bool) {
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !preferred {
			continue
		}
		ok := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(klog.Background(), t, true) {
				ok = true
				break
			}
		}
		if !ok {
			return *t, false
		}
	}
	return corev1.Taint{}, true
}

// needsOwnNodes reports whether no two pods of the group can share a node.
func (g *podGroup) needsOwnNodes() bool {
	if len(g.ports) > 0 {
		return true
	}
	for i, t := range g.owned {
		if t.kind == kindAntiAffinity && t.key == v1alpha1.LabelHostname && g.ownedSelects[i] {
			return true
		}
	}
	return false
}
