package disruption

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
)

func TestAllowedDisruptions(t *testing.T) {
	monday9 := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC) // a Monday
	businessHours := v1alpha1.Budget{Nodes: "0", Schedule: ptr.To("0 9 * * 1-5"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}
	for _, tc := range []struct {
		name       string
		budgets    []v1alpha1.Budget
		reason     v1alpha1.DisruptionReason
		total      int
		disrupting int
		now        time.Time
		want       int
	}{
		{"no budget: 10% rounded up", nil, v1alpha1.DisruptionReasonEmpty, 15, 0, monday9, 2},
		{"a count", []v1alpha1.Budget{{Nodes: "1"}}, v1alpha1.DisruptionReasonEmpty, 15, 0, monday9, 1},
		{"a count, one already disrupting", []v1alpha1.Budget{{Nodes: "1"}}, v1alpha1.DisruptionReasonEmpty, 15, 1, monday9, 0},
		{"the most restrictive applies", []v1alpha1.Budget{{Nodes: "50%"}, {Nodes: "3"}}, v1alpha1.DisruptionReasonDrifted, 20, 0, monday9, 3},
		{"a budget for other reasons is ignored", []v1alpha1.Budget{{Nodes: "0", Reasons: []v1alpha1.DisruptionReason{v1alpha1.DisruptionReasonUnderutilized}}, {Nodes: "5"}}, v1alpha1.DisruptionReasonEmpty, 20, 0, monday9, 5},
		{"inside the scheduled window", []v1alpha1.Budget{{Nodes: "5"}, businessHours}, v1alpha1.DisruptionReasonEmpty, 20, 0, monday9, 0},
		{"before the window", []v1alpha1.Budget{{Nodes: "5"}, businessHours}, v1alpha1.DisruptionReasonEmpty, 20, 0, monday9.Add(-time.Hour), 5},
		{"after the window", []v1alpha1.Budget{{Nodes: "5"}, businessHours}, v1alpha1.DisruptionReasonEmpty, 20, 0, monday9.Add(8 * time.Hour), 5},
		{"not on Sunday", []v1alpha1.Budget{{Nodes: "5"}, businessHours}, v1alpha1.DisruptionReasonEmpty, 20, 0, monday9.Add(-24 * time.Hour), 5},
	} {
		got, err := AllowedDisruptions(tc.budgets, tc.reason, tc.total, tc.disrupting, tc.now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: allowed %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		expr string
		from time.Time
		next time.Time
	}{
		{"@daily", time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 1, 2, 3, 31, 0, 0, time.UTC), time.Date(2026, 1, 2, 3, 45, 0, 0, time.UTC)},
		{"0 9 * * MON-FRI", time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}, // Saturday to Monday
		{"0 22 * * SUN", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)},
		{"0 0 1,15 * *", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 JAN *", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseSchedule(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := s.Next(tc.from); !got.Equal(tc.next) {
			t.Errorf("%s after %s: next %s, want %s", tc.expr, tc.from, got, tc.next)
		}
	}
	// Karpenter's parser (robfig/cron's standard one) rejects these; the
	// CRD's pattern admits some of them, so the controller must too.
	for _, bad := range []string{"* * * *", "60 * * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *", "0 25 * * *", "0 0 * * 7", "0 * * * * *", "@hourly now", "TZ=Europe/Paris 0 9 * * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestValidateBudgetsNamesTheField(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	hour := &metav1.Duration{Duration: time.Hour}
	for _, tc := range []struct {
		name   string
		budget v1alpha1.Budget
		want   string // "" for valid
	}{
		{"valid", v1alpha1.Budget{Nodes: "10%", Schedule: ptr.To("0 9 * * MON-FRI"), Duration: hour}, ""},
		{"hour out of range", v1alpha1.Budget{Nodes: "1", Schedule: ptr.To("0 25 * * *"), Duration: hour}, `spec.disruption.budgets[1].schedule: "0 25 * * *": end of range (25) above maximum (23)`},
		{"February 30th never fires", v1alpha1.Budget{Nodes: "1", Schedule: ptr.To("0 0 30 2 *"), Duration: hour}, `spec.disruption.budgets[1].schedule: "0 0 30 2 *" never fires`},
		{"nodes that are no number", v1alpha1.Budget{Nodes: "many"}, `spec.disruption.budgets[1].nodes: "many" is neither`},
	} {
		err := ValidateBudgets([]v1alpha1.Budget{{Nodes: "10%"}, tc.budget}, now)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// A never-firing schedule with the longest duration the CRD admits took
// 1.85 s per pool per round when the window was found by walking back
// minute by minute; from the schedule's next fire it is one computation.
func TestBudgetWindowIsComputedNotWalked(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	longest := &metav1.Duration{Duration: 999999 * time.Hour}
	budgets := []v1alpha1.Budget{
		{Nodes: "0", Schedule: ptr.To("0 0 1 1 *"), Duration: longest},  // yearly: active (fired within the duration)
		{Nodes: "5", Schedule: ptr.To("0 0 30 2 *"), Duration: longest}, // never fires
	}
	start := time.Now()
	for range 100 {
		_, _ = AllowedDisruptions(budgets[:1], v1alpha1.DisruptionReasonEmpty, 20, 0, now)
		_, _ = AllowedDisruptions(budgets[1:], v1alpha1.DisruptionReasonEmpty, 20, 0, now)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("200 budget evaluations took %s", elapsed)
	}
	if got, err := AllowedDisruptions(budgets[:1], v1alpha1.DisruptionReasonEmpty, 20, 0, now); err != nil || got != 0 {
		t.Errorf("yearly window with the longest duration: allowed %d (%v), want 0", got, err)
	}
	if _, err := AllowedDisruptions(budgets[1:], v1alpha1.DisruptionReasonEmpty, 20, 0, now); err == nil || !strings.Contains(err.Error(), "never fires") {
		t.Errorf("never-firing schedule: %v, want an error saying it never fires", err)
	}
}

// A budget's schedule is the cluster's time: with the manager's clock
// minutes off the apiserver's (the soak's clock-skew fault), a window that
// allows no disruption holds by the apiserver's clock, and one that has
// ended by it is over whatever the manager's clock says.
func TestBudgetWindowsReadTheAPIServersClock(t *testing.T) {
	window := []v1alpha1.Budget{
		{Nodes: "0", Schedule: ptr.To("0 * * * *"), Duration: &metav1.Duration{Duration: 10 * time.Minute}},
		{Nodes: "100%"},
	}
	for _, tc := range []struct {
		name      string
		apiserver time.Time
		skew      time.Duration
		allowed   bool
	}{
		{name: "inside the window, manager 20m ahead", apiserver: t0.Add(5 * time.Minute), skew: 20 * time.Minute},
		{name: "inside the window, manager 10m behind", apiserver: t0.Add(5 * time.Minute), skew: -10 * time.Minute},
		{name: "after the window, manager 25m behind", apiserver: t0.Add(30 * time.Minute), skew: -25 * time.Minute, allowed: true},
		{name: "after the window, clocks agree", apiserver: t0.Add(30 * time.Minute), allowed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRepairFixture(t, 2, 0, window)
			manager := func() time.Time { return tc.apiserver.Add(tc.skew) }
			c := f.round.Controller
			c.Now, c.Provisioner = manager, &provisioning.Provisioner{Now: manager, APIServerClock: fixedClock(tc.apiserver)}
			r := c.newRound(context.Background(), logr.Discard(), f.round.st, types.NamespacedName{Namespace: "default", Name: "workload-1"})
			cand := candidate()
			cand.Pool, cand.Machine = f.round.st.Pools[0], &f.round.st.Machines[0]
			got := len(r.allowed([]*Candidate{cand}, v1alpha1.DisruptionReasonUnderutilized)) == 1
			if got != tc.allowed {
				t.Errorf("apiserver at %s, manager at %s: allowed %v, want %v (kept: %v)", tc.apiserver.Format("15:04"), manager().Format("15:04"), got, tc.allowed, r.kept)
			}
		})
	}
}
