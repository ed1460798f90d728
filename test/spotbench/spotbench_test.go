package spotbench

import (
	"context"
	"testing"
	"time"
)

func compare(t testing.TB, hours float64, seeds int) (cheapest, weighted Result) {
	for seed := range int64(seeds) {
		for _, mode := range []struct {
			weight float64
			into   *Result
		}{{0, &cheapest}, {1, &weighted}} {
			r, err := Run(context.Background(), Options{Weight: mode.weight, HalfLife: 6 * time.Hour, Pods: 40, Hours: hours, Step: 5 * time.Minute, Seed: seed + 1})
			if err != nil {
				t.Fatal(err)
			}
			mode.into.Interruptions += r.Interruptions
			mode.into.Launches += r.Launches
			mode.into.Dollars += r.Dollars
			mode.into.PodHours += r.PodHours
		}
	}
	return cheapest, weighted
}

// Over a simulated day, weighing spot offerings by risk buys fewer
// interruptions per dollar than cheapest-first, on a market whose cheapest
// pools are the shallow ones (see market).
func TestRiskWeightedIsInterruptedLessPerDollar(t *testing.T) {
	cheapest, weighted := compare(t, 24, 1)
	t.Logf("cheapest-first: %s", cheapest)
	t.Logf("risk-weighted:  %s", weighted)
	if weighted.InterruptionsPerDollar() >= cheapest.InterruptionsPerDollar()/2 {
		t.Fatalf("risk-weighted %.3f interruptions per dollar, cheapest-first %.3f: want less than half", weighted.InterruptionsPerDollar(), cheapest.InterruptionsPerDollar())
	}
}

// BenchmarkSpotRisk is the long run: a simulated week, three seeds, both
// strategies; go test -run XXX -bench SpotRisk -benchtime 1x ./test/spotbench/
func BenchmarkSpotRisk(b *testing.B) {
	for range b.N {
		cheapest, weighted := compare(b, 24*7, 3)
		b.Logf("cheapest-first: %s", cheapest)
		b.Logf("risk-weighted:  %s", weighted)
		b.ReportMetric(cheapest.InterruptionsPerDollar(), "cheapest-interruptions/$")
		b.ReportMetric(weighted.InterruptionsPerDollar(), "weighted-interruptions/$")
		b.ReportMetric(cheapest.DollarsPerPodHour(), "cheapest-$/pod-h")
		b.ReportMetric(weighted.DollarsPerPodHour(), "weighted-$/pod-h")
	}
}
