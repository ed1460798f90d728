package provisioning

import (
	"sync"
	"time"

	"github.com/joinery-dev/joinery/solver"
)

// UnavailableOfferings remembers offerings the cloud refused (insufficient
// capacity) for a while, so the next plans choose a fallback instead of
// asking again for what EC2 just said it does not have.
type UnavailableOfferings struct {
	TTL time.Duration

	mu      sync.Mutex
	expires map[solver.OfferingKey]time.Time
}

// NewUnavailableOfferings returns an empty cache whose entries live ttl.
func NewUnavailableOfferings(ttl time.Duration) *UnavailableOfferings {
	return &UnavailableOfferings{TTL: ttl, expires: map[solver.OfferingKey]time.Time{}}
}

// MarkUnavailable records a refusal at now.
func (u *UnavailableOfferings) MarkUnavailable(key solver.OfferingKey, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expires[key] = now.Add(u.TTL)
}

// At returns the offerings unavailable at now, for a snapshot, and forgets
// expired ones.
func (u *UnavailableOfferings) At(now time.Time) solver.UnavailableOfferings {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(solver.UnavailableOfferings, len(u.expires))
	for key, expires := range u.expires {
		if !now.Before(expires) {
			delete(u.expires, key)
			continue
		}
		out[key] = struct{}{}
	}
	return out
}
