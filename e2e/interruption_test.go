package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// spotWarning is the simulated time between the interruption warning and
// EC2 reclaiming the instance in this spec (EC2's is two minutes): a
// replacement must be Ready before it.
const spotWarning = 30 * time.Second

var _ = Describe("Interruption: EC2's spot interruption warning, through SQS", Label(secondProcess), func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("replaces an interrupted spot machine elsewhere before EC2 reclaims it, and its pods run again", func(ctx SpecContext) {
		createNodePool(ctx, newNodePool("spot-only", workload,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeSpot),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCategory, v1alpha1.OpIn, "c", "m", "r"),
			req(v1alpha1.LabelArch, v1alpha1.OpIn, "amd64")))
		workloadDeployment(ctx, workload, "interrupted", 2, "500m", "512Mi", onPool("spot-only"))
		Eventually(ctx, readyPods(ctx, workload, "interrupted")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(2))

		By("the pods run on one spot Machine")
		var old clusterv1.Machine
		eventually(ctx, func(g Gomega) {
			machines := poolMachines(ctx, "spot-only")
			g.Expect(machines).To(HaveLen(1))
			g.Expect(machines[0].Status.NodeRef.IsDefined()).To(BeTrue())
			old = machines[0]
		}).Should(Succeed())
		inst, ok := instanceOf(old.Name)
		Expect(ok).To(BeTrue())
		Expect(inst.CapacityType).To(Equal(cloudsim.CapacityTypeSpot))
		Expect(inst.State).To(Equal(cloudsim.StateRunning))

		notice, err := tb.Cloud.InterruptSpotInstanceAfter(ctx, inst.ID, spotWarning)
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, interruptions).Should(Receive(HaveField("InstanceID", inst.ID)))

		By("Joinery reads the warning from SQS: the old Machine goes, a replacement of another offering gets a Ready node, the pods run again")
		var gone, replacementReady, podsReady time.Time
		var replacement clusterv1.Machine
		Eventually(ctx, func(g Gomega) {
			now := time.Now()
			if gone.IsZero() {
				err := tb.Client.Get(ctx, key(old.Name), &clusterv1.Machine{})
				if apierrors.IsNotFound(err) {
					gone = now
				}
			}
			if replacementReady.IsZero() {
				for _, m := range poolMachines(ctx, "spot-only") {
					if m.Name == old.Name || !m.Status.NodeRef.IsDefined() {
						continue
					}
					if nodeReady(workloadNode(ctx, workload, m.Status.NodeRef.Name)) {
						replacementReady, replacement = now, m
					}
				}
			}
			if podsReady.IsZero() && !replacementReady.IsZero() {
				moved := 0
				for _, p := range appPods(ctx, workload, "interrupted") {
					if podReady(&p) && p.Spec.NodeName != old.Status.NodeRef.Name {
						moved++
					}
				}
				if moved == 2 {
					podsReady = now
				}
			}
			g.Expect(gone).NotTo(BeZero(), "old Machine %s still exists", old.Name)
			g.Expect(replacementReady).NotTo(BeZero(), "no replacement Machine with a Ready node yet")
			g.Expect(podsReady).NotTo(BeZero(), "pods not ready again")
		}).WithTimeout(2 * spotWarning).WithPolling(100 * time.Millisecond).Should(Succeed())

		report := func(t time.Time) string { return t.Sub(notice.NoticeTime).Round(10 * time.Millisecond).String() }
		GinkgoWriter.Printf("spot interruption of %s (%s/%s): old Machine gone after %s, replacement %s Ready after %s, pods ready after %s; EC2 reclaims at %s\n",
			inst.ID, inst.InstanceType, inst.Zone, report(gone), replacement.Name, report(replacementReady), report(podsReady), report(notice.TerminationTime))
		AddReportEntry("interruption timings", map[string]string{
			"oldMachineGone": report(gone), "replacementReady": report(replacementReady), "podsReady": report(podsReady), "deadline": report(notice.TerminationTime),
		})
		Expect(gone).To(BeTemporally("<", notice.TerminationTime), "the old Machine outlived the warning")
		Expect(replacementReady).To(BeTemporally("<", notice.TerminationTime), "the replacement was not Ready before EC2 reclaimed the instance")

		By("the replacement avoids the interrupted offering, and the instance was terminated by Joinery's deletion, not by EC2")
		repl := decisionOf(&replacement)
		Expect(repl.Offering.CapacityType).To(Equal(v1alpha1.CapacityTypeSpot))
		Expect([2]string{repl.Offering.InstanceType, repl.Offering.Zone}).NotTo(Equal([2]string{inst.InstanceType, inst.Zone}),
			"the replacement runs the interrupted offering %s/%s/spot", inst.InstanceType, inst.Zone)
		inst, _ = instanceOf(old.Name)
		Expect(inst.State).To(Equal(cloudsim.StateTerminated))
		Expect(inst.TerminationReason).To(Equal("TerminateInstances"), "CAPA terminated it when Joinery deleted the Machine")

		By("the Machine and its NodePool tell what happened and when EC2 would reclaim it; the message left the queue")
		Expect(managementEvents(ctx, "Machine", old.Name)).To(ContainElements(
			And(HavePrefix("SpotInterrupted: "), ContainSubstring(inst.ID)), HavePrefix("TerminatingOnInterruption: ")))
		Expect(managementEvents(ctx, "NodePool", "spot-only")).To(ContainElement(And(HavePrefix("SpotInterrupted: Machine "+old.Name), ContainSubstring("at about "))))
		eventually(ctx, func() int {
			visible, inFlight := tb.Cloud.SQS().Messages(interruptionQueue)
			return visible + inFlight
		}).Should(BeZero())
	})
})
