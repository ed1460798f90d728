package e2e

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/test/testbed"
)

// Issue #19, sharding: CAPI's --watch-filter convention splits the fleet
// between managers, each serving the Clusters labelled with its value.
var _ = Describe("Sharding: two managers split the fleet by --watch-filter", func() {
	BeforeEach(func(ctx SpecContext) {
		ensureWorkerTemplates(ctx)
	})

	It("each manager launches only for its own Clusters, under its own Lease, and the pool's status holds both", func(ctx SpecContext) {
		By("the suite's manager steps aside; each workload cluster is labelled for one shard")
		joinery.Stop()
		DeferCleanup(func() { Expect(joinery.Start()).To(Succeed()) })
		shardOf := map[string]string{workload: "shard-a", workload2: "shard-b"}
		for cluster, value := range shardOf {
			setClusterLabel(ctx, cluster, clusterv1.WatchLabel, value)
			DeferCleanup(setClusterLabel, cluster, clusterv1.WatchLabel, "")
		}
		startShard := func(value string) *testbed.JoineryProcess {
			dir := filepath.Join(managerDir, value)
			Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
			p := testbed.NewJoineryProcess(dir, append([]string{"--leader-elect=true", "--leader-election-namespace=" + tb.Namespace,
				"--watch-filter=" + value}, managerArgs...)...)
			Expect(p.Start()).To(Succeed())
			DeferCleanup(func() {
				if CurrentSpecReport().Failed() {
					GinkgoWriter.Printf("----- %s manager log (tail) -----\n%s\n", value, p.Tail(16<<10))
				}
				p.Stop()
			})
			return p
		}

		createNodePool(ctx, newNodePool("sharded", "",
			req(v1alpha1.LabelCapacityType, v1alpha1.OpIn, v1alpha1.CapacityTypeOnDemand),
			req(v1alpha1.LabelArch, v1alpha1.OpIn, "amd64")))
		for cluster := range shardOf {
			workloadDeployment(ctx, cluster, "sharded-app", 6, "500m", "512Mi", onPool("sharded"))
		}

		By("shard-a alone: workload-1's pods run, workload-2 gets no Machine")
		startShard("shard-a")
		Eventually(ctx, readyPods(ctx, workload, "sharded-app")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(6))
		machinesIn := func(cluster string) func() int {
			return func() int {
				n := 0
				for _, m := range poolMachines(ctx, "sharded") {
					if m.Spec.ClusterName == cluster {
						n++
					}
				}
				return n
			}
		}
		Expect(machinesIn(workload)()).To(BeNumerically(">", 0))
		Consistently(ctx, machinesIn(workload2)).WithTimeout(5*time.Second).WithPolling(500*time.Millisecond).Should(BeZero(),
			"shard-a launched for workload-2, which is shard-b's")
		Expect(readyPods(ctx, workload2, "sharded-app")()).To(BeZero())

		By("shard-b joins: workload-2's pods run, and shard-a's Machines are untouched")
		before := map[string]bool{}
		for _, m := range poolMachines(ctx, "sharded") {
			before[m.Name] = true
		}
		startShard("shard-b")
		Eventually(ctx, readyPods(ctx, workload2, "sharded-app")).WithTimeout(provisioningWithin).WithPolling(time.Second).Should(Equal(6))
		for _, m := range poolMachines(ctx, "sharded") {
			if m.Spec.ClusterName == workload {
				Expect(before).To(HaveKey(m.Name), "a Machine of workload-1 appeared after shard-b started")
				Expect(m.DeletionTimestamp).To(BeNil(), "Machine %s of workload-1 is being deleted", m.Name)
			}
		}

		By("each shard holds its own Lease")
		for _, value := range shardOf {
			lease := &coordinationv1.Lease{}
			Expect(tb.Client.Get(ctx, types.NamespacedName{Namespace: tb.Namespace, Name: value + ".joinery-manager.joinery.dev"}, lease)).To(Succeed())
			Expect(lease.Spec.HolderIdentity).NotTo(BeNil(), "Lease of %s has no holder", value)
		}

		By("the pool's status has both clusters, each written by its own shard")
		Eventually(ctx, func() map[string]string {
			out := map[string]string{}
			for _, cs := range poolStatus(ctx, "sharded").Clusters {
				state := "unreachable: " + cs.Message
				if cs.Reachable && cs.Machines > 0 {
					state = "served"
				}
				out[cs.Name] = state
			}
			return out
		}).WithTimeout(within).Should(Equal(map[string]string{workload: "served", workload2: "served"}))
	})
})

// setClusterLabel sets (or, with value "", removes) a label of a CAPI
// Cluster of the suite.
func setClusterLabel(ctx SpecContext, cluster, key, value string) {
	c := &clusterv1.Cluster{}
	Expect(tb.Client.Get(ctx, types.NamespacedName{Namespace: tb.Namespace, Name: cluster}, c)).To(Succeed())
	patch := client.MergeFrom(c.DeepCopy())
	if value == "" {
		delete(c.Labels, key)
	} else {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[key] = value
	}
	Expect(tb.Client.Patch(ctx, c, patch)).To(Succeed())
}
