package e2e

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/solver"
)

// Karpenter leans on EC2 Fleet's price-capacity-optimized strategy for
// this; Joinery launches one AWSMachine at a time and weighs each spot
// offering's price by its risk itself. Here EC2 (the simulated one, over
// its wire protocol) scores the m5 family low in the zone where m5.large
// spot is cheapest; the manager reads the score with its spot prices
// (--catalog-spot-refresh-interval) and launches in the next zone.
var _ = Describe("Spot risk: placement scores Joinery weighs spot prices by", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("passes over the cheapest spot offering when EC2 scores it 1 of 10, launches the next, and explain says why", func(ctx SpecContext) {
		const poolName = "spot-risk"
		pool := newNodePool(poolName, workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeSpot),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.large"))
		probe := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: metav1.NamespaceDefault},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
			}}}}}}}
		first := freshPlan(pool, probe).NewNodes[0].Offering
		Expect(first.CapacityType).To(Equal(v1alpha1.CapacityTypeSpot))

		By(fmt.Sprintf("m5.large spot is 10%% cheaper in %s, and EC2 scores the m5 family 1 there", first.Zone))
		cheap := first.PricePerHour * 0.9
		tb.Cloud.EC2().SetSpotPrice("m5.large", first.ZoneID, cheap)
		catalog, err := cloud.Embedded()
		Expect(err).NotTo(HaveOccurred())
		offered, err := catalog.RegionOfferings(tb.Cloud.Region())
		Expect(err).NotTo(HaveOccurred())
		var family []string
		for _, it := range offered {
			if it.InstanceType.Family == "m5" {
				family = append(family, it.InstanceType.Name)
				tb.Cloud.EC2().SetPlacementScore(it.InstanceType.Name, first.ZoneID, 1)
			}
		}
		Expect(len(family)).To(BeNumerically(">=", 3), "EC2 scores families of 3+ types")
		DeferCleanup(func() {
			tb.Cloud.EC2().SetSpotPrice("m5.large", first.ZoneID, first.PricePerHour)
			for _, t := range family {
				tb.Cloud.EC2().SetPlacementScore(t, first.ZoneID, cloudsimDefaultScore)
			}
		})
		reads := strings.Count(joinery.Tail(4<<20), "read the EC2 catalog")
		Eventually(func() int { return strings.Count(joinery.Tail(4<<20), "read the EC2 catalog") }).WithTimeout(3*spotRefresh).WithPolling(time.Second).
			Should(BeNumerically(">", reads), "the manager did not read spot prices and scores again")

		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload2, "spot-risk", 1, "500m", "512Mi", onPool(poolName))
		Eventually(ctx, readyPods(ctx, workload2, "spot-risk")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))
		machines := poolMachines(ctx, poolName)
		Expect(machines).To(HaveLen(1))
		d := decisionOf(&machines[0])
		Expect(d.Offering.InstanceType).To(Equal("m5.large"))
		Expect(d.Offering.Zone).NotTo(Equal(first.Zone), "Joinery launched in the zone EC2 scored 1")
		Expect(d.Offering.PricePerHour).To(BeNumerically(">", cheap))
		found := false
		for _, r := range d.Rejected {
			if r.Reason != solver.RejectedForSpotRisk {
				continue
			}
			for _, o := range r.Offerings {
				if o.Zone == first.Zone && o.InstanceType == "m5.large" {
					Expect(o.PlacementScore).To(Equal(1))
					Expect(o.InterruptionRisk).To(BeNumerically("~", 1, 1e-9))
					Expect(o.PricePerHour).To(BeNumerically("~", cheap, 1e-6))
					found = true
				}
			}
		}
		Expect(found).To(BeTrue(), "the decision does not list m5.large in %s as passed over for risk: %+v", first.Zone, d.Rejected)

		By("joinery explain names the offering passed over and its score")
		Expect(explainText(ctx, "machine", machines[0].Name, "")).To(And(
			ContainSubstring("spot prices weighed by interruption risk"),
			ContainSubstring(fmt.Sprintf("interruption risk: weighed by it (EC2's placement score, Joinery's recent interruptions), the price is not below the chosen offering's: 1 offering, cheapest: spot m5.large in %s at $%.4f/h [placement score 1/10", first.Zone, cheap))))
	})
})
