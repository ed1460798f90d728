package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// launchErrorCase is one refused RunInstances, as EC2 answers it to CAPA.
type launchErrorCase struct {
	reqs []v1alpha1.NodeSelectorRequirementWithMinValues
	// ami, when set, replaces the suite's AMI in the pool's template.
	ami string
	// refuse, when set, makes EC2 refuse the matching offerings with code.
	refuse cloudsim.Offering
	code   string
	// reason is the NodePool Event of the refusal.
	reason string
	// launchedAs is the capacity type the pod finally runs on (capacity
	// errors); field is what LaunchConfigurationValid names (configuration
	// errors: nothing launches).
	launchedAs string
	field      string
}

var _ = Describe("Launch errors through EC2's wire: what each class does to the next plan", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	DescribeTable("a refused launch",
		func(ctx SpecContext, c launchErrorCase) {
			name := "launch-" + strings.ToLower(strings.ReplaceAll(c.code, ".", "-"))
			pool := newNodePool(name, workload2, c.reqs...)
			if c.ami != "" {
				spec := testbed.WorkerMachineSpec()
				spec.AMI = infrav1.AMIReference{ID: ptr.To(c.ami)}
				t := &infrav1.AWSMachineTemplate{
					ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
					Spec:       infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: spec}},
				}
				Expect(tb.Client.Create(ctx, t)).To(Succeed())
				DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, t))).To(Succeed()) })
				pool.Spec.Template.Spec.InfrastructureTemplateRef.Name = name
			}
			if c.refuse != (cloudsim.Offering{}) {
				tb.Cloud.InjectLaunchError(c.refuse, c.code, "")
				DeferCleanup(tb.Cloud.ClearLaunchErrors)
			}
			createNodePool(ctx, pool)
			workloadDeployment(ctx, workload2, name, 1, "1", "1Gi", onPool(name))

			By("the refusal is classified from EC2's code and told on the NodePool")
			Eventually(ctx, func() []string { return managementEvents(ctx, "NodePool", name) }).WithTimeout(provisioningWithin).WithPolling(time.Second).
				Should(ContainElement(And(HavePrefix(c.reason+": "), ContainSubstring(c.code))))

			if c.launchedAs != "" {
				By("the next plan avoids what was refused and the pod gets a Node")
				Eventually(ctx, readyPods(ctx, workload2, name)).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))
				machines := poolMachines(ctx, name)
				Expect(machines).To(HaveLen(1))
				d := decisionOf(&machines[0])
				Expect(d.Offering.CapacityType).To(Equal(c.launchedAs))
				node := workloadNode(ctx, workload2, appPods(ctx, workload2, name)[0].Spec.NodeName)
				Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, c.launchedAs))
				Expect(launchedEvents(ctx, name)).To(Equal(2), "the refused launch and the fallback")
				Expect(poolCondition(ctx, name, provisioning.ConditionLaunchConfigurationValid)()).To(HavePrefix("True: "),
					"a capacity refusal says nothing against the templates")
				return
			}

			By("LaunchConfigurationValid is False, naming the template field, and a LaunchConfigurationError Event names it too")
			Eventually(ctx, poolCondition(ctx, name, provisioning.ConditionLaunchConfigurationValid)).WithTimeout(within).
				Should(And(HavePrefix("False: "), ContainSubstring(c.field), ContainSubstring(c.code)))
			Expect(managementEvents(ctx, "NodePool", name)).To(ContainElement(And(HavePrefix("LaunchConfigurationError: "), ContainSubstring(c.field))))

			By("the refused Machine is gone and nothing is launched again: no relaunch loop")
			eventually(ctx, func() int { return len(poolMachines(ctx, name)) }).Should(BeZero())
			// Pending pods start a pass within a batch window (1 s); five
			// of them would relaunch were the pool not held back.
			Consistently(ctx, func(g Gomega) {
				g.Expect(poolMachines(ctx, name)).To(BeEmpty())
				g.Expect(launchedEvents(ctx, name)).To(Equal(1))
			}).WithTimeout(5 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
			Expect(readyPods(ctx, workload2, name)()).To(BeZero())
		},
		// The spot vCPU quota of the X family (a quota group no other spec
		// launches in, since the refusal holds for the whole group for
		// the unavailable-offerings TTL) is used up: on-demand has its own.
		Entry("capacity: VcpuLimitExceeded for spot -> the next plan launches on-demand", launchErrorCase{
			reqs: []v1alpha1.NodeSelectorRequirementWithMinValues{
				req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand),
				req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "x1e.xlarge"),
			},
			refuse: cloudsim.Offering{InstanceType: "x1e.xlarge", CapacityType: cloudsim.CapacityTypeSpot},
			code:   "VcpuLimitExceeded", reason: "InsufficientCapacity", launchedAs: v1alpha1.CapacityTypeOnDemand,
		}),
		// An AMI the account does not have: EC2 refuses every offering the
		// same way, so only the template can cure it.
		Entry("configuration: an AMI EC2 does not have (InvalidAMIID.NotFound) -> held back, the template's ami named", launchErrorCase{
			reqs: []v1alpha1.NodeSelectorRequirementWithMinValues{
				req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
				req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.large"),
				// The pool names the architecture, so the unknown AMI
				// leaves nothing to assume.
				req(v1alpha1.LabelArch, v1alpha1.OpIn, "amd64"),
			},
			ami:  "ami-0123456789abcdef0",
			code: "InvalidAMIID.NotFound", reason: "LaunchConfigurationError", field: "spec.template.spec.ami",
		}),
	)
})

// launchedEvents counts the pool's Launched Events.
func launchedEvents(ctx SpecContext, pool string) int {
	n := 0
	for _, e := range managementEvents(ctx, "NodePool", pool) {
		if strings.HasPrefix(e, "Launched: ") {
			n++
		}
	}
	return n
}
