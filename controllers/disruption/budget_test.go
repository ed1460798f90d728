package disruption

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/joinery-dev/joinery/api/v1alpha1"
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
		expr  string
		at    time.Time
		match bool
	}{
		{"@daily", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), true},
		{"@daily", time.Date(2026, 1, 2, 0, 1, 0, 0, time.UTC), false},
		{"*/15 * * * *", time.Date(2026, 1, 2, 3, 45, 0, 0, time.UTC), true},
		{"*/15 * * * *", time.Date(2026, 1, 2, 3, 46, 0, 0, time.UTC), false},
		{"0 22 * * 7", time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC), true}, // Sunday as 7
		{"0 0 1,15 * *", time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), true},
	} {
		s, err := ParseSchedule(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := s.matches(tc.at); got != tc.match {
			t.Errorf("%s at %s: match %v, want %v", tc.expr, tc.at, got, tc.match)
		}
	}
	for _, bad := range []string{"* * * *", "60 * * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}
