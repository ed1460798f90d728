package provisioning

import (
	"fmt"
	"strings"
	"time"
)

// slowPass is how long a pass may take before it logs where its time
// went. A pass reads caches and plans in milliseconds; seconds are waits:
// a cache not yet synced, a busy apiserver's writes, a lock.
const slowPass = 2 * time.Second

// laps times the phases of a pass on the machine's clock (not the
// Provisioner's, which tests set).
type laps struct {
	last time.Time
	b    strings.Builder
}

func (l *laps) start(at time.Time) { l.last, l.b = at, strings.Builder{} }

// lap ends the phase named, which began at the previous lap (or start).
func (l *laps) lap(name string) {
	if l.last.IsZero() {
		return
	}
	now := time.Now()
	if l.b.Len() > 0 {
		l.b.WriteByte(' ')
	}
	fmt.Fprintf(&l.b, "%s=%s", name, now.Sub(l.last).Round(time.Millisecond))
	l.last = now
}

func (l *laps) String() string { return l.b.String() }
