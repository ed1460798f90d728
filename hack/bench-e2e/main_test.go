package main

import "testing"

// The fleet-details line's median is what "worst cluster p99 ≤ 2× the
// median" is read against: the middle cluster for an odd count, the mean
// of the middle two for an even one, and the burst's p99 with one cluster.
func TestMedianClusterP99(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    result
		want float64
	}{
		{"odd count takes the middle cluster", result{PerClusterP99: map[string]float64{"a": 5, "b": 1, "c": 2}}, 2},
		{"even count takes the mean of the middle two", result{PerClusterP99: map[string]float64{"a": 4, "b": 1, "c": 2, "d": 9}}, 3},
		{"no per-cluster numbers fall back to the burst's p99", result{PendingToMachineP99: 1.5}, 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.medianClusterP99(); got != tc.want {
				t.Errorf("median = %v, want %v", got, tc.want)
			}
		})
	}
	r := result{PerClusterP99: map[string]float64{"a": 1, "b": 2, "c": 6}}
	if got := ratio(r.worstClusterP99(), r.medianClusterP99()); got != 3 {
		t.Errorf("worst/median = %v, want 3", got)
	}
}
