package solver

import "math"

// sparseLP is an LP in the form
//
//	min c·λ  s.t.  Aλ ≥ b,  λ ≥ 0   (c ≥ 0)
//
// with few rows, many sparse columns, solved by the dual simplex method from
// the all-surplus basis, which is dual feasible from the start (c ≥ 0). Every
// iterate's duals are feasible up to rounding; dualValue re-checks them
// against every column, so the bound it yields is a true lower bound.
type sparseLP struct {
	b     []float64
	cost  []float64
	start []int32 // column j's entries are idx/val[start[j]:start[j+1]]
	idx   []int32
	val   []float64
	tmp   []float64
}

func newSparseLP() *sparseLP { return &sparseLP{start: []int32{0}} }

func (lp *sparseLP) rows() int { return len(lp.b) }

func (lp *sparseLP) addRow(b float64) int {
	lp.b = append(lp.b, b)
	return len(lp.b) - 1
}

// addColumn adds a column; entries are (row, value) pairs, zeros skipped.
func (lp *sparseLP) addColumn(c float64, rows []int32, vals []float64) int {
	for i, v := range vals {
		if v != 0 {
			lp.idx = append(lp.idx, rows[i])
			lp.val = append(lp.val, v)
		}
	}
	lp.cost = append(lp.cost, c)
	lp.start = append(lp.start, int32(len(lp.idx)))
	return len(lp.cost) - 1
}

func (lp *sparseLP) col(j int) ([]int32, []float64) {
	s, e := lp.start[j], lp.start[j+1]
	return lp.idx[s:e], lp.val[s:e]
}

func (lp *sparseLP) dot(j int, v []float64) float64 {
	idx, val := lp.col(j)
	s := 0.0
	for k, i := range idx {
		s += v[i] * val[k]
	}
	return s
}

// solve runs the dual simplex and returns the duals (one per row) and the
// primal values of the columns (nil when it did not reach optimality).
// When a row proved impossible to satisfy, ray is the candidate Farkas
// certificate (y ≥ 0 with y·A ≤ 0 and y·b > 0), for the caller to verify.
func (lp *sparseLP) solve() (pi []float64, x []float64, ray []float64) {
	m, n := lp.rows(), len(lp.cost)
	pi = make([]float64, m)
	if m == 0 {
		return pi, make([]float64, n), nil
	}
	basis := make([]int, m) // variable index: < n structural, n+i surplus of row i
	isBasic := make([]bool, n+m)
	binv := make([]float64, m*m)
	for i := 0; i < m; i++ {
		basis[i] = n + i
		isBasic[n+i] = true
		binv[i*m+i] = -1
	}
	xb := make([]float64, m)
	w := make([]float64, m)
	aq := make([]float64, m)
	if cap(lp.tmp) < n+m {
		lp.tmp = make([]float64, n+m)
	}
	alphas := lp.tmp[:n+m]
	optimal := false
	for iter := 0; iter < 20*m+100; iter++ {
		for i := 0; i < m; i++ {
			v := 0.0
			row := binv[i*m : (i+1)*m]
			for k, bk := range lp.b {
				v += row[k] * bk
			}
			xb[i] = v
		}
		r := -1
		for i := 0; i < m; i++ {
			if xb[i] < -1e-9 && (r < 0 || xb[i] < xb[r]) {
				r = i
			}
		}
		if r < 0 {
			optimal = true
			break
		}
		row := binv[r*m : (r+1)*m]
		// Harris' two-pass ratio test: the largest pivot among the columns
		// whose ratio is within a small tolerance of the minimum.
		const pivTol, dTol = 1e-9, 1e-12
		theta := math.Inf(1)
		for j := 0; j < n+m; j++ {
			alphas[j] = 0
			if isBasic[j] {
				continue
			}
			var alpha, d float64
			if j < n {
				alpha = lp.dot(j, row)
				d = lp.cost[j] - lp.dot(j, pi)
			} else {
				alpha = -row[j-n]
				d = pi[j-n]
			}
			if alpha >= -pivTol {
				continue
			}
			alphas[j] = alpha
			if t := (math.Max(d, 0) + dTol) / -alpha; t < theta {
				theta = t
			}
		}
		q, bestAlpha := -1, 0.0
		for j := 0; j < n+m; j++ {
			alpha := alphas[j]
			if alpha == 0 {
				continue
			}
			var d float64
			if j < n {
				d = lp.cost[j] - lp.dot(j, pi)
			} else {
				d = pi[j-n]
			}
			if math.Max(d, 0)/-alpha <= theta && -alpha > -bestAlpha {
				q, bestAlpha = j, alpha
			}
		}
		if q < 0 {
			// No column can raise row r: primal infeasible.
			ray = make([]float64, m)
			for k := range ray {
				ray[k] = math.Max(-row[k], 0)
			}
			break
		}
		for i := range aq {
			aq[i] = 0
		}
		if q < n {
			idx, val := lp.col(q)
			for k, i := range idx {
				aq[i] = val[k]
			}
		} else {
			aq[q-n] = -1
		}
		for i := 0; i < m; i++ {
			v := 0.0
			bi := binv[i*m : (i+1)*m]
			for k, a := range aq {
				if a != 0 {
					v += bi[k] * a
				}
			}
			w[i] = v
		}
		piv := w[r]
		if math.Abs(piv) < 1e-12 {
			break
		}
		pivotInverse(binv, m, r, w, 1)
		isBasic[basis[r]] = false
		basis[r] = q
		isBasic[q] = true
		for k := range pi {
			pi[k] = 0
		}
		for i := 0; i < m; i++ {
			c := 0.0
			if basis[i] < n {
				c = lp.cost[basis[i]]
			}
			if c == 0 {
				continue
			}
			bi := binv[i*m : (i+1)*m]
			for k := 0; k < m; k++ {
				pi[k] += c * bi[k]
			}
		}
	}
	if optimal {
		x = make([]float64, n)
		for i := 0; i < m; i++ {
			if basis[i] < n && xb[i] > 0 {
				x[basis[i]] = xb[i]
			}
		}
	}
	return pi, x, ray
}

// infeasible verifies a Farkas certificate for solutions whose column
// values add up to at most maxSum: y·b must exceed what any such solution
// could reach, maxSum times the largest y·a over the columns.
func (lp *sparseLP) infeasible(y []float64, maxSum float64) bool {
	if y == nil {
		return false
	}
	yb := 0.0
	for k, v := range y {
		yb += v * lp.b[k]
	}
	most := 0.0
	for j := range lp.cost {
		most = math.Max(most, lp.dot(j, y))
	}
	return yb > 1e-9 && yb > maxSum*most*(1+1e-9)+1e-12
}

// dualValue returns b·π for duals π (negative entries cleared) and the
// largest ratio a·π / c over the columns (at least 1): by weak duality
// b·π / scale is a lower bound on the LP, whatever rounding the simplex
// suffered. scale is +Inf when a free column has positive worth.
func (lp *sparseLP) dualValue(pi []float64) (value, scale float64) {
	for k := range pi {
		if pi[k] < 0 || math.IsNaN(pi[k]) {
			pi[k] = 0
		}
	}
	scale = 1.0
	for j := range lp.cost {
		v := lp.dot(j, pi)
		if v <= 0 {
			continue
		}
		if lp.cost[j] <= 0 {
			return 0, math.Inf(1)
		}
		if f := v / lp.cost[j]; f > scale {
			scale = f
		}
	}
	for k := range pi {
		value += pi[k] * lp.b[k]
	}
	return value, scale
}

// pivotInverse updates an explicit basis inverse (m×m, row-major) for the
// column scale·w (w = B⁻¹·a of the entering column) entering at row r:
// row r is divided by the pivot, and every other row loses its multiple
// of it. The caller has checked the pivot is not too small.
func pivotInverse(binv []float64, m, r int, w []float64, scale float64) {
	row := binv[r*m : (r+1)*m]
	piv := w[r] * scale
	for k := range row {
		row[k] /= piv
	}
	for i := 0; i < m; i++ {
		f := w[i] * scale
		if i == r || f == 0 {
			continue
		}
		bi := binv[i*m : (i+1)*m]
		for k := range bi {
			bi[k] -= f * row[k]
		}
	}
}
