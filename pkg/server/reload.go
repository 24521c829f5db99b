package server

import (
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/internal/admit"
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
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	restart = restartOnly(s.cfg, cfg)
	if s.tls != nil {
		cur := s.tls.Options()
		opts := tlsOptions(cfg.TLS)
		opts.GetCertificate, opts.ACMEChallenges, opts.KeyLogWriter = cur.GetCertificate, cur.ACMEChallenges, cur.KeyLogWriter
		if err := s.tls.Update(opts); err != nil {
			return restart, err
		}
		s.recordCertExpiry()
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
	h.refusals = refusals(l, entries, h.flags)
	h.maxLine = cfg.MaxLine
	h.report = cfg.Report
	h.hsTime = cfg.TLS.HandshakeTimeout
	h.idle, h.write = cfg.IdleTimeout, cfg.WriteTimeout
	h.opts = exchange.Options{Reply: []byte(cfg.Reply), MaxLine: cfg.MaxLine, Once: cfg.Once}
	s.policy.Store(&h)
	s.live.Store(&cfg)
	s.metrics.Reloaded(time.Now())
	return restart, nil
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
		{"shutdown-timeout", a.ShutdownTimeout != b.ShutdownTimeout},
		{"json", a.JSON != b.JSON},
		{"log-format", a.LogFormat != b.LogFormat},
		{"log-level", a.LogLevel != b.LogLevel},
		{"metrics-addr", a.MetricsAddr != b.MetricsAddr},
		{"reject-log-interval", a.RejectLogInterval != b.RejectLogInterval},
		{"keylog", a.TLS.KeyLogFile != b.TLS.KeyLogFile},
		{"client-cert-warn", a.TLS.ClientCertWarn != b.TLS.ClientCertWarn},
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
