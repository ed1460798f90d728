package e2e

import (
	"context"
	"fmt"
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

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
)

// bufferCondition reads one condition of a CapacityBuffer in the workload
// cluster as "Status/Reason".
func bufferCondition(ctx context.Context, name, condition string) func() string {
	return func() string {
		cb := &autoscalingv1beta1.CapacityBuffer{}
		if err := tb.Workload(workload).Client.Get(ctx, types.NamespacedName{Namespace: metav1.NamespaceDefault, Name: name}, cb); err != nil {
			return err.Error()
		}
		c := apimeta.FindStatusCondition(cb.Status.Conditions, condition)
		if c == nil {
			return "none"
		}
		return string(c.Status) + "/" + c.Reason
	}
}

// readyNodeOf is the name of the Machine's Node once it is Ready ("" until).
func readyNodeOf(ctx context.Context, pool string) func() string {
	return func() string {
		ms := poolMachines(ctx, pool)
		if len(ms) != 1 || !ms[0].Status.NodeRef.IsDefined() {
			return ""
		}
		n := &corev1.Node{}
		if err := tb.Workload(workload).Client.Get(ctx, types.NamespacedName{Name: ms[0].Status.NodeRef.Name}, n); err != nil {
			return ""
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return n.Name
			}
		}
		return ""
	}
}

// The e2e counterpart of Karpenter's CapacityBuffer suites
// (controllers/capacitybuffer, provisioning/buffers_test.go, disruption's
// "Buffer Pods"): the buffer is read from the workload cluster, its
// headroom becomes a Ready node before any pod asks for it, consolidation
// keeps that empty node, and a burst then runs without a launch.
var _ = Describe("CapacityBuffer: headroom for a burst", Label(secondProcess), func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
		Expect(joinery.Running()).To(BeTrue(), "Joinery's manager is not running")
	})

	It("keeps a buffer's headroom as a Ready node that consolidation leaves alone, and a burst runs on it without a new Machine", func(ctx SpecContext) {
		const (
			chunkCPU = "900m"
			chunks   = 3
		)
		// One m5.xlarge (4 vCPU) holds the three chunks; consolidation is
		// on at once, so only the headroom keeps its empty node.
		m5 := req(v1alpha1.LabelInstanceType, v1alpha1.OpIn, "m5.xlarge")
		createNodePool(ctx, disruptingPool("buffered", workload, nil, m5))
		wc := tb.Workload(workload).Client

		By("a PodTemplate and a CapacityBuffer of three chunks in the workload cluster")
		burstSpec := func(pool string) corev1.PodSpec {
			return corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				NodeSelector:                  map[string]string{v1alpha1.LabelNodePool: pool},
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(chunkCPU), corev1.ResourceMemory: resource.MustParse("512Mi")}}}},
			}
		}
		pt := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "burst"},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "burst"}}, Spec: burstSpec("buffered")}}
		cb := &autoscalingv1beta1.CapacityBuffer{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "burst"},
			Spec: autoscalingv1beta1.CapacityBufferSpec{PodTemplateRef: &autoscalingv1beta1.LocalObjectRef{Name: "burst"}, Replicas: ptr.To[int32](chunks)}}
		Expect(wc.Create(ctx, pt)).To(Succeed())
		Expect(wc.Create(ctx, cb)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(wc.Delete(ctx, cb))).To(Succeed())
			Expect(client.IgnoreNotFound(wc.Delete(ctx, pt))).To(Succeed())
		})

		By("the headroom becomes a Machine launched for the chunks, then a Ready node")
		eventually(ctx, bufferCondition(ctx, "burst", autoscalingv1beta1.ReadyForProvisioningCondition)).Should(Equal("True/Resolved"))
		var node string
		Eventually(ctx, func() string { node = readyNodeOf(ctx, "buffered")(); return node }).
			WithTimeout(provisioningWithin).WithPolling(500 * time.Millisecond).ShouldNot(BeEmpty())
		machine := poolMachines(ctx, "buffered")[0]
		Expect(decisionOf(&machine).Headroom).To(Equal(map[string]int{"default/burst": chunks}), "the decision records the chunks it was launched for")
		eventually(ctx, bufferCondition(ctx, "burst", autoscalingv1beta1.ProvisioningCondition)).Should(Equal("True/FitsExistingCapacity"))
		got := &autoscalingv1beta1.CapacityBuffer{}
		Expect(wc.Get(ctx, client.ObjectKeyFromObject(cb), got)).To(Succeed())
		Expect(ptr.Deref(got.Status.Replicas, 0)).To(Equal(int32(chunks)))
		Expect(got.Status.PodTemplateRef).To(Equal(&autoscalingv1beta1.LocalObjectRef{Name: "burst"}))
		Expect(got.Status.PodTemplateGeneration).NotTo(BeNil())

		By("consolidation keeps the empty node: it holds the headroom, and says so")
		eventually(ctx, func() string {
			m := poolMachines(ctx, "buffered")
			if len(m) != 1 {
				return fmt.Sprintf("%d Machines", len(m))
			}
			return m[0].Annotations[disruption.AnnotationNotDisrupted]
		}).Should(ContainSubstring("CapacityBuffer headroom"))
		Consistently(ctx, func() int {
			n := 0
			for _, m := range poolMachines(ctx, "buffered") {
				if m.DeletionTimestamp.IsZero() {
					n++
				}
			}
			return n
		}).WithTimeout(6 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(1))
		Expect(explainText(ctx, "machine", machine.Name, "")).To(And(ContainSubstring("Headroom: all of them are chunks of CapacityBuffer default/burst"),
			ContainSubstring("Kept: it holds CapacityBuffer headroom")))

		By("a burst of three pods runs on the headroom node, with no new Machine")
		machinesBefore := len(poolMachines(ctx, "buffered"))
		t0 := time.Now()
		workloadDeployment(ctx, workload, "burst", chunks, chunkCPU, "512Mi", onPool("buffered"))
		Eventually(ctx, readyPods(ctx, workload, "burst")).WithTimeout(within).WithPolling(100 * time.Millisecond).Should(Equal(chunks))
		warm := time.Since(t0)
		for _, p := range appPods(ctx, workload, "burst") {
			Expect(p.Spec.NodeName).To(Equal(node), "pod %s ran on %s, not on the headroom node", p.Name, p.Spec.NodeName)
		}
		Expect(len(poolMachines(ctx, "buffered"))).To(Equal(machinesBefore), "a Machine was launched for a burst the headroom should have held")

		By("the same burst without a buffer waits for a Machine")
		createNodePool(ctx, disruptingPool("unbuffered", workload, nil, m5))
		t1 := time.Now()
		workloadDeployment(ctx, workload, "burst-cold", chunks, chunkCPU, "512Mi", onPool("unbuffered"))
		Eventually(ctx, readyPods(ctx, workload, "burst-cold")).WithTimeout(provisioningWithin).WithPolling(100 * time.Millisecond).Should(Equal(chunks))
		cold := time.Since(t1)
		Expect(poolMachines(ctx, "unbuffered")).To(HaveLen(1))
		GinkgoWriter.Printf("burst of %d pods to all Running: %s with a CapacityBuffer, %s without\n", chunks, warm.Round(time.Millisecond), cold.Round(time.Millisecond))
		AddReportEntry("burst to Running", map[string]string{"withBuffer": warm.Round(time.Millisecond).String(), "withoutBuffer": cold.Round(time.Millisecond).String()})
		Expect(warm).To(BeNumerically("<", cold), "the buffered burst was not faster")
	})
})
