package live

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery-dev/joinery/internal/metrics"
)

var (
	refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_catalog_refresh_total",
		Help: "Reads of the EC2 catalog, by region, data (instance-types: types, offerings per zone and zone names; spot-prices) and result (success, error). On error the last good catalog stays in use.",
	}, []string{"region", "data", "result"})
	lastRefresh = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "joinery_catalog_last_refresh_timestamp_seconds",
		Help: "When the EC2 catalog was last read successfully, by region and data (instance-types, spot-prices), in seconds since the Unix epoch.",
	}, []string{"region", "data"})
)

func init() { metrics.MustRegister(refreshes, lastRefresh) }
