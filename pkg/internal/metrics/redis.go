package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Redis exports the fleet's Redis metrics: seclisten_redis_up (1 while
// Redis answers), seclisten_redis_roundtrip_seconds (every command or
// pipeline) and seclisten_redis_errors_total (those that failed). It
// returns the function to call after each round trip. Call it once.
func (m *Metrics) Redis(up func() bool) func(d time.Duration, err error) {
	roundTrip := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seclisten_redis_roundtrip_seconds",
		Help:    "Time of each Redis command or pipeline (the fleet's shared state).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_redis_errors_total",
		Help: "Redis commands or pipelines that failed (unreachable, refused, timed out)."})
	upGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seclisten_redis_up",
		Help: "1 while the fleet's Redis answers, 0 while it is unreachable."}, func() float64 {
		if up() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(roundTrip, errs, upGauge)
	return func(d time.Duration, err error) {
		roundTrip.Observe(d.Seconds())
		if err != nil {
			errs.Inc()
		}
	}
}
