package testbed

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestSamplesReadsEverySeriesOfOneMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="provisioning",result="success"} 412
controller_runtime_reconcile_total{controller="provisioning",result="requeue_after"} 7
controller_runtime_reconcile_total_other{controller="x"} 99
controller_runtime_reconcile_errors_total{controller="provisioning"} 3
go_memstats_heap_alloc_bytes 1.5e+07
`))
	}))
	defer srv.Close()
	got, err := Samples(srv.URL, "controller_runtime_reconcile_total")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`{controller="provisioning",result="success"}`:       412,
		`{controller="provisioning",result="requeue_after"}`: 7,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	heap, err := Samples(srv.URL, "go_memstats_heap_alloc_bytes")
	if err != nil || heap[""] != 1.5e7 {
		t.Errorf("an unlabelled metric: got %v, %v", heap, err)
	}
}

// The bench samples the manager's heap once a second through a burst; the
// scrape asks for the one family it reads, so the manager does not encode
// every family each time (its CPU would count as the manager's work).
func TestHeapAllocBytesAsksForItsFamilyOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	heap := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_memstats_heap_alloc_bytes", Help: "heap"})
	heap.Set(1.5e7)
	others := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "controller_runtime_reconcile_total", Help: "reconciles"}, []string{"controller"})
	others.WithLabelValues("provisioning").Add(412)
	reg.MustRegister(heap, others)
	var families []string
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
				families = append(families, strings.Fields(name)[0])
			}
		}
		w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	got, err := HeapAllocBytes(srv.URL + "/metrics")
	if err != nil || got != 1.5e7 {
		t.Fatalf("HeapAllocBytes = %v, %v; want 1.5e7", got, err)
	}
	if len(families) != 1 || families[0] != "go_memstats_heap_alloc_bytes" {
		t.Errorf("the endpoint encoded families %v; want go_memstats_heap_alloc_bytes alone", families)
	}
}
