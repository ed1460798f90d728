package solver

import (
	"math/rand"
	"testing"
)

// TestRoomIndexReturnsExactlyTheNodesWithRoomInOrder checks the index
// against a scan of every position, through sets, removals, forced
// positions and growth: the callers' plans stay the scan's only if no
// node with room is ever skipped and the order is kept.
func TestRoomIndexReturnsExactlyTheNodesWithRoomInOrder(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	const dims = 3
	var rooms []resVec // nil: no room; always: every query
	always := map[int]bool{}
	x := newRoomIndex(0, dims)
	for step := 0; step < 3000; step++ {
		switch op := r.Intn(10); {
		case op < 3 || len(rooms) == 0:
			rooms = append(rooms, nil)
			x.grow(len(rooms))
			fallthrough
		case op < 7:
			i := r.Intn(len(rooms))
			if r.Intn(5) == 0 {
				rooms[i] = nil
			} else {
				rooms[i] = resVec{r.Int63n(100) - 10, r.Int63n(100) - 10, r.Int63n(100) - 10}
			}
			delete(always, i)
			x.set(i, rooms[i])
		default:
			i := r.Intn(len(rooms))
			always[i] = true
			x.always(i)
		}
		req := resVec{r.Int63n(60), r.Int63n(60), 0}
		var want, got []int
		for i, room := range rooms {
			if always[i] || room != nil && fitsAdd(room, make(resVec, dims), req) {
				want = append(want, i)
			}
		}
		x.each(req, func(i int) bool {
			// The componentwise maxima may return a node without room in
			// every resource at once; callers check, so do we.
			if always[i] || rooms[i] != nil && fitsAdd(rooms[i], make(resVec, dims), req) {
				got = append(got, i)
			}
			return true
		})
		if len(got) != len(want) {
			t.Fatalf("step %d req %v: got %v, want %v", step, req, got, want)
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("step %d req %v: got %v, want %v", step, req, got, want)
			}
		}
	}
}
