package disruption

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools/status,verbs=patch

// reportBudgets sets each pool's DisruptionBudgetsValid condition and, when
// a pool's budgets turn invalid, emits an InvalidBudget Event naming the
// field. What the schema cannot check (a cron field out of range, a
// schedule that never fires) is found here; the pool's machines are then
// not disrupted (AllowedDisruptions fails, which allows none), and no
// other pool or cluster is affected. A pool whose budgets were always
// valid gets no write, so this costs nothing in the common case.
func reportBudgets(ctx context.Context, c client.Client, recorder record.EventRecorder, pools []*v1alpha1.NodePool, now time.Time) error {
	for _, pool := range pools {
		cond := metav1.Condition{
			Type:               v1alpha1.ConditionDisruptionBudgetsValid,
			Status:             metav1.ConditionTrue,
			Reason:             "Valid",
			Message:            "every disruption budget can be applied",
			ObservedGeneration: pool.Generation,
		}
		invalid := ValidateBudgets(pool.Spec.Disruption.Budgets, now)
		if invalid != nil {
			cond.Status = metav1.ConditionFalse
			cond.Reason = "InvalidBudget"
			cond.Message = invalid.Error() + "; no machine of this pool is disrupted until it is fixed"
		}
		old := meta.FindStatusCondition(pool.Status.Conditions, cond.Type)
		if (old == nil && invalid == nil) || (old != nil && old.Status == cond.Status && old.Message == cond.Message) {
			continue
		}
		updated := pool.DeepCopy()
		meta.SetStatusCondition(&updated.Status.Conditions, cond)
		if err := c.Status().Patch(ctx, updated, client.MergeFrom(pool)); err != nil {
			return client.IgnoreNotFound(err)
		}
		if invalid != nil {
			recorder.Eventf(pool, corev1.EventTypeWarning, "InvalidBudget", "%v", invalid)
		}
	}
	return nil
}
