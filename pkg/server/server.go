package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/acme"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/admit"
	"github.com/seclisten/seclisten/pkg/internal/ban"
	"github.com/seclisten/seclisten/pkg/internal/metrics"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/internal/park"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/revocation"
	"github.com/seclisten/seclisten/pkg/scavenge"
	"github.com/seclisten/seclisten/pkg/systemd"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// Server is seclisten's pipeline, built from a Config.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	printer *output.Printer
	tls     *tlsconf.Source // nil in plain mode
	acme    *acme.Manager   // nil unless certificates come from ACME
	ocsp    *ocsp.Client    // nil in plain mode
	health  *certHealth     // nil in plain mode
	h       *handler
	metrics *metrics.Metrics
	// poller parks idle connections (--park-after; Linux), nil if not.
	poller atomic.Pointer[park.Poller]
	// accepting is the listener serving, nil before Serve.
	accepting atomic.Pointer[listener.Server]
	// policy is the handler that new connections get: the one built at
	// start, then each one Apply builds. A connection keeps the one it
	// was accepted with.
	policy atomic.Pointer[handler]
	// reloadMu orders the changes of policy.
	reloadMu sync.Mutex
	// StartAttrs, if set, are added to the start-up log line (the
	// configuration file it came from, say).
	StartAttrs []any
	// draining is set when the shutdown starts: /readyz then says no.
	draining atomic.Bool

	// keyLog receives the TLS secrets (nil unless asked for).
	keyLog *os.File
	// revocation fetches CRLs from distribution points (nil unless
	// TLS.CRLFetchOn).
	revocation *revocation.Checker
	// fleet is the shared state in Redis (nil without it).
	fleet *fleetState

	// Listening, if set, is called once the server is listening on addr
	// and its side services (metrics, ACME) have started.
	Listening func(addr net.Addr)
	// Notifier, if set, is told the server's state as sd_notify(3) says:
	// READY=1 once listening with every certificate in service,
	// RELOADING=1 and READY=1 around Reload, STOPPING=1 when the drain
	// starts, and STATUS= lines (see systemd.go).
	Notifier *systemd.Notifier
	// Watchdog, if above zero, is the service manager's watchdog interval
	// (WATCHDOG_USEC): WATCHDOG=1 is sent every half of it while the
	// accept loop is not stuck.
	Watchdog time.Duration
	// ACMEHTTPListener, if set, serves ACME HTTP-01 instead of binding the
	// configured HTTP address (an inherited socket).
	ACMEHTTPListener net.Listener

	// sd is the state of the notifications (systemd.go).
	sd sdState

	// Flags, if set, names what governs an outcome (the program's flags,
	// say) for the log line that reports it; "" for nothing.
	Flags func(outcome.Code) string
	// Version is the program's version, for the build-info metric.
	Version string
	// Scavenge, if set, gives the heap's spare pages back to the system
	// while the process is quiet (pkg/scavenge), from the start of Serve
	// until the shutdown's last records; each return is logged at debug
	// (its Returned is the server's).
	Scavenge *scavenge.Options
	started  time.Time
}

// New builds the pipeline: it loads the TLS material (an error here is a
// start-up error) and prepares the printer. cfg must have passed Validate.
func New(cfg config.Config, log *slog.Logger, stdout io.Writer) (*Server, error) {
	format := output.Text
	if cfg.JSON {
		format = output.JSON
	}
	s := &Server{cfg: cfg, log: log, printer: output.New(stdout, format), metrics: metrics.New(), started: time.Now(),
		sd: newSDState()}
	s.metrics.ServeParked(func() int {
		if p := s.poller.Load(); p != nil {
			return p.Parked()
		}
		return 0
	})
	s.metrics.ServeIdleWorkers(func() int {
		if l := s.accepting.Load(); l != nil {
			return l.IdleWorkers()
		}
		return 0
	})
	if !cfg.Plain {
		opts := tlsOptions(cfg.TLS)
		if cfg.Fleet.Enabled() {
			if err := s.setupFleet(); err != nil {
				return nil, err
			}
			opts.ReplicaID = s.fleet.replica
		}
		s.setupOCSP()
		if cfg.TLS.CRLFetchOn() || cfg.TLS.OCSP {
			ro := revocation.Options{
				MaxSize:  cfg.TLS.CRLMaxSize,
				FailOpen: cfg.TLS.RevocationFailOpen,
				NoCRLs:   !cfg.TLS.CRLFetchOn(),
				Log:      log,
			}
			if cfg.TLS.OCSP {
				// OCSP first, the CRLs when it has no answer.
				ro.OCSP = s.askOCSP
				w := &unknownWarner{last: map[string]time.Time{}}
				ro.Unknown = func(err *revocation.UnknownError) { w.warn(s, err) }
			}
			s.revocation = revocation.New(ro)
			opts.Revocation = s.revocation
			s.metrics.Revocation(func() metrics.RevocationStats {
				st := s.revocation.Stats()
				return metrics.RevocationStats{Entries: st.Entries, Bytes: st.Bytes, Oldest: st.Oldest,
					Fetches: st.Fetches, Failures: st.Failures}
			})
		}
		if cfg.TLS.KeyLogFile != "" {
			f, err := openKeyLog(cfg.TLS.KeyLogFile)
			if err != nil {
				return nil, err
			}
			s.keyLog, opts.KeyLogWriter = f, f
		}
		if cfg.ACME.Enabled() {
			aopts, err := acmeOptions(cfg, log)
			if err != nil {
				return nil, err
			}
			aopts.OnCertificate = func(domain string, notAfter time.Time) {
				s.metrics.CertExpiry("acme", domain, notAfter)
				s.health.changed()
				s.sd.certChanged()
			}
			if s.fleet != nil {
				aopts.Storage = s.fleet.storage
			}
			if s.acme, err = acme.New(aopts); err != nil {
				return nil, err
			}
			opts.GetCertificate = s.acme.GetCertificate
			opts.ACMEChallenges = !cfg.ACME.DisableTLSALPN
		}
		src, err := tlsconf.New(opts)
		if err != nil {
			return nil, err
		}
		s.tls = src
		if s.fleet != nil {
			s.setupTickets()
		}
		s.health = newCertHealth(log, cfg.TLS.CertWarn, s.servedCerts)
	}
	l := cfg.Limits
	entries := limiterEntries(cfg.MaxConns)
	warner := newCertWarner(cfg.TLS.ClientCertWarn)
	s.metrics.ClientCertExpiry(func() (time.Time, bool) { return warner.earliest(time.Now()) })
	s.h = &handler{
		certWarn: warner,
		inFlight: &inFlight{conns: map[*conn]struct{}{}},
		hsLog:    newHandshakeLog(log),
		keyLog:   s.keyLog != nil,
		log:      log,
		printer:  s.printer,
		tls:      s.tls,
		metrics:  s.metrics,
		admit: admit.New(admit.Options{Allow: l.AllowCIDR, Deny: l.DenyCIDR, LimitLoopback: l.LimitLoopback,
			Limits: admit.Limits{
				Rate: rate.Limit(l.Rate), Burst: l.Burst, MaxConcurrent: l.MaxConnsPerIP, IPv6Prefix: l.IPv6Prefix,
				MaxEntries: entries,
			}}),
		reporter: admit.NewReporter(log, cfg.RejectLogInterval),
		bans:     newBans(cfg, entries),
		limits:   l,
		maxLine:  cfg.MaxLine,
		report:   cfg.Report,
		hsTime:   cfg.TLS.HandshakeTimeout,
		idle:     cfg.IdleTimeout,
		write:    cfg.WriteTimeout,
		opts: exchange.Options{
			Reply:   []byte(cfg.Reply),
			MaxLine: cfg.MaxLine,
			Once:    cfg.Once,
		},
	}
	if s.h.bans != nil {
		if s.fleet != nil {
			s.setupFleetBans()
		}
		s.metrics.ServeBans(bansAPI{s.h.bans, log, s.liftFleetBan})
	}
	s.policy.Store(s.h)
	s.metrics.Reloaded(time.Now())
	return s, nil
}

// newBans is the ban table of cfg, nil when bans are off. It keys clients
// as the limits do, exempts what they exempt (loopback unless
// LimitLoopback) and never bans the allow list, and is bounded like the
// limiter's table.
func newBans(cfg config.Config, entries int) *ban.Table {
	b, l := cfg.Bans, cfg.Limits
	if !b.Enabled() {
		return nil
	}
	return ban.New(ban.Options{After: b.After, Window: b.Window, For: b.For, Max: b.Max,
		IPv6Prefix: l.IPv6Prefix, Never: l.AllowCIDR, ExemptLoopback: !l.LimitLoopback, MaxEntries: entries})
}

// bansAPI is the ban table as the metrics server sees it: a lifted ban is
// logged ("unban 203.0.113.7 (lifted)").
type bansAPI struct {
	*ban.Table
	log *slog.Logger
	// fleet lifts the ban fleet-wide, and reports whether the fleet held
	// it (the fleet's bans.go).
	fleet func(key string) bool
}

func (b bansAPI) Lift(key string) (bool, error) {
	lifted, ok, err := b.Table.Lift(key)
	if ok {
		b.log.Info("unban "+lifted.Key+" (lifted)", "key", lifted.Key, "lifted", true)
	}
	if err == nil {
		k, _ := b.Table.ParseKey(key)
		ok = b.fleet(b.Table.Key(k)) || ok
	}
	return ok, err
}

// sweepBans logs each ban's end ("unban 203.0.113.7"), once, when it
// comes, until done is closed. A ban evicted from a full table ends early
// ("unban 203.0.113.7 (evicted)").
func sweepBans(t *ban.Table, log *slog.Logger, done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ended, unlisted, next := t.Sweep()
		for _, b := range ended {
			if b.Evicted {
				log.Info("unban "+b.Key+" (evicted)", "key", b.Key, "evicted", true)
				continue
			}
			log.Info("unban "+b.Key, "key", b.Key)
		}
		if unlisted > 0 {
			log.Warn("ban table full: more bans ended early, unlisted", "count", unlisted)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-t.Changed():
		case <-done:
			return
		}
	}
}

// limiterEntries bounds the per-IP table: admit.DefaultMaxEntries (100,000
// entries, about 19 MiB when full), and never fewer than four times the
// connection cap, so every address with a live connection always fits and
// the table is never full of active entries.
func limiterEntries(maxConns int) int {
	return max(admit.DefaultMaxEntries, 4*maxConns)
}

// tlsOptions are the tlsconf.Options of the TLS settings t.
func tlsOptions(t config.TLS) tlsconf.Options {
	return tlsconf.Options{
		CertFile:      t.CertFile,
		KeyFile:       t.KeyFile,
		ClientCAFiles: t.ClientCAFiles,
		CRLFiles:      t.CRLFiles,
		CRLAllowStale: t.CRLAllowStale,
		ClientAuth:    t.ClientAuthMode(),
		Explain:       t.Explain,
		HideCANames:   t.HideClientCANames,
		Allow:         t.Allow,
		MinVersion:    t.MinVersion,
		ALPN:          t.ALPN,
	}
}

// acmeOptions are the acme.Options of cfg's ACME settings: the CA (Let's
// Encrypt's staging or production one unless a CA is named), the on-demand
// gate, the listener's port for TLS-ALPN-01, and the CA roots, read here.
func acmeOptions(cfg config.Config, log *slog.Logger) (acme.Options, error) {
	a := cfg.ACME
	opts := acme.Options{
		Domains:            a.Domains,
		Email:              a.Email,
		Agreed:             a.Agree,
		CA:                 a.CA,
		EABKeyID:           a.EABKeyID,
		EABHMAC:            a.EABMAC,
		Profile:            a.Profile,
		StorageDir:         a.Storage,
		HTTPAddr:           a.HTTPListen(),
		AltHTTPPort:        a.AltHTTPPort,
		AltTLSALPNPort:     a.AltTLSALPNPort,
		OnDemand:           a.OnDemand,
		RenewCheckInterval: a.RenewCheckInterval,
		Logger:             log,
	}
	switch {
	case a.Staging:
		opts.CA = certmagic.LetsEncryptStagingCA
	case a.CA == "":
		opts.CA = certmagic.LetsEncryptProductionCA
	}
	if a.OnDemand {
		opts.Gate = &acme.Gate{Patterns: a.OnDemandAllow, Ask: a.Ask}
	}
	if !a.DisableTLSALPN {
		opts.TLSALPNPort = cfg.ListenPort()
	}
	if a.CARootFile != "" {
		data, err := os.ReadFile(a.CARootFile)
		if err != nil {
			return opts, fmt.Errorf("load ACME CA root: %w", err)
		}
		opts.CARoots = x509.NewCertPool()
		if !opts.CARoots.AppendCertsFromPEM(data) {
			return opts, fmt.Errorf("load ACME CA root %q: no PEM certificate found", a.CARootFile)
		}
	}
	return opts, nil
}

// Run listens as the Config says and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := listener.Listen(ctx, s.cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.ListenAddr(), err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully within the
// configured timeout and closes ln. It returns nil after a shutdown, even
// one that had to close connections when the timeout ran out (that is
// logged), and an error if accepting failed for good.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	// Last, once every connection (parked ones too) has ended: what they
	// printed is on stdout when Serve returns.
	defer s.printer.Flush()
	// The policy in service (New's, or one a reload put in service since)
	// learns how to name what governs an outcome.
	s.reloadMu.Lock()
	h := *s.policy.Load()
	h.flags = s.Flags
	h.refusals = refusals(h.limits, s.cfg.Bans, limiterEntries(s.cfg.MaxConns), s.Flags)
	s.policy.Store(&h)
	s.reloadMu.Unlock()
	// Before the log says the server listens: what it holds then is its
	// rest state (the tests count its descriptors).
	defer s.startPoller()()
	s.logStart(ln.Addr())
	s.recordCertExpiry()
	s.metrics.BuildInfo(s.Version, runtime.Version(), s.started)
	stop, err := s.startServices(ctx)
	if err != nil {
		return err
	}
	// The side services outlive the drain, so /readyz can say 503 while
	// the last clients are answered.
	defer stop()
	return s.serve(ctx, ln)
}

// startPoller starts the poller that parks idle connections
// (--park-after), on Linux, and returns what stops it: after the drain,
// when every parked connection has woken and ended.
func (s *Server) startPoller() (stop func()) {
	if s.cfg.ParkAfter <= 0 {
		return func() {}
	}
	p, err := park.New()
	if err != nil {
		if !errors.Is(err, park.ErrUnsupported) {
			s.log.Warn("idle connections keep a goroutine each: cannot start the poller that parks them", "err", err)
		}
		return func() {}
	}
	s.poller.Store(p)
	return func() { _ = p.Close() }
}

// startServices starts what runs beside the listener: the refusal log's
// summaries, the metrics server, ACME and the watch on the TLS files.
// stop ends them, in the reverse order.
func (s *Server) startServices(ctx context.Context) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()

	reporterDone, reporterStopped := make(chan struct{}), make(chan struct{})
	go func() {
		s.h.reporter.Run(reporterDone)
		close(reporterStopped)
	}()
	stops = append(stops, func() { close(reporterDone); <-reporterStopped })

	if s.h.bans != nil {
		sweepDone, sweepStopped := make(chan struct{}), make(chan struct{})
		go func() {
			sweepBans(s.h.bans, s.log, sweepDone)
			close(sweepStopped)
		}()
		stops = append(stops, func() { close(sweepDone); <-sweepStopped })
	}

	if s.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		s.log.Info("serving metrics", "addr", mln.Addr().String(), "paths", "/metrics /healthz /readyz /bans")
		mctx, stopMetrics := context.WithCancel(context.Background())
		metricsDone := make(chan struct{})
		go func() {
			defer close(metricsDone)
			if err := metrics.Serve(mctx, mln, s.metrics.Handler(s.ready)); err != nil {
				s.log.Warn("metrics server failed", "err", err)
			}
		}()
		stops = append(stops, func() { stopMetrics(); <-metricsDone })
	}
	if s.fleet != nil {
		// Before ACME, whose storage it is.
		stops = append(stops, s.startFleet(ctx), s.startFleetLimits(ctx))
	}
	if s.acme != nil {
		if err := s.acme.Start(ctx, s.ACMEHTTPListener); err != nil {
			return nil, err
		}
		stops = append(stops, s.acme.Stop)
	}
	if s.keyLog != nil {
		kctx, stopWarning := context.WithCancel(ctx)
		go s.warnKeyLog(kctx)
		stops = append(stops, stopWarning, func() { _ = s.keyLog.Close() })
	}
	if s.revocation != nil {
		rctx, stopRefresh := context.WithCancel(ctx)
		go s.revocation.Run(rctx, time.Second)
		stops = append(stops, stopRefresh)
	}
	if s.health != nil {
		hctx, stopHealth := context.WithCancel(context.Background())
		healthDone := s.health.start(hctx)
		stops = append(stops, func() { stopHealth(); <-healthDone })
	}
	if s.tls != nil {
		wctx, stopWatch := context.WithCancel(ctx)
		go s.tls.Watch(wctx, s.cfg.TLS.ReloadInterval, func(err error) { s.logReload("file change", err) })
		stops = append(stops, stopWatch)
		sctx, stopStapling := context.WithCancel(ctx)
		stapled := make(chan struct{})
		go func() {
			defer close(stapled)
			s.staple(sctx)
		}()
		stops = append(stops, func() { stopStapling(); <-stapled })
	}
	return stop, nil
}

// warnKeyLog says, at start and every minute until ctx ends, that the
// session keys are being written: a key log left on by mistake makes every
// captured session readable.
func (s *Server) warnKeyLog(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		s.log.Warn("writing TLS session keys: anyone who reads the file can decrypt the traffic it covers",
			"keylog", s.keyLog.Name())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serve runs the accept loop on ln until ctx ends (then drains within the
// shutdown timeout) or, with ExitAfter, until every connection asked for
// has been served.
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	// The heap's returns end before the last records (and, should
	// serving fail, at its return).
	stopScavenge := s.startScavenge()
	defer stopScavenge()
	srv := listener.New(listener.Options{
		MaxConns:     s.cfg.MaxConns,
		IdleTimeout:  s.cfg.IdleTimeout,
		WriteTimeout: s.cfg.WriteTimeout,
		MaxLifetime:  s.cfg.Limits.MaxLifetime,
		MaxAccepts:   s.cfg.ExitAfter,
		Logger:       s.log,
		Poller:       s.poller.Load(),
		ParkAfter:    s.cfg.ParkAfter,
		Timeouts: func() (idle, write, lifetime time.Duration) {
			h := s.policy.Load()
			return h.idle, h.write, h.limits.MaxLifetime
		},
	}, func(ctx context.Context, lc *listener.Conn) { s.policy.Load().serve(ctx, lc) })
	s.accepting.Store(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if s.Listening != nil {
		s.Listening(ln.Addr())
	}
	stopNotify := s.superviseSystemd(ln.Addr(), srv)
	defer stopNotify()
	select {
	case err := <-errc:
		if errors.Is(err, listener.ErrAcceptLimit) {
			s.notifyStopping(srv)
			stopScavenge()
			s.h.hsLog.summarise()
			s.log.Info("served every connection asked for: exiting", "connections", s.cfg.ExitAfter)
			return nil
		}
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.draining.Store(true)
	s.notifyStopping(srv)
	s.log.Info("shutting down: finishing what clients already sent",
		"active_conns", srv.Active(), "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, listener.ErrServerClosed) {
		s.log.Warn("accept loop ended with an error", "err", err)
	}
	stopScavenge()
	s.h.hsLog.summarise() // the last handshake lines held back, if any
	s.log.Info("stopped")
	return nil
}

// startScavenge starts the heap's returns if Scavenge asks for them, and
// returns what stops them (a no-op otherwise; safe to call twice).
func (s *Server) startScavenge() (stop func()) {
	if s.Scavenge == nil {
		return func() {}
	}
	o := *s.Scavenge
	o.Returned = func(before, after uint64) {
		s.log.Debug("free heap returned to the system", "bytes", before-min(after, before))
	}
	return scavenge.Start(o)
}

// Reload reloads the certificate, key, client CAs and CRLs (on SIGHUP). A
// broken file keeps the material in service; the log says why either way.
func (s *Server) Reload() {
	defer s.notifyReloading()()
	if s.tls == nil {
		s.log.Info("reload: nothing to reload in plain mode")
		return
	}
	s.logReload("SIGHUP", s.tls.Reload())
}

func (s *Server) logReload(trigger string, err error) {
	if err != nil {
		s.log.Warn("reload failed: keeping the TLS material in service", "trigger", trigger, "err", err)
		return
	}
	s.log.Info("reloaded TLS material", append([]any{"trigger", trigger}, s.materialAttrs()...)...)
	s.recordCertExpiry()
	s.health.reloaded()
}

// ready is /readyz: certificates in service, and not shutting down.
func (s *Server) ready() (bool, string) {
	switch {
	case s.draining.Load():
		return false, "shutting down"
	case s.acme != nil && !s.acme.Ready():
		return false, "waiting for ACME certificates"
	case s.health != nil && s.health.unhealthy() != "":
		return false, s.health.unhealthy()
	}
	return s.fleetReady()
}

// servedCerts are the server certificates in service: the file or
// ephemeral one, or those obtained by ACME.
func (s *Server) servedCerts() []servedCert {
	var out []servedCert
	if m := s.tls.Current(); m.Cert != nil {
		if leaf, err := tlsconf.Leaf(m.Cert); err == nil {
			source := "file"
			if m.Ephemeral {
				source = "ephemeral"
			}
			out = append(out, servedCert{leaf: leaf, source: source})
		}
	}
	if s.acme != nil {
		for _, leaf := range s.acme.InService() {
			out = append(out, servedCert{leaf: leaf, source: "acme"})
		}
	}
	return out
}

// recordCertExpiry puts the file or ephemeral certificate's expiry in the
// metrics (ACME certificates report their own).
func (s *Server) recordCertExpiry() {
	if s.tls == nil {
		return
	}
	m := s.tls.Current()
	if m.Cert == nil {
		return
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil {
		return
	}
	source := "file"
	if m.Ephemeral {
		source = "ephemeral"
	}
	name := leaf.Subject.CommonName
	if name == "" && len(leaf.DNSNames) > 0 {
		name = leaf.DNSNames[0]
	}
	s.metrics.CertExpiry(source, name, leaf.NotAfter)
}

func (s *Server) logStart(addr net.Addr) {
	attrs := append([]any{"addr", addr.String()}, s.StartAttrs...)
	if s.tls == nil {
		attrs = append(attrs, "mode", "plain")
	} else {
		attrs = append(attrs, "mode", "tls", "tls_min", tlsconf.VersionName(s.cfg.TLS.MinVersion),
			"client_auth", s.cfg.TLS.ClientAuthMode().String())
		if s.cfg.TLS.Explain {
			attrs = append(attrs, "explain", true)
		}
		if s.revocation != nil {
			fail := "closed"
			if s.cfg.TLS.RevocationFailOpen {
				fail = "open"
			}
			attrs = append(attrs, "crl_fetch", s.cfg.TLS.CRLFetchOn(), "ocsp", s.cfg.TLS.OCSP, "revocation_fail", fail)
		}
		attrs = append(attrs, allowlistAttrs(s.cfg.TLS.Allow)...)
	}
	if s.fleet != nil {
		fail := "open"
		if s.cfg.Fleet.FailClosed {
			fail = "closed"
		}
		attrs = append(attrs, "redis", redactedURL(s.cfg.Fleet.Redis), "redis_prefix", s.cfg.Fleet.Prefix, "redis_fail", fail, "replica", s.fleet.replica)
	}
	attrs = append(attrs, s.limitAttrs()...)
	if s.tls != nil {
		attrs = append(attrs, s.materialAttrs()...)
	}
	s.log.Info("listening", attrs...)
}

// limitAttrs are every limit, list and timeout in force, for the start-up
// line: an operator reads in one place what the server will refuse.
func (s *Server) limitAttrs() []any {
	l := s.cfg.Limits
	attrs := []any{"max_conns", s.cfg.MaxConns,
		"rate", l.Rate, "burst", l.Burst, "max_conns_per_ip", l.MaxConnsPerIP,
		"loopback_exempt", !l.LimitLoopback,
		"msg_rate", l.MsgRate, "msg_burst", l.MsgBurst, "max_line", s.cfg.MaxLine}
	if s.tls != nil {
		attrs = append(attrs, "handshake_timeout", s.cfg.TLS.HandshakeTimeout)
	}
	attrs = append(attrs, "idle_timeout", s.cfg.IdleTimeout,
		"write_timeout", s.cfg.WriteTimeout, "max_lifetime", l.MaxLifetime)
	if len(l.AllowCIDR) > 0 {
		attrs = append(attrs, "allow_cidr", prefixes(l.AllowCIDR))
	}
	if len(l.DenyCIDR) > 0 {
		attrs = append(attrs, "deny_cidr", prefixes(l.DenyCIDR))
	}
	if b := s.cfg.Bans; b.Enabled() {
		attrs = append(attrs, "ban_after", fmt.Sprintf("%d/%s", b.After, b.Window), "ban_for", b.For, "ban_max", b.Max)
	}
	if l.ProxyProtocol {
		attrs = append(attrs, "proxy_protocol", true, "trusted_proxies", prefixes(l.TrustedProxies))
	}
	if s.cfg.ExitAfter > 0 {
		attrs = append(attrs, "exit_after", s.cfg.ExitAfter)
	}
	return attrs
}

// allowlistAttrs are the client-certificate allowlists in force, if any.
func allowlistAttrs(allow identity.Allowlist) []any {
	var attrs []any
	for _, a := range []struct {
		key  string
		list []string
	}{{"allow_cn", allow.CN}, {"allow_ou", allow.OU}, {"allow_dns", allow.DNS}, {"allow_uri", allow.URI}} {
		if len(a.list) > 0 {
			attrs = append(attrs, a.key, a.list)
		}
	}
	return attrs
}

// materialAttrs describe the server certificate in service.
func (s *Server) materialAttrs() []any {
	m := s.tls.Current()
	if m.Cert == nil {
		attrs := []any{"cert", "acme", "acme_domains", s.cfg.ACME.Domains, "acme_on_demand", s.cfg.ACME.OnDemand}
		if len(m.CAs) > 0 {
			attrs = append(attrs, "client_cas", len(m.CAs), "crls", len(m.CRLs))
		}
		return attrs
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil {
		return []any{"cert_err", err}
	}
	id := identity.FromCertificate(leaf)
	attrs := output.CertAttrs(nil, "cert_", &id)
	if m.Ephemeral {
		attrs = append(attrs, "cert", "ephemeral self-signed (no certificate file given)")
	}
	if len(m.CAs) > 0 {
		attrs = append(attrs, "client_cas", len(m.CAs), "crls", len(m.CRLs))
	}
	return attrs
}
