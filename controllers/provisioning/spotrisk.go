package provisioning

import (
	"math"
	"sync"
	"time"

	"github.com/joinery-dev/joinery/solver"
)

// SpotInterruptions remembers the spot interruptions Joinery saw per
// offering, fading: each counts 1 when the interruption controller records
// it and halves every HalfLife, so an offering that was reclaimed often
// lately weighs heavily (see solver.SpotRisk) and one that was reclaimed
// once, days ago, hardly at all. It lives in memory, as the unavailable
// offerings do: a restarted manager starts from EC2's placement scores
// alone.
type SpotInterruptions struct {
	HalfLife time.Duration

	mu   sync.Mutex
	seen map[solver.OfferingKey]fading
}

// fading is a decayed count as of a time.
type fading struct {
	count float64
	at    time.Time
}

// forgetBelow is the decayed count under which an offering is forgotten:
// less than a hundredth of an interruption weighs nothing.
const forgetBelow = 0.01

// NewSpotInterruptions returns an empty history with this half-life.
func NewSpotInterruptions(halfLife time.Duration) *SpotInterruptions {
	return &SpotInterruptions{HalfLife: halfLife, seen: map[solver.OfferingKey]fading{}}
}

func (s *SpotInterruptions) decayed(f fading, now time.Time) float64 {
	if s.HalfLife <= 0 || !now.After(f.at) {
		return f.count
	}
	return f.count * math.Exp2(-now.Sub(f.at).Hours()/s.HalfLife.Hours())
}

// RecordInterruption counts one interruption of the offering at now.
func (s *SpotInterruptions) RecordInterruption(key solver.OfferingKey, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[key] = fading{count: s.decayed(s.seen[key], now) + 1, at: now}
}

// At returns every offering's decayed count at now, and forgets those
// that faded away.
func (s *SpotInterruptions) At(now time.Time) map[solver.OfferingKey]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[solver.OfferingKey]float64, len(s.seen))
	for key, f := range s.seen {
		n := s.decayed(f, now)
		if n < forgetBelow {
			delete(s.seen, key)
			continue
		}
		out[key] = n
	}
	return out
}

// SpotInterruptions returns the history the interruption controller
// records into.
func (p *Provisioner) SpotInterruptions() *SpotInterruptions { return p.interruptions }

// spotRisk is how this pass weighs spot offerings.
func (ps *pass) spotRisk() solver.SpotRisk {
	r := solver.SpotRisk{Weight: ps.Options.SpotRiskWeight}
	if r.Weight > 0 && ps.interruptions != nil {
		r.Interruptions = ps.interruptions.At(ps.now)
	}
	return r
}
