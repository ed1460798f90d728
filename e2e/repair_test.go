package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// repairPool is a pool of one node per pod (hostname anti-affinity), with
// a MachineHealthCheck that finds a node unhealthy once its Ready
// condition has been Unknown or False for a second.
func repairPool(ctx SpecContext, name string, nodes int32) {
	pool := disruptingPool(name, workload2, []v1alpha1.Budget{{Nodes: "100%"}})
	pool.Spec.Disruption.ConsolidateAfter = "Never"
	createNodePool(ctx, pool)
	workloadDeployment(ctx, workload2, name, nodes, "250m", "256Mi", onPool(name), func(s *corev1.PodSpec) {
		s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
	})
	mhc := &clusterv1.MachineHealthCheck{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
		Spec: clusterv1.MachineHealthCheckSpec{
			ClusterName: workload2,
			Selector:    metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelNodePool: name}},
			Checks: clusterv1.MachineHealthCheckChecks{UnhealthyNodeConditions: []clusterv1.UnhealthyNodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, TimeoutSeconds: ptr.To[int32](1)},
				{Type: corev1.NodeReady, Status: corev1.ConditionFalse, TimeoutSeconds: ptr.To[int32](1)},
			}},
		},
	}
	Expect(tb.Client.Create(ctx, mhc)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, mhc))).To(Succeed()) })
	Eventually(ctx, readyPods(ctx, workload2, name)).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(int(nodes)))
}

// failNode makes a node's kubelet go silent, as a crashed instance's does:
// kwok stops managing it and its Ready condition turns Unknown (what the
// node lifecycle controller writes when heartbeats stop).
func failNode(ctx context.Context, name string) {
	c := tb.Workload(workload2).Client
	node := &corev1.Node{}
	Expect(c.Get(ctx, client.ObjectKey{Name: name}, node)).To(Succeed())
	patch := client.MergeFrom(node.DeepCopy())
	delete(node.Annotations, cloudsim.KwokNodeAnnotation)
	Expect(c.Patch(ctx, node, patch)).To(Succeed())
	Eventually(ctx, func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, node)).To(Succeed())
		patch := client.MergeFromWithOptions(node.DeepCopy(), client.MergeFromWithOptimisticLock{})
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == corev1.NodeReady {
				node.Status.Conditions[i].Status = corev1.ConditionUnknown
				node.Status.Conditions[i].Reason = "NodeStatusUnknown"
				node.Status.Conditions[i].Message = "Kubelet stopped posting node status (e2e)"
				node.Status.Conditions[i].LastTransitionTime = metav1.Now()
			}
		}
		g.Expect(c.Status().Patch(ctx, node, patch)).To(Succeed())
	}).WithTimeout(within).Should(Succeed())
	// Nothing may set it back: kwok no longer manages the node.
	Consistently(ctx, func() corev1.ConditionStatus {
		Expect(c.Get(ctx, client.ObjectKey{Name: name}, node)).To(Succeed())
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status
			}
		}
		return ""
	}).WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(corev1.ConditionUnknown))
}

// liveMachines are a pool's Machines not being deleted, by name.
func liveMachines(ctx context.Context, pool string) map[string]*clusterv1.Machine {
	out := map[string]*clusterv1.Machine{}
	for _, m := range poolMachines(ctx, pool) {
		if m.DeletionTimestamp == nil {
			out[m.Name] = m.DeepCopy()
		}
	}
	return out
}

var _ = Describe("Repair: replacing unhealthy Machines", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	// Karpenter: disruption/repair_test.go "should pre-spin a replacement
	// and terminate the unhealthy node only after the replacement is
	// healthy", with CAPI's MachineHealthCheck as the judge.
	It("replaces a Machine a MachineHealthCheck marks unhealthy, the replacement Ready before the old one is deleted", func(ctx SpecContext) {
		repairPool(ctx, "repairing", 3)
		machines := liveMachines(ctx, "repairing")
		Expect(machines).To(HaveLen(3))
		var sick *clusterv1.Machine
		for _, m := range machines {
			sick = m
			break
		}
		failNode(ctx, sick.Status.NodeRef.Name)

		By("the MachineHealthCheck marks it and Joinery launches a replacement, recorded on it")
		var replacement string
		eventually(ctx, func(g Gomega) {
			m := &clusterv1.Machine{}
			g.Expect(tb.Client.Get(ctx, key(sick.Name), m)).To(Succeed())
			g.Expect(conditions.IsFalse(m, clusterv1.MachineHealthCheckSucceededCondition)).To(BeTrue(), "HealthCheckSucceeded")
			replacement = m.Annotations[disruption.AnnotationReplacedBy]
			g.Expect(replacement).NotTo(BeEmpty())
			g.Expect(m.DeletionTimestamp).To(BeNil(), "deleted before its replacement was Ready")
			owner := conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition)
			g.Expect(owner).NotTo(BeNil())
			g.Expect(owner.Reason).To(Equal(disruption.RemediationReplacingReason))
		}).Should(Succeed())

		By("the old Machine goes only once its replacement is Ready")
		Eventually(ctx, func(g Gomega) {
			m := &clusterv1.Machine{}
			err := tb.Client.Get(ctx, key(sick.Name), m)
			if err == nil && m.DeletionTimestamp == nil {
				g.Expect(err).To(HaveOccurred(), "Machine %s not deleted yet", sick.Name)
			}
			if err == nil {
				g.Expect(conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition).Reason).To(Equal(disruption.RemediationMachineDeletingReason))
			}
			r := &clusterv1.Machine{}
			g.Expect(tb.Client.Get(ctx, key(replacement), r)).To(Succeed())
			g.Expect(conditions.IsTrue(r, clusterv1.MachineNodeReadyCondition)).To(BeTrue(), "replacement %s not Ready but the old Machine is deleting", replacement)
		}).WithTimeout(2 * time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
		Eventually(ctx, readyPods(ctx, workload2, "repairing")).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Equal(3))
		Expect(managementEvents(ctx, "NodePool", "repairing")).To(ContainElement(HavePrefix("Repairing: Repair of " + sick.Name)))
	})

	// Karpenter: disruption/repair_test.go "should stop repairing a
	// NodePool when more than 20% of its nodes are unhealthy".
	It("replaces nothing while more than 20% of a pool's nodes are unhealthy", func(ctx SpecContext) {
		repairPool(ctx, "correlated", 3)
		machines := liveMachines(ctx, "correlated")
		Expect(machines).To(HaveLen(3))
		var sick []string
		for name, m := range machines {
			if len(sick) == 2 {
				break
			}
			sick = append(sick, name)
			failNode(ctx, m.Status.NodeRef.Name)
		}
		By("both are marked, and Joinery says why it waits")
		eventually(ctx, func(g Gomega) {
			for _, name := range sick {
				m := &clusterv1.Machine{}
				g.Expect(tb.Client.Get(ctx, key(name), m)).To(Succeed())
				owner := conditions.Get(m, clusterv1.MachineOwnerRemediatedCondition)
				g.Expect(owner).NotTo(BeNil())
				g.Expect(owner.Reason).To(Equal(disruption.RemediationDeferredReason))
				g.Expect(owner.Message).To(ContainSubstring("more than 20%"))
			}
		}).Should(Succeed())
		Consistently(ctx, func(g Gomega) {
			live := liveMachines(ctx, "correlated")
			g.Expect(live).To(HaveLen(3))
			for _, name := range sick {
				g.Expect(live).To(HaveKey(name))
				g.Expect(live[name].Annotations).NotTo(HaveKey(disruption.AnnotationReplacedBy))
			}
		}).WithTimeout(10 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
		Expect(managementEvents(ctx, "NodePool", "correlated")).To(ContainElement(ContainSubstring("more than 20%")))
	})
})
