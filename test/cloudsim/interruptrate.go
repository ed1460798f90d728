package cloudsim

import (
	"context"
	"math"
	"math/rand"
	"sort"
	"time"
)

// Interruption rates: the simulated cloud interrupts spot instances at
// random, at a rate per offering (interruptions per instance-hour), the way
// EC2 reclaims some spot pools more often than others. Draws come from a
// rand.Rand seeded with Options.InterruptionSeed, in instance ID order, so
// a run with the same seed, launches and steps interrupts the same
// instances. Each interruption is announced as InterruptSpotInstance does
// (OnSpotInterruption, the SQS warning) and terminates after the warning.

// interruptionRate is one SetInterruptionRate.
type interruptionRate struct {
	match   Offering
	perHour float64
}

// SetInterruptionRate makes running spot instances of matching offerings
// (empty fields match any value) be interrupted at perHour interruptions
// per instance-hour; the newest matching rate wins, 0 stops them. The
// cloud steps its instances every Options.InterruptionTick (1s by default)
// of wall time; with a negative tick nothing steps until StepInterruptions
// is called (a benchmark's accelerated time).
func (c *Cloud) SetInterruptionRate(match Offering, perHour float64) {
	if perHour < 0 || math.IsNaN(perHour) || math.IsInf(perHour, 0) {
		panic("cloudsim: SetInterruptionRate: the rate must be a finite number >= 0 of interruptions per instance-hour")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rates = append([]interruptionRate{{match: match, perHour: perHour}}, c.rates...)
	if c.rng == nil {
		c.rng = rand.New(rand.NewSource(c.opts.InterruptionSeed))
	}
	if !c.stepping && c.opts.InterruptionTick >= 0 && !c.stopped {
		c.stepping = true
		go c.stepLoop()
	}
}

// InterruptionRate is the rate SetInterruptionRate gave an offering.
func (c *Cloud) InterruptionRate(o Offering) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rateLocked(o)
}

func (c *Cloud) rateLocked(o Offering) float64 {
	for _, r := range c.rates {
		if r.match.matches(o) {
			return r.perHour
		}
	}
	return 0
}

func (c *Cloud) stepLoop() {
	tick := c.opts.InterruptionTick
	if tick == 0 {
		tick = time.Second
	}
	last := time.Now()
	for {
		time.Sleep(tick)
		c.mu.Lock()
		stopped := c.stopped
		c.mu.Unlock()
		if stopped {
			return
		}
		now := time.Now()
		c.StepInterruptions(now.Sub(last))
		last = now
	}
}

// StepInterruptions lets elapsed pass for every running spot instance: each
// is interrupted with probability 1 - e^(-rate × hours), a Poisson process
// at its offering's rate. It returns the interruptions it announced.
func (c *Cloud) StepInterruptions(elapsed time.Duration) []Interruption {
	hours := elapsed.Hours()
	if hours <= 0 {
		return nil
	}
	c.mu.Lock()
	if c.rng == nil || c.stopped {
		c.mu.Unlock()
		return nil
	}
	now := time.Now()
	ids := make([]string, 0, len(c.instances))
	for id, inst := range c.instances {
		c.refresh(inst, now)
		if inst.CapacityType == CapacityTypeSpot && inst.State == StateRunning && inst.InterruptionNotice.IsZero() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var hit []string
	for _, id := range ids {
		rate := c.rateLocked(c.instances[id].Offering)
		if rate > 0 && c.rng.Float64() < 1-math.Exp(-rate*hours) {
			hit = append(hit, id)
		}
	}
	c.mu.Unlock()
	var out []Interruption
	for _, id := range hit {
		notice, err := c.InterruptSpotInstance(context.Background(), id)
		if err != nil {
			c.opts.Log.Error(err, "interrupting a spot instance at its offering's rate", "instance", id)
			continue
		}
		out = append(out, notice)
	}
	return out
}
