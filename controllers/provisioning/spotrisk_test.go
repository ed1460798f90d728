package provisioning

import (
	"math"
	"testing"
	"time"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

func TestSpotInterruptionsFade(t *testing.T) {
	a := solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeSpot}
	b := solver.OfferingKey{InstanceType: "m5.large", Zone: "us-east-1b", CapacityType: v1alpha1.CapacityTypeSpot}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		record []time.Duration // after t0, of offering a
		at     time.Duration
		want   float64
	}{
		{"nothing seen is nothing", nil, 0, 0},
		{"one just now counts 1", []time.Duration{0}, 0, 1},
		{"one a half-life ago counts a half", []time.Duration{0}, 6 * time.Hour, 0.5},
		{"two a half-life apart count 1.5 at the second", []time.Duration{0, 6 * time.Hour}, 6 * time.Hour, 1.5},
		{"one seven half-lives ago is forgotten", []time.Duration{0}, 42 * time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSpotInterruptions(6 * time.Hour)
			for _, d := range tc.record {
				s.RecordInterruption(a, t0.Add(d))
			}
			got := s.At(t0.Add(tc.at))
			if math.Abs(got[a]-tc.want) > 1e-9 || got[b] != 0 {
				t.Fatalf("At = %v, want %v for %v and nothing else", got, tc.want, a)
			}
			if _, kept := got[a]; tc.want == 0 && kept {
				t.Fatalf("a faded offering is still listed: %v", got)
			}
		})
	}
}
