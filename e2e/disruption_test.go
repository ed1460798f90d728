package e2e

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/test/testbed"
)

// disruptingPool is a pool that consolidates at once, with the given
// budgets.
func disruptingPool(name, cluster string, budgets []v1alpha1.Budget, reqs ...v1alpha1.NodeSelectorRequirementWithMinValues) *v1alpha1.NodePool {
	np := newNodePool(name, cluster, append([]v1alpha1.NodeSelectorRequirementWithMinValues{
		req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
		req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCategory, v1alpha1.OpIn, "c", "m"),
	}, reqs...)...)
	np.Spec.Disruption = v1alpha1.Disruption{
		ConsolidationPolicy: v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized,
		ConsolidateAfter:    "0s",
		Budgets:             budgets,
	}
	return np
}

// deletingMachinesWatch watches a pool's Machines and records the most
// that were being deleted at once.
func deletingMachinesWatch(ctx context.Context, pool string) (maxDeleting func() int) {
	scheme, err := testbed.Scheme()
	Expect(err).NotTo(HaveOccurred())
	wc, err := client.NewWithWatch(tb.Management.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	var list clusterv1.MachineList
	w, err := wc.Watch(ctx, &list, client.InNamespace(tb.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: pool})
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	deleting := map[string]bool{}
	most := 0
	go func() {
		defer GinkgoRecover()
		for ev := range w.ResultChan() {
			m, ok := ev.Object.(*clusterv1.Machine)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				delete(deleting, m.Name)
			} else if m.DeletionTimestamp != nil {
				deleting[m.Name] = true
			}
			most = max(most, len(deleting))
			mu.Unlock()
		}
	}()
	DeferCleanup(w.Stop)
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// minReadyWatch watches an app's pods and records the fewest ready at
// any moment after arm() is called.
func minReadyWatch(ctx context.Context, cluster, app string) (arm func(), fewest func() int) {
	cs, err := tb.Workload(cluster).Clientset()
	Expect(err).NotTo(HaveOccurred())
	w, err := cs.CoreV1().Pods(metav1.NamespaceDefault).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	ready := map[string]bool{}
	armed := false
	least := 1 << 30
	go func() {
		defer GinkgoRecover()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted || !podReady(p) {
				delete(ready, p.Name)
			} else {
				ready[p.Name] = true
			}
			if armed {
				least = min(least, len(ready))
			}
			mu.Unlock()
		}
	}()
	DeferCleanup(w.Stop)
	return func() {
			mu.Lock()
			armed, least = true, len(ready)
			mu.Unlock()
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return least
		}
}

func poolPricePerHour(ctx context.Context, pool string) float64 {
	total := 0.0
	for _, m := range poolMachines(ctx, pool) {
		total += decisionOf(&m).Offering.PricePerHour
	}
	return total
}

var _ = Describe("Disruption: removing and replacing Machines", Label(secondProcess), func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("consolidates a 200-pod deployment scaled down to 20: within 5% of a fresh plan, no PodDisruptionBudget violated", func(ctx SpecContext) {
		// Consolidation replaces at most one node per action, as
		// Karpenter's does; with xlarge and 2xlarge only, a single machine
		// can be as cheap as any fresh plan of the 20 pods.
		pool := disruptingPool("shrink", workload, []v1alpha1.Budget{{Nodes: "100%"}},
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceSize, v1alpha1.OpIn, "xlarge", "2xlarge"))
		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload, "shrink", 200, "250m", "256Mi", onPool("shrink"))
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "shrink"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(2)),
				Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shrink"}},
			},
		}
		c := tb.Workload(workload).Client
		Expect(c.Create(ctx, pdb)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, pdb))).To(Succeed()) })
		Eventually(ctx, readyPods(ctx, workload, "shrink")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(200))
		before := len(poolMachines(ctx, "shrink"))

		arm, fewest := minReadyWatch(ctx, workload, "shrink")
		d := &appsv1.Deployment{}
		Expect(c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "shrink"}, d)).To(Succeed())
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Replicas = ptr.To[int32](20)
		Expect(c.Patch(ctx, d, patch)).To(Succeed())
		Eventually(ctx, func() int { return len(appPods(ctx, workload, "shrink")) }).WithTimeout(within).Should(Equal(20))
		Eventually(ctx, readyPods(ctx, workload, "shrink")).WithTimeout(within).Should(Equal(20))
		arm()

		plan := freshPlan(pool, appPods(ctx, workload, "shrink"))
		Eventually(ctx, func(g Gomega) {
			g.Expect(poolPricePerHour(ctx, "shrink")).To(BeNumerically("<=", plan.TotalPricePerHour*1.05+1e-9))
			for _, m := range poolMachines(ctx, "shrink") {
				g.Expect(m.DeletionTimestamp).To(BeNil(), "Machine %s is still being deleted", m.Name)
				g.Expect(m.Status.NodeRef.IsDefined()).To(BeTrue(), "Machine %s has no node yet", m.Name)
			}
			g.Expect(readyPods(ctx, workload, "shrink")()).To(Equal(20))
		}).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		after := len(poolMachines(ctx, "shrink"))
		GinkgoWriter.Printf("shrink: %d machines before, %d after, $%.4f/h vs a fresh plan's $%.4f/h; fewest ready pods %d\n",
			before, after, poolPricePerHour(ctx, "shrink"), plan.TotalPricePerHour, fewest())
		Expect(after).To(BeNumerically("<", before))
		Expect(fewest()).To(BeNumerically(">=", 18), "the PodDisruptionBudget allows 2 unavailable of 20")
		Expect(managementEvents(ctx, "NodePool", "shrink")).To(ContainElement(HavePrefix("Disrupting: ")))
	})

	It("neither deletes nor taints a node while a PodDisruptionBudget allows none of its pods to go (maxUnavailable 0, then an empty selector)", func(ctx SpecContext) {
		// Twelve 1-cpu pods on xlarge nodes, scaled down to four: their
		// nodes are underused and consolidation (at once, budget 100%)
		// wants to remove some (the four kept are on several nodes, and one
		// holds them). While a PodDisruptionBudget allows no
		// eviction, no Machine whose node hosts a guarded pod may be
		// deleted or tainted; once it goes, consolidation proceeds, which
		// shows the spec could have failed.
		pool := disruptingPool("guarded", workload2, []v1alpha1.Budget{{Nodes: "100%"}},
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceSize, v1alpha1.OpIn, "xlarge"))
		c := tb.Workload(workload2).Client
		pdb := func(name string, selector *metav1.LabelSelector) *policyv1.PodDisruptionBudget {
			p := &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: name},
				Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0)), Selector: selector},
			}
			Expect(c.Create(ctx, p)).To(Succeed())
			DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, p))).To(Succeed()) })
			return p
		}
		byLabel := pdb("guarded", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}})
		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload2, "guarded", 12, "1", "256Mi", onPool("guarded"))
		Eventually(ctx, readyPods(ctx, workload2, "guarded")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(12))
		before := len(poolMachines(ctx, "guarded"))

		// The four pods kept are spread over the nodes, one per node in
		// turn (the ReplicaSet removes the pods of lowest deletion cost
		// first). Left to the ReplicaSet's own ranking all four can stay
		// on one node, which holds four: consolidation then has nothing to
		// do once the PodDisruptionBudget goes.
		byNode := map[string][]corev1.Pod{}
		var nodes []string
		for _, p := range appPods(ctx, workload2, "guarded") {
			if len(byNode[p.Spec.NodeName]) == 0 {
				nodes = append(nodes, p.Spec.NodeName)
			}
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
		Expect(len(nodes)).To(BeNumerically(">=", 3), "twelve 1-cpu pods on xlarge nodes (four fit on each) sit on at least three nodes")
		var kept []string
		for round := 0; len(kept) < 4; round++ {
			for _, n := range nodes {
				if len(kept) == 4 || round >= len(byNode[n]) {
					continue
				}
				p := byNode[n][round]
				patch := client.MergeFrom(p.DeepCopy())
				metav1.SetMetaDataAnnotation(&p.ObjectMeta, "controller.kubernetes.io/pod-deletion-cost", "1000")
				Expect(c.Patch(ctx, &p, patch)).To(Succeed())
				kept = append(kept, p.Name)
			}
		}

		d := &appsv1.Deployment{}
		Expect(c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "guarded"}, d)).To(Succeed())
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Replicas = ptr.To[int32](4)
		Expect(c.Patch(ctx, d, patch)).To(Succeed())
		Eventually(ctx, func() int { return len(appPods(ctx, workload2, "guarded")) }).WithTimeout(within).Should(Equal(4))
		var left []string
		for _, p := range appPods(ctx, workload2, "guarded") {
			left = append(left, p.Name)
		}
		Expect(left).To(ConsistOf(kept), "the ReplicaSet keeps the pods of highest deletion cost")

		guardedNodesUntouched := func(g Gomega) {
			hosting := map[string]bool{}
			for _, p := range appPods(ctx, workload2, "guarded") {
				if p.Spec.NodeName != "" {
					hosting[p.Spec.NodeName] = true
				}
			}
			g.Expect(hosting).NotTo(BeEmpty())
			for _, m := range poolMachines(ctx, "guarded") {
				if !m.Status.NodeRef.IsDefined() || !hosting[m.Status.NodeRef.Name] {
					continue
				}
				g.Expect(m.DeletionTimestamp).To(BeNil(), "Machine %s is being deleted while its node hosts a pod no eviction is allowed for", m.Name)
				n := &corev1.Node{}
				g.Expect(c.Get(ctx, client.ObjectKey{Name: m.Status.NodeRef.Name}, n)).To(Succeed())
				for _, t := range n.Spec.Taints {
					g.Expect(t.Key).NotTo(Equal(disruption.TaintDisrupted), "node %s of Machine %s is tainted for disruption", n.Name, m.Name)
				}
			}
		}
		By("maxUnavailable 0 on the pods' label")
		Consistently(ctx, guardedNodesUntouched).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("an empty selector ({}), which selects every pod of its namespace, in its place")
		pdb("everything", &metav1.LabelSelector{})
		Expect(c.Delete(ctx, byLabel)).To(Succeed())
		Consistently(ctx, guardedNodesUntouched).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("without a PodDisruptionBudget, consolidation removes some of the nodes it held")
		held := map[string]bool{}
		for _, p := range appPods(ctx, workload2, "guarded") {
			held[p.Spec.NodeName] = true
		}
		var heldMachines []string
		for _, m := range poolMachines(ctx, "guarded") {
			if m.Status.NodeRef.IsDefined() && held[m.Status.NodeRef.Name] {
				heldMachines = append(heldMachines, m.Name)
			}
		}
		Expect(c.Delete(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "everything"}})).To(Succeed())
		Eventually(ctx, func() []string { return machineStates(ctx, "guarded") }).WithTimeout(3*time.Minute).WithPolling(time.Second).
			ShouldNot(ContainElements(heldMachines), "consolidation never removed a node the PodDisruptionBudgets held")
		GinkgoWriter.Printf("guarded: %d machines at 12 pods, %d held by the PodDisruptionBudgets at 4 pods\n", before, len(heldMachines))
	})

	It("never disrupts more than one node at a time with a budget of nodes: 1", func(ctx SpecContext) {
		pool := disruptingPool("one-at-a-time", workload2, []v1alpha1.Budget{{Nodes: "1"}})
		createNodePool(ctx, pool)
		most := deletingMachinesWatch(ctx, "one-at-a-time")
		c := tb.Workload(workload2).Client
		workloadDeployment(ctx, workload2, "spread-out", 3, "250m", "256Mi", onPool("one-at-a-time"), func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey:   v1alpha1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread-out"}},
				}},
			}}
		})
		Eventually(ctx, readyPods(ctx, workload2, "spread-out")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(3))
		Expect(poolMachines(ctx, "one-at-a-time")).To(HaveLen(3))

		// Three empty nodes, removed one at a time: each removal waits for
		// CAPA to see its instance terminated (CAPA checks a minute after
		// TerminateInstances), so three take about four minutes.
		By("emptying the three nodes at once")
		Expect(c.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "spread-out"}})).To(Succeed())
		Eventually(ctx, func() int { return len(poolMachines(ctx, "one-at-a-time")) }).WithTimeout(6 * time.Minute).WithPolling(time.Second).Should(BeZero())
		Expect(most()).To(Equal(1), "Machines being deleted at once")
	})

	It("keeps an expired node while a pod on it says do-not-disrupt, then replaces it before removing it", func(ctx SpecContext) {
		pool := disruptingPool("expiring", workload2, []v1alpha1.Budget{{Nodes: "100%"}})
		pool.Spec.Template.Spec.ExpireAfter = "20s"
		pool.Spec.Disruption.ConsolidateAfter = "Never"
		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload2, "precious", 1, "500m", "512Mi", onPool("expiring"))
		Eventually(ctx, readyPods(ctx, workload2, "precious")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))
		pod := appPods(ctx, workload2, "precious")[0]
		patch := client.MergeFrom(pod.DeepCopy())
		pod.Annotations = map[string]string{disruption.AnnotationKarpenterDoNotDisrupt: "true"}
		Expect(tb.Workload(workload2).Client.Patch(ctx, &pod, patch)).To(Succeed())
		first := poolMachines(ctx, "expiring")
		Expect(first).To(HaveLen(1))

		By("the Machine expires but stays while the pod says do-not-disrupt")
		Consistently(ctx, func() []string { return machineStates(ctx, "expiring") }).WithTimeout(30 * time.Second).WithPolling(time.Second).
			Should(Equal([]string{first[0].Name}))
		Expect(explainText(ctx, "machine", first[0].Name, "")).To(ContainSubstring("Kept: pod default/" + pod.Name + " is annotated do-not-disrupt"))

		By("without the annotation, a replacement becomes Ready, then the expired Machine goes")
		patch = client.MergeFrom(pod.DeepCopy())
		delete(pod.Annotations, disruption.AnnotationKarpenterDoNotDisrupt)
		Expect(tb.Workload(workload2).Client.Patch(ctx, &pod, patch)).To(Succeed())
		Eventually(ctx, func(g Gomega) {
			machines := poolMachines(ctx, "expiring")
			g.Expect(machines).NotTo(BeEmpty())
			for _, m := range machines {
				g.Expect(m.Name).NotTo(Equal(first[0].Name))
			}
			g.Expect(readyPods(ctx, workload2, "precious")()).To(Equal(1))
		}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
		events := managementEvents(ctx, "NodePool", "expiring")
		Expect(events).To(ContainElement(HavePrefix("Replacing: Expiration of " + first[0].Name)))
	})

	It("replaces a Machine whose pool now references another AWSMachineTemplate (drift)", func(ctx SpecContext) {
		v2 := &infrav1.AWSMachineTemplate{}
		Expect(tb.Client.Get(ctx, key(workerTemplates), v2)).To(Succeed())
		v2 = &infrav1.AWSMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: workerTemplates + "-v2"}, Spec: v2.Spec}
		v2.Spec.Template.Spec.AdditionalTags = infrav1.Tags{"generation": "2"}
		Expect(client.IgnoreAlreadyExists(tb.Client.Create(ctx, v2))).To(Succeed())

		pool := disruptingPool("drifting", workload2, []v1alpha1.Budget{{Nodes: "100%"}})
		pool.Spec.Disruption.ConsolidateAfter = "Never"
		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload2, "drifter", 2, "500m", "512Mi", onPool("drifting"))
		Eventually(ctx, readyPods(ctx, workload2, "drifter")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(2))
		old := machineStates(ctx, "drifting")

		np := &v1alpha1.NodePool{}
		Expect(tb.Client.Get(ctx, key("drifting"), np)).To(Succeed())
		patch := client.MergeFrom(np.DeepCopy())
		np.Spec.Template.Spec.InfrastructureTemplateRef.Name = v2.Name
		Expect(tb.Client.Patch(ctx, np, patch)).To(Succeed())

		Eventually(ctx, func(g Gomega) {
			machines := poolMachines(ctx, "drifting")
			g.Expect(machines).NotTo(BeEmpty())
			for _, m := range machines {
				g.Expect(old).NotTo(ContainElement(m.Name))
				aws := &infrav1.AWSMachine{}
				g.Expect(tb.Client.Get(ctx, key(m.Name), aws)).To(Succeed())
				g.Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue("generation", "2"))
			}
			g.Expect(readyPods(ctx, workload2, "drifter")()).To(Equal(2))
		}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
		Expect(managementEvents(ctx, "NodePool", "drifting")).To(ContainElement(HavePrefix("Replacing: Drift of ")))
	})
})

// machineStates names a pool's Machines that are not being deleted.
func machineStates(ctx context.Context, pool string) []string {
	var out []string
	for _, m := range poolMachines(ctx, pool) {
		if m.DeletionTimestamp == nil {
			out = append(out, m.Name)
		}
	}
	return out
}
