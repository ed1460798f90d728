package solver

import (
	"math/rand"
	"testing"
)

// Coarsening must relax: each pod becomes slices of a coarse shape that
// ask no more than it does per millicpu, on every type it fits, and
// residual units of its class that make up the rest; cpu is conserved
// exactly, every other resource up to one residual unit (rounded down).
// Then any packing of the pods is a solution of the coarse relaxation and
// its value a lower bound (TestCoarsenedLowerBoundNeverExceedsBruteForceOptimum
// checks that end to end).
func TestCoarsenShapesOnlyRelaxes(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for trial := 0; trial < 300; trial++ {
		var shapes []boundShape
		var sig []uint64
		for i := 0; i < 20+r.Intn(200); i++ {
			req := make(resVec, 4)
			req[resCPU] = int64(r.Intn(4000))
			req[resMemory] = int64(1+r.Intn(16384)) << 20
			req[resPods] = 1
			req[resEphemeral] = int64(r.Intn(2)) << 30
			shapes = append(shapes, boundShape{req: req, n: 1 + r.Intn(20), class: r.Intn(4)})
			sig = append(sig, uint64(r.Intn(3)))
		}
		limit := 4 + r.Intn(80)
		if trial%2 == 0 {
			sig = nil
		}
		var prices []unitPrice
		if sig != nil {
			for _, v := range sig {
				prices = append(prices, unitPrice{cpu: float64(v+1) * 1e-5, mem: float64(3-v) * 1e-11})
			}
		}
		out := coarsenShapes(shapes, limit, prices)
		if out == nil {
			continue
		}
		if len(out) > limit {
			t.Fatalf("trial %d: %d shapes, limit %d", trial, len(out), limit)
		}
		type key struct{ class, res int }
		orig, got, unit := map[key]int64{}, map[key]int64{}, map[key]int64{}
		for _, sh := range shapes {
			for res, q := range sh.req {
				orig[key{sh.class, res}] += int64(sh.n) * q
			}
		}
		for _, o := range out {
			for res, q := range o.req {
				got[key{o.class, res}] += int64(o.n) * q
			}
			if o.fits != nil && o.req[resCPU] == 0 {
				for res, q := range o.req {
					if q > 0 {
						unit[key{o.class, res}] = q
					}
				}
			}
			for _, f := range o.fits {
				if !hasShape(shapes, o.class, f) {
					t.Fatalf("trial %d: a coarse shape of class %d may use the types of %v, no pod of the class", trial, o.class, f)
				}
			}
		}
		for k, v := range orig {
			switch {
			case k.res == resCPU && got[k] != v:
				t.Fatalf("trial %d: class %d: %d millicpus in coarse shapes, %d in pods", trial, k.class, got[k], v)
			case got[k] > v:
				t.Fatalf("trial %d: class %d resource %d: coarse shapes ask %d, pods %d", trial, k.class, k.res, got[k], v)
			case v-got[k] >= max(unit[k], 1):
				// Only rounding a residual's count down may lose, less
				// than its unit.
				t.Fatalf("trial %d: class %d resource %d: coarse shapes ask %d, pods %d (unit %d)", trial, k.class, k.res, got[k], v, unit[k])
			}
		}
		for _, sh := range shapes {
			found := false
			for i := range out {
				o := &out[i]
				if o.class != sh.class {
					continue
				}
				if o.fits == nil {
					if equalVec(o.req, sh.req) {
						found = true
						break
					}
					continue
				}
				if o.req[resCPU] != 1 {
					continue
				}
				ok := sh.req[resCPU] > 0 && hasShape(fitsAsShapes(o), o.class, sh.req)
				for res, q := range o.req {
					if res != resCPU && q*sh.req[resCPU] > sh.req[res] {
						ok = false
					}
				}
				if ok {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("trial %d: shape %v (class %d) is relaxed by no coarse shape", trial, sh.req, sh.class)
			}
		}
	}
}

func hasShape(shapes []boundShape, class int, req resVec) bool {
	for _, sh := range shapes {
		if sh.class == class && equalVec(sh.req, req) {
			return true
		}
	}
	return false
}

func fitsAsShapes(o *boundShape) []boundShape {
	var out []boundShape
	for _, f := range o.fits {
		out = append(out, boundShape{req: f, class: o.class})
	}
	return out
}

// BenchmarkCoarsenShapes: the shapes of 5000 pods of distinct requests
// (Karpenter's benchmark workload draws each pod's) in four classes.
func BenchmarkCoarsenShapes(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	var shapes []boundShape
	var prices []unitPrice
	for i := 0; i < 5000; i++ {
		req := make(resVec, 4)
		req[resCPU] = int64(1 + r.Intn(4000))
		req[resMemory] = int64(1+r.Intn(16384)) << 20
		req[resPods] = 1
		shapes = append(shapes, boundShape{req: req, n: 1, class: r.Intn(4)})
		prices = append(prices, unitPrice{cpu: 1e-5 * (1 + r.Float64()), mem: 1e-11 * (1 + r.Float64())})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if coarsenShapes(shapes, 64, prices) == nil {
			b.Fatal("no coarsening")
		}
	}
}
