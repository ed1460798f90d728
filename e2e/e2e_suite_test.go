package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	suite, reporter := GinkgoConfiguration()
	second, err := splitSuite(&suite, reporter)
	if err != nil {
		t.Fatal(err)
	}
	RunSpecs(t, "Joinery end-to-end", suite, reporter)
	if second != nil {
		second.wait(t)
	}
}

var (
	tb *testbed.Testbed
	// interruptions receives the spot interruption notices of the
	// simulated cloud (where SQS messages will be sent).
	interruptions = make(chan cloudsim.Interruption, 16)
)

// workload is the workload cluster the specs without Joinery use;
// provisioning specs use both.
const (
	workload  = "workload-1"
	workload2 = "workload-2"
)

// interruptionQueue is the simulated SQS queue Joinery polls for EC2's
// interruption events.
const interruptionQueue = "joinery-interruptions"

// joinery is Joinery's manager, a process of its own.
var joinery *testbed.JoineryProcess

// managerArgs are the flags every spec's manager runs with (specs that
// start managers of their own add to them); managerDir holds their logs.
var (
	managerArgs []string
	managerDir  string
)

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	var err error
	tb, err = testbed.Start(ctx, testbed.Options{
		WorkloadClusters: 2,
		ClusterLabels:    map[string]string{"env": "e2e"},
		// E2E_DIR keeps every cluster's data and component logs there.
		Dir: os.Getenv("E2E_DIR"),
		Log: log,
		Cloud: cloudsim.Options{
			BootDelay: time.Second,
			JoinDelay: 200 * time.Millisecond,
			// A terminated instance is gone by the time CAPA looks again
			// (it re-reads right after patching the AWSMachine); with EC2's
			// seconds of shutting-down, CAPA checks only a minute later.
			ShutdownDelay:           time.Millisecond,
			SpotInterruptionWarning: 3 * time.Second,
			OnSpotInterruption:      func(i cloudsim.Interruption) { interruptions <- i },
			// EC2's events reach Joinery through a local SQS endpoint.
			SQSQueue: interruptionQueue,
		},
		Progress: func(step string) { GinkgoWriter.Println(step) },
	})
	Expect(err).NotTo(HaveOccurred())
	dir := os.Getenv("E2E_DIR")
	if dir == "" {
		dir = GinkgoT().TempDir()
	}
	managerDir = dir
	managerArgs = []string{"--kubeconfig=" + tb.Management.KubeconfigPath,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--registration-timeout=3m", "--disruption-validation-delay=3s", "--disruption-interval=2s",
		"--interruption-queue=" + interruptionQueue, "--aws-region=" + tb.Cloud.Region(), "--aws-endpoint=" + tb.Cloud.SQSEndpoint(),
		// The catalog (instance types, offerings, spot prices, the
		// account's zone names) and the AMIs' architecture come from the
		// simulated EC2 as they come from EC2 in production, so no spec
		// plans with what the manager would otherwise have to assume.
		"--catalog-regions=" + tb.Cloud.Region(), "--ec2-endpoint=" + tb.Cloud.EC2Endpoint(),
		// Spot prices and placement scores change during specs (spot risk).
		"--catalog-spot-refresh-interval=" + spotRefresh.String(),
		// Capacity reservations a spec adds are planned with seconds later.
		"--catalog-reservation-refresh-interval=2s"}
	joinery = testbed.NewJoineryProcess(dir, append([]string{"--leader-elect=false"}, managerArgs...)...)
	Expect(joinery.Start()).To(Succeed())
	// Until its first read the manager decides with the embedded snapshot
	// and assumed zone names; no spec should start on those.
	Eventually(func() string { return joinery.Tail(1 << 20) }).WithTimeout(time.Minute).WithPolling(200*time.Millisecond).
		Should(ContainSubstring("read the EC2 catalog"), "Joinery's manager did not read the catalog from the simulated EC2")
	DeferCleanup(func() {
		joinery.Stop()
		if CurrentSpecReport().Failed() || os.Getenv("E2E_DUMP_LOGS") != "" {
			tb.Management.DumpLogs(GinkgoWriter, 8<<10)
			for _, w := range tb.Workloads {
				w.Cluster.DumpLogs(GinkgoWriter, 8<<10)
			}
		}
		Expect(tb.Stop()).To(Succeed())
	})
}, NodeTimeout(3*time.Minute))

var _ = ReportAfterEach(func(report SpecReport) {
	if report.Failed() && tb != nil {
		tb.Management.DumpLogs(GinkgoWriter, 8<<10)
		if joinery != nil {
			GinkgoWriter.Printf("----- joinery manager log (tail) -----\n%s\n", joinery.Tail(24<<10))
		}
	}
})

// spotRefresh is how often the manager reads spot prices and placement
// scores from the simulated EC2.
const spotRefresh = 15 * time.Second

// cloudsimDefaultScore is the simulated EC2's placement score of a type
// nothing set.
const cloudsimDefaultScore = cloudsim.DefaultPlacementScore

// within bounds how long one step of a spec may take.
const within = 60 * time.Second

func eventually(ctx context.Context, f any) AsyncAssertion {
	return Eventually(ctx, f).WithTimeout(within).WithPolling(100 * time.Millisecond)
}
