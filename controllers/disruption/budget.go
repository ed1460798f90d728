package disruption

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

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
			return 0, fmt.Errorf("spec.disruption.budgets[%d]: %w", i, err)
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
// schedule is active for duration after each scheduled start.
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
	start, ok := s.LastStartAtOrBefore(now, b.Duration.Duration)
	return ok && now.Before(start.Add(b.Duration.Duration)), nil
}

// Schedule is a five-field cron expression (minute hour day-of-month month
// day-of-week, UTC) or one of its @ names.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
}

var cronNames = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// ParseSchedule reads a cron expression.
func ParseSchedule(expr string) (*Schedule, error) {
	if named, ok := cronNames[strings.TrimSpace(expr)]; ok {
		expr = named
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, fmt.Errorf("%q: want five fields (minute hour day-of-month month day-of-week) or @daily and the like", expr)
	}
	s := &Schedule{domStar: fields[2] == "*", dowStar: fields[4] == "*"}
	var err error
	for i, f := range []struct {
		set      *uint64
		min, max int
		name     string
	}{{&s.minute, 0, 59, "minute"}, {&s.hour, 0, 23, "hour"}, {&s.dom, 1, 31, "day of month"}, {&s.month, 1, 12, "month"}, {&s.dow, 0, 7, "day of week"}} {
		if *f.set, err = parseCronField(fields[i], f.min, f.max); err != nil {
			return nil, fmt.Errorf("%q: %s field %q: %w", expr, f.name, fields[i], err)
		}
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	return s, nil
}

func parseCronField(field string, lo, hi int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q is not a positive number", stepStr)
			}
			step = n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err1, err2 error
			from, err1 = strconv.Atoi(a)
			to, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("range %q is not two numbers", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return 0, fmt.Errorf("%q is not a number, a range or *", rng)
			}
			from = n
			if !hasStep {
				to = n
			}
		}
		if from < lo || to > hi || from > to {
			return 0, fmt.Errorf("%d-%d is outside %d-%d", from, to, lo, hi)
		}
		for v := from; v <= to; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func (s *Schedule) matches(t time.Time) bool {
	if s.minute&(1<<uint(t.Minute())) == 0 || s.hour&(1<<uint(t.Hour())) == 0 || s.month&(1<<uint(t.Month())) == 0 {
		return false
	}
	domOK := s.dom&(1<<uint(t.Day())) != 0
	dowOK := s.dow&(1<<uint(t.Weekday())) != 0
	// Standard cron: when both day fields are restricted, either matches.
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dowOK
	case s.dowStar:
		return domOK
	}
	return domOK || dowOK
}

// LastStartAtOrBefore returns the latest scheduled minute at or before now
// within lookback (false if none).
func (s *Schedule) LastStartAtOrBefore(now time.Time, lookback time.Duration) (time.Time, bool) {
	t := now.UTC().Truncate(time.Minute)
	earliest := now.Add(-lookback)
	for ; !t.Before(earliest.Truncate(time.Minute)); t = t.Add(-time.Minute) {
		if s.matches(t) {
			return t, true
		}
	}
	return time.Time{}, false
}
