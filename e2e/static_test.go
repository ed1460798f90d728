package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// scalePool sets a pool's replicas through the scale subresource, as
// `kubectl scale nodepool/<name> --replicas=n` does.
func scalePool(ctx context.Context, name string, replicas int32) {
	np := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}, Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	Expect(tb.Client.SubResource("scale").Update(ctx, np, client.WithSubResourceBody(scale))).To(Succeed())
}

// readyStatic waits until a static pool has exactly n live Machines, all
// with a Ready node, and reports n in status.replicas and in its scale
// subresource.
func readyStatic(ctx context.Context, name string, n int) {
	Eventually(ctx, func(g Gomega) {
		live := liveMachines(ctx, name)
		g.Expect(live).To(HaveLen(n))
		for _, m := range live {
			g.Expect(conditions.IsTrue(m, clusterv1.MachineNodeReadyCondition)).To(BeTrue(), "Machine %s not Ready", m.Name)
		}
		g.Expect(poolStatus(ctx, name).Replicas).To(Equal(int32(n)))
		scale := &autoscalingv1.Scale{}
		g.Expect(tb.Client.SubResource("scale").Get(ctx, &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}, scale)).To(Succeed())
		g.Expect(scale.Status.Replicas).To(Equal(int32(n)))
	}).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
}

var _ = Describe("Static pools: spec.replicas", Label(secondProcess), func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	// Karpenter: static/provisioning/suite_test.go (creates NodeClaims up
	// to replicas), static/deprovisioning/suite_test.go (removes the
	// surplus) and disruption/staticdrift_test.go (drifted nodes replaced
	// one by one within the budget).
	It("keeps 3 empty nodes, scales to 5 and back through the scale subresource, and replaces drifted ones one at a time", func(ctx SpecContext) {
		pool := disruptingPool("static", workload2, []v1alpha1.Budget{{Nodes: "1"}})
		// Emptiness would remove these nodes at once in a dynamic pool.
		pool.Spec.Disruption.ConsolidateAfter = "0s"
		pool.Spec.Replicas = ptr.To[int32](3)
		createNodePool(ctx, pool)
		readyStatic(ctx, "static", 3)
		Consistently(ctx, func() int { return len(liveMachines(ctx, "static")) }).WithTimeout(5 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(3))

		By("kubectl scale --replicas=5")
		scalePool(ctx, "static", 5)
		readyStatic(ctx, "static", 5)

		By("kubectl scale --replicas=3")
		scalePool(ctx, "static", 3)
		readyStatic(ctx, "static", 3)
		Eventually(ctx, func() int { return len(poolMachines(ctx, "static")) }).WithTimeout(time.Minute).Should(Equal(3), "the surplus Machines are not gone")

		By("drift: the pool now references another AWSMachineTemplate")
		v2 := &infrav1.AWSMachineTemplate{}
		Expect(tb.Client.Get(ctx, key(workerTemplates), v2)).To(Succeed())
		v2 = &infrav1.AWSMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: workerTemplates + "-v2"}, Spec: v2.Spec}
		v2.Spec.Template.Spec.AdditionalTags = infrav1.Tags{"generation": "2"}
		Expect(client.IgnoreAlreadyExists(tb.Client.Create(ctx, v2))).To(Succeed())
		maxDeleting := deletingMachinesWatch(ctx, "static")
		old := machineStates(ctx, "static")
		np := &v1alpha1.NodePool{}
		Expect(tb.Client.Get(ctx, key("static"), np)).To(Succeed())
		patch := client.MergeFrom(np.DeepCopy())
		np.Spec.Template.Spec.InfrastructureTemplateRef.Name = v2.Name
		Expect(tb.Client.Patch(ctx, np, patch)).To(Succeed())
		Eventually(ctx, func(g Gomega) {
			live := liveMachines(ctx, "static")
			g.Expect(live).To(HaveLen(3))
			for name := range live {
				g.Expect(old).NotTo(ContainElement(name))
				aws := &infrav1.AWSMachine{}
				g.Expect(tb.Client.Get(ctx, key(name), aws)).To(Succeed())
				g.Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue("generation", "2"))
			}
		}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		readyStatic(ctx, "static", 3)
		Expect(maxDeleting()).To(Equal(1), "drift replaced more than one Machine at a time")
	})

	// Karpenter: static/provisioning/suite_test.go "should respect node
	// limits"; ours are resource limits, reported on the pool.
	It("launches no more than spec.limits allow and says so on the pool", func(ctx SpecContext) {
		pool := disruptingPool("static-limited", workload2, []v1alpha1.Budget{{Nodes: "1"}},
			req(corev1.LabelInstanceTypeStable, v1alpha1.OpIn, "m5.large"))
		pool.Spec.Replicas = ptr.To[int32](3)
		pool.Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
		createNodePool(ctx, pool)
		readyStatic(ctx, "static-limited", 2)
		eventually(ctx, func(g Gomega) {
			limited := meta(poolStatus(ctx, "static-limited").Conditions, v1alpha1.ConditionLimitReached)
			g.Expect(limited).NotTo(BeNil())
			g.Expect(limited.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(limited.Message).To(ContainSubstring("spec.replicas is 3 but only 2 Machine(s) can be made"))
		}).Should(Succeed())
		Consistently(ctx, func() int { return len(poolMachines(ctx, "static-limited")) }).WithTimeout(5 * time.Second).Should(Equal(2))
	})
})
