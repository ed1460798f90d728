package provisioning

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

// UnavailableOfferings remembers offerings the cloud refused (insufficient
// capacity) for a while, so the next plans choose a fallback instead of
// asking again for what EC2 just said it does not have.
type UnavailableOfferings struct {
	TTL time.Duration

	mu      sync.Mutex
	expires map[solver.OfferingKey]time.Time
	// scopes are refusals wider than one offering (see UnavailableScope).
	scopes map[UnavailableScope]time.Time
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

// UnavailableScope is a refusal wider than one offering: the spot market
// of a type in a zone, a vCPU quota group, a pool's subnet in a zone, a
// type a zone does not offer, a capacity reservation. Fields not used by
// the scope's kind are empty.
type UnavailableScope struct {
	Kind LaunchErrorScope
	// Region bounds region-wide scopes (quota groups): a cluster in
	// another region has quotas of its own.
	Region       string
	InstanceType string
	QuotaGroup   string
	Zone         string
	CapacityType string
	// Pool is namespace/name (ScopePoolZone).
	Pool        string
	Reservation string
}

// Blocks reports whether the scope covers an offering of pool (namespace/
// name) in region, whose template targets reservation ("" for none).
func (s UnavailableScope) Blocks(region, pool, reservation, instanceType, zone, capacityType string) bool {
	switch s.Kind {
	case ScopeOffering:
		return s.InstanceType == instanceType && s.Zone == zone && s.CapacityType == capacityType
	case ScopeSpotOffering:
		return capacityType == v1alpha1.CapacityTypeSpot && s.InstanceType == instanceType && s.Zone == zone
	case ScopeQuotaGroup:
		return s.Region == region && s.CapacityType == capacityType && QuotaGroup(instanceType) == s.QuotaGroup
	case ScopePoolZone:
		return s.Pool == pool && s.Zone == zone
	case ScopeTypeInZone:
		return s.InstanceType == instanceType && s.Zone == zone
	case ScopeReservation:
		return reservation != "" && s.Reservation == reservation
	}
	return false
}

func (s UnavailableScope) String() string {
	switch s.Kind {
	case ScopeSpotOffering:
		return fmt.Sprintf("spot %s in %s", s.InstanceType, s.Zone)
	case ScopeQuotaGroup:
		return fmt.Sprintf("every %s instance of vCPU quota group %q in %s", s.CapacityType, s.QuotaGroup, s.Region)
	case ScopePoolZone:
		return fmt.Sprintf("zone %s for NodePool %s", s.Zone, s.Pool)
	case ScopeTypeInZone:
		return fmt.Sprintf("%s in %s", s.InstanceType, s.Zone)
	case ScopeReservation:
		return fmt.Sprintf("capacity reservation %s", s.Reservation)
	}
	return fmt.Sprintf("%s %s in %s", s.CapacityType, s.InstanceType, s.Zone)
}

// ScopeOf is what a capacity refusal of the decision's offering makes
// unavailable. reservation is the template's capacityReservationId.
func ScopeOf(e LaunchError, d Decision, pool types.NamespacedName, region, reservation string) UnavailableScope {
	o := d.Offering
	s := UnavailableScope{Kind: e.Scope}
	switch e.Scope {
	case ScopeSpotOffering:
		s.InstanceType, s.Zone = o.InstanceType, o.Zone
	case ScopeQuotaGroup:
		s.Region, s.CapacityType, s.QuotaGroup = region, o.CapacityType, QuotaGroup(o.InstanceType)
	case ScopePoolZone:
		s.Pool, s.Zone = pool.String(), o.Zone
	case ScopeTypeInZone:
		s.InstanceType, s.Zone = o.InstanceType, o.Zone
	case ScopeReservation:
		if reservation == "" {
			// Not targeted by the template: EC2 matched an open
			// reservation; the offering is what failed.
			s.Kind = ScopeOffering
			s.InstanceType, s.Zone, s.CapacityType = o.InstanceType, o.Zone, o.CapacityType
		} else {
			s.Reservation = reservation
		}
	default:
		s.Kind = ScopeOffering
		s.InstanceType, s.Zone, s.CapacityType = o.InstanceType, o.Zone, o.CapacityType
	}
	return s
}

// QuotaGroup is the EC2 vCPU service quota an instance type counts
// against: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
// instances", "... G and VT instances", "... P instances", and so on
// (the same groups for spot requests).
func QuotaGroup(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	if strings.HasPrefix(family, "u-") || strings.HasPrefix(family, "u7") {
		return "high-memory"
	}
	for _, g := range []struct{ prefix, group string }{
		{"inf", "inf"}, {"trn", "trn"}, {"dl", "dl"}, {"hpc", "hpc"}, {"mac", "mac"}, {"vt", "g"},
		{"g", "g"}, {"p", "p"}, {"x", "x"}, {"f", "f"},
	} {
		if strings.HasPrefix(family, g.prefix) {
			return g.group
		}
	}
	return "standard"
}

// MarkScope records a scoped refusal at now.
func (u *UnavailableOfferings) MarkScope(s UnavailableScope, now time.Time) {
	if s.Kind == ScopeOffering {
		u.MarkUnavailable(solver.OfferingKey{InstanceType: s.InstanceType, Zone: s.Zone, CapacityType: s.CapacityType}, now)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.scopes == nil {
		u.scopes = map[UnavailableScope]time.Time{}
	}
	u.scopes[s] = now.Add(u.TTL)
}

// Scopes returns the scoped refusals in force at now.
func (u *UnavailableOfferings) Scopes(now time.Time) []UnavailableScope {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UnavailableScope
	for s, expires := range u.scopes {
		if !now.Before(expires) {
			delete(u.scopes, s)
			continue
		}
		out = append(out, s)
	}
	return out
}
