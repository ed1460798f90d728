package disruption

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

func TestReportBudgetsMarksOnlyTheBrokenPool(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	pool := func(name, schedule string) *v1alpha1.NodePool {
		return &v1alpha1.NodePool{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: v1alpha1.NodePoolSpec{Disruption: v1alpha1.Disruption{Budgets: []v1alpha1.Budget{
				{Nodes: "10%"},
				{Nodes: "0", Schedule: ptr.To(schedule), Duration: &metav1.Duration{Duration: time.Hour}},
			}}},
		}
	}
	good, broken := pool("good", "0 9 * * MON-FRI"), pool("broken", "0 0 30 2 *")
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(good, broken).WithStatusSubresource(good, broken).Build()
	recorder := record.NewFakeRecorder(10)
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	ctx := context.Background()

	if err := reportBudgets(ctx, c, recorder, []*v1alpha1.NodePool{good, broken}, now); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.NodePool
	if err := c.Get(ctx, client.ObjectKeyFromObject(broken), &got); err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDisruptionBudgetsValid)
	if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, `spec.disruption.budgets[1].schedule: "0 0 30 2 *" never fires`) {
		t.Fatalf("broken pool's condition: %+v", cond)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(good), &got); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDisruptionBudgetsValid); cond != nil {
		t.Errorf("a valid pool got a write: %+v", cond)
	}
	select {
	case e := <-recorder.Events:
		if !strings.Contains(e, "InvalidBudget") || !strings.Contains(e, "spec.disruption.budgets[1].schedule") {
			t.Errorf("event %q does not name the field", e)
		}
	default:
		t.Error("no InvalidBudget Event")
	}

	// The same state reported again writes and emits nothing new.
	if err := c.Get(ctx, client.ObjectKeyFromObject(broken), broken); err != nil {
		t.Fatal(err)
	}
	if err := reportBudgets(ctx, c, recorder, []*v1alpha1.NodePool{good, broken}, now); err != nil {
		t.Fatal(err)
	}
	if len(recorder.Events) != 0 {
		t.Errorf("a second report emitted %q", <-recorder.Events)
	}

	// Fixed: the condition turns True.
	broken.Spec.Disruption.Budgets[1].Schedule = ptr.To("@daily")
	if err := reportBudgets(ctx, c, recorder, []*v1alpha1.NodePool{broken}, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(broken), &got); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDisruptionBudgetsValid); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("fixed pool's condition: %+v", cond)
	}
	// And the broken budget blocks disruption of its pool only.
	if n, err := AllowedDisruptions(pool("x", "0 0 30 2 *").Spec.Disruption.Budgets, v1alpha1.DisruptionReasonEmpty, 10, 0, now); err == nil || n != 0 {
		t.Errorf("never-firing budget allowed %d (%v)", n, err)
	}
}
