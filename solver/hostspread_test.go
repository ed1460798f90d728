package solver_test

import (
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	corev1 "k8s.io/api/core/v1"
)

// Hostname topology spread. New machines follow Karpenter (a new node is
// always an empty domain, so a planned node takes at most maxSkew selected
// pods); a pod bound to an existing node follows kube-scheduler, which
// binds it now: the minimum is over the existing nodes the constraint's
// nodeAffinityPolicy and nodeTaintsPolicy admit, never over machines still
// to be planned or nodes being removed.

var webLabels = map[string]string{"app": "web"}

func hostSpread(maxSkew int32, mods ...func(*corev1.TopologySpreadConstraint)) podOpt {
	return withSpread(v1alpha1.LabelHostname, maxSkew, corev1.DoNotSchedule, webLabels, mods...)
}

func webPods(n int, prefix string, opts ...podOpt) []*corev1.Pod {
	return pods(n, prefix, "100m", "100Mi", append([]podOpt{withLabels("app", "web")}, opts...)...)
}

func placedOnExisting(p *Plan) map[string]int {
	out := map[string]int{}
	for _, pl := range p.Order {
		if !pl.New {
			out[pl.NodeName]++
		}
	}
	return out
}

func taintedWith(key string) func(*Node) {
	return func(n *Node) {
		n.Node.Spec.Taints = append(n.Node.Spec.Taints, corev1.Taint{Key: key, Value: "true", Effect: corev1.TaintEffectNoSchedule})
	}
}

var hostSpreadCases = []ruleCase{
	// Karpenter: scheduling/topology_test.go "should balance pods across nodes"
	{name: "should balance pods across hostnames",
		snap:   func() *Snapshot { return onePool(webPods(4, "web", hostSpread(1))) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 4) }},
	// Karpenter: scheduling/topology_test.go "should balance pods on the same hostname up to maxskew"
	{name: "should balance pods on the same hostname up to maxskew",
		snap:   func() *Snapshot { return onePool(webPods(4, "web", hostSpread(4))) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	// Karpenter: scheduling/topology_test.go "balance multiple deployments with hostname topology spread"
	{name: "balance multiple deployments with hostname topology spread",
		snap: func() *Snapshot {
			spread := func(app string) []*corev1.Pod {
				sel := map[string]string{"app": app}
				return pods(2, app, "100m", "100Mi", withLabels("app", app), withSpread(v1alpha1.LabelHostname, 1, corev1.DoNotSchedule, sel))
			}
			return onePool(append(spread("app1"), spread("app2")...))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 2) }},
	// Karpenter: scheduling/suite_test.go "should balance pods across hostnames with in-flight
	// newNodes". Deliberate difference: Karpenter takes the global minimum as zero
	// for hostname and launches five more nodes; kube-scheduler's minimum over the
	// four in-flight nodes is 1, so it binds a pod to each and the solver launches
	// nothing for them.
	{name: "should balance pods across hostnames with in-flight nodes",
		snap: func() *Snapshot {
			s := onePool(webPods(4, "web", hostSpread(1)))
			for _, name := range []string{"f1", "f2", "f3", "f4"} {
				s.Nodes = append(s.Nodes, existingNode(name, "zone-a", 4, 16, webPods(1, name, hostSpread(1)), inFlight))
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 0)
			for n, c := range placedOnExisting(p) {
				if c != 1 {
					t.Fatalf("%d pods on %s, want one per node", c, n)
				}
			}
		}},
	// kube-scheduler PodTopologySpread, nodeAffinityPolicy Honor (the default):
	// a node the pod's nodeSelector rejects is no domain, so the empty zone-b
	// node does not hold the minimum at zero.
	{name: "should only count nodes passing the pod's node selector",
		snap: func() *Snapshot {
			s := onePool(webPods(1, "web", withNodeSelector(v1alpha1.LabelZone, "zone-a"), hostSpread(1)))
			s.Nodes = []*Node{
				existingNode("a1", "zone-a", 4, 16, webPods(1, "a1")),
				existingNode("b1", "zone-b", 4, 16, nil),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 0)
		}},
	{name: "nodeAffinityPolicy Ignore counts nodes the selector rejects",
		snap: func() *Snapshot {
			s := onePool(webPods(1, "web", withNodeSelector(v1alpha1.LabelZone, "zone-a"), hostSpread(1, func(c *corev1.TopologySpreadConstraint) {
				c.NodeAffinityPolicy = ptr(corev1.NodeInclusionPolicyIgnore)
			})))
			s.Nodes = []*Node{
				existingNode("a1", "zone-a", 4, 16, webPods(1, "a1")),
				existingNode("b1", "zone-b", 4, 16, nil),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
		}},
	// kube-scheduler PodTopologySpread, nodeTaintsPolicy Honor: a node whose
	// taint the pod does not tolerate is no domain; with Ignore (the default)
	// it is one.
	{name: "nodeTaintsPolicy Honor does not count a tainted node",
		snap: func() *Snapshot {
			s := onePool(webPods(1, "web", hostSpread(1, func(c *corev1.TopologySpreadConstraint) {
				c.NodeTaintsPolicy = ptr(corev1.NodeInclusionPolicyHonor)
			})))
			s.Nodes = []*Node{
				existingNode("a1", "zone-a", 4, 16, webPods(1, "a1")),
				existingNode("gpu", "zone-a", 4, 16, nil, taintedWith("gpu")),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 0) }},
	{name: "nodeTaintsPolicy Ignore counts a tainted node",
		snap: func() *Snapshot {
			s := onePool(webPods(1, "web", hostSpread(1)))
			s.Nodes = []*Node{
				existingNode("a1", "zone-a", 4, 16, webPods(1, "a1")),
				existingNode("gpu", "zone-a", 4, 16, nil, taintedWith("gpu")),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	// A machine planned in this very solve is no domain for a pod bound to an
	// existing node: the pod binds before the machine joins.
	{name: "should not count planned machines as domains for existing nodes",
		snap: func() *Snapshot {
			big := testPod("big", "6", "1Gi") // fits no existing node: a machine is planned
			s := onePool(append([]*corev1.Pod{big}, webPods(2, "web", hostSpread(1))...))
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 4, 16, webPods(1, "n1")),
				existingNode("n2", "zone-a", 4, 16, webPods(1, "n2")),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			on := placedOnExisting(p)
			if on["n1"] != 1 || on["n2"] != 1 {
				t.Fatalf("web pods on existing nodes %v, want one on each", on)
			}
		}},
}

func TestHostnameSpread(t *testing.T) {
	for _, tc := range hostSpreadCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			tc.expect(t, s, solveChecked(t, s, tc.opts))
		})
	}
}

// Karpenter: disruption/consolidation_test.go with topology (pods of the
// candidate are rescheduled, so neither they nor the node count). Three
// nodes with two web pods each: without n3, n1 and n2 hold the minimum of
// two, so each takes one more pod and n3 goes.
func TestHostnameSpreadConsolidation(t *testing.T) {
	for _, when := range []corev1.UnsatisfiableConstraintAction{corev1.DoNotSchedule, corev1.ScheduleAnyway} {
		t.Run("should not count nodes being deleted/"+string(when), func(t *testing.T) {
			side := func(prefix string) []*corev1.Pod {
				return webPods(2, prefix, withSpread(v1alpha1.LabelHostname, 1, when, webLabels))
			}
			s := onePool(nil)
			s.Nodes = []*Node{
				existingNode("n1", "zone-a", 4, 16, side("a"), ofType("m.xlarge")),
				existingNode("n2", "zone-a", 4, 16, side("b"), ofType("m.xlarge")),
				existingNode("n3", "zone-a", 4, 16, side("c"), ofType("m.xlarge")),
			}
			a := consolidateChecked(t, s, []Candidate{cand("n3", 0.2, 2)}, ConsolidationOptions{})
			wantRemove(t, a, "n3")
			if a.Replacement != nil {
				t.Fatalf("replacement %+v, want none", a.Replacement)
			}
		})
	}
}
