package solver

import (
	"slices"
	"testing"
)

func TestPermuteMovesEachElementToItsPlace(t *testing.T) {
	for _, tc := range []struct {
		name string
		from []int32
	}{
		{"empty", nil},
		{"identity", []int32{0, 1, 2, 3}},
		{"reversal", []int32{4, 3, 2, 1, 0}},
		{"one cycle", []int32{1, 2, 3, 0}},
		{"two cycles and a fixed point", []int32{2, 0, 1, 3, 5, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := make([]string, len(tc.from))
			for i := range s {
				s[i] = string(rune('a' + i))
			}
			want := make([]string, len(tc.from))
			for k, i := range tc.from {
				want[k] = s[i]
			}
			permute(s, slices.Clone(tc.from))
			if !slices.Equal(s, want) {
				t.Fatalf("permute by %v: %v, want %v", tc.from, s, want)
			}
		})
	}
}
