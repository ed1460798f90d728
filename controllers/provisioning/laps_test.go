package provisioning

import (
	"regexp"
	"testing"
	"time"
)

func TestLapsNameEachPhaseInOrder(t *testing.T) {
	var l laps
	l.lap("before start")
	if l.String() != "" {
		t.Fatalf("a pass never started (state reads, overlays) records %q", l.String())
	}
	l.start(time.Now().Add(-1500 * time.Millisecond))
	l.lap("connect")
	l.lap("read")
	if !regexp.MustCompile(`^connect=1\.5\d*s read=\d+(\.\d+)?[mµn]?s$`).MatchString(l.String()) {
		t.Fatalf("laps %q", l.String())
	}
}
