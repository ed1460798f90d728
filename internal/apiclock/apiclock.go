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

	"k8s.io/client-go/rest"
)

// Clock is the apiserver's time as the manager can know it: to within
// about a second (the Date header's resolution plus a response's latency),
// plenty for timeouts of minutes.
type Clock struct {
	local func() time.Time

	mu      sync.Mutex
	offset  time.Duration
	sampled bool
}

// New returns a clock that reads the apiserver's time as local time plus
// the last offset seen; local is the manager's clock (time.Now).
func New(local func() time.Time) *Clock {
	return &Clock{local: local}
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
	c.mu.Unlock()
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
