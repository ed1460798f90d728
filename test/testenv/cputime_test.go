package testenv

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPUCountsAfterTheCommandName(t *testing.T) {
	// utime 250 ticks, stime 50 ticks; a command name with spaces and a
	// parenthesis, as a process may name itself.
	line := "4242 (joinery (worker) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 500 18446744073709551615"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("CPU time %s, want %s", got, want)
	}
	if _, err := parseStatCPU("4242 (short) S 1"); err == nil {
		t.Error("a truncated stat line was accepted")
	}
}

// The process's own CPU time grows with work it does, not with time it
// sleeps.
func TestProcessCPUTimeGrowsWithWork(t *testing.T) {
	before, err := ProcessCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := ProcessCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time did not grow with 300 ms of busy work (%s -> %s, %d loops)", before, after, x)
	}
}
