package solver

import "math"

// fracKnapsack solves the LP
//
//	max Σ val_s·y_s  s.t.  Σ a_{i,s}·y_s ≤ cap_i (every row i),  0 ≤ y_s ≤ ub_s
//
// with the bounded-variable primal simplex (few rows, many columns); a is
// row-major, m rows of len(val). It returns y (a vertex: at most m entries
// strictly between their bounds).
func fracKnapsack(val []float64, a [][]float64, capacity []float64, ub []float64) []float64 {
	m, n := len(capacity), len(val)
	y := make([]float64, n)
	atUpper := make([]bool, n)
	// basis[i]: variable basic in row i; < n structural, n+i slack of row i.
	basis := make([]int, m)
	basicRow := make([]int, n+m)
	for j := range basicRow {
		basicRow[j] = -1
	}
	binv := make([]float64, m*m)
	xb := make([]float64, m)
	for i := 0; i < m; i++ {
		basis[i] = n + i
		basicRow[n+i] = i
		binv[i*m+i] = 1
		xb[i] = capacity[i]
	}
	pi := make([]float64, m)
	w := make([]float64, m)
	colOf := func(j int, dst []float64) {
		for i := range dst {
			if j < n {
				dst[i] = a[i][j]
			} else if j-n == i {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	}
	col := make([]float64, m)
	const eps = 1e-12
	for iter := 0; iter < 4*(n+m)+50; iter++ {
		// Duals of the current basis.
		for k := range pi {
			pi[k] = 0
		}
		for i, bj := range basis {
			if bj >= n {
				continue
			}
			c := val[bj]
			for k := 0; k < m; k++ {
				pi[k] += c * binv[i*m+k]
			}
		}
		// Entering: the largest improving reduced cost (Dantzig).
		q, qd := -1, 0.0
		for j := 0; j < n; j++ {
			if basicRow[j] >= 0 || ub[j] <= 0 {
				continue
			}
			d := val[j]
			for i := 0; i < m; i++ {
				d -= pi[i] * a[i][j]
			}
			if (!atUpper[j] && d > eps && d > qd) || (atUpper[j] && d < -eps && -d > qd) {
				q, qd = j, math.Abs(d)
			}
		}
		for i := 0; i < m; i++ {
			j := n + i
			if basicRow[j] >= 0 {
				continue
			}
			if d := -pi[i]; d > eps && d > qd {
				q, qd = j, d
			}
		}
		if q < 0 {
			break
		}
		dir := 1.0 // +1: q increases from its lower bound, -1: decreases from its upper
		if q < n && atUpper[q] {
			dir = -1
		}
		colOf(q, col)
		for i := 0; i < m; i++ {
			v := 0.0
			for k := 0; k < m; k++ {
				v += binv[i*m+k] * col[k]
			}
			w[i] = v * dir
		}
		// Ratio test: basic variables move by -θ·w; q moves by θ.
		theta, leave, leaveToUpper := math.Inf(1), -1, false
		if q < n {
			theta = ub[q]
		}
		for i := 0; i < m; i++ {
			bj := basis[i]
			hi := math.Inf(1)
			if bj < n {
				hi = ub[bj]
			}
			if w[i] > eps {
				if t := xb[i] / w[i]; t < theta {
					theta, leave, leaveToUpper = t, i, false
				}
			} else if w[i] < -eps && !math.IsInf(hi, 1) {
				if t := (hi - xb[i]) / -w[i]; t < theta {
					theta, leave, leaveToUpper = t, i, true
				}
			}
		}
		if math.IsInf(theta, 1) {
			break // unbounded: cannot happen with finite caps
		}
		if theta < 0 {
			theta = 0
		}
		for i := 0; i < m; i++ {
			xb[i] -= theta * w[i]
		}
		if leave < 0 {
			// Bound flip.
			atUpper[q] = dir > 0
			continue
		}
		// Pivot q into row leave.
		out := basis[leave]
		basicRow[out] = -1
		if out < n {
			atUpper[out] = leaveToUpper
		}
		enterVal := theta
		if dir < 0 {
			enterVal = ub[q] - theta
		}
		basis[leave] = q
		basicRow[q] = leave
		xb[leave] = enterVal
		// Update binv with the undirected column.
		if math.Abs(w[leave]*dir) < 1e-14 {
			break
		}
		pivotInverse(binv, m, leave, w, dir)
		if q < n {
			atUpper[q] = false
		}
	}
	for j := 0; j < n; j++ {
		if atUpper[j] {
			y[j] = ub[j]
		}
	}
	for i, bj := range basis {
		if bj < n {
			y[bj] = math.Min(math.Max(xb[i], 0), ub[bj])
		}
	}
	return y
}
