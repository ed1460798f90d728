package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	v1beta1conditions "sigs.k8s.io/cluster-api/util/deprecated/v1beta1/conditions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// instanceOf returns the ledger entry of an AWSMachine's instance.
func instanceOf(awsMachine string) (cloudsim.Instance, bool) {
	for _, i := range tb.Cloud.Instances() {
		if i.AWSMachine.Name == awsMachine {
			return i, true
		}
	}
	return cloudsim.Instance{}, false
}

var _ = Describe("Faults of the simulated cloud, as a controller sees them", func() {
	It("reports insufficient capacity on the AWSMachine as CAPA reports a failed RunInstances, and launches once capacity returns", func(ctx SpecContext) {
		offering := cloudsim.Offering{InstanceType: "c5.xlarge", Zone: "us-east-1b", CapacityType: cloudsim.CapacityTypeOnDemand}
		tb.Cloud.InjectInsufficientCapacity(offering)
		DeferCleanup(func() { tb.Cloud.ClearInsufficientCapacity(offering) })
		_, err := tb.CreateWorkerMachine(ctx, testbed.WorkerMachine{Cluster: workload, Name: "ice", InstanceType: "c5.xlarge", Zone: "us-east-1b"})
		Expect(err).NotTo(HaveOccurred())

		By("the AWSMachine's InstanceReady condition is False with reason InstanceProvisionFailed and EC2's error")
		eventually(ctx, func(g Gomega) {
			m := &infrav1.AWSMachine{}
			g.Expect(tb.Client.Get(ctx, key("ice"), m)).To(Succeed())
			c := v1beta1conditions.Get(m, infrav1.InstanceReadyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(corev1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(infrav1.InstanceProvisionFailedReason))
			g.Expect(c.Severity).To(Equal(clusterv1beta1.ConditionSeverityError))
			g.Expect(c.Message).To(HavePrefix("failed to create AWSMachine instance: failed to run instance: operation error EC2: RunInstances"))
			g.Expect(c.Message).To(ContainSubstring("api error InsufficientInstanceCapacity: We currently do not have sufficient c5.xlarge capacity in the Availability Zone you requested (us-east-1b)."))
			g.Expect(m.Spec.ProviderID).To(BeNil())
		}).Should(Succeed())

		By("CAPI mirrors it on the Machine, which stays Provisioning")
		eventually(ctx, func(g Gomega) {
			m := &clusterv1.Machine{}
			g.Expect(tb.Client.Get(ctx, key("ice"), m)).To(Succeed())
			g.Expect(m.Status.Phase).To(Equal(string(clusterv1.MachinePhaseProvisioning)))
			g.Expect(m.Status.Deprecated.V1Beta1.Conditions).To(ContainElement(And(
				HaveField("Type", clusterv1.InfrastructureReadyV1Beta1Condition),
				HaveField("Reason", infrav1.InstanceProvisionFailedReason),
			)))
		}).Should(Succeed())
		_, launched := instanceOf("ice")
		Expect(launched).To(BeFalse(), "a refused launch is not billed")

		By("a FailedCreate event is recorded on the AWSMachine")
		eventually(ctx, func(g Gomega) {
			events := &corev1.EventList{}
			g.Expect(tb.Client.List(ctx, events, client.InNamespace(tb.Namespace))).To(Succeed())
			g.Expect(events.Items).To(ContainElement(And(
				HaveField("InvolvedObject.Name", "ice"), HaveField("Reason", "FailedCreate"), HaveField("Type", corev1.EventTypeWarning),
			)))
		}).Should(Succeed())

		By("once the capacity returns, the retried launch succeeds")
		tb.Cloud.ClearInsufficientCapacity(offering)
		eventually(ctx, machinePhase(ctx, "ice")).Should(Equal(string(clusterv1.MachinePhaseRunning)))
		machineDeleted(ctx, "ice")
	})

	It("keeps a slowly booting instance pending, with its Machine Provisioning", func(ctx SpecContext) {
		slow := cloudsim.Offering{InstanceType: "r5.large"}
		tb.Cloud.SlowBoot(slow, 6*time.Second)
		DeferCleanup(func() { tb.Cloud.SlowBoot(slow, 0) })
		_, err := tb.CreateWorkerMachine(ctx, testbed.WorkerMachine{Cluster: workload, Name: "slow", InstanceType: "r5.large", Zone: "us-east-1a"})
		Expect(err).NotTo(HaveOccurred())

		By("the AWSMachine reports the instance pending and not ready")
		eventually(ctx, func(g Gomega) {
			m := getAWSMachine(ctx, "slow")
			g.Expect(m.Status.InstanceState).To(Equal(ptr.To(infrav1.InstanceStatePending)))
			g.Expect(m.Status.Ready).To(BeFalse())
			g.Expect(v1beta1conditions.GetReason(m, infrav1.InstanceReadyCondition)).To(Equal(infrav1.InstanceNotReadyReason))
		}).Should(Succeed())
		Consistently(ctx, func(g Gomega) {
			m := &clusterv1.Machine{}
			g.Expect(tb.Client.Get(ctx, key("slow"), m)).To(Succeed())
			g.Expect(m.Status.Phase).To(Equal(string(clusterv1.MachinePhaseProvisioning)))
			g.Expect(m.Spec.ProviderID).To(BeEmpty())
		}).WithTimeout(2 * time.Second).Should(Succeed())

		By("after the boot delay the Machine runs")
		eventually(ctx, machinePhase(ctx, "slow")).Should(Equal(string(clusterv1.MachinePhaseRunning)))
		inst, ok := instanceOf("slow")
		Expect(ok).To(BeTrue())
		Expect(inst.RunningTime.Sub(inst.LaunchTime)).To(BeNumerically(">=", 6*time.Second))
		machineDeleted(ctx, "slow")
	})

	It("runs an instance whose node never joins: the AWSMachine is ready, the Machine never gets a nodeRef", func(ctx SpecContext) {
		broken := cloudsim.Offering{InstanceType: "m5.xlarge"}
		tb.Cloud.NeverJoin(broken, true)
		DeferCleanup(func() { tb.Cloud.NeverJoin(broken, false) })
		_, err := tb.CreateWorkerMachine(ctx, testbed.WorkerMachine{Cluster: workload, Name: "never-joins", InstanceType: "m5.xlarge", Zone: "us-east-1a"})
		Expect(err).NotTo(HaveOccurred())

		eventually(ctx, machinePhase(ctx, "never-joins")).Should(Equal(string(clusterv1.MachinePhaseProvisioned)))
		Expect(getAWSMachine(ctx, "never-joins").Status.Ready).To(BeTrue())
		Consistently(ctx, func(g Gomega) {
			m := &clusterv1.Machine{}
			g.Expect(tb.Client.Get(ctx, key("never-joins"), m)).To(Succeed())
			g.Expect(m.Status.NodeRef.IsDefined()).To(BeFalse())
			g.Expect(m.Spec.ProviderID).NotTo(BeEmpty())
		}).WithTimeout(3 * time.Second).Should(Succeed())
		inst, ok := instanceOf("never-joins")
		Expect(ok).To(BeTrue())
		Expect(inst.State).To(Equal(cloudsim.StateRunning), "the instance runs, and is billed, without a node")
		Expect(inst.NodeName).To(BeEmpty())

		By("deleting the Machine terminates the instance although it has no node to drain")
		machineDeleted(ctx, "never-joins")
		inst, _ = instanceOf("never-joins")
		Expect(inst.State).To(Equal(cloudsim.StateTerminated))
	})

	It("terminates an instance out of band: its Node goes away and the AWSMachine and Machine report it", func(ctx SpecContext) {
		m := runningMachine(ctx, testbed.WorkerMachine{Name: "oob", InstanceType: "m5.large", Zone: "us-east-1b"})
		nodeName := m.Status.NodeRef.Name
		inst, _ := instanceOf("oob")
		Expect(tb.Cloud.TerminateInstance(ctx, inst.ID)).To(Succeed())

		By("the Node is gone from the workload cluster")
		eventually(ctx, func() bool {
			_, err := workloadClientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).Should(BeTrue())
		By("the AWSMachine reports the instance terminated, as CAPA does for an unexpected termination")
		eventually(ctx, func(g Gomega) {
			am := getAWSMachine(ctx, "oob")
			g.Expect(am.Status.InstanceState).To(Equal(ptr.To(infrav1.InstanceStateTerminated)))
			g.Expect(am.Status.Ready).To(BeFalse())
			g.Expect(v1beta1conditions.GetReason(am, infrav1.InstanceReadyCondition)).To(Equal(infrav1.InstanceTerminatedReason))
			g.Expect(am.Status.FailureReason).To(Equal(ptr.To("UpdateError")))
			g.Expect(am.Status.FailureMessage).To(Equal(ptr.To(`EC2 instance state "terminated" is unexpected`)))
		}).Should(Succeed())
		By("CAPI copies the failure to the Machine and sees its Node deleted")
		eventually(ctx, func(g Gomega) {
			cm := getMachine(ctx, "oob")
			g.Expect(cm.Status.Deprecated.V1Beta1.FailureReason).NotTo(BeNil())
			g.Expect(string(*cm.Status.Deprecated.V1Beta1.FailureReason)).To(Equal("UpdateError"))
			g.Expect(*cm.Status.Deprecated.V1Beta1.FailureMessage).To(ContainSubstring(`EC2 instance state "terminated" is unexpected`))
			c := meta(cm.Status.Conditions, clusterv1.MachineNodeHealthyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(clusterv1.MachineNodeDeletedReason))
		}).Should(Succeed())
		machineDeleted(ctx, "oob")
	})

	It("announces a spot interruption, then terminates the spot instance after the warning", func(ctx SpecContext) {
		m := runningMachine(ctx, testbed.WorkerMachine{Name: "spot", InstanceType: "m5.large", Zone: "us-east-1a", Spot: true})
		nodeName := m.Status.NodeRef.Name
		node, err := workloadClientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(node.Labels).To(HaveKeyWithValue("node.kubernetes.io/instance-type", "m5.large"))
		Expect(getAWSMachine(ctx, "spot").Status.Interruptible).To(BeTrue())
		inst, _ := instanceOf("spot")
		Expect(inst.CapacityType).To(Equal(cloudsim.CapacityTypeSpot))

		notice, err := tb.Cloud.InterruptSpotInstance(ctx, inst.ID)
		Expect(err).NotTo(HaveOccurred())
		By("the interruption hook gets the notice (where the SQS message will be sent)")
		Eventually(ctx, interruptions).Should(Receive(HaveField("InstanceID", inst.ID)))
		Expect(notice.TerminationTime.Sub(notice.NoticeTime)).To(Equal(3 * time.Second))
		By("until the termination time the instance keeps running")
		Expect(getAWSMachine(ctx, "spot").Status.InstanceState).To(Equal(ptr.To(infrav1.InstanceStateRunning)))

		By("then the instance terminates and its Node goes away")
		eventually(ctx, func(g Gomega) {
			am := getAWSMachine(ctx, "spot")
			g.Expect(am.Status.InstanceState).To(Equal(ptr.To(infrav1.InstanceStateTerminated)))
			_, err := workloadClientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())
		inst, _ = instanceOf("spot")
		Expect(inst.TerminationReason).To(Equal("spot interruption"))
		Expect(inst.TerminateTime.Sub(inst.InterruptionNotice)).To(BeNumerically(">=", 3*time.Second))
		machineDeleted(ctx, "spot")
	})
})

func meta(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
