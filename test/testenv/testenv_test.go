package testenv_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/test/testenv"
)

func kwokNode(name, cpu, memory string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{testenv.KwokNodeAnnotation: testenv.KwokNodeAnnotationValue},
			Labels:      map[string]string{"kubernetes.io/hostname": name, "type": "kwok"},
		},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "kwok.x-k8s.io/node", Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

func TestDeploymentThatDoesNotFitStaysPendingUntilANodeWithRoomJoins(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	c := testenv.New(t, testenv.Options{Name: "pending", WithControllerManager: true})
	cs, err := c.Clientset()
	g.Expect(err).NotTo(HaveOccurred())

	_, err = cs.CoreV1().Nodes().Create(ctx, kwokNode("small", "1", "4Gi"), metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool { return nodeReady(ctx, cs, "small") }, 30*time.Second, 200*time.Millisecond).Should(BeTrue())

	labels := map[string]string{"app": "web"}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{
						Name:      "web",
						Image:     "registry.example/web:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
					}},
				},
			},
		},
	}
	_, err = cs.AppsV1().Deployments("default").Create(ctx, deployment, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// The real scheduler's verdict is the demand signal Joinery reads.
	g.Eventually(func(g Gomega) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods.Items).To(HaveLen(3))
		for _, pod := range pods.Items {
			g.Expect(pod.Status.Phase).To(Equal(corev1.PodPending))
			cond := podCondition(&pod, corev1.PodScheduled)
			g.Expect(cond).NotTo(BeNil(), "pod %s has no PodScheduled condition", pod.Name)
			g.Expect(cond.Status).To(Equal(corev1.ConditionFalse))
			g.Expect(cond.Reason).To(Equal(corev1.PodReasonUnschedulable))
			g.Expect(cond.Message).To(ContainSubstring("Insufficient cpu"))
		}
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	_, err = cs.CoreV1().Nodes().Create(ctx, kwokNode("big", "8", "32Gi"), metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(pods.Items).To(HaveLen(3))
		for _, pod := range pods.Items {
			g.Expect(pod.Spec.NodeName).To(Equal("big"))
			g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
		}
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

func TestTwoClustersRunAtOnceAndAreIsolated(t *testing.T) {
	twoIsolatedClusters(t, func(i int) testenv.Options { return testenv.Options{Name: fmt.Sprintf("iso-%d", i)} }, nil)
}

// TestClustersOnASharedEtcdAreIsolated: two clusters keeping their data in
// one etcd see none of each other's objects, and a third with a name
// already on it is refused.
func TestClustersOnASharedEtcdAreIsolated(t *testing.T) {
	shared, err := testenv.StartSharedEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the clusters on it stop.
	t.Cleanup(func() {
		if err := shared.Stop(); err != nil {
			t.Errorf("stopping the shared etcd: %v", err)
		}
	})
	// Both clusters are given the same CRD objects, as a testbed gives
	// its workload clusters, and each installs them.
	crds := []*apiextensionsv1.CustomResourceDefinition{widgetCRD()}
	twoIsolatedClusters(t, func(i int) testenv.Options {
		return testenv.Options{Name: fmt.Sprintf("shared-%d", i), Etcd: shared, CRDs: crds}
	}, func() {
		_, err := testenv.Start(context.Background(), testenv.Options{Name: "shared-1", Dir: t.TempDir(), Etcd: shared, WithoutScheduler: true, WithoutKwok: true})
		if err == nil || !strings.Contains(err.Error(), `already holds a cluster named "shared-1"`) {
			t.Errorf("a second cluster named shared-1 on the shared etcd: err %v, want it refused by name", err)
		}
	})
}

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.joinery.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.joinery.dev", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

// twoIsolatedClusters starts two clusters at once and checks that each
// apiserver stores only its own objects and each kwok manages only its
// own nodes; whileRunning, when set, runs before one of them stops.
func twoIsolatedClusters(t *testing.T, opts func(i int) testenv.Options, whileRunning func()) {
	g := NewWithT(t)
	ctx := context.Background()
	var clusters [2]*testenv.Cluster
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clusters[i] = testenv.New(t, opts(i))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b := clusters[0], clusters[1]
	g.Expect(a.Config.Host).NotTo(Equal(b.Config.Host))

	csA, err := a.Clientset()
	g.Expect(err).NotTo(HaveOccurred())
	csB, err := b.Clientset()
	g.Expect(err).NotTo(HaveOccurred())

	_, err = csA.CoreV1().Nodes().Create(ctx, kwokNode("only-in-a", "2", "4Gi"), metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = csA.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "marker"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// Each cluster's kwok manages only its own nodes, and each apiserver
	// stores only its own objects.
	g.Eventually(func() bool { return nodeReady(ctx, csA, "only-in-a") }, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
	nodesB, err := csB.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nodesB.Items).To(BeEmpty())
	_, err = csB.CoreV1().ConfigMaps("default").Get(ctx, "marker", metav1.GetOptions{})
	g.Expect(err).To(MatchError(ContainSubstring("not found")))

	if whileRunning != nil {
		whileRunning()
	}
	// Stopping one leaves the other serving.
	g.Expect(a.Stop()).To(Succeed())
	_, err = csB.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
}

// helperEnv carries, to the child test binary, the directory its cluster
// uses: the parent owns it, so it is removed although the child is killed.
const helperEnv = "JOINERY_TESTENV_KILL_HELPER_DIR"

// TestNoProcessOutlivesAKilledTestBinary runs a cluster inside a child copy
// of this test binary, kills that child with SIGKILL (no cleanup code can
// run), and checks that every component process it had is gone.
func TestNoProcessOutlivesAKilledTestBinary(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		runClusterUntilKilled(t)
		return
	}
	g := NewWithT(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoProcessOutlivesAKilledTestBinary$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = os.Stderr
	g.Expect(cmd.Start()).To(Succeed())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var pids []int
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "CHILD-PIDS "); ok {
			for _, field := range strings.Fields(rest) {
				pid, err := strconv.Atoi(field)
				g.Expect(err).NotTo(HaveOccurred())
				pids = append(pids, pid)
			}
			break
		}
	}
	// etcd, kube-apiserver, kube-scheduler and kwok.
	g.Expect(pids).To(HaveLen(4), "helper did not report its component processes")
	for _, pid := range pids {
		g.Expect(processAlive(pid)).To(BeTrue(), "pid %d should run while the helper lives", pid)
	}

	g.Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	_ = cmd.Wait()
	g.Eventually(func() []int {
		var alive []int
		for _, pid := range pids {
			if processAlive(pid) {
				alive = append(alive, pid)
			}
		}
		return alive
	}, 15*time.Second, 100*time.Millisecond).Should(BeEmpty(), "component processes survived SIGKILL of the test binary")
}

func runClusterUntilKilled(t *testing.T) {
	c := testenv.New(t, testenv.Options{Name: "killed", Dir: os.Getenv(helperEnv)})
	_ = c
	children, err := childPIDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	fields := make([]string, len(children))
	for i, pid := range children {
		fields[i] = strconv.Itoa(pid)
	}
	fmt.Printf("CHILD-PIDS %s\n", strings.Join(fields, " "))
	time.Sleep(5 * time.Minute)
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(parent int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state, ppid, ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	return !strings.HasPrefix(rest, "Z")
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) bool {
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podCondition(pod *corev1.Pod, kind corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == kind {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
