package server

import (
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/internal/admit"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/sanitize"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// Apply puts the policy of cfg, which must have passed Validate, in
// service for new connections, atomically: the address and CIDR lists,
// the per-IP and message limits, the reply and the exchange settings, the
// timeouts, and the TLS material and its options (allowlists, client CAs,
// CRLs, client-auth mode, minimum version, ALPN). Connections in flight
// keep the policy they were accepted under.
//
// What is wired at start cannot change without a restart: restart names
// the settings (by key) that cfg changes from the start, and that are
// kept as they are. On an error (a TLS file that does not load) nothing
// changes.
func (s *Server) Apply(cfg config.Config) (restart []string, err error) {
	defer s.notifyReloading()()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	restart = restartOnly(s.cfg, cfg)
	if s.tls != nil {
		cur := s.tls.Options()
		opts := tlsOptions(cfg.TLS)
		// Wired at start: the certificate source, the key log and the
		// revocation checker (CRL fetching, OCSP: restart-only settings).
		opts.GetCertificate, opts.ACMEChallenges, opts.KeyLogWriter = cur.GetCertificate, cur.ACMEChallenges, cur.KeyLogWriter
		opts.Revocation = cur.Revocation
		if err := s.tls.Update(opts); err != nil {
			return restart, err
		}
		s.log.Info("reloaded TLS material", append([]any{"trigger", "SIGHUP"}, s.materialAttrs()...)...)
		s.recordCertExpiry()
		s.health.reloaded()
	}
	old := s.policy.Load()
	h := *old
	l := cfg.Limits
	// What needs a restart stays as it was at start.
	l.ProxyProtocol = s.cfg.Limits.ProxyProtocol
	entries := limiterEntries(s.cfg.MaxConns)
	h.admit = old.admit.With(admit.Options{Allow: l.AllowCIDR, Deny: l.DenyCIDR, LimitLoopback: l.LimitLoopback,
		Limits: admit.Limits{
			Rate: rate.Limit(l.Rate), Burst: l.Burst, MaxConcurrent: l.MaxConnsPerIP, IPv6Prefix: l.IPv6Prefix,
			MaxEntries: entries,
		}})
	h.limits = l
	h.refusals = refusals(l, s.cfg.Bans, entries, h.flags)
	h.maxLine = cfg.MaxLine
	h.report = cfg.Report
	h.hsTime = cfg.TLS.HandshakeTimeout
	h.idle, h.write = cfg.IdleTimeout, cfg.WriteTimeout
	h.opts = exchange.Options{Reply: []byte(cfg.Reply), MaxLine: cfg.MaxLine, Once: cfg.Once}
	s.policy.Store(&h)
	s.metrics.Reloaded(time.Now())
	if cfg.ReloadClosesDenied {
		s.closeDenied(&h)
	}
	return restart, nil
}

// closeDenied closes the connections in flight whose client the policy of
// h refuses: an address its lists deny, or a verified client certificate
// that the TLS material in service now refuses (revoked, not in the
// allowlists, or no longer chaining to a client CA).
func (s *Server) closeDenied(h *handler) {
	mode := tlsconf.NoClientCert
	if s.tls != nil {
		mode = s.tls.Options().ClientAuth
	}
	for _, c := range h.inFlight.list() {
		why, denied := h.admit.Denies(c.addr)
		attrs := []any{"code", outcome.ReloadDenied}
		if denied {
			attrs = append(attrs, "refused_by", why)
		} else if certs := c.certs.Load(); certs != nil && (mode == tlsconf.Require || mode == tlsconf.VerifyIfGiven) {
			if err := s.tls.Judge(*certs); err != nil {
				denied = true
				attrs = append(attrs, "err", sanitize.String([]byte(err.Error())))
			}
		}
		if denied {
			c.denied.Store(true)
			c.log.Warn("closed: the reloaded policy refuses this client", h.withFlags(outcome.ReloadDenied, attrs...)...)
			c.lc.CloseNow()
		}
	}
}

// inFlight is the set of admitted connections.
type inFlight struct {
	mu    sync.Mutex
	conns map[*conn]struct{}
}

func (f *inFlight) add(c *conn) {
	f.mu.Lock()
	f.conns[c] = struct{}{}
	f.mu.Unlock()
}

func (f *inFlight) remove(c *conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *inFlight) list() []*conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := make([]*conn, 0, len(f.conns))
	for c := range f.conns {
		list = append(list, c)
	}
	return list
}

// ReloadFailed counts a reload that was refused (its configuration did not
// validate): the policy in service stays.
func (s *Server) ReloadFailed() { s.metrics.ReloadFailed() }

// restartOnly names, by key, the settings wired at start that b changes
// from a: the listening socket, the output, the metrics server, ACME and
// the parts built once (the connection cap, the refusal log, the client
// certificate warnings).
func restartOnly(a, b config.Config) []string {
	var keys []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"addr", a.ListenAddr() != b.ListenAddr()},
		{"plain", a.Plain != b.Plain},
		{"proxy-protocol", a.Limits.ProxyProtocol != b.Limits.ProxyProtocol},
		{"max-conns", a.MaxConns != b.MaxConns},
		{"exit-after", a.ExitAfter != b.ExitAfter},
		{"park-after", a.ParkAfter != b.ParkAfter},
		{"shutdown-timeout", a.ShutdownTimeout != b.ShutdownTimeout},
		{"json", a.JSON != b.JSON},
		{"log-format", a.LogFormat != b.LogFormat},
		{"log-level", a.LogLevel != b.LogLevel},
		{"metrics-addr", a.MetricsAddr != b.MetricsAddr},
		{"reject-log-interval", a.RejectLogInterval != b.RejectLogInterval},
		{"keylog", a.TLS.KeyLogFile != b.TLS.KeyLogFile},
		{"client-cert-warn", a.TLS.ClientCertWarn != b.TLS.ClientCertWarn},
		{"cert-warn", a.TLS.CertWarn != b.TLS.CertWarn},
		{"crl-fetch", a.TLS.CRLFetchOn() != b.TLS.CRLFetchOn()},
		{"crl-max-size", a.TLS.CRLMaxSize != b.TLS.CRLMaxSize},
		{"ocsp", a.TLS.OCSP != b.TLS.OCSP},
		{"revocation-fail", a.TLS.RevocationFailOpen != b.TLS.RevocationFailOpen},
		{"ban-after", a.Bans.After != b.Bans.After || a.Bans.Window != b.Bans.Window},
		{"ban-for", a.Bans.For != b.Bans.For},
		{"ban-max", a.Bans.Max != b.Bans.Max},
		{"redis", a.Fleet.Redis != b.Fleet.Redis},
		{"redis-prefix", a.Fleet.Prefix != b.Fleet.Prefix},
		{"redis-fail", a.Fleet.FailClosed != b.Fleet.FailClosed},
		{"ticket-key-rotation", a.Fleet.TicketKeyRotation != b.Fleet.TicketKeyRotation},
		{"redis-lock-ttl", a.Fleet.LockTTL != b.Fleet.LockTTL},
		{"acme-domain", !slices.Equal(a.ACME.Domains, b.ACME.Domains)},
		{"acme-email", a.ACME.Email != b.ACME.Email},
		{"acme-agree", a.ACME.Agree != b.ACME.Agree},
		{"acme-ca", a.ACME.CA != b.ACME.CA},
		{"acme-staging", a.ACME.Staging != b.ACME.Staging},
		{"acme-ca-root", a.ACME.CARootFile != b.ACME.CARootFile},
		{"acme-eab-kid", a.ACME.EABKeyID != b.ACME.EABKeyID},
		{"acme-eab-hmac", a.ACME.EABMAC != b.ACME.EABMAC},
		{"acme-profile", a.ACME.Profile != b.ACME.Profile},
		{"acme-storage", a.ACME.Storage != b.ACME.Storage},
		{"acme-http-addr", a.ACME.HTTPAddr != b.ACME.HTTPAddr},
		{"acme-alt-http-port", a.ACME.AltHTTPPort != b.ACME.AltHTTPPort},
		{"acme-alt-tls-alpn-port", a.ACME.AltTLSALPNPort != b.ACME.AltTLSALPNPort},
		{"acme-on-demand", a.ACME.OnDemand != b.ACME.OnDemand},
		{"acme-disable-tls-alpn", a.ACME.DisableTLSALPN != b.ACME.DisableTLSALPN},
		{"acme-on-demand-allow", !slices.Equal(a.ACME.OnDemandAllow, b.ACME.OnDemandAllow)},
		{"acme-ask", a.ACME.Ask != b.ACME.Ask},
		{"acme-renew-check-interval", a.ACME.RenewCheckInterval != b.ACME.RenewCheckInterval},
	} {
		if c.changed {
			keys = append(keys, c.key)
		}
	}
	return keys
}
