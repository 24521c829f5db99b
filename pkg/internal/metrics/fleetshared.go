package metrics

import "github.com/prometheus/client_golang/prometheus"

// FleetLimits exports the syncs of the fleet's shared rate limits:
// seclisten_fleet_limiter_syncs_total{result="ok"|"error"} (one script
// call each) and seclisten_fleet_limiter_keys_total (the keys they
// carried). It returns the function to call after each sync. Call it once.
func (m *Metrics) FleetLimits() func(keys int, err error) {
	syncs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_fleet_limiter_syncs_total",
		Help: "Syncs of the per-IP rate limits with the fleet (one Redis script call each), by result."}, []string{"result"})
	keys := prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_fleet_limiter_keys_total",
		Help: "Client keys carried by the syncs of the fleet's rate limits."})
	ok, failed := syncs.WithLabelValues("ok"), syncs.WithLabelValues("error")
	m.reg.MustRegister(syncs, keys)
	return func(n int, err error) {
		if err != nil {
			failed.Inc()
			return
		}
		ok.Inc()
		keys.Add(float64(n))
	}
}

// FleetBans exports seclisten_fleet_bans_total{event}: bans this replica
// published to the fleet ("published"), bans it learned from other
// replicas ("learned"), bans lifted by another replica ("lifted"), and
// stored ban records it ignored as garbage ("garbage"). It returns the
// function to call with the event. Call it once.
func (m *Metrics) FleetBans() func(event string) {
	bans := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_fleet_bans_total",
		Help: "Bans shared with the fleet, by event: published, learned, lifted, garbage."}, []string{"event"})
	for _, e := range []string{"published", "learned", "lifted", "garbage"} {
		bans.WithLabelValues(e)
	}
	m.reg.MustRegister(bans)
	return func(event string) { bans.WithLabelValues(event).Inc() }
}
