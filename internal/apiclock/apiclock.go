// Package apiclock tells the time by an apiserver's clock. The timeouts
// the controllers keep (a Machine's registration timeout, a pool's
// expireAfter) are measured from timestamps the apiserver sets
// (creationTimestamp); measured with the manager's clock, a manager
// minutes ahead deletes fresh Machines and one behind keeps broken ones
// for as long as it lags. The clock learns the offset between the two
// clocks from the Date header of every response the apiserver sends
// the manager (leader election alone renews every few seconds), so it
// needs no request of its own and follows a clock that is stepped.
package apiclock

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/joinery-dev/joinery/internal/metrics"
)

// offsetGauge is the management apiserver's clock offset as the manager's
// clock measures it. A skew of minutes is what makes registration
// timeouts and expireAfter wrong when read on the manager's clock; the
// clock corrects for it, and the gauge lets an operator see (and alert
// on) a node whose NTP has drifted before other components suffer.
var offsetGauge = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "joinery_apiserver_clock_offset_seconds",
	Help: "How far the management apiserver's clock is ahead of the manager's (negative: behind), in seconds, from the Date header of its last response (to within about a second).",
})

func init() { metrics.MustRegister(offsetGauge) }

// Clock is the apiserver's time as the manager can know it: to within
// about a second (the Date header's resolution plus a response's latency),
// plenty for timeouts of minutes.
type Clock struct {
	local func() time.Time
	// gauge, when set, shows the offset (see ExportMetric).
	gauge prometheus.Gauge

	mu      sync.Mutex
	offset  time.Duration
	sampled bool
}

// New returns a clock that reads the apiserver's time as local time plus
// the last offset seen; local is the manager's clock (time.Now).
func New(local func() time.Time) *Clock {
	return &Clock{local: local}
}

// ExportMetric makes the clock set joinery_apiserver_clock_offset_seconds
// at every response. The manager's clock of its management apiserver
// does; a process has one such clock, so the gauge has no labels.
func (c *Clock) ExportMetric() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gauge = offsetGauge
}

// Wrap makes every response to a client built from cfg teach the clock.
func (c *Clock) Wrap(cfg *rest.Config) {
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper { return &roundTripper{clock: c, next: next} })
}

// Now is the apiserver's current time. Until a response was seen it is
// the manager's: the first request of a manager (its cache's lists) comes
// before any timeout is measured.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local().Add(c.offset)
}

// Offset is how far the apiserver's clock is ahead of the manager's
// (negative: behind), and whether a response told it yet.
func (c *Clock) Offset() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.sampled
}

// observe learns the offset from a response's Date header, received at
// local time at.
func (c *Clock) observe(date string, at time.Time) {
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	// The header is truncated to the second: the apiserver's clock read
	// somewhere in [t, t+1s) when it wrote it, and the middle is the best
	// guess.
	offset := t.Add(500 * time.Millisecond).Sub(at)
	c.mu.Lock()
	c.offset, c.sampled = offset, true
	gauge := c.gauge
	c.mu.Unlock()
	if gauge != nil {
		gauge.Set(offset.Seconds())
	}
}

type roundTripper struct {
	clock *Clock
	next  http.RoundTripper
}

func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		t.clock.observe(resp.Header.Get("Date"), t.clock.local())
	}
	return resp, err
}
