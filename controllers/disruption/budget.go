package disruption

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// AllowedDisruptions is how many more of a pool's nodes may start being
// disrupted for reason at now: the most restrictive active budget, minus
// the nodes already disrupting. total is the pool's node count.
func AllowedDisruptions(budgets []v1alpha1.Budget, reason v1alpha1.DisruptionReason, total, disrupting int, now time.Time) (int, error) {
	allowed := math.MaxInt
	for i, b := range budgets {
		if len(b.Reasons) > 0 && !containsReason(b.Reasons, reason) {
			continue
		}
		active, err := budgetActive(b, now)
		if err != nil {
			return 0, fmt.Errorf("spec.disruption.budgets[%d].%w", i, err)
		}
		if !active {
			continue
		}
		n, err := budgetNodes(b.Nodes, total)
		if err != nil {
			return 0, fmt.Errorf("spec.disruption.budgets[%d].nodes: %w", i, err)
		}
		allowed = min(allowed, n)
	}
	if allowed == math.MaxInt {
		// No active budget: Karpenter's default is 10%.
		allowed, _ = budgetNodes("10%", total)
	}
	return max(0, allowed-disrupting), nil
}

func containsReason(reasons []v1alpha1.DisruptionReason, r v1alpha1.DisruptionReason) bool {
	for _, x := range reasons {
		if x == r {
			return true
		}
	}
	return false
}

// budgetNodes reads "3" or "10%" (of total, rounded up as Karpenter does).
func budgetNodes(value string, total int) (int, error) {
	if pct, ok := strings.CutSuffix(value, "%"); ok {
		p, err := strconv.Atoi(pct)
		if err != nil || p < 0 || p > 100 {
			return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", value)
		}
		return int(math.Ceil(float64(total) * float64(p) / 100)), nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a node count nor a percentage", value)
	}
	return n, nil
}

// budgetActive: a budget without a schedule is always active; one with a
// schedule is active for duration after each time the schedule fires. As
// Karpenter does, it asks the schedule for its next fire after
// now-duration: the budget is active if that is not after now. That is
// one computation whatever the duration, where walking back minute by
// minute took seconds for a long duration.
func budgetActive(b v1alpha1.Budget, now time.Time) (bool, error) {
	if b.Schedule == nil {
		return true, nil
	}
	if b.Duration == nil {
		return false, fmt.Errorf("schedule %q has no duration", *b.Schedule)
	}
	s, err := ParseSchedule(*b.Schedule)
	if err != nil {
		return false, fmt.Errorf("schedule: %w", err)
	}
	next := s.Next(now.UTC().Add(-b.Duration.Duration))
	if next.IsZero() {
		// robfig/cron gives up after five years without a fire.
		return false, fmt.Errorf("schedule: %q never fires (robfig/cron finds no time in five years); fix the day and month fields", *b.Schedule)
	}
	return !next.After(now.UTC()), nil
}

// ParseSchedule reads a cron expression in UTC the way Karpenter does,
// with github.com/robfig/cron/v3's standard parser: five fields (minute
// hour day-of-month month day-of-week, names such as MON-FRI and JAN
// allowed, day-of-week 0-6) or @yearly, @monthly, @weekly, @daily,
// @midnight, @hourly.
func ParseSchedule(expr string) (cron.Schedule, error) {
	if strings.HasPrefix(strings.TrimSpace(expr), "TZ=") || strings.HasPrefix(strings.TrimSpace(expr), "CRON_TZ=") {
		return nil, fmt.Errorf("%q: schedules are in UTC; remove the time zone", expr)
	}
	s, err := cron.ParseStandard("TZ=UTC " + expr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w (want five fields: minute hour day-of-month month day-of-week, or @daily and the like)", expr, err)
	}
	return s, nil
}

// ValidateBudgets reports, naming the field, every budget the controller
// cannot apply: a schedule robfig/cron cannot parse or that never fires, a
// schedule without a duration, nodes that are neither a count nor a
// percentage. The schema catches most of these; what only run time can
// detect lands here, for the pool's condition and Event.
func ValidateBudgets(budgets []v1alpha1.Budget, now time.Time) error {
	var errs []error
	for i, b := range budgets {
		if _, err := budgetNodes(b.Nodes, 1); err != nil {
			errs = append(errs, fmt.Errorf("spec.disruption.budgets[%d].nodes: %w", i, err))
		}
		if _, err := budgetActive(b, now); err != nil {
			errs = append(errs, fmt.Errorf("spec.disruption.budgets[%d].%w", i, err))
		}
	}
	return errors.Join(errs...)
}
