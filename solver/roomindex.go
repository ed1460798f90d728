package solver

import "math"

// roomIndex answers "which nodes, in order, may have room for this
// request" without looking at every node: a segment tree over node
// positions holding, per resource, the most free room in each subtree.
// A subtree whose most room falls short of the request in any resource
// is skipped whole, so a query costs about log(nodes) per node it returns.
// The componentwise maxima may let through a node that has not room in
// every resource at once; callers check each node they get.
type roomIndex struct {
	dims int
	size int     // leaves, a power of two
	max  []int64 // node k's room at max[k*dims:(k+1)*dims]; leaves from size
}

func newRoomIndex(n, dims int) *roomIndex {
	size := 1
	for size < n {
		size *= 2
	}
	x := &roomIndex{dims: dims, size: size, max: make([]int64, 2*size*dims)}
	for i := range x.max {
		x.max[i] = -1
	}
	return x
}

// grow makes room for at least n positions, keeping what is recorded.
func (x *roomIndex) grow(n int) {
	if n <= x.size {
		return
	}
	y := newRoomIndex(n, x.dims)
	copy(y.max[y.size*y.dims:], x.max[x.size*x.dims:])
	for k := y.size - 1; k >= 1; k-- {
		p := y.max[k*y.dims : (k+1)*y.dims]
		l := y.max[2*k*y.dims : (2*k+1)*y.dims]
		r := y.max[(2*k+1)*y.dims : (2*k+2)*y.dims]
		for d := range p {
			p[d] = max(l[d], r[d])
		}
	}
	*x = *y
}

// set records position i's room (nil: none) and updates its ancestors.
func (x *roomIndex) set(i int, room resVec) {
	k := x.size + i
	leaf := x.max[k*x.dims : (k+1)*x.dims]
	for d := range leaf {
		if room == nil {
			leaf[d] = -1
		} else {
			leaf[d] = room[d]
		}
	}
	x.fix(k)
}

// always makes position i returned by every query.
func (x *roomIndex) always(i int) {
	k := x.size + i
	leaf := x.max[k*x.dims : (k+1)*x.dims]
	for d := range leaf {
		leaf[d] = math.MaxInt64
	}
	x.fix(k)
}

func (x *roomIndex) fix(k int) {
	for k > 1 {
		k /= 2
		p := x.max[k*x.dims : (k+1)*x.dims]
		l := x.max[2*k*x.dims : (2*k+1)*x.dims]
		r := x.max[(2*k+1)*x.dims : (2*k+2)*x.dims]
		for d := range p {
			p[d] = max(l[d], r[d])
		}
	}
}

// each calls fn, in increasing position, for every position whose room may
// take req (resources req asks none of are not checked), until fn returns
// false.
func (x *roomIndex) each(req resVec, fn func(i int) bool) {
	x.walk(1, req, fn)
}

func (x *roomIndex) walk(k int, req resVec, fn func(i int) bool) bool {
	m := x.max[k*x.dims : (k+1)*x.dims]
	for d, q := range req {
		if q > 0 && m[d] < q {
			return true
		}
	}
	if k >= x.size {
		return fn(k - x.size)
	}
	return x.walk(2*k, req, fn) && x.walk(2*k+1, req, fn)
}
