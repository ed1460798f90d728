package e2e

import (
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// Karpenter's counterpart: the AWS provider's e2e suite "Capacity
// Reservations" ("should schedule against a specific reservation ID",
// "should fall back when compatible capacity reservations are exhausted"),
// and its core scheduling "Reserved Instance Types"; here on the testbed,
// through CAPI Machines and CAPA's own manager, against a reservation the
// simulated EC2 holds and counts.
var _ = Describe("Capacity reservations: used first, then exhausted, then fallback", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("launches two of three machines into a reservation of 2, targeted through the AWSMachine, and the third on-demand in the same batch; explain names the reservation", func(ctx SpecContext) {
		const poolName = "reserved"
		zone := tb.Cloud.Region() + "a"
		id, err := tb.Cloud.AddCapacityReservation(cloudsim.CapacityReservation{
			InstanceType: "m5.large", Zone: zone, TotalInstanceCount: 2,
			// Targeted: EC2 puts nothing in it unless asked, so other specs'
			// on-demand m5.large launches cannot take its slots.
			InstanceMatchCriteria: cloudsim.MatchTargeted,
			Tags:                  map[string]string{"e2e": "reservation"},
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(tb.Cloud.SetCapacityReservationState(id, "cancelled")).To(Succeed()) })

		pool := newNodePool(poolName, workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeReserved, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.large"))
		pool.Spec.Template.Spec.CapacityReservationSelectorTerms = []v1alpha1.CapacityReservationSelectorTerm{{Tags: map[string]string{"e2e": "reservation"}}}
		createNodePool(ctx, pool)

		By("waiting for the manager's catalog to show the reservation (read every 2 s in this suite)")
		Eventually(ctx, func() string { return joinery.Tail(1 << 20) }).WithTimeout(within).
			Should(MatchRegexp(`capacity reservations changed.*` + id))

		By("three pods that need a machine each (1500m of an m5.large's 2 vCPU)")
		workloadDeployment(ctx, workload2, "reserved-web", 3, "1500m", "1Gi", onPool(poolName))
		Eventually(ctx, readyPods(ctx, workload2, "reserved-web")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(3))

		machines := poolMachinesWithNodes(ctx, poolName)
		Expect(machines).To(HaveLen(3))
		sort.Slice(machines, func(i, j int) bool {
			return decisionOf(&machines[i]).Offering.ReservationID > decisionOf(&machines[j]).Offering.ReservationID
		})
		for i, m := range machines {
			d := decisionOf(&m)
			aws := &infrav1.AWSMachine{}
			Expect(tb.Client.Get(ctx, types.NamespacedName{Namespace: tb.Namespace, Name: m.Name}, aws)).To(Succeed())
			inst, ok := instanceOf(m.Name)
			Expect(ok).To(BeTrue(), "Machine %s has no instance in the ledger", m.Name)
			node := workloadNode(ctx, workload2, m.Status.NodeRef.Name)
			if i < 2 {
				By("machine " + m.Name + ": in the reservation")
				Expect(d.Offering.CapacityType).To(Equal(v1alpha1.CapacityTypeReserved))
				Expect(d.Offering.ReservationID).To(Equal(id))
				Expect(d.Offering.Zone).To(Equal(zone))
				Expect(aws.Spec.CapacityReservationID).To(HaveValue(Equal(id)), "AWSMachine %s", m.Name)
				Expect(aws.Spec.MarketType).NotTo(Equal(infrav1.MarketTypeCapacityBlock))
				Expect(inst.CapacityReservationID).To(Equal(id), "instance of Machine %s", m.Name)
				Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityReservationID, id))
				Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeReserved))
				continue
			}
			By("machine " + m.Name + ": the fallback, on-demand")
			Expect(d.Offering.CapacityType).To(Equal(v1alpha1.CapacityTypeOnDemand))
			Expect(d.Offering.ReservationID).To(BeEmpty())
			Expect(aws.Spec.CapacityReservationID).To(BeNil(), "AWSMachine %s", m.Name)
			Expect(inst.CapacityReservationID).To(BeEmpty())
			Expect(node.Labels).NotTo(HaveKey(v1alpha1.LabelCapacityReservationID))
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand))
		}
		use, ok := tb.Cloud.CapacityReservationUsage(id)
		Expect(ok).To(BeTrue())
		Expect(use.Available).To(BeZero(), "the reservation holds both of its instances")

		By("joinery explain names the reservation of a reserved machine, and why the fallback is not in it")
		Expect(explainText(ctx, "machine", machines[0].Name, "")).To(ContainSubstring("in capacity reservation " + id))
		// The Deployment's pods are pending together and are planned in one
		// batch: the fallback's decision records the reservation as used up
		// by the other two machines of the same plan.
		fallback := decisionOf(&machines[2])
		Expect(fallback.DecidedAt.Time).To(BeTemporally("~", decisionOf(&machines[0]).DecidedAt.Time, time.Second), "one batch")
		Expect(fallback.Rejected).To(ContainElement(HaveField("Reason", ContainSubstring("capacity reservation "+id+" is used up"))),
			"the fallback's decision says the reservation was passed over: %+v", fallback.Rejected)
		Expect(explainText(ctx, "machine", machines[2].Name, "")).To(ContainSubstring("capacity reservation " + id))

		By("a pod that selects the reservation by its label now waits: the reservation is full, and the pool does not oversubscribe it")
		workloadDeployment(ctx, workload2, "reserved-more", 1, "1500m", "1Gi", onPool(poolName), func(s *corev1.PodSpec) {
			s.NodeSelector[v1alpha1.LabelCapacityReservationID] = id
		})
		Consistently(ctx, func() int { return len(poolMachines(ctx, poolName)) }).WithTimeout(10 * time.Second).WithPolling(time.Second).Should(Equal(3))
	})
})
