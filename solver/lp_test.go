package solver

import (
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// The dual simplex must find the covering LP's optimum (checked against
// gonum's simplex), and dualValue must never report more than it.
func TestSparseLPMatchesSimplex(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for trial := 0; trial < 300; trial++ {
		m := 1 + r.Intn(5)
		n := 1 + r.Intn(60)
		sp := newSparseLP()
		for i := 0; i < m; i++ {
			sp.addRow(1)
		}
		rows := make([]int32, m)
		for i := range rows {
			rows[i] = int32(i)
		}
		A := mat.NewDense(m, n+m, nil)
		c := make([]float64, n+m)
		for j := 0; j < n; j++ {
			a := make([]float64, m)
			for i := range a {
				if r.Intn(4) > 0 {
					a[i] = r.Float64() * 0.3
				}
				A.Set(i, j, a[i])
			}
			c[j] = 0.1 + r.Float64()
			sp.addColumn(c[j], rows, a)
		}
		for i := 0; i < m; i++ {
			A.Set(i, n+i, -1)
		}
		pi, _, _ := sp.solve()
		value, scale := sp.dualValue(pi)
		got := value / scale
		want, _, err := lp.Simplex(c, A, sp.b, 1e-10, nil)
		if err != nil {
			continue
		}
		if got > want*(1+1e-9) || got < want*(1-1e-6) {
			t.Errorf("trial %d (m=%d n=%d): dual simplex %v, gonum %v", trial, m, n, got, want)
		}
	}
}

// fracKnapsack must reach the bounded knapsack LP's optimum within its
// constraints (checked against gonum's simplex).
func TestFracKnapsackMatchesSimplex(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for trial := 0; trial < 300; trial++ {
		m := 1 + r.Intn(4)
		n := 1 + r.Intn(30)
		val := make([]float64, n)
		ub := make([]float64, n)
		a := make([][]float64, m)
		capacity := make([]float64, m)
		for i := range a {
			a[i] = make([]float64, n)
			capacity[i] = 1 + r.Float64()*10
			for j := range a[i] {
				if r.Intn(5) > 0 {
					a[i][j] = r.Float64()
				}
			}
		}
		for j := range val {
			val[j] = r.Float64()
			ub[j] = float64(r.Intn(5))
			if r.Intn(3) == 0 {
				ub[j] += 0.5
			}
		}
		y := fracKnapsack(val, a, capacity, ub)
		got := 0.0
		for j := range y {
			got += val[j] * y[j]
			if y[j] < -1e-9 || y[j] > ub[j]+1e-9 {
				t.Fatalf("trial %d: y[%d]=%v outside [0, %v]", trial, j, y[j], ub[j])
			}
		}
		for i := range a {
			s := 0.0
			for j := range y {
				s += a[i][j] * y[j]
			}
			if s > capacity[i]+1e-7 {
				t.Fatalf("trial %d: row %d uses %v > %v", trial, i, s, capacity[i])
			}
		}
		// gonum: min -val·y s.t. [a I 0; I 0 I][y; s; u] = [cap; ub].
		N := 2*n + m
		A := mat.NewDense(m+n, N, nil)
		c := make([]float64, N)
		b := make([]float64, m+n)
		for j := 0; j < n; j++ {
			c[j] = -val[j]
			A.Set(m+j, j, 1)
			A.Set(m+j, n+m+j, 1)
			b[m+j] = ub[j]
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				A.Set(i, j, a[i][j])
			}
			A.Set(i, n+i, 1)
			b[i] = capacity[i]
		}
		opt, _, err := lp.Simplex(c, A, b, 1e-10, nil)
		if err != nil {
			continue
		}
		if math.Abs(got+opt) > 1e-6*math.Max(1, -opt) {
			t.Errorf("trial %d: fracKnapsack %v, gonum %v", trial, got, -opt)
		}
	}
}
