package soak

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/cloudsim"
	"github.com/joinery-dev/joinery/test/testbed"
)

// injector breaks things at random, one fault about every `every`, and
// keeps count. Faults that last (capacity errors, slow boots, instances
// that never join) are healed after a while, and all of them at heal.
type injector struct {
	tb  *testbed.Testbed
	rs  *replicas
	rng *rand.Rand
	// killRng drives the kills, on a goroutine of their own: a stream of
	// its own keeps both schedules the same for a seed.
	killRng *rand.Rand
	hist    *history
	faulted *faultLog

	mu                                                               sync.Mutex
	kills, ice, throttles, oob, interruptions, slowBoots, neverJoins int
	clockSkews                                                       int
	lasting                                                          []lastingFault
	restarting                                                       sync.WaitGroup
	zones                                                            []string
	types                                                            []string
}

type lastingFault struct {
	until time.Time
	heal  func()
	what  string
}

func newInjector(tb *testbed.Testbed, rs *replicas, rng *rand.Rand, hist *history, faulted *faultLog) *injector {
	return &injector{tb: tb, rs: rs, rng: rng, killRng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), hist: hist, faulted: faulted, zones: tb.Zones(),
		// The small c/m/r types the pools' requirements (<= 8 vCPUs) allow
		// and the workload's pods land on.
		types: []string{"c5.large", "c5.xlarge", "m5.large", "m5.xlarge", "r5.large", "c6i.large", "m6i.large", "c7i.large", "m7i.large"}}
}

// run injects faults until ctx ends.
func (in *injector) run(ctx context.Context, every time.Duration) {
	faults := []func(context.Context){
		in.capacityError, in.capacityError,
		in.throttle,
		in.terminateOutOfBand,
		in.interruptSpot, in.interruptSpot,
		in.slowBoot,
		in.neverJoin,
		in.partition,
	}
	for ctx.Err() == nil {
		in.mu.Lock()
		wait := jitter(in.rng, every)
		f := faults[in.rng.IntN(len(faults))]
		in.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		in.healExpired()
		f(ctx)
	}
}

// killLoop kill -9s the leading replica about every `every` until ctx
// ends.
func (in *injector) killLoop(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		wait := jitter(in.killRng, every)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		in.killLeader()
	}
}

func (in *injector) pick(n int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.IntN(n)
}

func (in *injector) offering(capacityType string) cloudsim.Offering {
	in.mu.Lock()
	defer in.mu.Unlock()
	return cloudsim.Offering{InstanceType: in.types[in.rng.IntN(len(in.types))], Zone: in.zones[in.rng.IntN(len(in.zones))], CapacityType: capacityType}
}

// killLeader kill -9s the replica holding the Lease (or a random one when
// none does yet) and starts it again a moment later, as a kubelet
// restarts a crashed container.
func (in *injector) killLeader() {
	r := in.rs.leader()
	if r == nil {
		r = in.rs.procs[in.killRng.IntN(len(in.rs.procs))]
	}
	back := time.Second + time.Duration(in.killRng.Int64N(int64(3*time.Second)))
	if !r.proc.Running() {
		return
	}
	r.proc.Kill()
	in.mu.Lock()
	in.kills++
	in.mu.Unlock()
	// One restart in three comes back on a clock that drifted minutes
	// ahead or behind: longer than the registration timeout (90s) and the
	// general pool's 1-minute no-disruption window, so a decision that
	// compares the manager's clock with the apiserver's timestamps or the
	// checker's clock goes visibly wrong. The others come back on time.
	var skew time.Duration
	if in.killRng.IntN(3) == 0 {
		skew = time.Minute + time.Duration(in.killRng.Int64N(int64(3*time.Minute)))
		if in.killRng.IntN(2) == 0 {
			skew = -skew
		}
	}
	if skew != 0 {
		r.proc.SetEnv(manager.ChildClockSkewEnv + "=" + skew.Round(time.Second).String())
		in.mu.Lock()
		in.clockSkews++
		in.mu.Unlock()
		in.hist.Printf("fault: kill -9 %s (leader), restarting in %s with its clock %s off", r.name, back.Round(time.Millisecond), skew.Round(time.Second))
	} else {
		r.proc.SetEnv()
		in.hist.Printf("fault: kill -9 %s (leader), restarting in %s", r.name, back.Round(time.Millisecond))
	}
	in.restarting.Add(1)
	go func() {
		defer in.restarting.Done()
		time.Sleep(back)
		if err := r.proc.Start(); err != nil {
			in.hist.Printf("restarting %s: %v", r.name, err)
		}
	}()
}

func (in *injector) capacityError(context.Context) {
	ct := v1alpha1.CapacityTypeOnDemand
	if in.pick(2) == 0 {
		ct = v1alpha1.CapacityTypeSpot
	}
	o := in.offering(ct)
	in.tb.Cloud.InjectInsufficientCapacity(o)
	in.lasting = append(in.lasting, lastingFault{until: time.Now().Add(40 * time.Second), what: "capacity of " + describe(o),
		heal: func() { in.tb.Cloud.ClearInsufficientCapacity(o) }})
	in.mu.Lock()
	in.ice++
	in.mu.Unlock()
	in.hist.Printf("fault: InsufficientInstanceCapacity for %s for 40s", describe(o))
}

func (in *injector) throttle(context.Context) {
	n := 2 + in.pick(4)
	in.tb.Cloud.Throttle("RunInstances", n)
	in.mu.Lock()
	in.throttles++
	in.mu.Unlock()
	in.hist.Printf("fault: the next %d RunInstances calls are throttled", n)
}

// running are the instances of Joinery's Machines that are running, in a
// stable order for the seed.
func (in *injector) running(spotOnly bool) []cloudsim.Instance {
	var out []cloudsim.Instance
	for _, i := range in.tb.Cloud.Instances() {
		if i.State != cloudsim.StateRunning || i.NodeName == "" || i.Tags["joinery.dev/nodepool"] == "" {
			continue
		}
		if spotOnly && i.CapacityType != v1alpha1.CapacityTypeSpot {
			continue
		}
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func (in *injector) terminateOutOfBand(ctx context.Context) {
	running := in.running(false)
	if len(running) == 0 {
		return
	}
	i := running[in.pick(len(running))]
	in.faulted.add(i.ID, "terminated out of band")
	in.faulted.addNode(i.NodeName, "terminated out of band")
	if err := in.tb.Cloud.TerminateInstance(ctx, i.ID); err != nil {
		in.hist.Printf("fault: terminating %s: %v", i.ID, err)
		return
	}
	in.mu.Lock()
	in.oob++
	in.mu.Unlock()
	in.hist.Printf("fault: terminated %s (%s, node %s, AWSMachine %s) out of band", i.ID, describe(i.Offering), i.NodeName, i.AWSMachine.Name)
}

func (in *injector) interruptSpot(ctx context.Context) {
	running := in.running(true)
	if len(running) == 0 {
		return
	}
	i := running[in.pick(len(running))]
	in.faulted.add(i.ID, "spot interruption")
	in.faulted.addNode(i.NodeName, "spot interruption")
	if _, err := in.tb.Cloud.InterruptSpotInstance(ctx, i.ID); err != nil {
		in.hist.Printf("fault: interrupting %s: %v", i.ID, err)
		return
	}
	in.mu.Lock()
	in.interruptions++
	in.mu.Unlock()
	in.hist.Printf("fault: spot interruption notice for %s (node %s, AWSMachine %s)", i.ID, i.NodeName, i.AWSMachine.Name)
}

func (in *injector) slowBoot(context.Context) {
	o := in.offering("")
	o.CapacityType = ""
	in.tb.Cloud.SlowBoot(o, 20*time.Second)
	in.lasting = append(in.lasting, lastingFault{until: time.Now().Add(60 * time.Second), what: "slow boots of " + describe(o),
		heal: func() { in.tb.Cloud.SlowBoot(o, 0) }})
	in.mu.Lock()
	in.slowBoots++
	in.mu.Unlock()
	in.hist.Printf("fault: %s boots 20s slower for 60s", describe(o))
}

func (in *injector) neverJoin(context.Context) {
	o := in.offering("")
	o.CapacityType = ""
	in.tb.Cloud.NeverJoin(o, true)
	in.lasting = append(in.lasting, lastingFault{until: time.Now().Add(30 * time.Second), what: "never joining " + describe(o),
		heal: func() { in.tb.Cloud.NeverJoin(o, false) }})
	in.mu.Lock()
	in.neverJoins++
	in.mu.Unlock()
	in.hist.Printf("fault: instances of %s launched in the next 30s never join", describe(o))
}

// partition makes a workload apiserver unreachable from the management
// cluster (Joinery and CAPI) for 20-40 s.
func (in *injector) partition(context.Context) {
	w := in.tb.Workloads[in.pick(len(in.tb.Workloads))]
	if w.Proxy == nil {
		return
	}
	d := 20*time.Second + time.Duration(in.pick(21))*time.Second
	w.Proxy.Cut()
	in.lasting = append(in.lasting, lastingFault{until: time.Now().Add(d), what: "the partition of " + w.Name,
		heal: w.Proxy.Restore})
	in.hist.Printf("fault: workload cluster %s unreachable from the management cluster for %s", w.Name, d)
}

func (in *injector) healExpired() {
	now := time.Now()
	kept := in.lasting[:0]
	for _, f := range in.lasting {
		if now.After(f.until) {
			f.heal()
			in.hist.Printf("healed: %s", f.what)
			continue
		}
		kept = append(kept, f)
	}
	in.lasting = kept
}

// heal ends every lasting fault and waits for killed replicas to be back.
func (in *injector) heal(context.Context) {
	for _, f := range in.lasting {
		f.heal()
		in.hist.Printf("healed: %s", f.what)
	}
	in.lasting = nil
	in.restarting.Wait()
}

func (in *injector) fill(r *Result) {
	in.mu.Lock()
	defer in.mu.Unlock()
	r.Kills, r.ICE, r.Throttles, r.OOBTerminations, r.Interruptions, r.SlowBoots, r.NeverJoins, r.ClockSkews =
		in.kills, in.ice, in.throttles, in.oob, in.interruptions, in.slowBoots, in.neverJoins, in.clockSkews
	for _, w := range in.tb.Workloads {
		if w.Proxy != nil {
			r.UnreachableS += w.Proxy.Unreachable().Seconds()
		}
	}
}

func describe(o cloudsim.Offering) string {
	s := o.InstanceType + " in " + o.Zone
	if o.CapacityType != "" {
		s = o.CapacityType + " " + s
	}
	return s
}
