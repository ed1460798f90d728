package soak

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/joinery-dev/joinery/internal/manager"
)

func TestMain(m *testing.M) {
	// The manager replicas are this test binary re-executed.
	manager.RunChildIfRequested()
	// CAPI's reconcilers in the testbed log through controller-runtime;
	// the soak reports through its history instead.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// TestSoakShort is the short profile `make test` runs: a few minutes of
// churn and faults on one workload cluster, then every invariant must
// hold. SOAK_SEED repeats a run (the default seed is fixed); SOAK_DIR
// keeps its logs and history.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak starts a testbed and runs for minutes")
	}
	seed := uint64(1)
	if s := os.Getenv("SOAK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: not an unsigned integer", s)
		}
		seed = v
	}
	opts := Short(seed)
	opts.Dir = os.Getenv("SOAK_DIR")
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Duration+opts.Quiet+8*time.Minute)
	defer cancel()
	res, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("the soak could not run: %v", err)
	}
	t.Log(res.Line())
	t.Log(res.Details())
	if res.Kills == 0 || res.PodsServed == 0 {
		t.Errorf("the soak exercised nothing: %d kills, %d pods served", res.Kills, res.PodsServed)
	}
	for _, b := range res.Breaches {
		t.Errorf("%s", b)
	}
	if t.Failed() {
		t.Logf("history: %s", res.HistoryPath)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
