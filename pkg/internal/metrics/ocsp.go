package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OCSP results, the label values of seclisten_ocsp_checks_total.
var ocspResults = []string{"good", "revoked", "unknown", "error"}

// OCSP exports, read at each scrape: the OCSP checks of client
// certificates by result (results returns good, revoked, unknown and
// error counts, in that order), the answers cached, and the age of the
// staple in service (false: none, and the gauge reads -1). It also makes
// the staple refresh counter (StapleRefreshed).
func (m *Metrics) OCSP(results func() (good, revoked, unknown, failed uint64), cached func() int, stapleAge func() (time.Duration, bool)) {
	for i, r := range ocspResults {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "seclisten_ocsp_checks_total",
			Help:        "OCSP checks of client certificates, by result: good, revoked, unknown (the responder does not know it), error (no verified answer).",
			ConstLabels: prometheus.Labels{"result": r},
		}, func() float64 {
			g, rv, u, e := results()
			return float64([]uint64{g, rv, u, e}[i])
		}))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_ocsp_cache_entries",
		Help: "OCSP answers cached (until their next update).",
	}, func() float64 { return float64(cached()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_ocsp_staple_age_seconds",
		Help: "Seconds since the thisUpdate of the OCSP response stapled to the server certificate; -1 when none is.",
	}, func() float64 {
		if age, ok := stapleAge(); ok {
			return age.Seconds()
		}
		return -1
	}))
	m.stapleRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seclisten_ocsp_staple_refreshes_total",
		Help: "Fetches of the server certificate's OCSP staple, by result (ok, failed).",
	}, []string{"result"})
	m.reg.MustRegister(m.stapleRefreshes)
	m.stapleRefreshes.WithLabelValues("ok")
	m.stapleRefreshes.WithLabelValues("failed")
}

// StapleRefreshed counts a staple fetch (after OCSP).
func (m *Metrics) StapleRefreshed(ok bool) {
	if m.stapleRefreshes == nil {
		return
	}
	r := "failed"
	if ok {
		r = "ok"
	}
	m.stapleRefreshes.WithLabelValues(r).Inc()
}
