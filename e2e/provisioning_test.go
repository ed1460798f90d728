package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// workerTemplates is the name of the AWSMachineTemplate and
// KubeadmConfigTemplate every spec's NodePools reference.
const workerTemplates = "e2e-workers"

// provisioningWithin bounds how long Joinery may take to get a batch of
// pods running: a batch window, a solve, CAPI's bootstrap, a boot.
const provisioningWithin = 3 * time.Minute

func ensureWorkerTemplates(ctx context.Context) {
	_, _, err := tb.CreateWorkerTemplates(ctx, workerTemplates)
	Expect(err).NotTo(HaveOccurred())
}

func req(key string, op v1alpha1.NodeSelectorOperator, values ...string) v1alpha1.NodeSelectorRequirementWithMinValues {
	return v1alpha1.NodeSelectorRequirementWithMinValues{Key: key, Operator: op, Values: values}
}

// newNodePool is a pool serving one cluster (or, with cluster "", every
// cluster labelled env=e2e) with the suite's templates.
func newNodePool(name, cluster string, reqs ...v1alpha1.NodeSelectorRequirementWithMinValues) *v1alpha1.NodePool {
	np := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
		Spec: v1alpha1.NodePoolSpec{
			Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
				Requirements: reqs,
				InfrastructureTemplateRef: v1alpha1.TemplateReference{
					APIGroup: infrav1.GroupVersion.Group, Kind: "AWSMachineTemplate", Name: workerTemplates,
				},
				BootstrapTemplateRef: v1alpha1.TemplateReference{
					APIGroup: bootstrapv1.GroupVersion.Group, Kind: "KubeadmConfigTemplate", Name: workerTemplates,
				},
			}},
		},
	}
	// Provisioning specs keep what they launch: no consolidation.
	np.Spec.Disruption.ConsolidateAfter = "Never"
	if cluster != "" {
		np.Spec.ClusterName = cluster
	} else {
		np.Spec.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "e2e"}}
	}
	return np
}

func createNodePool(ctx context.Context, np *v1alpha1.NodePool) {
	Expect(tb.Client.Create(ctx, np)).To(Succeed())
	DeferCleanup(deleteNodePool, np.Name, NodeTimeout(3*time.Minute))
}

// deleteNodePool deletes a pool and waits until garbage collection and
// CAPI removed every Machine it made.
func deleteNodePool(ctx context.Context, name string) {
	Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}))).To(Succeed())
	Eventually(ctx, func() []string {
		var left []string
		for _, m := range poolMachines(ctx, name) {
			state := m.Name + " " + m.Status.Phase
			if m.DeletionTimestamp != nil {
				state += " (deleting)"
			}
			for _, c := range m.Status.Conditions {
				if c.Status != metav1.ConditionTrue && c.Type == clusterv1.MachineDeletingCondition {
					state += " " + c.Reason + ": " + c.Message
				}
			}
			left = append(left, state)
		}
		return left
	}).WithTimeout(2*time.Minute).WithPolling(500*time.Millisecond).Should(BeEmpty(), "Machines of NodePool %s left after it was deleted", name)
}

func poolMachines(ctx context.Context, pool string) []clusterv1.Machine {
	var list clusterv1.MachineList
	Expect(tb.Client.List(ctx, &list, client.InNamespace(tb.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: pool})).To(Succeed())
	return list.Items
}

// poolMachinesWithNodes waits until every Machine of a pool has its Node and
// returns them. A pod can run on a node before CAPI, which polls, has set
// the Machine's nodeRef: ready pods do not mean every Machine has a Node.
func poolMachinesWithNodes(ctx context.Context, pool string) []clusterv1.Machine {
	var machines []clusterv1.Machine
	Eventually(ctx, func() []string {
		machines = poolMachines(ctx, pool)
		var waiting []string
		for _, m := range machines {
			if !m.Status.NodeRef.IsDefined() {
				waiting = append(waiting, m.Name)
			}
		}
		return waiting
	}).WithTimeout(within).Should(BeEmpty(), "Machines of pool %s without a Node", pool)
	return machines
}

func decisionOf(m *clusterv1.Machine) provisioning.Decision {
	var d provisioning.Decision
	Expect(json.Unmarshal([]byte(m.Annotations[provisioning.AnnotationDecision]), &d)).To(Succeed(), "decision of Machine %s", m.Name)
	return d
}

// workloadDeployment creates a Deployment of pause pods in a workload
// cluster, deleted with the spec.
func workloadDeployment(ctx context.Context, cluster, name string, replicas int32, cpu, memory string, mutate ...func(*corev1.PodSpec)) {
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
			}},
		}},
	}
	for _, m := range mutate {
		m(&spec)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	c := tb.Workload(cluster).Client
	Expect(c.Create(ctx, d)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(c.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationForeground)))).To(Succeed())
		Eventually(ctx, func() int { return len(appPods(ctx, cluster, name)) }).WithTimeout(time.Minute).Should(BeZero())
	})
}

// onPool keeps a spec's pods on its own pool's nodes: nodes other specs
// left behind (or are still removing) must not take them.
func onPool(pool string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.NodeSelector = map[string]string{v1alpha1.LabelNodePool: pool}
	}
}

func appPods(ctx context.Context, cluster, app string) []corev1.Pod {
	var pods corev1.PodList
	Expect(tb.Workload(cluster).Client.List(ctx, &pods, client.InNamespace(metav1.NamespaceDefault), client.MatchingLabels{"app": app})).To(Succeed())
	return pods.Items
}

// readyPods counts the app's ready pods.
func readyPods(ctx context.Context, cluster, app string) func() int {
	return func() int {
		n := 0
		for _, p := range appPods(ctx, cluster, app) {
			if podReady(&p) {
				n++
			}
		}
		return n
	}
}

func workloadNode(ctx context.Context, cluster, name string) *corev1.Node {
	n := &corev1.Node{}
	Expect(tb.Workload(cluster).Client.Get(ctx, types.NamespacedName{Name: name}, n)).To(Succeed())
	return n
}

// freshPlan is what the solver plans for the pods on an empty cluster
// with the pool: the yardstick for what Joinery launched.
func freshPlan(np *v1alpha1.NodePool, pods []corev1.Pod) *solver.Plan {
	catalog, err := cloud.Embedded()
	Expect(err).NotTo(HaveOccurred())
	region := tb.Cloud.Region()
	offered, err := catalog.RegionOfferings(region, cloud.WithZones(region+"a", region+"b", region+"c"))
	Expect(err).NotTo(HaveOccurred())
	// The suite's template names an amd64 AMI, and the manager reads the
	// AMI's architecture from the simulated EC2 (DescribeImages), so only
	// amd64 types can serve the pool.
	np = np.DeepCopy()
	np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements,
		req(v1alpha1.LabelArch, v1alpha1.OpIn, cloud.ArchAMD64))
	objs := solverinput.Objects{NodePools: []*v1alpha1.NodePool{np}}
	for i := range pods {
		p := pods[i].DeepCopy()
		p.Spec.NodeName = ""
		objs.Pods = append(objs.Pods, p)
	}
	snap, err := solverinput.Snapshot(objs, offered, nil)
	Expect(err).NotTo(HaveOccurred())
	plan, err := solver.Solve(snap, solver.Options{SkipLowerBound: true})
	Expect(err).NotTo(HaveOccurred())
	Expect(plan.Unschedulable).To(BeEmpty())
	return plan
}

// machinesBillAsDecided checks every Machine of the pool against the
// simulated cloud's ledger: one running instance each, of the offering the
// decision chose, billed at the decided price. It returns the pool's
// hourly price.
func machinesBillAsDecided(ctx context.Context, pool string) float64 {
	total := 0.0
	for _, m := range poolMachines(ctx, pool) {
		d := decisionOf(&m)
		inst, ok := instanceOf(m.Name)
		Expect(ok).To(BeTrue(), "Machine %s has no instance in the ledger", m.Name)
		Expect(inst.State).To(Equal(cloudsim.StateRunning), "instance of Machine %s", m.Name)
		Expect(inst.Offering).To(Equal(cloudsim.Offering{InstanceType: d.Offering.InstanceType, Zone: d.Offering.Zone, CapacityType: d.Offering.CapacityType}),
			"Machine %s was decided as %+v", m.Name, d.Offering)
		Expect(inst.PricePerHour).To(BeNumerically("~", d.Offering.PricePerHour, 1e-9), "price of Machine %s", m.Name)
		total += inst.PricePerHour
	}
	return total
}

func poolStatus(ctx context.Context, name string) v1alpha1.NodePoolStatus {
	np := &v1alpha1.NodePool{}
	Expect(tb.Client.Get(ctx, key(name), np)).To(Succeed())
	return np.Status
}

func poolCondition(ctx context.Context, name, condition string) func() string {
	return func() string {
		c := apimeta.FindStatusCondition(poolStatus(ctx, name).Conditions, condition)
		if c == nil {
			return "<none>"
		}
		return string(c.Status) + ": " + c.Message
	}
}

// managementEvents returns the reasons of the Events on an object of the
// management cluster.
func managementEvents(ctx context.Context, kind, name string) []string {
	var events corev1.EventList
	Expect(tb.Client.List(ctx, &events, client.InNamespace(tb.Namespace))).To(Succeed())
	var out []string
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

var _ = Describe("Provisioning: pending pods become CAPI Machines", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("launches machines for 50 pending pods over two workload clusters; every pod runs and the bill is the plan", func(ctx SpecContext) {
		pool := newNodePool("fleet", "",
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCategory, v1alpha1.OpIn, "c", "m", "r"),
			req(v1alpha1.LabelArch, v1alpha1.OpIn, "amd64"))
		pool.Spec.Template.ObjectMeta.Labels = map[string]v1alpha1.LabelValue{"team": "web"}
		createNodePool(ctx, pool)
		for _, cluster := range []string{workload, workload2} {
			workloadDeployment(ctx, cluster, "fleet-web", 25, "500m", "512Mi", onPool("fleet"))
		}
		for _, cluster := range []string{workload, workload2} {
			Eventually(ctx, readyPods(ctx, cluster, "fleet-web")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(25),
				"fleet-web pods ready in %s", cluster)
		}

		By("every Machine has its Node, and both clusters got Machines")
		// A Machine whose pods the scheduler put on a bigger node that
		// registered first still gets its Node (consolidation removes it).
		machines := poolMachinesWithNodes(ctx, "fleet")
		perCluster := map[string]float64{}
		for _, m := range machines {
			Expect(m.Status.NodeRef.IsDefined()).To(BeTrue(), "Machine %s has no nodeRef", m.Name)
			d := decisionOf(&m)
			perCluster[m.Spec.ClusterName] += d.Offering.PricePerHour
			Expect(m.Spec.FailureDomain).To(Equal(d.Offering.Zone))
			Expect(m.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand))

			node := workloadNode(ctx, m.Spec.ClusterName, m.Status.NodeRef.Name)
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelNodePool, "fleet"))
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelKarpenterNodePool, "fleet"))
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeOnDemand))
			Expect(node.Labels).To(HaveKeyWithValue("team", "web"))
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelInstanceType, d.Offering.InstanceType))
		}
		Expect(perCluster).To(HaveKey(workload))
		Expect(perCluster).To(HaveKey(workload2))

		By("the simulated cloud bills exactly what the decisions chose, and no more than a fresh plan of the same pods")
		bill := machinesBillAsDecided(ctx, "fleet")
		for cluster, decided := range perCluster {
			plan := freshPlan(pool, appPods(ctx, cluster, "fleet-web"))
			GinkgoWriter.Printf("%s: launched $%.4f/h, a fresh plan of the same pods $%.4f/h (%d machines)\n", cluster, decided, plan.TotalPricePerHour, len(plan.NewNodes))
			Expect(decided).To(BeNumerically("<=", plan.TotalPricePerHour*1.15+1e-9), "what %s launched costs more than a fresh plan", cluster)
		}
		Expect(bill).To(BeNumerically("~", perCluster[workload]+perCluster[workload2], 1e-9))

		By("the NodePool's status adds the machines up")
		Eventually(ctx, func(g Gomega) {
			st := poolStatus(ctx, "fleet")
			g.Expect(st.Machines).To(BeEquivalentTo(len(machines)))
			g.Expect(st.Nodes).To(BeEquivalentTo(len(machines)))
			price, err := parseFloat(st.PricePerHour)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(price).To(BeNumerically("~", bill, 1e-3))
			g.Expect(st.Clusters).To(HaveLen(2))
			for _, c := range st.Clusters {
				g.Expect(c.Reachable).To(BeTrue(), "cluster %s", c.Name)
			}
			g.Expect(apimeta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).WithTimeout(within).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("the manager planned with what EC2 answered (zone names, the AMI's architecture), assuming nothing")
		Expect(managementEvents(ctx, "NodePool", "fleet")).NotTo(ContainElement(HavePrefix("NodeModelAssumed: ")))
		for _, c := range poolStatus(ctx, "fleet").Clusters {
			Expect(c.Message).NotTo(ContainSubstring("planning assumes"), "cluster %s", c.Name)
		}

		By("a pod that waited tells which Machine it waited for")
		var events corev1.EventList
		Expect(tb.Workload(workload).Client.List(ctx, &events, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
		nominated := 0
		for _, e := range events.Items {
			if e.Reason == "Nominated" && strings.Contains(e.Message, "Machine "+tb.Namespace+"/fleet-") {
				nominated++
			}
		}
		Expect(nominated).To(BeNumerically(">", 0))
	})

	It("puts a GPU pod on a GPU instance of the allowed family, spot-allowed pods on spot, and a zonal spread over three zones", func(ctx SpecContext) {
		createNodePool(ctx, newNodePool("cheap", workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCategory, v1alpha1.OpIn, "c", "m", "r")))
		gpu := newNodePool("gpu", workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily, v1alpha1.OpIn, "g5"))
		gpu.Spec.Template.Spec.Taints = []v1alpha1.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		createNodePool(ctx, gpu)

		workloadDeployment(ctx, workload2, "spread", 6, "1", "1Gi", onPool("cheap"), func(s *corev1.PodSpec) {
			s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: v1alpha1.LabelZone, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
			}}
		})
		workloadDeployment(ctx, workload2, "trainer", 1, "2", "8Gi", onPool("gpu"), func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse("1")
			s.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
			s.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		})
		Eventually(ctx, readyPods(ctx, workload2, "spread")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(6))
		Eventually(ctx, readyPods(ctx, workload2, "trainer")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))

		zones := map[string]int{}
		for _, p := range appPods(ctx, workload2, "spread") {
			node := workloadNode(ctx, workload2, p.Spec.NodeName)
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelCapacityType, v1alpha1.CapacityTypeSpot), "node %s", node.Name)
			Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelNodePool, "cheap"))
			zones[node.Labels[v1alpha1.LabelZone]]++
		}
		Expect(zones).To(HaveLen(3), "spread pods by zone: %v", zones)
		for _, n := range zones {
			Expect(n).To(Equal(2), "spread pods by zone: %v", zones)
		}

		trainer := appPods(ctx, workload2, "trainer")[0]
		node := workloadNode(ctx, workload2, trainer.Spec.NodeName)
		Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelNodePool, "gpu"))
		Expect(node.Labels[v1alpha1.LabelInstanceType]).To(HavePrefix("g5."))
		Expect(node.Status.Allocatable).To(HaveKey(corev1.ResourceName("nvidia.com/gpu")))
		Expect(node.Spec.Taints).To(ContainElement(HaveField("Key", "nvidia.com/gpu")))
	})

	It("stops at the pool's cpu limit, and says so in status and an Event", func(ctx SpecContext) {
		capped := newNodePool("capped", workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.xlarge"))
		capped.Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
		createNodePool(ctx, capped)
		// One m5.xlarge (4 vCPU) holds two of these pods; the third would
		// need a second machine, beyond 4 cpu.
		workloadDeployment(ctx, workload2, "capped", 3, "1500m", "1Gi", onPool("capped"))

		Eventually(ctx, readyPods(ctx, workload2, "capped")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(2))
		Eventually(ctx, poolCondition(ctx, "capped", v1alpha1.ConditionLimitReached)).WithTimeout(within).Should(HavePrefix("True: "))
		Eventually(ctx, func() []string { return managementEvents(ctx, "NodePool", "capped") }).WithTimeout(within).
			Should(ContainElement(HavePrefix("LimitReached: ")))
		// Another batch window and a replan later, still one machine.
		Consistently(ctx, func() int { return len(poolMachines(ctx, "capped")) }).WithTimeout(5 * time.Second).Should(Equal(1))
		Expect(readyPods(ctx, workload2, "capped")()).To(Equal(2))

		By("joinery explain says why the third pod waits, from the pod's FailedProvisioning Event")
		var pending string
		for _, p := range appPods(ctx, workload2, "capped") {
			if p.Spec.NodeName == "" {
				pending = p.Name
			}
		}
		Expect(pending).NotTo(BeEmpty())
		Eventually(ctx, func() string { return explainText(ctx, "pod", pending, "") }).WithTimeout(within).
			Should(And(ContainSubstring("in cluster "+tb.Namespace+"/"+workload2), ContainSubstring("No machine can be launched for it"), ContainSubstring("limit")))
		Expect(explainText(ctx, "nodepool", "capped", "")).To(And(ContainSubstring("LimitReached=True"), ContainSubstring("Limits, each per served cluster: cpu 4"),
			ContainSubstring(poolMachines(ctx, "capped")[0].Name)))
	})

	It("launches the fallback offering in the next batch when EC2 has no capacity for the cheapest", func(ctx SpecContext) {
		zone := tb.Cloud.Region() + "a"
		pool := newNodePool("fallback", workload2,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelZone, v1alpha1.OpIn, zone),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.large", "m5a.large", "m6i.large"))
		workloadDeploymentPods := []corev1.Pod{{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		}}}}}}
		workloadDeploymentPods[0].Name, workloadDeploymentPods[0].Namespace = "probe", metav1.NamespaceDefault
		cheapest := freshPlan(pool, workloadDeploymentPods).NewNodes[0]
		refused := cloudsim.Offering{InstanceType: cheapest.InstanceType.Name, Zone: zone, CapacityType: cloudsim.CapacityTypeOnDemand}
		tb.Cloud.InjectInsufficientCapacity(refused)
		DeferCleanup(func() { tb.Cloud.ClearInsufficientCapacity(refused) })

		createNodePool(ctx, pool)
		workloadDeployment(ctx, workload2, "fallback", 1, "1", "1Gi", onPool("fallback"))
		Eventually(ctx, readyPods(ctx, workload2, "fallback")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(1))

		machines := poolMachines(ctx, "fallback")
		Expect(machines).To(HaveLen(1))
		d := decisionOf(&machines[0])
		Expect(d.Offering.InstanceType).NotTo(Equal(refused.InstanceType), "the refused offering is %s", refused)
		events := managementEvents(ctx, "NodePool", "fallback")
		Expect(events).To(ContainElement(And(HavePrefix("InsufficientCapacity: "), ContainSubstring(refused.InstanceType))))
		// The fallback came from the batch after the refusal: one refused
		// Machine, one launched after it.
		launched := 0
		for _, e := range events {
			if strings.HasPrefix(e, "Launched: ") {
				launched++
			}
		}
		Expect(launched).To(Equal(2), "events: %v", events)

		By("joinery explain names the refused offering among the cheaper ones passed over")
		text := explainText(ctx, "machine", machines[0].Name, "")
		Expect(text).To(And(ContainSubstring("Chosen: on-demand "+d.Offering.InstanceType),
			MatchRegexp(`refused by the cloud recently \(insufficient capacity\): 1 offering, cheapest: on-demand `+refused.InstanceType+` in `+zone)))
	})

	It("honours the pool's kubelet maxPods in the plan, the KubeadmConfig and the Node, and launches a second Machine for the pods beyond it", func(ctx SpecContext) {
		const maxPods = 8
		pool := newNodePool("maxpods", workload,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.xlarge"))
		pool.Spec.Template.Spec.Kubelet = &v1alpha1.KubeletConfiguration{MaxPods: ptr.To[int32](maxPods)}
		createNodePool(ctx, pool)
		// Twelve pods an m5.xlarge holds many times over by cpu and memory:
		// only the pod cap makes two machines of them.
		workloadDeployment(ctx, workload, "maxpods", 12, "10m", "16Mi", onPool("maxpods"))
		Eventually(ctx, readyPods(ctx, workload, "maxpods")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(12))

		machines := poolMachinesWithNodes(ctx, "maxpods")
		Expect(machines).To(HaveLen(2))
		for _, m := range machines {
			By("Machine " + m.Name + ": planned for at most maxPods pods, its kubelet told so, its Node allocating that many")
			d := decisionOf(&m)
			Expect(d.PodCount).To(BeNumerically("<=", maxPods), "the decision of Machine %s", m.Name)
			config := &bootstrapv1.KubeadmConfig{}
			Expect(tb.Client.Get(ctx, key(m.Name), config)).To(Succeed())
			Expect(config.Spec.JoinConfiguration.NodeRegistration.KubeletExtraArgs).To(ContainElement(
				bootstrapv1.Arg{Name: "max-pods", Value: ptr.To(strconv.Itoa(maxPods))}))
			Expect(m.Status.NodeRef.IsDefined()).To(BeTrue(), "Machine %s has no Node", m.Name)
			node := workloadNode(ctx, workload, m.Status.NodeRef.Name)
			Expect(node.Status.Allocatable.Pods().Value()).To(BeEquivalentTo(maxPods), "allocatable pods of Node %s", node.Name)
		}
	})

	It("survives kill -9 every few seconds during a burst of pods that each need a node: every pod runs, no orphan, no duplicate Machine, no leaked instance", func(ctx SpecContext) {
		// Every burst pod needs a node of its own (hostname
		// anti-affinity) and consolidation is off, so the right fleet is
		// exactly one Machine, one instance and one node per pod: a single
		// duplicate launch is a Machine whose node hosts no burst pod, and
		// a single leaked instance is one more in EC2's ledger than there
		// are Machines.
		const replicas = 24
		pool := newNodePool("burst", workload,
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCategory, v1alpha1.OpIn, "c", "m"),
			req(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCPU, v1alpha1.OpLte, "8"))
		Expect(pool.Spec.Disruption.ConsolidateAfter).To(Equal("Never"))
		createNodePool(ctx, pool)
		DeferCleanup(func() {
			if !joinery.Running() {
				Expect(joinery.Start()).To(Succeed())
			}
		})
		workloadDeployment(ctx, workload, "burst", 4, "200m", "256Mi", onPool("burst"), func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey:   v1alpha1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "burst"}},
				}},
			}}
		})
		c := tb.Workload(workload).Client
		scale := func(n int32) {
			d := &appsv1.Deployment{}
			Expect(c.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "burst"}, d)).To(Succeed())
			patch := client.MergeFrom(d.DeepCopy())
			d.Spec.Replicas = ptr.To(n)
			Expect(c.Patch(ctx, d, patch)).To(Succeed())
		}

		// The burst grows between kills, so kills land in batch windows,
		// solves and create loops alike.
		rng := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 7))
		kills, n := 0, int32(4)
		for end := time.Now().Add(40 * time.Second); time.Now().Before(end); {
			time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
			joinery.Kill()
			kills++
			if n < replicas {
				n = min(n+4, replicas)
				scale(n)
			}
			Expect(joinery.Start()).To(Succeed())
		}
		scale(replicas)
		GinkgoWriter.Printf("killed the manager %d times\n", kills)
		Eventually(ctx, readyPods(ctx, workload, "burst")).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Equal(replicas))

		By("every AWSMachine and KubeadmConfig belongs to a Machine that exists")
		machines := poolMachines(ctx, "burst")
		byName := map[string]bool{}
		for _, m := range machines {
			byName[m.Name] = true
		}
		var awsMachines infrav1.AWSMachineList
		Expect(tb.Client.List(ctx, &awsMachines, client.InNamespace(tb.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: "burst"})).To(Succeed())
		var configs bootstrapv1.KubeadmConfigList
		Expect(tb.Client.List(ctx, &configs, client.InNamespace(tb.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: "burst"})).To(Succeed())
		Expect(awsMachines.Items).To(HaveLen(len(machines)))
		Expect(configs.Items).To(HaveLen(len(machines)))
		for _, o := range awsMachines.Items {
			Expect(byName).To(HaveKey(o.Name), "AWSMachine %s has no Machine", o.Name)
		}
		for _, o := range configs.Items {
			Expect(byName).To(HaveKey(o.Name), "KubeadmConfig %s has no Machine", o.Name)
		}

		By("no capacity was launched twice: one Machine per pod, each Machine's node hosts a burst pod")
		machines = poolMachinesWithNodes(ctx, "burst")
		hosting := map[string]int{}
		for _, p := range appPods(ctx, workload, "burst") {
			hosting[p.Spec.NodeName]++
		}
		for _, m := range machines {
			Expect(m.DeletionTimestamp).To(BeNil(), "Machine %s is being deleted, though consolidation is off and no launch failed", m.Name)
			Expect(hosting[m.Status.NodeRef.Name]).To(Equal(1), "Machine %s: its node %s hosts %d burst pods; each needs a node of its own, so one without is a duplicate launch",
				m.Name, m.Status.NodeRef.Name, hosting[m.Status.NodeRef.Name])
		}
		Expect(machines).To(HaveLen(replicas), "one Machine per burst pod")
		GinkgoWriter.Printf("burst: %d machines at $%.4f/h for %d pods after %d kills\n", len(machines), machinesBillAsDecided(ctx, "burst"), replicas, kills)

		By("EC2's ledger holds one live instance per Machine, and none for anything else of the pool")
		byAWSMachine := map[string][]string{}
		for _, inst := range tb.Cloud.Instances() {
			if inst.State == cloudsim.StateTerminated || inst.Tags[provisioning.TagNodePool] != "burst" {
				continue
			}
			byAWSMachine[inst.AWSMachine.Name] = append(byAWSMachine[inst.AWSMachine.Name], inst.ID+" ("+inst.State+")")
		}
		for name, ids := range byAWSMachine {
			Expect(byName).To(HaveKey(name), "instances %v of AWSMachine %s, which has no Machine: leaked", ids, name)
			Expect(ids).To(HaveLen(1), "AWSMachine %s has more than one live instance", name)
		}
		Expect(byAWSMachine).To(HaveLen(len(machines)), "Machines with a live instance")
	})
})

func parseFloat(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscanf(s, "%g", &f)
	if err != nil {
		return math.NaN(), fmt.Errorf("%q: %w", s, err)
	}
	return f, nil
}
