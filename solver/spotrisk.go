package solver

import (
	"fmt"
	"math"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
)

// SpotRisk weighs spot offerings by the risk that EC2 interrupts them, so a
// plan takes the cheapest spot offering whose risk is worth its price, in
// the spirit of EC2 Fleet's price-capacity-optimized strategy (which
// Karpenter leans on and Joinery, launching one AWSMachine at a time,
// cannot).
//
// The rule: a spot offering's risk r in [0, 1] (OfferingRisk) makes its
// price, wherever the solver compares prices (packing, fallbacks,
// consolidation), price × (1 + Weight × r). With the default Weight of 1 a
// spot offering EC2 scores 1 out of 10 competes as if it cost twice its
// price, so a riskier offering wins only when it is cheaper by more than
// its risk; one with nothing known against it (r = 0) competes at its
// price. Pool pricePerHour limits and the plan's totals keep the real
// price: risk changes the choice, never the bill.
type SpotRisk struct {
	// Weight is k in price × (1 + k × risk); 0 chooses spot offerings by
	// price alone (cheapest first).
	Weight float64
	// Interruptions are the spot interruptions Joinery saw recently per
	// offering, each counting 1 when it happened and halving every
	// half-life since (the provisioning controller keeps them).
	Interruptions map[OfferingKey]float64
}

// OfferingRisk estimates how likely a spot offering is to be interrupted,
// from 0 (nothing known against it) to 1, from two sources:
//
//   - EC2's spot placement score s (1..10; 0 is unknown and says nothing):
//     (10 - s) / 9, so 10 is no risk and 1 the highest. EC2 scores how
//     likely a spot request is to be filled, which is how deep the spot
//     pool is; a shallow pool is the one reclaimed first.
//   - Joinery's own recent interruptions n of the offering (decayed):
//     1 - 2^-n, so one interruption just now is 0.5 and it fades with the
//     half-life, as the pool may have recovered.
//
// They combine as independent chances, 1 - (1 - a)(1 - b): either alone
// can make an offering risky, and both together more so.
func OfferingRisk(placementScore int, recentInterruptions float64) float64 {
	fromScore := 0.0
	if placementScore >= 1 && placementScore <= 10 {
		fromScore = float64(10-placementScore) / 9
	}
	fromSeen := 0.0
	if recentInterruptions > 0 {
		fromSeen = 1 - math.Exp2(-recentInterruptions)
	}
	return 1 - (1-fromScore)*(1-fromSeen)
}

// Validate names a bad weight.
func (r SpotRisk) Validate() error {
	if r.Weight < 0 || math.IsNaN(r.Weight) || math.IsInf(r.Weight, 0) {
		return fmt.Errorf("spot risk weight %v: must be a finite number >= 0 (0 chooses spot offerings by price alone)", r.Weight)
	}
	return nil
}

// RecentInterruptions is the decayed count of recent interruptions of an
// offering.
func (r SpotRisk) RecentInterruptions(instanceType string, off Offering) float64 {
	if len(r.Interruptions) == 0 {
		return 0
	}
	return r.Interruptions[OfferingKey{InstanceType: instanceType, Zone: off.Zone, CapacityType: off.CapacityType}]
}

// weigh returns the price the solver compares for an offering, its real
// price, and its risk (0 unless spot).
func (r SpotRisk) weigh(instanceType string, off Offering) (price, billed, risk float64) {
	billed = off.PricePerHour
	if off.CapacityType != v1alpha1.CapacityTypeSpot || r.Weight <= 0 {
		return billed, billed, 0
	}
	risk = OfferingRisk(off.PlacementScore, r.RecentInterruptions(instanceType, off))
	return billed * (1 + r.Weight*risk), billed, risk
}

// riskNote records what a candidate's price was weighed by.
func (s *state) riskNote(c *candidate) SpotRiskNote {
	if c.risk == 0 {
		return SpotRiskNote{}
	}
	return SpotRiskNote{Risk: c.risk, RecentInterruptions: s.snap.SpotRisk.RecentInterruptions(c.it.Name, *c.off)}
}
