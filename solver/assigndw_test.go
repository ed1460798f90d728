package solver

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// relaxAssignment must reach the assignment relaxation's own optimum,
// which gonum's simplex (not ours) finds on the plain formulation: one
// variable per shape and type it fits, one per type for its (fractional)
// machines,
//
//	min Σ_t p_t·y_t  s.t.  Σ_t x_{s,t} = n_s,  Σ_s q_{s,r}·x_{s,t} + slack = a_{t,r}·y_t.
//
// Random instances of a few classes (each type serves some of them) and
// three resources, pods that fit only the larger types among them.
func TestRelaxAssignmentReachesTheLPOptimum(t *testing.T) {
	for _, byRow := range []bool{true, false} {
		t.Run(fmt.Sprintf("first types by row %v", byRow), func(t *testing.T) {
			defer func(old bool) { relaxFirstByRow = old }(relaxFirstByRow)
			relaxFirstByRow = byRow
			relaxReachesOptimum(t)
		})
	}
}

func relaxReachesOptimum(t *testing.T) {
	compared, grown := 0, relaxGrown.Load()
	for seed := int64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewSource(seed))
		shapes, cols := randomAssignInstance(r, 3+r.Intn(25), 2+r.Intn(40))
		rows := activeResources(shapes)
		got, converged := relaxAssignment(shapes, cols, rows, 1<<30, 0)
		want, err := assignLPByGonum(shapes, cols, rows)
		if err != nil {
			// gonum's simplex gives up on some degenerate instances
			// (many types of equal shape): counted below.
			continue
		}
		compared++
		if !converged {
			t.Errorf("seed %d: did not converge (bound %.6f, optimum %.6f)", seed, got, want)
		}
		if math.Abs(got-want) > 1e-6*math.Max(1, want) {
			t.Errorf("seed %d: %d shapes, %d types: relaxAssignment %.6f, LP optimum %.6f", seed, len(shapes), len(cols), got, want)
		}
	}
	if compared < 40 {
		t.Fatalf("only %d of 60 instances compared with gonum's optimum", compared)
	}
	// Not only the first types: some instances took more in.
	if relaxGrown.Load() == grown {
		t.Fatalf("no master took a type in")
	}
	t.Logf("%d of 60 instances compared with gonum's optimum; masters took types in %d times", compared, relaxGrown.Load()-grown)
}

// randomAssignInstance draws shapes of up to 3 classes and types that
// serve a random non-empty set of the classes; every shape fits at least
// its class's largest type.
func randomAssignInstance(r *rand.Rand, nShapes, nTypes int) ([]boundShape, []assignColumn) {
	classes := 1 + r.Intn(3)
	var cols []assignColumn
	for t := 0; t < nTypes; t++ {
		size := int64(1) << r.Intn(5)
		alloc := resVec{size * 2000 * int64(1+r.Intn(2)), size * (4 << 30) * int64(1+r.Intn(4)), 110}
		price := float64(size) * (0.03 + 0.05*r.Float64())
		cols = append(cols, assignColumn{price: price, alloc: alloc})
	}
	// The last type serves every class and is the largest: every shape fits it.
	cols = append(cols, assignColumn{price: 3, alloc: resVec{64000, 256 << 30, 110}})
	serves := make([]map[int]bool, len(cols))
	for t := range cols {
		serves[t] = map[int]bool{}
		for c := 0; c < classes; c++ {
			if t == len(cols)-1 || r.Intn(2) == 0 {
				serves[t][c] = true
			}
		}
	}
	var shapes []boundShape
	for s := 0; s < nShapes; s++ {
		shapes = append(shapes, boundShape{
			req:   resVec{int64(100 + r.Intn(7900)), int64(128<<20) * int64(1+r.Intn(120)), 1},
			n:     1 + r.Intn(40),
			class: r.Intn(classes),
		})
	}
	zero := make(resVec, 3)
	for t := range cols {
		for si := range shapes {
			if serves[t][shapes[si].class] && shapes[si].fitsOn(cols[t].alloc, zero) {
				cols[t].fits = append(cols[t].fits, si)
			}
		}
	}
	// As assignmentColumns: types that carry no shape are left out.
	kept := cols[:0]
	for _, c := range cols {
		if len(c.fits) > 0 {
			kept = append(kept, c)
		}
	}
	return shapes, kept
}

func assignLPByGonum(shapes []boundShape, cols []assignColumn, rows []int) (float64, error) {
	type pair struct{ s, t int }
	var pairs []pair
	for ti, c := range cols {
		for _, si := range c.fits {
			pairs = append(pairs, pair{si, ti})
		}
	}
	S, T, R := len(shapes), len(cols), len(rows)
	// Variables: x per pair, y per type, slack per type and resource.
	nv := len(pairs) + T + T*R
	nr := S + T*R
	A := mat.NewDense(nr, nv, nil)
	b := make([]float64, nr)
	c := make([]float64, nv)
	// Scale: cpu in cores, memory in GiB, so the simplex's tolerances fit.
	scale := func(r int, v int64) float64 {
		switch r {
		case resCPU:
			return float64(v) / 1000
		case resMemory:
			return float64(v) / (1 << 30)
		}
		return float64(v)
	}
	for k, p := range pairs {
		A.Set(p.s, k, 1)
		for i, r := range rows {
			A.Set(S+p.t*R+i, k, scale(r, shapes[p.s].req[r]))
		}
	}
	for ti := range cols {
		c[len(pairs)+ti] = cols[ti].price
		for i, r := range rows {
			A.Set(S+ti*R+i, len(pairs)+ti, -scale(r, cols[ti].alloc[r]))
			A.Set(S+ti*R+i, len(pairs)+T+ti*R+i, 1)
		}
	}
	for si := range shapes {
		b[si] = float64(shapes[si].n)
	}
	// A feasible basis to start from (gonum's phase one fails on these
	// degenerate problems): every shape on the first type it fits; every
	// type's machines; every slack but the one of each type's binding row.
	var basic []int
	load := make([]float64, T*R)
	placed := make([]bool, S)
	for k, p := range pairs {
		if !placed[p.s] {
			placed[p.s] = true
			basic = append(basic, k)
			for i, r := range rows {
				load[p.t*R+i] += float64(shapes[p.s].n) * scale(r, shapes[p.s].req[r])
			}
		}
	}
	for ti := 0; ti < T; ti++ {
		basic = append(basic, len(pairs)+ti)
		bind, most := 0, -1.0
		for i, r := range rows {
			if f := load[ti*R+i] / scale(r, cols[ti].alloc[r]); f > most {
				bind, most = i, f
			}
		}
		for i := 0; i < R; i++ {
			if i != bind {
				basic = append(basic, len(pairs)+T+ti*R+i)
			}
		}
	}
	opt, _, err := lp.Simplex(c, A, b, 1e-10, basic)
	return opt, err
}
