package solver_test

import (
	"testing"
	"time"

	. "github.com/joinery-dev/joinery/solver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// livePodOf is a running pod of ds as its controller made it, with a
// sidecar a mutating webhook injected (not in the template).
func livePodOf(ds *appsv1.DaemonSet, name string, created time.Time, sidecarCPU string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ds.Namespace, UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(created),
		OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr(true)}}},
		Spec: *ds.Spec.Template.Spec.DeepCopy()}
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "injected", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(sidecarCPU), corev1.ResourceMemory: resource.MustParse("64Mi")}}})
	p.Status.Phase = corev1.PodRunning
	return p
}

// Karpenter: provisioning/provisioner.go getDaemonSetPods (a live pod of
// the daemonset, from cluster state, else one made from its template) and
// state/cluster.go UpdateDaemonSet (the newest pod it controls). Its suite
// has no test of its own for this.
var daemonSetCases = []ruleCase{
	{name: "a live daemonset pod's injected requests count on new nodes",
		snap: func() *Snapshot {
			ds := daemonSet("agent", "50m", "64Mi")
			ds.UID = "uid-agent"
			live := livePodOf(ds, "agent-old", time.Unix(1000, 0), "500m")
			s := onePool([]*corev1.Pod{testPod("web", "1500m", "1Gi")})
			s.DaemonSets = []*appsv1.DaemonSet{ds}
			s.Nodes = []*Node{existingNode("old", "zone-a", 1, 2, []*corev1.Pod{live})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			// 1500m + 50m + the 500m sidecar overflow every 2-cpu type.
			if cpu := p.NewNodes[0].InstanceType.Allocatable.Cpu().MilliValue(); cpu < 4000 {
				t.Fatalf("%s has %dm cpu; the live daemonset pod needs 550m beside the pod's 1500m", p.NewNodes[0].InstanceType.Name, cpu)
			}
		}},
	{name: "the template counts when no pod of the daemonset runs",
		snap: func() *Snapshot {
			ds := daemonSet("agent", "50m", "64Mi")
			ds.UID = "uid-agent"
			other := daemonSet("other", "50m", "64Mi")
			other.UID = "uid-other"
			s := onePool([]*corev1.Pod{testPod("web", "1500m", "1Gi")})
			s.DaemonSets = []*appsv1.DaemonSet{ds}
			// A pod of another daemonset says nothing about this one.
			s.Nodes = []*Node{existingNode("old", "zone-a", 1, 2, []*corev1.Pod{livePodOf(other, "other-1", time.Unix(1000, 0), "500m")})}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantType(t, p, 0, "c.large")
		}},
	{name: "the newest live pod of the daemonset is the one that counts",
		snap: func() *Snapshot {
			ds := daemonSet("agent", "50m", "64Mi")
			ds.UID = "uid-agent"
			s := onePool([]*corev1.Pod{testPod("web", "1500m", "1Gi")})
			s.DaemonSets = []*appsv1.DaemonSet{ds}
			s.Nodes = []*Node{
				existingNode("a", "zone-a", 1, 2, []*corev1.Pod{livePodOf(ds, "agent-new", time.Unix(2000, 0), "10m")}),
				existingNode("b", "zone-b", 1, 2, []*corev1.Pod{livePodOf(ds, "agent-old", time.Unix(1000, 0), "500m")}),
			}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantType(t, p, 0, "c.large")
		}},
}

func TestDaemonSetOverhead(t *testing.T) {
	for _, tc := range daemonSetCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			p := solveChecked(t, s, tc.opts)
			tc.expect(t, s, p)
		})
	}
}
