package poolstatus

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
)

// status.replicas is what `kubectl scale` and the scale subresource
// compare with spec.replicas, which is per served cluster: it is the
// count of the cluster that has the fewest, so it reaches spec.replicas
// only once every cluster has them; replacements and deleting Machines
// do not count twice.
func TestStaticReplicasIsTheFewestOfAnyServedCluster(t *testing.T) {
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "fixed", UID: "pool-uid"},
		Spec: v1alpha1.NodePoolSpec{Replicas: ptr.To[int32](3), ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}
	owned := []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodePool", Name: "fixed", UID: "pool-uid", Controller: ptr.To(true)}}
	m := func(name, cluster string, annotations map[string]string, deleting bool) clusterv1.Machine {
		out := clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, OwnerReferences: owned, Annotations: annotations,
			Labels: map[string]string{v1alpha1.LabelNodePool: "fixed"}}, Spec: clusterv1.MachineSpec{ClusterName: cluster}}
		if deleting {
			out.DeletionTimestamp = ptr.To(metav1.Now())
			out.Finalizers = []string{"machine.cluster.x-k8s.io"}
		}
		return out
	}
	cluster := func(name string) clusterv1.Cluster {
		return clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"env": "prod"}}}
	}
	machines := []clusterv1.Machine{
		m("a1", "a", nil, false), m("a2", "a", nil, false), m("a3", "a", nil, false),
		m("a4", "a", map[string]string{provisioning.AnnotationReplaces: "a3"}, false),
		m("a5", "a", nil, true),
		m("b1", "b", nil, false), m("b2", "b", nil, false),
	}
	clusters := []clusterv1.Cluster{cluster("a"), cluster("b")}
	if got := staticReplicas(pool, machines, clusters); got != 2 {
		t.Errorf("status.replicas = %d, want 2 (cluster b has 2; a has 3, its replacement and deleting Machine not counted)", got)
	}
	if got := staticReplicas(pool, machines, clusters[:1]); got != 3 {
		t.Errorf("status.replicas with cluster a only = %d, want 3", got)
	}
	pool.Spec.Replicas = nil
	if got := staticReplicas(pool, machines, clusters); got != 0 {
		t.Errorf("status.replicas of a dynamic pool = %d, want 0", got)
	}
}
