package provisioning

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery-dev/joinery/solver"
)

// UnavailableOfferings remembers offerings the cloud refused (insufficient
// capacity) for a while, so the next plans choose a fallback instead of
// asking again for what EC2 just said it does not have.
type UnavailableOfferings struct {
	TTL time.Duration

	mu      sync.Mutex
	expires map[solver.OfferingKey]time.Time
	// size is joinery_unavailable_offerings. Entries expire lazily, so
	// it is set whenever the cache is written or read (every plan and
	// disruption check reads it): an expired entry counts until then.
	size *prometheus.GaugeVec
}

// NewUnavailableOfferings returns an empty cache whose entries live ttl.
func NewUnavailableOfferings(ttl time.Duration) *UnavailableOfferings {
	return newUnavailableOfferings(ttl, unavailableOfferings)
}

func newUnavailableOfferings(ttl time.Duration, size *prometheus.GaugeVec) *UnavailableOfferings {
	u := &UnavailableOfferings{TTL: ttl, expires: map[solver.OfferingKey]time.Time{}, size: size}
	setUnavailableGauge(u.size, u.expires)
	return u
}

// MarkUnavailable records a refusal at now.
func (u *UnavailableOfferings) MarkUnavailable(key solver.OfferingKey, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expires[key] = now.Add(u.TTL)
	u.forgetExpired(now)
	setUnavailableGauge(u.size, u.expires)
}

func (u *UnavailableOfferings) forgetExpired(now time.Time) {
	for key, expires := range u.expires {
		if !now.Before(expires) {
			delete(u.expires, key)
		}
	}
}

// At returns the offerings unavailable at now, for a snapshot, and forgets
// expired ones.
func (u *UnavailableOfferings) At(now time.Time) solver.UnavailableOfferings {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.forgetExpired(now)
	out := make(solver.UnavailableOfferings, len(u.expires))
	for key := range u.expires {
		out[key] = struct{}{}
	}
	setUnavailableGauge(u.size, u.expires)
	return out
}
