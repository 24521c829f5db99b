package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seclisten/seclisten/pkg/internal/ban"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// failureCodes label seclisten_handshake_failures_total: the handshake
// failures and the verdicts that refuse a client.
func failureCodes() []outcome.Code {
	var out []outcome.Code
	for _, c := range append(outcome.All(outcome.Handshake), outcome.All(outcome.Verdict)...) {
		if c != outcome.OK && c != outcome.Unverified {
			out = append(out, c)
		}
	}
	return out
}

// maxCertNames bounds the certificate-expiry series (on-demand ACME can
// name many certificates).
const maxCertNames = 1000

// Metrics are the counters, gauges and histograms of one server.
type Metrics struct {
	reg *prometheus.Registry

	accepted          prometheus.Counter
	rejected          *prometheus.CounterVec
	handshakeFailures *prometheus.CounterVec
	closed            *prometheus.CounterVec
	notices           *prometheus.CounterVec
	active            prometheus.Gauge
	messages          prometheus.Counter
	replies           prometheus.Counter
	bytesIn           prometheus.Counter
	bytesOut          prometheus.Counter
	handshakeSeconds  prometheus.Histogram
	certExpiry        *prometheus.GaugeVec
	stapleRefreshes   *prometheus.CounterVec // nil until OCSP
	bansTotal         *prometheus.CounterVec
	bans              Bans
	reloadFailures    prometheus.Counter
	lastReload        prometheus.Gauge
	resumptions       *prometheus.CounterVec

	mu        sync.Mutex
	certNames map[[2]string]bool
}

// New makes the metrics and registers them, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), certNames: map[[2]string]bool{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_connections_accepted_total",
		Help: "Connections accepted by the listener, before admission."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_connections_rejected_total",
		Help: "Connections refused before any TLS work, by reason."}, []string{"reason"})
	m.handshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_handshake_failures_total",
		Help: "Admitted connections that did not complete a handshake (or the protocol check of a plain port), by verdict."}, []string{"verdict"})
	m.closed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_connections_closed_total",
		Help: "Served connections that ended, by reason."}, []string{"reason"})
	m.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_notices_total",
		Help: "Things connections met that did not end them (slowed by the message rate), by code."}, []string{"code"})
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{Name: "seclisten_connections_active",
		Help: "Admitted connections open now."})
	m.messages = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_messages_received_total",
		Help: "Messages (lines) received and printed."})
	m.replies = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_replies_sent_total",
		Help: "Replies written in full."})
	m.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_bytes_received_total",
		Help: "Bytes read from clients by the exchange (after TLS), counted when a connection closes."})
	m.bytesOut = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_bytes_sent_total",
		Help: "Bytes written to clients by the exchange (before TLS), counted when a connection closes."})
	m.handshakeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seclisten_handshake_duration_seconds",
		Help:    "Time from accept to a completed TLS handshake.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	m.certExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seclisten_certificate_expiry_timestamp_seconds",
		Help: "When each certificate in service expires (Unix time), by source (file, ephemeral, acme) and name."},
		[]string{"source", "name"})
	m.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "seclisten_reload_failures_total",
		Help: "Reloads of the configuration refused because it did not validate (the policy in service stayed)."})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Name: "seclisten_config_last_reload_success_timestamp_seconds",
		Help: "When the policy in service was put in service (Unix time): at start, then at each good reload."})
	m.bansTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seclisten_bans_total",
		Help: "Temporary bans started, by the outcome that triggered them."}, []string{"reason"})
	for _, c := range []prometheus.Collector{m.bansTotal, m.accepted, m.rejected, m.handshakeFailures, m.closed, m.notices, m.active, m.messages,
		m.replies, m.bytesIn, m.bytesOut, m.handshakeSeconds, m.certExpiry, m.reloadFailures, m.lastReload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	// Every label value exists from the start, at 0, so rates and alerts
	// work before the first event.
	for _, c := range outcome.All(outcome.Admission) {
		m.rejected.WithLabelValues(c.Label())
	}
	for _, c := range failureCodes() {
		m.handshakeFailures.WithLabelValues(c.Label())
	}
	for _, c := range outcome.All(outcome.Close) {
		m.closed.WithLabelValues(c.Label())
	}
	for _, c := range outcome.All(outcome.Notice) {
		m.notices.WithLabelValues(c.Label())
	}
	for _, c := range ban.Codes() {
		m.bansTotal.WithLabelValues(c.Label())
	}
	m.registerResumptions()
	return m
}

// Bans is the ban table as the metrics server shows and changes it.
type Bans interface {
	// List returns the bans in force.
	List() []ban.Ban
	// Lift ends the ban of key; ok is false if none was in force, err
	// non-nil if key is not a key.
	Lift(key string) (ok bool, err error)
	// Active is the number of bans in force.
	Active() int
}

// ServeBans exports the bans: the gauge seclisten_bans_active, GET /bans
// and DELETE /bans/KEY. Call it before Handler, once. Without it, /bans
// lists none and the gauge is absent.
func (m *Metrics) ServeBans(b Bans) {
	m.bans = b
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_bans_active",
		Help: "Temporary bans in force now.",
	}, func() float64 { return float64(b.Active()) }))
}

// Banned counts a ban started by the outcome c (one that ban.Counts).
func (m *Metrics) Banned(c outcome.Code) {
	if !ban.Counts(c) {
		panic(fmt.Sprintf("metrics: outcome %q does not start bans", c))
	}
	m.bansTotal.WithLabelValues(c.Label()).Inc()
}

// listBans is GET /bans: a JSON array of the bans in force (key, since,
// until, count, last_reason; times in RFC 3339).
func (m *Metrics) listBans(w http.ResponseWriter, _ *http.Request) {
	list := []ban.Ban{}
	if m.bans != nil {
		list = m.bans.List()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// liftBan is DELETE /bans/KEY: 204 when a ban was lifted, 404 when KEY was
// not banned, 400 when it is not a key.
func (m *Metrics) liftBan(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if m.bans == nil {
		http.Error(w, "not banned: "+key, http.StatusNotFound)
		return
	}
	ok, err := m.bans.Lift(key)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case !ok:
		http.Error(w, "not banned: "+key, http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// Reloaded records that a policy was put in service at t.
func (m *Metrics) Reloaded(t time.Time) { m.lastReload.Set(float64(t.UnixNano()) / 1e9) }

// ReloadFailed counts a refused reload.
func (m *Metrics) ReloadFailed() { m.reloadFailures.Inc() }

// Accepted counts a connection accepted by the listener.
func (m *Metrics) Accepted() { m.accepted.Inc() }

// Rejected counts a refusal before TLS, an outcome of kind Admission.
func (m *Metrics) Rejected(c outcome.Code) {
	m.rejected.WithLabelValues(label(c, outcome.Admission)).Inc()
}

// HandshakeFailed counts a failed handshake: an outcome of kind Handshake,
// or a refusing Verdict.
func (m *Metrics) HandshakeFailed(c outcome.Code) {
	k := outcome.Handshake
	if c.Kind() == outcome.Verdict {
		k = outcome.Verdict
	}
	m.handshakeFailures.WithLabelValues(label(c, k)).Inc()
}

// Notice counts an outcome of kind Notice.
func (m *Metrics) Notice(c outcome.Code) {
	m.notices.WithLabelValues(label(c, outcome.Notice)).Inc()
}

// HandshakeDone observes the time from accept to a completed handshake.
func (m *Metrics) HandshakeDone(d time.Duration) { m.handshakeSeconds.Observe(d.Seconds()) }

// Open and Closed track admitted connections.
func (m *Metrics) Open() { m.active.Inc() }

// Closed ends an admitted connection, counts why (an outcome of kind
// Close) and adds its byte counts.
func (m *Metrics) Closed(reason outcome.Code, bytesIn, bytesOut int64) {
	m.active.Dec()
	m.closed.WithLabelValues(label(reason, outcome.Close)).Inc()
	m.bytesIn.Add(float64(bytesIn))
	m.bytesOut.Add(float64(bytesOut))
}

// Message counts a message received.
func (m *Metrics) Message() { m.messages.Inc() }

// Reply counts a reply sent.
func (m *Metrics) Reply() { m.replies.Inc() }

// ClientCertExpiry exports, as a gauge read at each scrape, the earliest
// expiry among recent clients' certificates that earliest reports (false:
// none, and the gauge reads 0).
func (m *Metrics) ClientCertExpiry(earliest func() (time.Time, bool)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_client_cert_earliest_expiry_timestamp_seconds",
		Help: "The earliest expiry (Unix time) among the certificates of clients served in the last day; 0 for none.",
	}, func() float64 {
		if t, ok := earliest(); ok {
			return float64(t.Unix())
		}
		return 0
	}))
}

// RevocationStats are the figures of the CRLs fetched from distribution
// points.
type RevocationStats struct {
	Entries  int
	Bytes    int64
	Oldest   time.Duration
	Fetches  uint64
	Failures uint64
}

// Revocation exports, read at each scrape, the figures stats reports. The
// age is one gauge, of the oldest CRL cached: a series per URL would grow
// with the URLs clients' certificates name.
func (m *Metrics) Revocation(stats func() RevocationStats) {
	gauge := func(name, help string, f func(RevocationStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	counter := func(name, help string, f func(RevocationStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	m.reg.MustRegister(
		gauge("seclisten_crl_cache_entries", "CRL distribution point URLs cached (fetched, failed or in flight).",
			func(s RevocationStats) float64 { return float64(s.Entries) }),
		gauge("seclisten_crl_cache_bytes", "Memory retained by the cached CRLs, in bytes.",
			func(s RevocationStats) float64 { return float64(s.Bytes) }),
		gauge("seclisten_crl_oldest_age_seconds", "Age of the oldest CRL in the cache, since its fetch; 0 for none.",
			func(s RevocationStats) float64 { return s.Oldest.Seconds() }),
		counter("seclisten_crl_fetches_total", "CRL fetches from distribution points that ended, failed or not.",
			func(s RevocationStats) float64 { return float64(s.Fetches) }),
		counter("seclisten_crl_fetch_failures_total", "CRL fetches from distribution points that failed.",
			func(s RevocationStats) float64 { return float64(s.Failures) }),
	)
}

// BuildInfo exports seclisten_build_info (1, labelled with the version and
// the Go version) and seclisten_start_time_seconds (when the server
// started, Unix time), for dashboards: which version runs where, and
// restarts. Call it once.
func (m *Metrics) BuildInfo(version, goVersion string, start time.Time) {
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seclisten_build_info",
		Help: "Always 1, labelled with the version of seclisten and of Go it was built with."}, []string{"version", "goversion"})
	info.WithLabelValues(version, goVersion).Set(1)
	startTime := prometheus.NewGauge(prometheus.GaugeOpts{Name: "seclisten_start_time_seconds",
		Help: "When the server started (Unix time)."})
	startTime.Set(float64(start.UnixNano()) / 1e9)
	m.reg.MustRegister(info, startTime)
}

// CertExpiry records when a certificate in service expires.
func (m *Metrics) CertExpiry(source, name string, notAfter time.Time) {
	k := [2]string{source, name}
	m.mu.Lock()
	if !m.certNames[k] && len(m.certNames) >= maxCertNames {
		m.mu.Unlock()
		return
	}
	m.certNames[k] = true
	m.mu.Unlock()
	m.certExpiry.WithLabelValues(source, name).Set(float64(notAfter.Unix()))
}

// label is c's metric label. A code of another kind is a programmer error:
// every label value exists from the start, and none is "other".
func label(c outcome.Code, k outcome.Kind) string {
	if c.Kind() != k {
		panic(fmt.Sprintf("metrics: outcome %q is of kind %s, not %s", c, c.Kind(), k))
	}
	return c.Label()
}

// Handler serves /metrics, /healthz (200 while the process serves) and
// /readyz (200 when ready() says so, 503 otherwise: before certificates
// are in service, and while shutting down, so a load balancer stops sending
// new clients to a replica that is draining), and /bans (see ServeBans).
func (m *Metrics) Handler(ready func() (bool, string)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /bans", m.listBans)
	mux.HandleFunc("DELETE /bans/{key...}", m.liftBan)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Serve serves h on ln until ctx ends. It binds nothing itself.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeIdleWorkers exports the gauge seclisten_workers_idle: goroutines
// kept to serve the next connections (they explain go_goroutines above
// the open connections). Call it once, before Handler.
func (m *Metrics) ServeIdleWorkers(idle func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_workers_idle",
		Help: "Goroutines kept, with the stack they grew, to serve the next connections (at most 64, each for 10-20 s after its last connection).",
	}, func() float64 { return float64(idle()) }))
}

// ServeParked exports the gauge seclisten_connections_parked: open
// connections parked without a goroutine (counted in
// seclisten_connections_active too). Call it once, before Handler; parked
// is read at each scrape.
func (m *Metrics) ServeParked(parked func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "seclisten_connections_parked",
		Help: "Open connections parked: idle, with nothing buffered, waiting for their client without a goroutine (also counted as active).",
	}, func() float64 { return float64(parked()) }))
}
