package cloudsim

import (
	"github.com/joinery-dev/joinery/cloud"
)

// catalogPrices prices offerings from Joinery's EC2 catalog: the on-demand
// price of the region, and for spot the lowest spot price sampled in the
// region (the catalog does not say which zone had it).
func catalogPrices(c *cloud.Catalog, region string) PriceFunc {
	return func(instanceType, _, capacityType string) (float64, bool) {
		if capacityType == CapacityTypeSpot {
			p, ok := c.SpotPrice(region, instanceType)
			return p.MinUSDPerHour, ok
		}
		return c.OnDemandPrice(region, instanceType)
	}
}
