package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/solver"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, clusterv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fakeClient indexes Events by involved object as the apiserver's field
// selectors do.
func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(objs...).
		WithIndex(&corev1.Event{}, "involvedObject.kind", func(o client.Object) []string { return []string{o.(*corev1.Event).InvolvedObject.Kind} }).
		WithIndex(&corev1.Event{}, "involvedObject.name", func(o client.Object) []string { return []string{o.(*corev1.Event).InvolvedObject.Name} }).
		Build()
}

func machine(t *testing.T, name string, d provisioning.Decision, annotations map[string]string) *clusterv1.Machine {
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	m := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, CreationTimestamp: metav1.NewTime(now.Add(-5 * time.Minute)),
			Labels:      map[string]string{v1alpha1.LabelNodePool: d.NodePool, clusterv1.ClusterNameLabel: "prod"},
			Annotations: map[string]string{provisioning.AnnotationDecision: string(raw)}},
		Spec:   clusterv1.MachineSpec{ClusterName: "prod"},
		Status: clusterv1.MachineStatus{Phase: "Running", NodeRef: clusterv1.MachineNodeReference{Name: "ip-10-0-0-1"}},
	}
	for k, v := range annotations {
		m.Annotations[k] = v
	}
	return m
}

func event(kind, name, reason, message string, ago time.Duration) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprintf("%s.%s.%d", name, reason, ago)},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: "team-a"},
		Reason:         reason, Message: message, Type: corev1.EventTypeNormal, LastTimestamp: metav1.NewTime(now.Add(-ago)),
	}
}

func decision() provisioning.Decision {
	return provisioning.Decision{
		NodePool:  "general",
		Offering:  provisioning.Offering{InstanceType: "m5.xlarge", Zone: "us-east-1b", CapacityType: "on-demand", PricePerHour: 0.192},
		Fallbacks: []provisioning.Offering{{InstanceType: "m6i.xlarge", Zone: "us-east-1b", CapacityType: "on-demand", PricePerHour: 0.192}},
		Rejected: []provisioning.Rejected{
			{Reason: "refused by the cloud recently (insufficient capacity)", Count: 1, Offerings: []provisioning.Offering{{InstanceType: "m5a.xlarge", Zone: "us-east-1b", CapacityType: "on-demand", PricePerHour: 0.172}}},
			{Reason: "too small for the pods' requests cpu=3, memory=6Gi", Count: 12, Offerings: []provisioning.Offering{{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "on-demand", PricePerHour: 0.096}}},
		},
		Pods: []string{"shop/web-1", "shop/web-2"}, PodCount: 2, DecidedAt: metav1.NewTime(now.Add(-5 * time.Minute)),
	}
}

func TestMachine(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		maxPrice    string
		overlay     string
		spotRisk    bool
		reservation string
		want        []string
	}{
		{name: "kept by consolidation",
			annotations: map[string]string{disruption.AnnotationNotDisrupted: "no consolidation saves money: pod shop/db-0 would have nowhere to go",
				disruption.AnnotationNotDisruptedSince: now.Add(-2 * time.Minute).Format(time.RFC3339)},
			want: []string{
				"Machine team-a/general-abc in cluster prod, NodePool general",
				"Decided 5m ago for 2 pending pods: shop/web-1, shop/web-2.",
				"Chosen: on-demand m5.xlarge in us-east-1b at $0.1920/h",
				"refused by the cloud recently (insufficient capacity): 1 offering, cheapest: on-demand m5a.xlarge in us-east-1b at $0.1720/h",
				"too small for the pods' requests cpu=3, memory=6Gi: 12 offerings, cheapest: on-demand m5.large",
				"Kept: no consolidation saves money: pod shop/db-0 would have nowhere to go (recorded 2m ago).",
				"Launched", "Unconsolidatable",
			}},
		{name: "being replaced",
			annotations: map[string]string{disruption.AnnotationReplacedBy: "general-def", disruption.AnnotationDisruption: "Consolidation of general-abc: ..."},
			want:        []string{"Being replaced by general-def: Consolidation of general-abc"}},
		{name: "under a spot price cap", maxPrice: "0.05",
			want: []string{"Spot price cap: $0.05/h (spotMarketOptions.maxPrice of the pool's AWSMachineTemplate)"}},
		{name: "priced by a NodeOverlay", overlay: "m5-savings-plan",
			want: []string{"Chosen: on-demand m5.xlarge in us-east-1b at $0.1152/h (price set by NodeOverlay m5-savings-plan; list $0.1920/h)"}},
		{name: "spot passed over for interruption risk", spotRisk: true,
			want: []string{
				"Chosen: spot m5.xlarge in us-east-1c at $0.0800/h [placement score 9/10, interruption risk 0.11], the cheapest offering that carries those pods within every constraint, spot prices weighed by interruption risk",
				"interruption risk: weighed by it (EC2's placement score, Joinery's recent interruptions), the price is not below the chosen offering's: 1 offering, " +
					"cheapest: spot m5.xlarge in us-east-1b at $0.0700/h [placement score 2/10, 1.5 recent interruptions (fading), interruption risk 0.96]",
			}},
		{name: "in a capacity reservation", reservation: "cr-0123456789abcdef0",
			want: []string{"Chosen: reserved m5.xlarge in us-east-1b at $0.0000/h in capacity reservation cr-0123456789abcdef0 (already paid for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decision()
			d.SpotMaxPrice = tc.maxPrice
			if tc.spotRisk {
				d.Offering = provisioning.Offering{InstanceType: "m5.xlarge", Zone: "us-east-1c", CapacityType: "spot", PricePerHour: 0.08, PlacementScore: 9, InterruptionRisk: 1.0 / 9}
				d.Rejected = append(d.Rejected, provisioning.Rejected{Reason: solver.RejectedForSpotRisk, Count: 1, Offerings: []provisioning.Offering{
					{InstanceType: "m5.xlarge", Zone: "us-east-1b", CapacityType: "spot", PricePerHour: 0.07, PlacementScore: 2, RecentInterruptions: 1.5, InterruptionRisk: solver.OfferingRisk(2, 1.5)}}})
			}
			if tc.reservation != "" {
				d.Offering.CapacityType, d.Offering.PricePerHour = v1alpha1.CapacityTypeReserved, d.Offering.PricePerHour/10_000_000
				d.Offering.ReservationID, d.Offering.ReservationType = tc.reservation, v1alpha1.CapacityReservationTypeDefault
			}
			if tc.overlay != "" {
				d.Offering.PriceOverlay, d.Offering.ListPricePerHour, d.Offering.PricePerHour = tc.overlay, d.Offering.PricePerHour, d.Offering.PricePerHour*0.6
			}
			c := fakeClient(t, machine(t, "general-abc", d, tc.annotations),
				&v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "general"}},
				event("NodePool", "general", "Launched", "Machine general-abc in cluster prod: on-demand m5.xlarge", 5*time.Minute),
				event("NodePool", "general", "Launched", "Machine general-zzz in cluster prod: another machine", 4*time.Minute),
				event("Machine", "general-abc", "Unconsolidatable", "no consolidation saves money", 2*time.Minute))
			var b strings.Builder
			e := &Explainer{Client: c, Now: func() time.Time { return now }}
			if err := e.Machine(context.Background(), &b, types.NamespacedName{Namespace: "team-a", Name: "general-abc"}); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			if tc.overlay == "" && strings.Contains(out, "NodeOverlay") {
				t.Errorf("an overlay shown for a decision at list prices:\n%s", out)
			}
			if !tc.spotRisk && (strings.Contains(out, "placement score") || strings.Contains(out, "weighed")) {
				t.Errorf("spot risk shown for a decision without any:\n%s", out)
			}
			if tc.maxPrice == "" && strings.Contains(out, "Spot price cap") {
				t.Errorf("a cap shown for a template without one:\n%s", out)
			}
			if strings.Contains(out, "general-zzz") {
				t.Errorf("another Machine's event shown:\n%s", out)
			}
			if i, j := strings.Index(out, "Launched"), strings.Index(out, "Unconsolidatable"); tc.name == "kept by consolidation" && i > j {
				t.Errorf("events out of order:\n%s", out)
			}
		})
	}
}

func TestMachineNotJoinerys(t *testing.T) {
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "cp-0"}}
	e := &Explainer{Client: fakeClient(t, m)}
	err := e.Machine(context.Background(), &strings.Builder{}, types.NamespacedName{Namespace: "team-a", Name: "cp-0"})
	if err == nil || !strings.Contains(err.Error(), "was it created by Joinery?") {
		t.Fatalf("err = %v", err)
	}
}

func TestNodePool(t *testing.T) {
	pool := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "general"},
		Status: v1alpha1.NodePoolStatus{Machines: 2, Nodes: 1, PricePerHour: "0.3840",
			Clusters: []v1alpha1.ClusterStatus{{Name: "prod", Reachable: true, Machines: 2}, {Name: "edge", Reachable: false, Message: "dial tcp: connection refused"}}},
	}
	kept := machine(t, "general-abc", decision(), map[string]string{disruption.AnnotationNotDisrupted: "the pool's consolidateAfter is Never"})
	booting := machine(t, "general-def", decision(), nil)
	booting.Status.NodeRef = clusterv1.MachineNodeReference{}
	c := fakeClient(t, pool, kept, booting)
	var b strings.Builder
	e := &Explainer{Client: c, Now: func() time.Time { return now }}
	if err := e.NodePool(context.Background(), &b, types.NamespacedName{Namespace: "team-a", Name: "general"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, w := range []string{
		"Machines: 2 (1 with a ready node), $0.3840/h",
		"Cluster prod: reachable, 2 machines at $0.3840/h",
		"Cluster edge: UNREACHABLE, 0 machines at $0.0000/h: dial tcp: connection refused",
		"kept: the pool's consolidateAfter is Never",
		"general-def",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestPod(t *testing.T) {
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"}}
	pod := func(name string, conds []corev1.PodCondition) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: conds}}
	}
	failed := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "big.1"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "big", Namespace: "shop"},
		Reason: "FailedProvisioning", Type: corev1.EventTypeWarning, LastTimestamp: metav1.NewTime(now.Add(-30 * time.Second)),
		Message: `Joinery found no machine for the pod: nodepool "general": no instance type has room for requests cpu=200`}
	crowdedOut := failed.DeepCopy()
	crowdedOut.Name, crowdedOut.InvolvedObject.Name = "web-2.1", "web-2"
	crowdedOut.Message = `Joinery found no machine for the pod: nodepool "general": pool limits reached`
	workload := fakeClient(t, pod("web-1", unschedulable), pod("web-2", unschedulable), pod("big", unschedulable), pod("fresh", nil), failed, crowdedOut)
	cluster := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "prod"}}
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "general"}, Spec: v1alpha1.NodePoolSpec{ClusterName: "prod"}}
	waitingFor := machine(t, "general-abc", decision(), nil)
	waitingFor.Status.NodeRef = clusterv1.MachineNodeReference{}
	mgmt := fakeClient(t, cluster, pool, waitingFor)
	e := &Explainer{Client: mgmt, Now: func() time.Time { return now },
		Workload: func(_ context.Context, key types.NamespacedName) (client.Client, error) {
			if key != (types.NamespacedName{Namespace: "team-a", Name: "prod"}) {
				t.Errorf("asked for cluster %s", key)
			}
			return workload, nil
		}}
	for _, tc := range []struct {
		pod  string
		want string
	}{
		{"web-1", "Waiting for Machine team-a/general-abc (on-demand m5.xlarge in us-east-1b at $0.1920/h), created 5m ago (no node yet"},
		{"big", `No machine can be launched for it (30s ago): Joinery found no machine for the pod: nodepool "general": no instance type has room for requests cpu=200`},
		{"fresh", "Not pending for Joinery: the scheduler has not marked it Unschedulable"},
		// Planned on general-abc 5m ago, refused 30s ago: the newer record wins.
		{"web-2", "No machine can be launched for it (30s ago): Joinery found no machine for the pod: nodepool \"general\": pool limits reached\n" +
			"  It was planned on Machine team-a/general-abc 5m ago; the scheduler gave that room to other pods."},
	} {
		var b strings.Builder
		if err := e.Pod(context.Background(), &b, types.NamespacedName{}, types.NamespacedName{Namespace: "shop", Name: tc.pod}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("pod %s: missing %q in:\n%s", tc.pod, tc.want, b.String())
		}
	}
	err := e.Pod(context.Background(), &strings.Builder{}, types.NamespacedName{}, types.NamespacedName{Namespace: "shop", Name: "ghost"})
	if err == nil || !strings.Contains(err.Error(), "pod shop/ghost not found in 1 cluster") {
		t.Errorf("err = %v", err)
	}
	lonely := &Explainer{Client: fakeClient(t, cluster), Workload: e.Workload}
	err = lonely.Pod(context.Background(), &strings.Builder{}, types.NamespacedName{}, types.NamespacedName{Namespace: "shop", Name: "web-1"})
	if err == nil || !strings.Contains(err.Error(), "no NodePool serves any CAPI Cluster") {
		t.Errorf("err = %v", err)
	}
}

func TestHeadroomLineNamesTheBuffers(t *testing.T) {
	if got := headroomLine(provisioning.Decision{PodCount: 3}); got != "" {
		t.Errorf("a decision without headroom: %q", got)
	}
	got := headroomLine(provisioning.Decision{PodCount: 3, Headroom: map[string]int{"shop/web": 2, "shop/api": 1}})
	for _, want := range []string{"all of them are", "shop/api (1)", "shop/web (2)", "CapacityBuffer"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}
