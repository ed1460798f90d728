package provisioning

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/internal/solverinput"
)

// Every object kind the solver plans with is read from the workload
// cluster: a kind left out is a constraint the plan silently ignores
// (attach limits without CSINodes, WaitForFirstConsumer zones without
// StorageClasses, namespaceSelectors without Namespaces).
func TestPlanningReadsEveryInputKindOfTheWorkloadCluster(t *testing.T) {
	wl := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gp3"}, Provisioner: "ebs.csi.aws.com"},
		&storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data"}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}},
	).Build()
	ps := &pass{ctx: context.Background(), workload: &workload{reader: wl, client: wl}}
	var objs solverinput.Objects
	if err := ps.listPlanningObjects(&objs); err != nil {
		t.Fatal(err)
	}
	if len(objs.StorageClasses) != 1 || objs.StorageClasses[0].Name != "gp3" {
		t.Errorf("StorageClasses %v", objs.StorageClasses)
	}
	if len(objs.CSINodes) != 1 || objs.CSINodes[0].Name != "node-1" {
		t.Errorf("CSINodes %v", objs.CSINodes)
	}
	if len(objs.Namespaces) != 1 || objs.Namespaces[0].Labels["team"] != "a" {
		t.Errorf("Namespaces %v", objs.Namespaces)
	}
	if len(objs.PersistentVolumeClaims) != 1 || len(objs.PersistentVolumes) != 1 {
		t.Errorf("volumes: %d claims, %d PVs", len(objs.PersistentVolumeClaims), len(objs.PersistentVolumes))
	}
}
