package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/conditions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

func key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: tb.Namespace, Name: name}
}

func getMachine(ctx context.Context, name string) *clusterv1.Machine {
	m := &clusterv1.Machine{}
	Expect(tb.Client.Get(ctx, key(name), m)).To(Succeed())
	return m
}

func getAWSMachine(ctx context.Context, name string) *infrav1.AWSMachine {
	m := &infrav1.AWSMachine{}
	Expect(tb.Client.Get(ctx, key(name), m)).To(Succeed())
	return m
}

func machinePhase(ctx context.Context, name string) func() string {
	return func() string {
		m := &clusterv1.Machine{}
		if err := tb.Client.Get(ctx, key(name), m); err != nil {
			return "error: " + err.Error()
		}
		return m.Status.Phase
	}
}

// runningMachine creates a worker Machine and waits for CAPI to report it
// Running with a nodeRef; it returns the Machine.
func runningMachine(ctx context.Context, w testbed.WorkerMachine) *clusterv1.Machine {
	w.Cluster = workload
	_, err := tb.CreateWorkerMachine(ctx, w)
	Expect(err).NotTo(HaveOccurred())
	eventually(ctx, machinePhase(ctx, w.Name)).Should(Equal(string(clusterv1.MachinePhaseRunning)))
	return getMachine(ctx, w.Name)
}

func workloadClientset() *kubernetes.Clientset {
	cs, err := tb.Workload(workload).Clientset()
	Expect(err).NotTo(HaveOccurred())
	return cs
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

var _ = Describe("A worker Machine made by hand, without Joinery", Ordered, func() {
	var first *clusterv1.Machine

	It("goes through CAPI's bootstrap and infrastructure to a Ready Node in the workload cluster", func(ctx SpecContext) {
		first = runningMachine(ctx, testbed.WorkerMachine{
			Name: "by-hand-a", InstanceType: "m5.large", Zone: "us-east-1a",
			NodeLabels: map[string]string{"joinery.dev/nodepool": "by-hand"},
		})
		By("CAPI's kubeadm bootstrap provider generated the bootstrap data")
		config := &bootstrapv1.KubeadmConfig{}
		Expect(tb.Client.Get(ctx, key("by-hand-a"), config)).To(Succeed())
		Expect(config.Status.DataSecretName).NotTo(BeEmpty())
		Expect(first.Spec.Bootstrap.DataSecretName).To(Equal(ptr.To(config.Status.DataSecretName)))

		By("the AWSMachine has an instance, as CAPA reports one")
		awsMachine := getAWSMachine(ctx, "by-hand-a")
		Expect(awsMachine.Status.Ready).To(BeTrue())
		Expect(awsMachine.Status.InstanceState).To(Equal(ptr.To(infrav1.InstanceStateRunning)))
		Expect(*awsMachine.Spec.ProviderID).To(MatchRegexp(`^aws:///us-east-1a/i-[0-9a-f]{17}$`))
		Expect(first.Spec.ProviderID).To(Equal(*awsMachine.Spec.ProviderID))

		By("CAPI found the Node by providerID and reports it Ready")
		Expect(first.Status.NodeRef.IsDefined()).To(BeTrue())
		eventually(ctx, func(g Gomega) {
			m := getMachine(ctx, "by-hand-a")
			g.Expect(conditions.IsTrue(m, clusterv1.MachineNodeReadyCondition)).To(BeTrue())
		}).Should(Succeed())
		node, err := workloadClientset().CoreV1().Nodes().Get(ctx, first.Status.NodeRef.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(nodeReady(node)).To(BeTrue())
		Expect(node.Spec.ProviderID).To(Equal(first.Spec.ProviderID))
		Expect(node.Labels).To(HaveKeyWithValue("node.kubernetes.io/instance-type", "m5.large"))
		Expect(node.Labels).To(HaveKeyWithValue("topology.kubernetes.io/zone", "us-east-1a"))
		Expect(node.Labels).To(HaveKeyWithValue("topology.kubernetes.io/region", "us-east-1"))
		Expect(node.Labels).To(HaveKeyWithValue("kubernetes.io/arch", "amd64"))
		Expect(node.Labels).To(HaveKeyWithValue("joinery.dev/nodepool", "by-hand"), "kubelet --node-labels from the KubeadmConfig")
		By("the kubelet of a kubeadm node reserves nothing by default: 2 vCPUs, 110 pods")
		Expect(node.Status.Allocatable.Cpu().MilliValue()).To(Equal(int64(2000)))
		Expect(node.Status.Allocatable.Pods().Value()).To(Equal(int64(110)))

		By("CAPI removed the uninitialized taint the bootstrap data registered the node with")
		eventually(ctx, func(g Gomega) {
			n, err := workloadClientset().CoreV1().Nodes().Get(ctx, first.Status.NodeRef.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Spec.Taints).NotTo(ContainElement(HaveField("Key", clusterv1.NodeUninitializedTaint.Key)))
		}).Should(Succeed())

		By("the ledger bills the instance at the m5.large on-demand price")
		inst, ok := tb.Cloud.Instance(*awsMachine.Spec.InstanceID)
		Expect(ok).To(BeTrue())
		Expect(inst.PricePerHour).To(BeNumerically("~", 0.096, 0.001))
		Expect(inst.State).To(Equal(cloudsim.StateRunning))
	})

	It("is drained by CAPI on deletion no faster than a PodDisruptionBudget allows", func(ctx SpecContext) {
		cs := workloadClientset()
		nodeA := first.Status.NodeRef.Name
		labels := map[string]string{"app": "web"}

		By("two replicas protected by minAvailable: 1 run on the Machine's node")
		// Specs share the workload cluster: what this one makes, it removes.
		DeferCleanup(func(ctx SpecContext) {
			wc := tb.Workload(workload).Client
			Expect(client.IgnoreNotFound(wc.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}},
				client.PropagationPolicy(metav1.DeletePropagationForeground)))).To(Succeed())
			Expect(client.IgnoreNotFound(wc.Delete(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}))).To(Succeed())
		})
		Expect(tb.Workload(workload).Client.Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: ptr.To(intstr.FromInt32(1)),
				Selector:     &metav1.LabelSelector{MatchLabels: labels},
			},
		})).To(Succeed())
		Expect(tb.Workload(workload).Client.Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "web", Image: "nginx",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
					}}},
				},
			},
		})).To(Succeed())
		eventually(ctx, func(g Gomega) {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(2))
			for i := range pods.Items {
				g.Expect(pods.Items[i].Spec.NodeName).To(Equal(nodeA))
				g.Expect(podReady(&pods.Items[i])).To(BeTrue())
			}
		}).Should(Succeed())

		By("a second Machine gives the pods somewhere to go")
		second := runningMachine(ctx, testbed.WorkerMachine{Name: "by-hand-b", InstanceType: "m5.large", Zone: "us-east-1b"})
		nodeB := second.Status.NodeRef.Name
		eventually(ctx, func(g Gomega) {
			n, err := cs.CoreV1().Nodes().Get(ctx, nodeB, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Spec.Taints).To(BeEmpty())
		}).Should(Succeed())

		By("watching how many replicas are available while CAPI drains the first node")
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		Expect(err).NotTo(HaveOccurred())
		w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=web", ResourceVersion: pods.ResourceVersion})
		Expect(err).NotTo(HaveOccurred())
		var mu sync.Mutex
		ready := map[string]bool{}
		for i := range pods.Items {
			ready[pods.Items[i].Name] = podReady(&pods.Items[i])
		}
		minReady, events := 2, 0
		watchDone := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(watchDone)
			for ev := range w.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				mu.Lock()
				events++
				ready[p.Name] = ev.Type != watch.Deleted && podReady(p)
				n := 0
				for _, r := range ready {
					if r {
						n++
					}
				}
				minReady = min(minReady, n)
				mu.Unlock()
			}
		}()

		// Every update of the Machine is seen through a direct watch: the
		// refusal is a transient condition message, which polling the
		// manager's cache can miss when the drain goes quickly.
		watcher, err := client.NewWithWatch(tb.Management.Config, client.Options{Scheme: tb.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		machineWatch, err := watcher.Watch(ctx, &clusterv1.MachineList{}, client.InNamespace(first.Namespace))
		Expect(err).NotTo(HaveOccurred())
		var refusal string
		machineWatchDone := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(machineWatchDone)
			for ev := range machineWatch.ResultChan() {
				m, ok := ev.Object.(*clusterv1.Machine)
				if !ok || m.Name != "by-hand-a" {
					continue
				}
				if msg := conditions.GetMessage(m, clusterv1.MachineDeletingCondition); strings.Contains(msg, "disruption budget") {
					mu.Lock()
					refusal = msg
					mu.Unlock()
				}
			}
		}()

		// Without a hold, the first evicted pod's replacement can be Ready
		// on node B before CAPI asks to evict the second pod, and the
		// budget then rightly allows it: a refusal would depend on timing.
		// A NoSchedule taint on node B keeps the replacement Pending, so
		// the second eviction must be refused until the hold is lifted.
		By("node B holds off the first replacement until CAPI has been refused an eviction")
		hold := corev1.Taint{Key: "e2e.joinery.dev/hold", Value: "pdb", Effect: corev1.TaintEffectNoSchedule}
		setNodeTaints(ctx, cs, nodeB, []corev1.Taint{hold})

		start := time.Now()
		Expect(tb.Client.Delete(ctx, first)).To(Succeed())
		Eventually(ctx, func() string {
			mu.Lock()
			defer mu.Unlock()
			return refusal
		}).WithTimeout(time.Minute).WithPolling(200*time.Millisecond).Should(ContainSubstring("disruption budget"),
			"the Machine's Deleting condition never reported a PDB refusal while the replacement could not run")
		GinkgoWriter.Printf("drain refusal seen: %s\n", refusal)
		mu.Lock()
		Expect(minReady).To(BeNumerically(">=", 1), "available replicas dropped below the PodDisruptionBudget's minAvailable before the hold was lifted")
		mu.Unlock()
		setNodeTaints(ctx, cs, nodeB, nil)

		By("the Machine, its Node and its instance go away once both pods moved")
		Eventually(ctx, func() bool {
			err := tb.Client.Get(ctx, key("by-hand-a"), &clusterv1.Machine{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(deletionWithin).WithPolling(200 * time.Millisecond).Should(BeTrue())
		GinkgoWriter.Printf("drain and delete took %s\n", time.Since(start).Round(time.Second))
		_, err = cs.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Node %s should be gone", nodeA)
		eventually(ctx, func(g Gomega) {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(describePods(pods.Items)).To(ConsistOf(
				"on "+nodeB+", ready", "on "+nodeB+", ready",
			))
		}).Should(Succeed())
		w.Stop()
		<-watchDone
		machineWatch.Stop()
		<-machineWatchDone
		mu.Lock()
		defer mu.Unlock()
		Expect(events).To(BeNumerically(">", 0))
		Expect(minReady).To(BeNumerically(">=", 1), "available replicas dropped below the PodDisruptionBudget's minAvailable")

		By("the ledger shows the instance terminated and billed")
		var terminated []cloudsim.Instance
		for _, i := range tb.Cloud.Instances() {
			if i.AWSMachine.Name == "by-hand-a" {
				terminated = append(terminated, i)
			}
		}
		Expect(terminated).To(HaveLen(1))
		Expect(terminated[0].State).To(Equal(cloudsim.StateTerminated))
		Expect(terminated[0].TerminationReason).To(Equal("TerminateInstances"), "CAPA terminated it through EC2")
		Expect(terminated[0].Cost(time.Now())).To(BeNumerically(">", 0))
		Expect(tb.Cloud.Bill(time.Now())).To(BeNumerically(">=", terminated[0].Cost(time.Now())))
	})
})

// deletionWithin bounds how long a Machine takes to go away: CAPI's drain,
// then CAPA's TerminateInstances and its check, a minute later, that the
// instance is terminated (CAPA v2.13 requeues a deleted AWSMachine after a
// minute), then the Node.
const deletionWithin = 3 * time.Minute

// machineDeleted deletes a Machine and waits until it is gone.
func machineDeleted(ctx context.Context, name string) {
	Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}))).To(Succeed())
	Eventually(ctx, func() bool {
		return apierrors.IsNotFound(tb.Client.Get(ctx, key(name), &clusterv1.Machine{}))
	}).WithTimeout(deletionWithin).WithPolling(200 * time.Millisecond).Should(BeTrue())
}

// setNodeTaints replaces a workload Node's taints, retrying on conflicts
// with the kubelet's and CAPI's own updates of the Node.
func setNodeTaints(ctx context.Context, cs kubernetes.Interface, name string, taints []corev1.Taint) {
	eventually(ctx, func(g Gomega) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		n.Spec.Taints = taints
		_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}).Should(Succeed())
}

// describePods says where each pod runs and whether it is ready, for
// assertions that print something useful when they fail.
func describePods(pods []corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		d := "on " + p.Spec.NodeName
		switch {
		case p.DeletionTimestamp != nil:
			d += ", terminating"
		case podReady(p):
			d += ", ready"
		default:
			d += ", " + string(p.Status.Phase)
			for _, c := range p.Status.Conditions {
				d += fmt.Sprintf(" %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		out = append(out, d)
	}
	return out
}
