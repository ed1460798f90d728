package testbed

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
