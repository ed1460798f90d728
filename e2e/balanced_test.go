package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/solver"
)

// maxDisruptionCost is the largest karpenter.sh/disruption-cost; it makes
// a pod's eviction cost Karpenter's clamp of 10.
const maxDisruptionCost = "2147483647"

var _ = Describe("Balanced consolidation: moves worth their disruption", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	// Follows Karpenter's balanced_integration_test.go ("should reject a
	// consolidation whose disruption outweighs its savings" / "should
	// approve ... once disruption drops") on real nodes: three m5.xlarge,
	// one of which could go (its pods fit on the other two) for a third
	// of the pool's cost.
	It("declines a move whose savings do not pay for its disruption and takes it once they do, with the score in Events and explain", func(ctx SpecContext) {
		pool := disruptingPool("balanced", workload, []v1alpha1.Budget{{Nodes: "100%"}},
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily, v1alpha1.OpIn, "m5"),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceSize, v1alpha1.OpIn, "xlarge"))
		pool.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicyBalanced
		// Long enough to mark the pods of the node that empties before
		// consolidation may look at it.
		pool.Spec.Disruption.ConsolidateAfter = "20s"
		createNodePool(ctx, pool)
		c := tb.Workload(workload).Client
		// web: one 2-cpu pod per node, which stays put (do-not-disrupt), so
		// the only move is the node that loses its web pod.
		workloadDeployment(ctx, workload, "balanced-web", 3, "2", "256Mi", onPool("balanced"), func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey: v1alpha1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "balanced-web"}},
				}},
			}}
		})
		Eventually(ctx, readyPods(ctx, workload, "balanced-web")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(3))
		// side: small pods the scheduler spreads over the three nodes by
		// its least-allocated scoring (they fit, so nothing new is
		// launched). No spread constraint: the solver honours a preferred
		// spread by opening new machines, which would make every move a
		// two-machine one.
		workloadDeployment(ctx, workload, "side", 6, "300m", "128Mi", onPool("balanced"))
		Eventually(ctx, func() int { return readyPods(ctx, workload, "balanced-web")() + readyPods(ctx, workload, "side")() }).
			WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(9))
		Expect(poolMachines(ctx, "balanced")).To(HaveLen(3))
		for _, p := range appPods(ctx, workload, "balanced-web") {
			patch := client.MergeFrom(p.DeepCopy())
			p.Annotations = map[string]string{disruption.AnnotationKarpenterDoNotDisrupt: "true"}
			Expect(c.Patch(ctx, &p, patch)).To(Succeed())
		}

		By("one web pod goes: its node's two side pods could move, saving a third of the pool's cost")
		d := &appsv1.Deployment{}
		Expect(c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "balanced-web"}, d)).To(Succeed())
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Replicas = ptr.To[int32](2)
		Expect(c.Patch(ctx, d, patch)).To(Succeed())
		Eventually(ctx, func() int { return len(appPods(ctx, workload, "balanced-web")) }).WithTimeout(within).Should(Equal(2))
		hosting := map[string]bool{}
		for _, p := range appPods(ctx, workload, "balanced-web") {
			hosting[p.Spec.NodeName] = true
		}
		var freed string
		var freedNode string
		for _, m := range poolMachines(ctx, "balanced") {
			if !hosting[m.Status.NodeRef.Name] {
				freed, freedNode = m.Name, m.Status.NodeRef.Name
			}
		}
		Expect(freed).NotTo(BeEmpty())

		// The scores the move must get, from the side pods on the freed
		// node: each node costs 1 to disrupt plus 1 per pod (10 with the
		// largest disruption-cost); deleting one of three nodes saves a
		// third of the pool's cost.
		onFreed := 0
		for _, p := range appPods(ctx, workload, "side") {
			if p.Spec.NodeName == freedNode {
				onFreed++
			}
		}
		Expect(onFreed).To(BeNumerically(">=", 2), "the scheduler left fewer than 2 of the 6 spread side pods on node %s", freedNode)
		third := 1.0 / 3
		costly := solver.ScoreMove(third, float64(1+10*onFreed), solver.PoolTotals{CostPerHour: 1, DisruptionCost: float64(3 + 2 + (6 - onFreed) + 10*onFreed)}, solver.BalancedK)
		plain := solver.ScoreMove(third, float64(1+onFreed), solver.PoolTotals{CostPerHour: 1, DisruptionCost: float64(3 + 2 + 6)}, solver.BalancedK)
		Expect(costly.Approved()).To(BeFalse())
		Expect(plain.Approved()).To(BeTrue())

		By(fmt.Sprintf("its %d pods are costly to evict (karpenter.sh/disruption-cost): the move is declined (score %.2f)", onFreed, costly.Score()))
		setCost := func(value string) {
			for _, p := range appPods(ctx, workload, "side") {
				if p.Spec.NodeName != freedNode {
					continue
				}
				patch := client.MergeFrom(p.DeepCopy())
				if value == "" {
					delete(p.Annotations, "karpenter.sh/disruption-cost")
				} else {
					if p.Annotations == nil {
						p.Annotations = map[string]string{}
					}
					p.Annotations["karpenter.sh/disruption-cost"] = value
				}
				Expect(c.Patch(ctx, &p, patch)).To(Succeed())
			}
		}
		setCost(maxDisruptionCost)
		Eventually(ctx, func() string { return explainText(ctx, "machine", freed, "") }).WithTimeout(within).WithPolling(time.Second).
			Should(SatisfyAll(ContainSubstring("no consolidation is worth its disruption"), ContainSubstring(fmt.Sprintf("score %.2f < threshold 0.50 (k=2)", costly.Score()))))
		Consistently(ctx, func() []string { return machineStates(ctx, "balanced") }).WithTimeout(10 * time.Second).WithPolling(500 * time.Millisecond).
			Should(ContainElement(freed))
		GinkgoWriter.Printf("balanced, declined: %s\n", getMachine(ctx, freed).Annotations[disruption.AnnotationNotDisrupted])

		By(fmt.Sprintf("its pods are ordinary again: the same move scores %.2f and is taken", plain.Score()))
		setCost("")
		Eventually(ctx, func() []string { return machineStates(ctx, "balanced") }).WithTimeout(within).WithPolling(time.Second).
			ShouldNot(ContainElement(freed))
		Expect(managementEvents(ctx, "Machine", freed)).To(ContainElement(SatisfyAll(HavePrefix("Disrupting: Consolidation of "+freed),
			ContainSubstring(fmt.Sprintf("Balanced score %.2f >= threshold 0.50 (k=2)", plain.Score())))))
		Eventually(ctx, func() int { return readyPods(ctx, workload, "side")() }).WithTimeout(within).Should(Equal(6))
	})
})
