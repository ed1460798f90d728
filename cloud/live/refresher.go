// Package live keeps Joinery's EC2 catalog current from EC2's API:
// instance types, which types each Availability Zone offers, the spot
// price of every type in every zone, the account's zone names and its
// active capacity reservations (with how many instances each still
// takes). It
// overlays them on the embedded snapshot (cloud.Catalog.Update) and
// publishes the result atomically; decisions read it through
// cloud.Source. When EC2 cannot be reached the last good catalog stays, and
// until a first refresh succeeds that is the snapshot itself. On-demand
// prices always come from the snapshot: EC2's API does not give them.
package live

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/joinery-dev/joinery/cloud"
)

// Options are the refresher's settings; the manager's flags set them.
type Options struct {
	// Regions whose catalog is refreshed (--catalog-regions); none turns
	// refreshing off.
	Regions []string
	// Interval is how often instance types, offerings, zone names and
	// spot prices are all read (--catalog-refresh-interval, 12h).
	Interval time.Duration
	// SpotInterval is how often spot prices alone are read in between
	// (--catalog-spot-refresh-interval, 1h); 0 reads them only with the
	// rest.
	SpotInterval time.Duration
	// ReservationInterval is how often capacity reservations alone are
	// read in between (--catalog-reservation-refresh-interval, 1m): their
	// available counts change with every launch; 0 reads them only with
	// the rest.
	ReservationInterval time.Duration
	// Endpoint replaces every region's EC2 endpoint (--ec2-endpoint).
	Endpoint string
}

// DefaultOptions are the flags' defaults: off, and when on, types and
// offerings twice a day, spot prices every hour.
func DefaultOptions() Options {
	return Options{Interval: 12 * time.Hour, SpotInterval: time.Hour, ReservationInterval: time.Minute}
}

// Enabled reports whether any region is to be refreshed.
func (o Options) Enabled() bool { return len(o.Regions) > 0 }

// Validate names the flag of a bad value and what it should be.
func (o Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	if o.Interval <= 0 {
		return fmt.Errorf("--catalog-refresh-interval=%s: must be a positive duration such as 12h while --catalog-regions is set", o.Interval)
	}
	if o.SpotInterval < 0 {
		return fmt.Errorf("--catalog-spot-refresh-interval=%s: must be 0 (with the catalog) or a positive duration such as 1h", o.SpotInterval)
	}
	if o.ReservationInterval < 0 {
		return fmt.Errorf("--catalog-reservation-refresh-interval=%s: must be 0 (with the catalog) or a positive duration such as 1m", o.ReservationInterval)
	}
	for _, r := range o.Regions {
		if r == "" || strings.ContainsAny(r, " /") {
			return fmt.Errorf("--catalog-regions: %q is not a region; write EC2 region codes such as us-east-1,eu-west-1", r)
		}
	}
	return nil
}

// What a refresh reads, as the metrics' data label names it.
const (
	dataInstanceTypes = "instance-types" // types, offerings per zone, zone names
	dataSpotPrices    = "spot-prices"
	// dataPlacementScores is read with spot prices when the region's
	// client can (PlacementScoresAPI); failing leaves the last scores and
	// fails nothing else: a score only weighs a choice.
	dataPlacementScores = "placement-scores"
	dataReservations    = "capacity-reservations"
)

// refreshKind is what one refresh reads.
type refreshKind int

const (
	// refreshAll: types, offerings, zone names, spot prices, reservations.
	refreshAll refreshKind = iota
	// refreshSpot: spot prices and reservations.
	refreshSpot
	// refreshReservations: reservations alone.
	refreshReservations
)

// refreshTimeout bounds one refresh of one region, so an endpoint that
// accepts connections and never answers cannot stop the next one.
const refreshTimeout = 2 * time.Minute

// firstRetry is how soon a failed refresh is tried again; each further
// failure doubles it, up to the refresh's own interval.
const firstRetry = time.Minute

// Refresher keeps a catalog current. It is a cloud.Source, and a manager
// Runnable (Start) that refreshes on its intervals. Every replica runs
// it, not just the leader, so a new leader decides with a current catalog
// from its first pass.
type Refresher struct {
	base    *cloud.Catalog
	clients map[string]EC2API
	regions []string
	opts    Options
	log     logr.Logger
	// Now is the clock (tests set it).
	Now func() time.Time

	current atomic.Pointer[cloud.Catalog]
	// firstReadDone: the first full refresh has finished, read or failed.
	firstReadDone atomic.Bool

	// mu serializes refreshes and guards regions' last good data.
	mu   sync.Mutex
	last map[string]*regionData
}

// regionData is what EC2 last said of one region; a nil field was never
// read successfully.
type regionData struct {
	zones     []cloud.Zone
	types     []cloud.InstanceType
	offerings []cloud.ZoneOffering
	spot      []cloud.ZoneSpotPrice
	// scores are spot placement scores, read with spot prices.
	scores []cloud.PlacementScore
	// reservations are the active capacity reservations.
	reservations []cloud.CapacityReservation
}

// New returns a refresher serving base until its first refresh. clients
// gives each region's EC2 client (NewEC2Client); it must cover
// opts.Regions.
func New(base *cloud.Catalog, clients map[string]EC2API, opts Options, log logr.Logger) (*Refresher, error) {
	for _, region := range opts.Regions {
		if clients[region] == nil {
			return nil, fmt.Errorf("catalog refresh: no EC2 client for region %s", region)
		}
	}
	r := &Refresher{
		base: base, clients: clients, regions: slices.Compact(slices.Sorted(slices.Values(opts.Regions))), opts: opts, log: log, Now: time.Now,
		last: map[string]*regionData{},
	}
	r.current.Store(base)
	return r, nil
}

// Current returns the catalog to decide with.
func (r *Refresher) Current() *cloud.Catalog { return r.current.Load() }

// FirstReadDone reports whether the first refresh has finished, whether
// it read EC2 or failed: until then Current is the embedded snapshot, with
// assumed zone names, and decisions are better made a moment later.
func (r *Refresher) FirstReadDone() bool { return r.firstReadDone.Load() }

// NeedLeaderElection is false: see Refresher.
func (r *Refresher) NeedLeaderElection() bool { return false }

// Start refreshes everything at once, then on the intervals, until ctx
// ends. A failed refresh is retried sooner (from a minute, doubling), and
// never stops the loop.
func (r *Refresher) Start(ctx context.Context) error {
	full := time.NewTimer(0)
	defer full.Stop()
	var spotC <-chan time.Time // nil, never ready, without a spot interval
	var spot *time.Timer
	if r.opts.SpotInterval > 0 {
		spot = time.NewTimer(r.opts.SpotInterval)
		defer spot.Stop()
		spotC = spot.C
	}
	var resvC <-chan time.Time
	var resv *time.Timer
	if r.opts.ReservationInterval > 0 {
		resv = time.NewTimer(r.opts.ReservationInterval)
		defer resv.Stop()
		resvC = resv.C
	}
	var fullFailures, spotFailures, resvFailures int
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-full.C:
			err := r.Refresh(ctx)
			r.firstReadDone.Store(true)
			full.Reset(r.nextDelay(err, &fullFailures, r.opts.Interval))
		case <-spotC:
			spot.Reset(r.nextDelay(r.RefreshSpotPrices(ctx), &spotFailures, r.opts.SpotInterval))
		case <-resvC:
			resv.Reset(r.nextDelay(r.RefreshReservations(ctx), &resvFailures, r.opts.ReservationInterval))
		}
	}
}

// nextDelay is the interval after a success, a growing retry delay after
// a failure.
func (r *Refresher) nextDelay(err error, failures *int, interval time.Duration) time.Duration {
	if err == nil {
		*failures = 0
		return interval
	}
	*failures++
	delay := firstRetry
	for i := 1; i < *failures && delay < interval; i++ {
		delay *= 2
	}
	return min(delay, interval)
}

// Refresh reads everything the catalog takes from EC2 in every region and
// publishes the result. A region whose reads fail keeps what it last had
// (at first, the snapshot's rows); the error says which region and call.
func (r *Refresher) Refresh(ctx context.Context) error {
	return r.refresh(ctx, refreshAll)
}

// RefreshSpotPrices reads spot prices and capacity reservations (and zone
// names, to place them) only.
func (r *Refresher) RefreshSpotPrices(ctx context.Context) error {
	return r.refresh(ctx, refreshSpot)
}

// RefreshReservations reads capacity reservations (and zone names) only.
// The catalog's tables are not rebuilt: the current catalog is published
// again with the new reservations.
func (r *Refresher) RefreshReservations(ctx context.Context) error {
	return r.refresh(ctx, refreshReservations)
}

func (r *Refresher) refresh(ctx context.Context, kind refreshKind) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	changed := false
	for _, region := range r.regions {
		kept, err := r.refreshRegion(ctx, region, kind)
		changed = changed || kept
		if err != nil {
			errs = append(errs, fmt.Errorf("region %s: %w", region, err))
			if ctx.Err() == nil {
				r.log.Error(err, "refreshing the EC2 catalog failed; decisions keep using the last good catalog (the embedded snapshot until a refresh succeeds)",
					"region", region)
			}
		}
	}
	switch {
	case changed && kind == refreshReservations:
		current := r.current.Load()
		for _, region := range r.regions {
			if last := r.last[region]; last != nil && last.reservations != nil {
				current = current.WithCapacityReservations(region, last.reservations)
			}
		}
		r.current.Store(current)
	case changed:
		if err := r.publish(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshRegion reads one region and keeps, as the region's last good
// data, each part read in full that makes a valid catalog. Types,
// offerings and zone names are kept together or not at all: offerings
// name types and zones. kept reports whether anything was kept.
func (r *Refresher) refreshRegion(parent context.Context, region string, kind refreshKind) (kept bool, _ error) {
	ctx, cancel := context.WithTimeout(parent, refreshTimeout)
	defer cancel()
	count := func(data, result string) {
		if parent.Err() == nil { // a stopping manager is no failure of EC2's
			refreshes.WithLabelValues(region, data, result).Inc()
		}
	}
	read := []string{dataReservations}
	if kind != refreshReservations {
		read = append(read, dataSpotPrices)
	}
	if kind == refreshAll {
		read = append(read, dataInstanceTypes)
	}
	fail := func(err error) error {
		for _, data := range read {
			count(data, "error")
		}
		return err
	}
	api := r.clients[region]
	last := r.last[region]
	if last == nil {
		last = &regionData{}
	}
	start := time.Now()
	zones, err := readZones(ctx, api, region)
	if err != nil {
		return false, fail(err)
	}
	next := *last
	var errs []error
	if kind == refreshAll {
		types, offerings, err := r.readTypesAndOfferings(ctx, api, region)
		if err != nil {
			count(dataInstanceTypes, "error")
			errs = append(errs, err)
			read = slices.DeleteFunc(read, func(d string) bool { return d == dataInstanceTypes })
		} else {
			next.zones, next.types, next.offerings = zones, types, offerings
		}
	}
	if kind != refreshReservations {
		spot, err := readSpotPrices(ctx, api, region, zones, r.Now())
		if err != nil {
			count(dataSpotPrices, "error")
			errs = append(errs, err)
			read = slices.DeleteFunc(read, func(d string) bool { return d == dataSpotPrices })
		} else {
			next.spot = spot
			if next.zones == nil {
				next.zones = zones
			}
		}
		if scorer, ok := api.(PlacementScoresAPI); ok {
			r.readScores(ctx, scorer, region, &next, count)
		}
	}
	// A failed read keeps the reservations last read: their counts are
	// checked again at launch, where a full one is refused and marked
	// unavailable.
	if reservations, err := readCapacityReservations(ctx, api, region, zones); err != nil {
		count(dataReservations, "error")
		errs = append(errs, err)
		read = slices.DeleteFunc(read, func(d string) bool { return d == dataReservations })
	} else {
		if summary := reservationSummary(reservations); summary != reservationSummary(last.reservations) || last.reservations == nil {
			// Every minute at V(1) otherwise: say at once when what can be
			// launched into changed.
			r.log.Info("capacity reservations changed", "region", region, "reservations", summary)
		}
		next.reservations = reservations
	}
	if len(read) == 0 {
		return false, errors.Join(errs...)
	}
	// Check before keeping: data that cannot make a catalog would
	// otherwise spoil every later publish. Reservations alone cannot, and
	// are read every minute: no rebuild for them.
	if kind != refreshReservations {
		if _, err := r.base.Update(r.update(region, &next)); err != nil {
			return false, errors.Join(append(errs, fail(fmt.Errorf("EC2's answers do not make a catalog: %w", err)))...)
		}
	}
	unchanged := kind == refreshReservations && last.reservations != nil && reflect.DeepEqual(last.reservations, next.reservations)
	r.last[region] = &next
	for _, data := range read {
		count(data, "success")
		lastRefresh.WithLabelValues(region, data).Set(float64(r.Now().UnixNano()) / 1e9)
	}
	log := r.log
	if kind == refreshReservations {
		log = log.V(1) // every minute
	}
	log.Info("read the EC2 catalog", "region", region, "data", read, "instanceTypes", len(next.types), "offerings", len(next.offerings),
		"zones", len(next.zones), "spotPrices", len(next.spot), "capacityReservations", len(next.reservations), "duration", time.Since(start).String())
	// The same reservations as last read publish nothing: a new catalog
	// makes every pass recompute the offerings of its cluster.
	return !unchanged, errors.Join(errs...)
}

// readTypesAndOfferings reads types and offerings, keeping offerings of
// types the catalog can describe (the snapshot's or EC2's).
func (r *Refresher) readTypesAndOfferings(ctx context.Context, api EC2API, region string) ([]cloud.InstanceType, []cloud.ZoneOffering, error) {
	types, err := readInstanceTypes(ctx, api)
	if err != nil {
		return nil, nil, err
	}
	offerings, err := readOfferings(ctx, api, region)
	if err != nil {
		return nil, nil, err
	}
	known := make(map[string]bool, len(types))
	for _, it := range types {
		known[it.Name] = true
	}
	var dropped []string
	offerings = slices.DeleteFunc(offerings, func(o cloud.ZoneOffering) bool {
		if known[o.InstanceType] {
			return false
		}
		if _, ok := r.base.InstanceType(o.InstanceType); ok {
			return false
		}
		dropped = append(dropped, o.InstanceType)
		return true
	})
	if len(dropped) > 0 {
		r.log.V(1).Info("EC2 offers types DescribeInstanceTypes did not describe; they are not offered", "region", region, "instanceTypes", uniqueSorted(dropped))
	}
	return types, offerings, nil
}

// publish builds the catalog from the snapshot and every region's last
// good data and makes it current. If it cannot be built, the current one
// stays.
func (r *Refresher) publish() error {
	var updates []cloud.RegionUpdate
	for _, region := range r.regions {
		if last := r.last[region]; last != nil {
			updates = append(updates, r.update(region, last))
		}
	}
	c, err := r.base.Update(updates...)
	for _, region := range r.regions {
		if last := r.last[region]; err == nil && last != nil && last.scores != nil {
			c, err = c.WithPlacementScores(region, last.scores)
		}
	}
	if err != nil {
		err = fmt.Errorf("building the catalog from EC2's answers: %w", err)
		r.log.Error(err, "keeping the current catalog")
		return err
	}
	r.current.Store(c)
	return nil
}

// update is a region's last good data as a catalog update. Spot prices of
// types nothing describes are left out: they cannot be offered, and would
// make the update fail as a whole.
func (r *Refresher) update(region string, d *regionData) cloud.RegionUpdate {
	u := cloud.RegionUpdate{Region: region, Zones: d.zones, InstanceTypes: d.types, Offerings: d.offerings, CapacityReservations: d.reservations}
	if d.spot == nil {
		return u
	}
	known := make(map[string]bool, len(d.types))
	for _, it := range d.types {
		known[it.Name] = true
	}
	u.SpotPrices = slices.DeleteFunc(slices.Clone(d.spot), func(p cloud.ZoneSpotPrice) bool {
		if known[p.InstanceType] {
			return false
		}
		_, ok := r.base.InstanceType(p.InstanceType)
		return !ok
	})
	return u
}

// reservationSummary lists reservations as "id type zone available/total".
func reservationSummary(rs []cloud.CapacityReservation) string {
	parts := make([]string, 0, len(rs))
	for _, c := range rs {
		parts = append(parts, fmt.Sprintf("%s %s %s %s %d/%d", c.ID, c.InstanceType, c.Type, c.Zone, c.Available, c.Total))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func uniqueSorted(names []string) []string {
	sort.Strings(names)
	return slices.Compact(names)
}
