//go:build unix

package solver_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, so a benchmark on a
// machine shared with other work can report its own cost beside wall time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
