package provisioning_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/explain"
	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// These specs run the provisioning controller in-process against a
// testbed (a real CAPI management cluster, one workload cluster, the
// simulated cloud): what CAPA reports on AWSMachines, and what the pool's
// AWSMachineTemplate says, as the controller must read them.
func TestProvisioningAgainstCAPA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a management and a workload cluster")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "provisioning against CAPA's AWSMachines")
}

const cluster = "workload-1"

var tb *testbed.Testbed

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	var err error
	tb, err = testbed.Start(ctx, testbed.Options{
		WorkloadClusters: 1, Dir: GinkgoT().TempDir(), Log: log,
		Cloud: cloudsim.Options{BootDelay: 500 * time.Millisecond, JoinDelay: 200 * time.Millisecond, ShutdownDelay: time.Millisecond,
			ZoneNames: accountZones},
	})
	Expect(err).NotTo(HaveOccurred())
	// Before the manager reads the catalog.
	setRefusalSpotPrices()
	DeferCleanup(func() {
		// The manager below stops first (cleanups run last in, first
		// out) and must close its watches on the workload cluster: a
		// workload apiserver waiting on open watches does not exit on
		// SIGTERM and outlives envtest's 20 s stop timeout.
		start := time.Now()
		Expect(tb.Stop()).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically("<", 15*time.Second), "stopping the testbed")
	})

	opts := manager.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr, opts.LeaderElect, opts.SkipNameValidation, opts.Logger = "0", "0", false, true, log
	opts.Provisioning.RegistrationTimeout = 2 * time.Minute
	// The catalog and the account's zone names come from the simulated
	// EC2, as in production with --catalog-regions (and --ec2-endpoint).
	opts.Catalog.Regions, opts.Catalog.Endpoint = []string{tb.Cloud.Region()}, tb.Cloud.EC2Endpoint()
	mgrCtx, cancel := context.WithCancel(context.Background())
	mgr, err := manager.New(mgrCtx, tb.Management.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(Receive())
	})
}, NodeTimeout(4*time.Minute))

const within = 90 * time.Second

// accountZones is how this suite's AWS account names us-east-1's zones.
// AWS shuffles the name->zone mapping per account; this one differs from
// the embedded snapshot's guess (cloud.DefaultZoneNames: use1-az1 is
// us-east-1a, use1-az2 us-east-1b, ...) for every zone, so a plan made with
// the guess puts a Machine in another zone than it priced, or in none of
// the Cluster's failure domains (us-east-1a..c here).
var accountZones = map[string]string{
	"use1-az4": "us-east-1a", "use1-az6": "us-east-1b", "use1-az1": "us-east-1c",
	"use1-az2": "us-east-1d", "use1-az5": "us-east-1e", "use1-az3": "us-east-1f",
}

func key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: tb.Namespace, Name: name}
}

// pool creates a NodePool for the workload cluster with its own
// templates, the AWSMachineTemplate's spec changed by mutate.
func pool(ctx context.Context, name string, mutate func(*infrav1.AWSMachineSpec), reqs ...v1alpha1.NodeSelectorRequirementWithMinValues) *v1alpha1.NodePool {
	spec := testbed.WorkerMachineSpec()
	if mutate != nil {
		mutate(&spec)
	}
	aws := &infrav1.AWSMachineTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
		Spec: infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: spec}}}
	Expect(tb.Client.Create(ctx, aws)).To(Succeed())
	kubeadm := &bootstrapv1.KubeadmConfigTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name}}
	Expect(tb.Client.Create(ctx, kubeadm)).To(Succeed())
	np := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: name},
		Spec: v1alpha1.NodePoolSpec{ClusterName: cluster, Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
			Requirements:              reqs,
			InfrastructureTemplateRef: v1alpha1.TemplateReference{APIGroup: infrav1.GroupVersion.Group, Kind: "AWSMachineTemplate", Name: name},
			BootstrapTemplateRef:      v1alpha1.TemplateReference{APIGroup: bootstrapv1.GroupVersion.Group, Kind: "KubeadmConfigTemplate", Name: name},
		}}},
	}
	np.Spec.Disruption.ConsolidateAfter = "Never"
	Expect(tb.Client.Create(ctx, np)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, np))).To(Succeed())
		Eventually(ctx, func() int { return len(machines(ctx, name)) }).WithTimeout(2 * time.Minute).Should(BeZero())
		Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, aws))).To(Succeed())
		Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, kubeadm))).To(Succeed())
	}, NodeTimeout(3*time.Minute))
	return np
}

func machines(ctx context.Context, pool string) []clusterv1.Machine {
	var list clusterv1.MachineList
	Expect(tb.Client.List(ctx, &list, client.InNamespace(tb.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: pool})).To(Succeed())
	return list.Items
}

// pods creates n pending pods asking for cpu, kept on the pool's nodes.
func pods(ctx context.Context, name, pool string, n int32, cpu string) {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				NodeSelector:                  map[string]string{v1alpha1.LabelNodePool: pool},
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}},
			}}},
	}
	c := tb.Workload(cluster).Client
	Expect(c.Create(ctx, d)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, d))).To(Succeed()) })
}

func runningPods(ctx context.Context, app string) int {
	var list corev1.PodList
	Expect(tb.Workload(cluster).Client.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault), client.MatchingLabels{"app": app})).To(Succeed())
	n := 0
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

func poolEvents(ctx context.Context, pool, reason string) []corev1.Event {
	var list corev1.EventList
	Expect(tb.Client.List(ctx, &list, client.InNamespace(tb.Namespace))).To(Succeed())
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "NodePool" && e.InvolvedObject.Name == pool && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

var _ = Describe("Provisioning reads CAPA's AWSMachines", func() {
	It("deletes a Machine whose instance was terminated out of band and launches for its pods again", func(ctx SpecContext) {
		pool(ctx, "oob", nil, v1alpha1.NodeSelectorRequirementWithMinValues{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}})
		pods(ctx, "oob", "oob", 1, "500m")
		Eventually(ctx, func() int { return runningPods(ctx, "oob") }).WithTimeout(within).Should(Equal(1))
		first := machines(ctx, "oob")
		Expect(first).To(HaveLen(1))
		aws := &infrav1.AWSMachine{}
		Expect(tb.Client.Get(ctx, key(first[0].Spec.InfrastructureRef.Name), aws)).To(Succeed())
		Expect(aws.Spec.InstanceID).NotTo(BeNil())

		By("terminating its instance outside Joinery and CAPI")
		Expect(tb.Cloud.TerminateInstance(ctx, *aws.Spec.InstanceID)).To(Succeed())

		By("CAPA's view: InstanceReady=False, InstanceTerminated; Joinery deletes the Machine")
		Eventually(ctx, func() bool {
			m := &clusterv1.Machine{}
			err := tb.Client.Get(ctx, key(first[0].Name), m)
			return apierrors.IsNotFound(err) || (err == nil && m.DeletionTimestamp != nil)
		}).WithTimeout(within).Should(BeTrue())
		Eventually(ctx, func() []corev1.Event { return poolEvents(ctx, "oob", "InstanceTerminated") }).WithTimeout(within).ShouldNot(BeEmpty())

		By("a new Machine carries the pod again")
		Eventually(ctx, func() []string {
			var names []string
			for _, m := range machines(ctx, "oob") {
				if m.Name != first[0].Name && m.DeletionTimestamp == nil {
					names = append(names, m.Name)
				}
			}
			return names
		}).WithTimeout(within).ShouldNot(BeEmpty())
		Eventually(ctx, func() int { return runningPods(ctx, "oob") }).WithTimeout(within).Should(Equal(1))
	})

	// After Karpenter core's "should launch pods with different zone
	// selectors on different instances" (provisioning/scheduling suite),
	// with the zone selected by ID as Karpenter's AWS provider resolves it
	// through DescribeAvailabilityZones: every name Joinery writes (the
	// decision, the Machine's failure domain, hence CAPA's subnet) is the
	// account's name of that zone, not the snapshot's guess.
	It("names zones as the account's DescribeAvailabilityZones does, not as the snapshot guesses", func(ctx SpecContext) {
		const zoneID, zoneName = "use1-az4", "us-east-1a" // the snapshot guesses us-east-1d, no failure domain of the Cluster
		pool(ctx, "zoned", nil,
			v1alpha1.NodeSelectorRequirementWithMinValues{Key: v1alpha1.LabelZoneID, Operator: v1alpha1.OpIn, Values: []string{zoneID}},
			v1alpha1.NodeSelectorRequirementWithMinValues{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeOnDemand}})
		pods(ctx, "zoned", "zoned", 1, "500m")
		Eventually(ctx, func() int { return runningPods(ctx, "zoned") }).WithTimeout(within).Should(Equal(1))

		ms := machines(ctx, "zoned")
		Expect(ms).To(HaveLen(1))
		m := ms[0]
		d, err := provisioning.ReadDecision(&m)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Offering.ZoneID).To(Equal(zoneID))
		Expect(d.Offering.Zone).To(Equal(zoneName), "the decision's zone name")
		Expect(m.Spec.FailureDomain).To(Equal(zoneName), "the Machine's failure domain, where CAPA picks the subnet")

		By("the instance runs in the zone the plan priced")
		aws := &infrav1.AWSMachine{}
		Expect(tb.Client.Get(ctx, key(m.Spec.InfrastructureRef.Name), aws)).To(Succeed())
		Expect(aws.Spec.InstanceID).NotTo(BeNil())
		inst, ok := tb.Cloud.Instance(*aws.Spec.InstanceID)
		Expect(ok).To(BeTrue())
		idOf := map[string]string{}
		for _, z := range tb.Cloud.EC2().Zones() {
			idOf[z.Name] = z.ID
		}
		Expect(idOf[inst.Zone]).To(Equal(zoneID), "instance %s is in %s", inst.ID, inst.Zone)
		Expect(inst.InstanceType).To(Equal(d.Offering.InstanceType))

		By("the Node's zone labels, set by the kubelet and the cloud provider, agree")
		node := &corev1.Node{}
		Expect(tb.Workload(cluster).Client.Get(ctx, types.NamespacedName{Name: inst.NodeName}, node)).To(Succeed())
		Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelZone, zoneName))
		Expect(node.Labels).To(HaveKeyWithValue(v1alpha1.LabelZoneID, zoneID))

		By("joinery explain names the account's zone, and nothing was assumed")
		var out strings.Builder
		// Uncached, as the CLI reads: it lists Events by field selector.
		reader, err := client.New(tb.Management.Config, client.Options{Scheme: tb.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		e := &explain.Explainer{Client: reader, Workload: explain.WorkloadFromSecrets(reader)}
		Expect(e.Machine(ctx, &out, key(m.Name))).To(Succeed())
		Expect(out.String()).To(ContainSubstring(d.Offering.InstanceType + " in " + zoneName))
		Expect(poolEvents(ctx, "zoned", "NodeModelAssumed")).To(BeEmpty())
	})

	It("launches nothing for a template that needs a public subnet the AWSCluster lacks, and says so on the NodePool", func(ctx SpecContext) {
		pool(ctx, "public", func(s *infrav1.AWSMachineSpec) { s.PublicIP = ptr.To(true) })
		pods(ctx, "public", "public", 1, "500m")
		Eventually(ctx, func(g Gomega) {
			np := &v1alpha1.NodePool{}
			g.Expect(tb.Client.Get(ctx, key("public"), np)).To(Succeed())
			c := meta.FindStatusCondition(np.Status.Conditions, provisioning.ConditionLaunchConfigurationValid)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("publicIP"))
		}).WithTimeout(within).Should(Succeed())
		Eventually(ctx, func() []corev1.Event { return poolEvents(ctx, "public", "LaunchConfigurationError") }).WithTimeout(within).ShouldNot(BeEmpty())
		Consistently(ctx, func() int { return len(machines(ctx, "public")) }).WithTimeout(5 * time.Second).Should(BeZero())
	})

	It("keeps a subnet-pinned template's zone, the spot maxPrice as a cap and on the AWSMachine, and tags the instance", func(ctx SpecContext) {
		const maxPrice = "0.09"
		pinned := "subnet-" + cluster + "-private-us-east-1b"
		pool(ctx, "capped", func(s *infrav1.AWSMachineSpec) {
			s.Subnet = &infrav1.AWSResourceReference{ID: ptr.To(pinned)}
			s.SpotMarketOptions = &infrav1.SpotMarketOptions{MaxPrice: ptr.To(maxPrice)}
		}, v1alpha1.NodeSelectorRequirementWithMinValues{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{v1alpha1.CapacityTypeSpot}})
		pods(ctx, "capped", "capped", 3, "1500m")
		Eventually(ctx, func() int { return len(machines(ctx, "capped")) }).WithTimeout(within).ShouldNot(BeZero())
		for _, m := range machines(ctx, "capped") {
			d, err := provisioning.ReadDecision(&m)
			Expect(err).NotTo(HaveOccurred())
			Expect(m.Spec.FailureDomain).To(Equal("us-east-1b"), "the template's subnet is in us-east-1b")
			Expect(d.Offering.CapacityType).To(Equal(v1alpha1.CapacityTypeSpot))
			Expect(d.Offering.PricePerHour).To(BeNumerically("<=", 0.09))
			Expect(d.SpotMaxPrice).To(Equal(maxPrice))
			for _, f := range d.Fallbacks {
				if f.CapacityType == v1alpha1.CapacityTypeSpot {
					Expect(f.PricePerHour).To(BeNumerically("<=", 0.09), "fallback %s", f.InstanceType)
				}
				Expect(f.Zone).To(Equal("us-east-1b"))
			}
			aws := &infrav1.AWSMachine{}
			Eventually(ctx, func() error { return tb.Client.Get(ctx, key(m.Spec.InfrastructureRef.Name), aws) }).WithTimeout(within).Should(Succeed())
			Expect(aws.Spec.SpotMarketOptions).NotTo(BeNil())
			Expect(aws.Spec.SpotMarketOptions.MaxPrice).To(Equal(ptr.To(maxPrice)))
			Expect(aws.Spec.Subnet.ID).To(Equal(ptr.To(pinned)))
			Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue(provisioning.TagNodePool, "capped"))
			Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue(provisioning.TagKarpenterNodePool, "capped"))
			Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue(provisioning.TagCluster, cluster))
			Expect(aws.Spec.AdditionalTags).To(HaveKeyWithValue(provisioning.TagNodePoolNamespace, tb.Namespace))
			GinkgoWriter.Println("chose", d.Offering.InstanceType, strconv.FormatFloat(d.Offering.PricePerHour, 'f', 4, 64))
		}
	})

	It("chooses on-demand when every spot offering costs more than the template's maxPrice", func(ctx SpecContext) {
		pool(ctx, "undercut", func(s *infrav1.AWSMachineSpec) {
			s.SpotMarketOptions = &infrav1.SpotMarketOptions{MaxPrice: ptr.To("0.0001")}
		})
		pods(ctx, "undercut", "undercut", 1, "500m")
		Eventually(ctx, func() int { return len(machines(ctx, "undercut")) }).WithTimeout(within).ShouldNot(BeZero())
		for _, m := range machines(ctx, "undercut") {
			d, err := provisioning.ReadDecision(&m)
			Expect(err).NotTo(HaveOccurred())
			Expect(d.Offering.CapacityType).To(Equal(v1alpha1.CapacityTypeOnDemand), "spot is cheaper, but not below $0.0001/h")
			for _, f := range d.Fallbacks {
				Expect(f.CapacityType).To(Equal(v1alpha1.CapacityTypeOnDemand), "fallback %s", f.InstanceType)
			}
			aws := &infrav1.AWSMachine{}
			Eventually(ctx, func() error { return tb.Client.Get(ctx, key(m.Spec.InfrastructureRef.Name), aws) }).WithTimeout(within).Should(Succeed())
			Expect(aws.Spec.SpotMarketOptions).To(BeNil(), "an on-demand launch carries no spot options")
		}
	})
})
