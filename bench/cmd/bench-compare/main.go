// Command bench-compare runs Joinery's solver and Karpenter's scheduler
// (sigs.k8s.io/karpenter v1.15.0) on Karpenter's own scheduling benchmark
// workload, in one process, alternating rounds, and prints one line per size:
//
//	pods=N joinery_pods_per_s=X karpenter_pods_per_s=Y speedup=S joinery_usd_per_hour=A karpenter_usd_per_hour=B cost_ratio=R joinery_nodes=J karpenter_nodes=K
//
// Other tools parse that line; everything else goes to lines starting with #.
// See README.md for what is timed on each side and the cost rule.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	sizesFlag := flag.String("sizes", "1000,5000", "comma-separated pod counts")
	rounds := flag.Int("rounds", 5, "alternating rounds (Joinery, Karpenter) per size; medians are reported")
	writeDir := flag.String("write-workload", "", "write the first size's workload as DIR/pods.yaml and DIR/catalog/ for `joinery simulate`")
	cpuProfile := flag.String("joinery-cpuprofile", "", "after the rounds, profile extra Joinery solves of the last size into this file")
	flag.Parse()

	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("-sizes: %q is not a positive pod count", s)
		}
		sizes = append(sizes, n)
	}
	if *rounds < 0 {
		fatalf("-rounds must be >= 0")
	}

	fmt.Printf("# bench-compare: Karpenter v1.15.0 scheduling benchmark workload (makeDiversePods, fake.InstanceTypes(400), one NodePool), %d alternating rounds per size, medians; GOMAXPROCS=%d %s\n",
		*rounds, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("# timed: Karpenter scheduler.Solve only (setupScheduler/NewTopology/NewScheduler excluded, as its benchmark does; this favours Karpenter); Joinery solver.Solve including all solver setup (only the type conversion excluded)\n")
	fmt.Printf("# cost: Joinery = sum of chosen offerings; Karpenter = per NodeClaim, its cheapest available offering compatible with its requirements among its InstanceTypeOptions\n")

	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("# load average at start: %s (other processes share the CPUs; both sides run alternately under the same load)\n", strings.TrimSpace(string(la)))
	}
	var last *workload
	for i, n := range sizes {
		w := newWorkload(n)
		last = w
		if i == 0 && *writeDir != "" {
			if err := writeWorkload(*writeDir, w); err != nil {
				fatalf("-write-workload: %v", err)
			}
			fmt.Printf("# wrote %d pods to %s/pods.yaml and a catalog to %s/catalog (simulate: joinery simulate -f %s/pods.yaml --catalog %s/catalog --region %s)\n",
				n, *writeDir, *writeDir, *writeDir, *writeDir, workloadRegion)
		}
		if *rounds == 0 {
			continue
		}
		if err := compare(w, *rounds); err != nil {
			fatalf("pods=%d: %v", n, err)
		}
	}
	if *cpuProfile != "" && last != nil {
		if err := profileJoinery(last, *cpuProfile); err != nil {
			fatalf("-joinery-cpuprofile: %v", err)
		}
	}
}

type sideStats struct {
	elapsed []time.Duration
	usd     []float64
	nodes   []int
	alloc   []uint64 // bytes allocated by the timed call
}

func (s *sideStats) add(r result, alloc uint64) {
	s.elapsed = append(s.elapsed, r.elapsed)
	s.usd = append(s.usd, r.usdPerHour)
	s.nodes = append(s.nodes, r.nodes)
	s.alloc = append(s.alloc, alloc)
}

func compare(w *workload, rounds int) error {
	n := len(w.pods)
	snap := joinerySnapshot(w)
	var js, ks sideStats
	checked := false
	lowerBound := 0.0
	for round := 0; round < rounds; round++ {
		runtime.GC()
		before := allocated()
		jr, plan, err := runJoinery(snap)
		if err != nil {
			return err
		}
		js.add(jr, allocated()-before)
		lowerBound = plan.LowerBoundPricePerHour
		if jr.unscheduled > 0 {
			return fmt.Errorf("joinery left %d pods unschedulable, e.g. %s", jr.unscheduled, jr.firstProblem)
		}
		if !checked || round == rounds-1 {
			start := time.Now()
			errs, summary := checkPlan(snap, plan)
			if len(errs) > 0 {
				return fmt.Errorf("joinery plan fails the validity check:\n  %s", strings.Join(errs, "\n  "))
			}
			if !checked {
				fmt.Printf("# pods=%d validity check of Joinery's plan: OK (%s) [%s]\n", n, summary, time.Since(start).Round(time.Millisecond))
			}
			checked = true
		}

		runtime.GC()
		before = allocated()
		kr, err := runKarpenter(w)
		if err != nil {
			return err
		}
		ks.add(kr, allocated()-before)
		if kr.unscheduled > 0 {
			return fmt.Errorf("karpenter left %d pods unscheduled (PodErrors), e.g. %s", kr.unscheduled, kr.firstProblem)
		}
		fmt.Printf("# pods=%d round=%d joinery=%s (%d nodes, $%.3f/h) karpenter=%s (%d nodes, $%.3f/h)\n",
			n, round+1, jr.elapsed.Round(time.Microsecond), jr.nodes, jr.usdPerHour, kr.elapsed.Round(time.Microsecond), kr.nodes, kr.usdPerHour)
	}
	jt, kt := medianDuration(js.elapsed), medianDuration(ks.elapsed)
	jps, kps := float64(n)/jt.Seconds(), float64(n)/kt.Seconds()
	jusd, kusd := medianFloat(js.usd), medianFloat(ks.usd)
	fmt.Printf("# pods=%d joinery: median %s min %s max %s, %.1f MB allocated/solve; karpenter: median %s min %s max %s, %.1f MB allocated/solve\n",
		n, jt.Round(time.Microsecond), minDuration(js.elapsed).Round(time.Microsecond), maxDuration(js.elapsed).Round(time.Microsecond), float64(medianU64(js.alloc))/1e6,
		kt.Round(time.Microsecond), minDuration(ks.elapsed).Round(time.Microsecond), maxDuration(ks.elapsed).Round(time.Microsecond), float64(medianU64(ks.alloc))/1e6)
	if spread(js.usd) > 1e-9 || spread(ks.usd) > 1e-9 {
		fmt.Printf("# pods=%d cost varies across rounds: joinery $%.3f-%.3f/h, karpenter $%.3f-%.3f/h (medians reported)\n",
			n, minFloat(js.usd), maxFloat(js.usd), minFloat(ks.usd), maxFloat(ks.usd))
	}
	if lowerBound > 0 {
		fmt.Printf("# pods=%d joinery's LP lower bound on the cost of any plan: $%.3f/h\n", n, lowerBound)
	}
	fmt.Printf("pods=%d joinery_pods_per_s=%.0f karpenter_pods_per_s=%.0f speedup=%.2f joinery_usd_per_hour=%.3f karpenter_usd_per_hour=%.3f cost_ratio=%.3f joinery_nodes=%d karpenter_nodes=%d\n",
		n, jps, kps, jps/kps, jusd, kusd, jusd/kusd, medianInt(js.nodes), medianInt(ks.nodes))
	return nil
}

func profileJoinery(w *workload, path string) error {
	snap := joinerySnapshot(w)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	start := time.Now()
	solves := 0
	for time.Since(start) < 10*time.Second || solves < 3 {
		if _, _, err := runJoinery(snap); err != nil {
			pprof.StopCPUProfile()
			return err
		}
		solves++
	}
	pprof.StopCPUProfile()
	fmt.Printf("# profiled %d Joinery solves of %d pods into %s (go tool pprof -top %s)\n", solves, len(w.pods), path, path)
	return nil
}

func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func medianDuration(v []time.Duration) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianFloat(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int) int {
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}

func medianU64(v []uint64) uint64 {
	s := append([]uint64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minDuration(v []time.Duration) time.Duration {
	m := v[0]
	for _, x := range v {
		if x < m {
			m = x
		}
	}
	return m
}

func maxDuration(v []time.Duration) time.Duration {
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m
}

func minFloat(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x < m {
			m = x
		}
	}
	return m
}

func maxFloat(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m
}

func spread(v []float64) float64 { return maxFloat(v) - minFloat(v) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-compare: "+format+"\n", args...)
	os.Exit(1)
}
