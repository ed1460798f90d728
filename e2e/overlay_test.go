package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// Karpenter's counterpart: its nodeoverlay suite's "should update price
// offerings instance types from multiple overlays with different weights"
// and the provisioning tests that pick the cheapest overlaid type; here on
// the testbed, through CAPI Machines.
var _ = Describe("NodeOverlay: prices Joinery plans with", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("a -40% overlay on m5 makes m5 the choice over the cheaper-listed c5, explained; a conflicting overlay is reported; without overlays the next decision is at list price", func(ctx SpecContext) {
		const poolName = "overlay"
		pool := newNodePool(poolName, workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.large", "c5.large"))
		// One 1500m pod per node: each deployment below needs a machine of
		// its own, decided by the prices of its moment.
		probe := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: metav1.NamespaceDefault},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("1Gi"),
			}}}}}}}
		list := freshPlan(pool, probe).NewNodes[0]
		Expect(list.InstanceType.Name).To(Equal("c5.large"), "the spec assumes c5.large is the cheaper at list prices")
		m5List := listPrice("m5.large", list.Offering.Zone)
		Expect(m5List*0.6).To(BeNumerically("<", list.Offering.PricePerHour), "the spec assumes m5.large at -40%% undercuts c5.large")

		createNodePool(ctx, pool)
		By("an m5 discount of weight 10 and a conflicting premium of the same weight")
		discount := overlay("e2e-m5-discount", poolName, "-40%")
		premium := overlay("e2e-m5-a-premium", poolName, "+10%")
		for _, o := range []*v1alpha1.NodeOverlay{discount, premium} {
			Expect(tb.Client.Create(ctx, o)).To(Succeed())
			DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, o))).To(Succeed()) })
		}
		// Equal weights: the name later in the alphabet applies (Karpenter's
		// order), the other is reported and left out everywhere.
		Eventually(ctx, overlayCondition(ctx, premium.Name)).WithTimeout(within).Should(
			And(HavePrefix("False Conflict: "), ContainSubstring("conflicts with NodeOverlay e2e-m5-discount (same weight)"), ContainSubstring("NodePool "+poolName)))
		Eventually(ctx, overlayCondition(ctx, discount.Name)).WithTimeout(within).Should(HavePrefix("True Applied: "))

		workloadDeployment(ctx, workload2, "overlay-a", 1, "1500m", "1Gi", onPool(poolName))
		Eventually(ctx, readyPods(ctx, workload2, "overlay-a")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))
		machines := poolMachines(ctx, poolName)
		Expect(machines).To(HaveLen(1))
		first := machines[0]
		d := decisionOf(&first)
		Expect(d.Offering.InstanceType).To(Equal("m5.large"))
		Expect(d.Offering.PriceOverlay).To(Equal(discount.Name))
		Expect(d.Offering.ListPricePerHour).To(BeNumerically("~", m5List, 1e-9))
		Expect(d.Offering.PricePerHour).To(BeNumerically("~", m5List*0.6, 1e-9))

		By("joinery explain names the overlay, and the pool's $/h is the overlaid price")
		Expect(explainText(ctx, "machine", first.Name, "")).To(ContainSubstring(
			fmt.Sprintf("Chosen: on-demand m5.large in %s at $%.4f/h (price set by NodeOverlay %s; list $%.4f/h)", d.Offering.Zone, m5List*0.6, discount.Name, m5List)))
		Eventually(ctx, func() string { return poolStatus(ctx, poolName).PricePerHour }).WithTimeout(within).
			Should(Equal(fmt.Sprintf("%.4f", m5List*0.6)))

		By("deleting the overlays: the next decision is at list price, c5.large")
		for _, o := range []*v1alpha1.NodeOverlay{discount, premium} {
			Expect(tb.Client.Delete(ctx, o)).To(Succeed())
		}
		Eventually(ctx, func() int {
			var left v1alpha1.NodeOverlayList
			Expect(tb.Client.List(ctx, &left)).To(Succeed())
			n := 0
			for _, o := range left.Items {
				if strings.HasPrefix(o.Name, "e2e-m5-") {
					n++
				}
			}
			return n
		}).WithTimeout(within).Should(BeZero())
		workloadDeployment(ctx, workload2, "overlay-b", 1, "1500m", "1Gi", onPool(poolName))
		Eventually(ctx, readyPods(ctx, workload2, "overlay-b")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))
		var second *decidedMachine
		for _, m := range poolMachines(ctx, poolName) {
			if m.Name != first.Name {
				dd := decisionOf(&m)
				second = &decidedMachine{name: m.Name, instanceType: dd.Offering.InstanceType, overlay: dd.Offering.PriceOverlay, price: dd.Offering.PricePerHour}
			}
		}
		Expect(second).NotTo(BeNil(), "no second Machine for overlay-b")
		Expect(*second).To(Equal(decidedMachine{name: second.name, instanceType: "c5.large", price: list.Offering.PricePerHour}))
		Expect(explainText(ctx, "machine", second.name, "")).NotTo(ContainSubstring("NodeOverlay"))
	})
})

// decidedMachine is what a spec checks of a Machine's decision.
type decidedMachine struct {
	name, instanceType, overlay string
	price                       float64
}

// listPrice is a type's on-demand price in the suite's region, from the
// catalog the manager plans with.
func listPrice(instanceType, zone string) float64 {
	catalog, err := cloud.Embedded()
	Expect(err).NotTo(HaveOccurred())
	price, ok := catalog.OnDemandPrice(tb.Cloud.Region(), instanceType)
	Expect(ok).To(BeTrue(), "no on-demand price of %s in %s (%s)", instanceType, tb.Cloud.Region(), zone)
	return price
}

// overlay is a NodeOverlay of weight 10 on m5 in one pool.
func overlay(name, pool, adjustment string) *v1alpha1.NodeOverlay {
	return &v1alpha1.NodeOverlay{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.NodeOverlaySpec{
			Weight:          ptr.To[int32](10),
			PriceAdjustment: ptr.To(adjustment),
			Requirements: []v1alpha1.NodeOverlayRequirement{
				{Key: v1alpha1.LabelKarpenterNodePool, Operator: v1alpha1.OpIn, Values: []string{pool}},
				{Key: v1alpha1.AWSLabelPrefix + v1alpha1.SuffixInstanceFamily, Operator: v1alpha1.OpIn, Values: []string{"m5"}},
			},
		},
	}
}

// overlayCondition is "<status> <reason>: <message>" of an overlay's
// ValidationSucceeded condition.
func overlayCondition(ctx context.Context, name string) func() string {
	return func() string {
		o := &v1alpha1.NodeOverlay{}
		Expect(tb.Client.Get(ctx, types.NamespacedName{Name: name}, o)).To(Succeed())
		c := apimeta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionValidationSucceeded)
		if c == nil {
			return "<none>"
		}
		return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	}
}
