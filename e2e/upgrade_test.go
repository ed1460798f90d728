package e2e

import (
	"os"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// upgradeNodes is how many Machines the upgrade spec rolls: 5 keeps the
// spec near 90 s; E2E_UPGRADE_NODES=10 measures the roll of ten
// (about two minutes).
func upgradeNodes() int {
	if n, err := strconv.Atoi(os.Getenv("E2E_UPGRADE_NODES")); err == nil && n > 0 {
		return n
	}
	return 5
}

var _ = Describe("Upgrade: a control plane version bump rolls the workers", Label(secondProcess), func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	// Follows CAPI's cluster upgrade e2e (test/e2e/cluster_upgrade.go:
	// the control plane is upgraded first, then every worker Machine
	// ends up on the new version) with Karpenter's drift replacing
	// CAPI's MachineDeployment rollout: one replacement launched and
	// Ready before each old Machine goes, within the pool's budgets.
	It("rolls every Joinery Machine to the control plane's new version once the control plane runs it, never violating a PodDisruptionBudget", func(ctx SpecContext) {
		const newVersion = "v1.36.4"
		upgradeNodes := upgradeNodes()
		// Registered first, so it runs last, after the pool's Machines
		// are gone: later specs launch on the testbed's own version.
		DeferCleanup(func(ctx SpecContext) {
			Expect(tb.SetControlPlaneVersion(ctx, workload2, tb.KubernetesVersion, true)).To(Succeed())
		})
		pool := disruptingPool("upgrading", workload2, []v1alpha1.Budget{{Nodes: "100%"}})
		pool.Spec.Disruption.ConsolidateAfter = "Never"
		createNodePool(ctx, pool)
		c := tb.Workload(workload2).Client
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "upgraded"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "upgraded"}},
			},
		}
		Expect(c.Create(ctx, pdb)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, pdb))).To(Succeed()) })
		// One pod per node, so every Machine holds a pod the budget guards.
		workloadDeployment(ctx, workload2, "upgraded", int32(upgradeNodes), "250m", "256Mi", onPool("upgrading"), func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey:   v1alpha1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "upgraded"}},
				}},
			}}
		})
		// Watching from the start: a watch opened later would report its
		// first pods only after arm() ran.
		arm, fewest := minReadyWatch(ctx, workload2, "upgraded")
		Eventually(ctx, readyPods(ctx, workload2, "upgraded")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(upgradeNodes))
		old := poolMachines(ctx, "upgrading")
		Expect(old).To(HaveLen(upgradeNodes))
		for _, m := range old {
			Expect(m.Spec.Version).To(Equal(tb.KubernetesVersion))
		}
		arm()

		By("the control plane asks for " + newVersion + " but still runs " + tb.KubernetesVersion + ": the workers wait")
		Expect(tb.SetControlPlaneVersion(ctx, workload2, newVersion, false)).To(Succeed())
		Consistently(ctx, func() []string { return machineStates(ctx, "upgrading") }).WithTimeout(8*time.Second).WithPolling(500*time.Millisecond).
			Should(ConsistOf(names(old)), "a worker moved ahead of the control plane")
		Eventually(ctx, func() string { return explainText(ctx, "machine", old[0].Name, "") }).WithTimeout(within).
			Should(ContainSubstring("the Cluster moves to Kubernetes " + newVersion + "; its Machines follow once the control plane runs it"))

		By("the control plane runs " + newVersion + ": every Machine is replaced by one on it")
		start := time.Now()
		Expect(tb.SetControlPlaneVersion(ctx, workload2, newVersion, true)).To(Succeed())
		Eventually(ctx, func(g Gomega) {
			machines := poolMachines(ctx, "upgrading")
			g.Expect(machines).To(HaveLen(upgradeNodes))
			for _, m := range machines {
				g.Expect(names(old)).NotTo(ContainElement(m.Name), "Machine %s is still there", m.Name)
				g.Expect(m.Spec.Version).To(Equal(newVersion))
			}
			g.Expect(readyPods(ctx, workload2, "upgraded")()).To(Equal(upgradeNodes))
		}).WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(Succeed())
		rolled := time.Since(start)
		GinkgoWriter.Printf("upgrade: %d Machines rolled from %s to %s in %s; fewest ready pods %d of %d\n",
			upgradeNodes, tb.KubernetesVersion, newVersion, rolled.Round(time.Second), fewest(), upgradeNodes)
		AddReportEntry("upgrade roll", map[string]any{"nodes": upgradeNodes, "seconds": rolled.Seconds(), "fewestReady": fewest()})
		Expect(fewest()).To(BeNumerically(">=", upgradeNodes-1), "the PodDisruptionBudget allows 1 unavailable")
		// Per Machine: the NodePool's own Events are aggregated by the
		// recorder after ten alike.
		for _, m := range old {
			Expect(managementEvents(ctx, "Machine", m.Name)).To(ContainElement(SatisfyAll(HavePrefix("Replacing: Drift of "+m.Name),
				ContainSubstring("runs Kubernetes "+tb.KubernetesVersion+" and the Cluster's control plane is at "+newVersion))))
		}
	})
})

func names(ms []clusterv1.Machine) []string {
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].Name
	}
	return out
}
