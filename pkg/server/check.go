package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// Section is one part of a Check: its name, a summary when it is good, and
// its problems.
type Section struct {
	Name     string
	Summary  string
	Problems []error
}

// Check loads what New would load for cfg, short of listening and of
// starting ACME: the certificate and key (that they match, the chain's
// order, the days to expiry), the client CAs, the CRLs, the ACME CA roots,
// and describes the limits. It uses the loaders serving uses (tlsconf.New,
// acmeOptions), so the two cannot disagree. Each section reports every
// problem it finds; a Config that did not validate is checked all the
// same, to find every problem at once.
func Check(cfg config.Config, now time.Time) []Section {
	return []Section{checkCert(cfg, now), checkClientCAs(cfg), checkCRLs(cfg, now), checkACME(cfg), checkLimits(cfg)}
}

// load runs tlsconf.New on opts. Options that break tlsconf's rules (a
// certificate without its key, say) panic there; they are problems of the
// Config, which Validate reports, so here they only end the section.
func load(opts tlsconf.Options) (m *tlsconf.Material, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("not checked: %v", v)
		}
	}()
	src, err := tlsconf.New(opts)
	if err != nil {
		return nil, err
	}
	return src.Current(), nil
}

func checkCert(cfg config.Config, now time.Time) Section {
	s := Section{Name: "certificate"}
	switch {
	case cfg.Plain:
		s.Summary = "none (plain TCP)"
		return s
	case cfg.ACME.Enabled():
		s.Summary = "from ACME (see ACME)"
		return s
	case cfg.TLS.CertFile == "" && cfg.TLS.KeyFile == "":
		s.Summary = "ephemeral self-signed (no certificate file given)"
		return s
	}
	m, err := load(tlsconf.Options{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile})
	if err != nil {
		s.Problems = append(s.Problems, err)
		return s
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil {
		s.Problems = append(s.Problems, err)
		return s
	}
	chain := len(m.Cert.Certificate)
	for i := 1; i < chain; i++ {
		child, err1 := x509.ParseCertificate(m.Cert.Certificate[i-1])
		parent, err2 := x509.ParseCertificate(m.Cert.Certificate[i])
		if err := errors.Join(err1, err2); err != nil {
			s.Problems = append(s.Problems, fmt.Errorf("certificate %q: the chain does not parse: %w", cfg.TLS.CertFile, err))
			break
		}
		if err := child.CheckSignatureFrom(parent); err != nil {
			s.Problems = append(s.Problems, fmt.Errorf("certificate %q: certificate %d of the chain (%s) is not signed by the next one (%s): the chain is out of order or incomplete",
				cfg.TLS.CertFile, i, child.Subject, parent.Subject))
			break
		}
	}
	days := int(leaf.NotAfter.Sub(now).Hours() / 24)
	switch {
	case now.After(leaf.NotAfter):
		s.Problems = append(s.Problems, fmt.Errorf("certificate %q (%s) expired %d days ago", cfg.TLS.CertFile, leaf.Subject, -days))
	case now.Before(leaf.NotBefore):
		s.Problems = append(s.Problems, fmt.Errorf("certificate %q (%s) is not valid before %s", cfg.TLS.CertFile, leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	name := "CN=" + leaf.Subject.CommonName
	if leaf.Subject.CommonName == "" && len(leaf.DNSNames) > 0 {
		name = "DNS:" + leaf.DNSNames[0]
	}
	s.Summary = fmt.Sprintf("ok (%s, expires in %d days, chain of %d)", name, days, chain)
	return s
}

func checkClientCAs(cfg config.Config) Section {
	s := Section{Name: "client CAs"}
	if cfg.Plain || len(cfg.TLS.ClientCAFiles) == 0 {
		s.Summary = "none (no client certificates asked for)"
		return s
	}
	for _, f := range cfg.TLS.ClientCAFiles {
		if _, err := load(tlsconf.Options{ClientCAFiles: []string{f}, ClientAuth: tlsconf.Require}); err != nil {
			s.Problems = append(s.Problems, err)
		}
	}
	if len(s.Problems) == 0 {
		m, err := load(tlsconf.Options{ClientCAFiles: cfg.TLS.ClientCAFiles, ClientAuth: tlsconf.Require})
		if err != nil {
			s.Problems = append(s.Problems, err)
			return s
		}
		s.Summary = fmt.Sprintf("ok (%s, mode %s)", plural(len(m.CAs), "CA"), cfg.TLS.ClientAuthMode())
	}
	return s
}

func checkCRLs(cfg config.Config, now time.Time) Section {
	s := Section{Name: "CRLs"}
	if cfg.Plain || len(cfg.TLS.CRLFiles) == 0 {
		s.Summary = "none"
		return s
	}
	if _, err := load(tlsconf.Options{ClientCAFiles: cfg.TLS.ClientCAFiles, ClientAuth: tlsconf.Require}); err != nil {
		s.Summary = "not checked (the client CAs do not load)"
		return s
	}
	var lists int
	var next time.Time
	for _, f := range cfg.TLS.CRLFiles {
		m, err := load(tlsconf.Options{ClientCAFiles: cfg.TLS.ClientCAFiles, CRLFiles: []string{f}, ClientAuth: tlsconf.Require})
		if err != nil {
			s.Problems = append(s.Problems, err)
			continue
		}
		for _, l := range m.CRLs {
			lists++
			nu := l.NextUpdate
			if !nu.IsZero() && now.After(nu) && !cfg.TLS.CRLAllowStale {
				s.Problems = append(s.Problems, fmt.Errorf("CRL %q of %s is stale: its next update was due %d days ago (revocation fails closed)",
					f, l.Issuer.Subject, int(now.Sub(nu).Hours()/24)))
			}
			if !nu.IsZero() && (next.IsZero() || nu.Before(next)) {
				next = nu
			}
		}
	}
	if len(s.Problems) == 0 {
		s.Summary = "ok (" + plural(lists, "CRL")
		if !next.IsZero() {
			s.Summary += fmt.Sprintf(", next update in %d days", int(next.Sub(now).Hours()/24))
		}
		s.Summary += ")"
	}
	return s
}

func checkACME(cfg config.Config) Section {
	s := Section{Name: "ACME"}
	if cfg.Plain || !cfg.ACME.Enabled() {
		s.Summary = "off"
		return s
	}
	opts, err := acmeOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		s.Problems = append(s.Problems, err)
		return s
	}
	what := strings.Join(cfg.ACME.Domains, ", ")
	if cfg.ACME.OnDemand {
		what = strings.TrimPrefix(what+", on demand", ", ")
	}
	s.Summary = fmt.Sprintf("on (%s; CA %s; storage %s)", what, opts.CA, opts.StorageDir)
	return s
}

func checkLimits(cfg config.Config) Section {
	l := cfg.Limits
	s := Section{Name: "limits", Summary: fmt.Sprintf("rate %g/s burst %d, max-conns-per-ip %d, max-conns %d, msg-rate %g/s burst %d, max-line %d, idle-timeout %s, max-lifetime %s",
		l.Rate, l.Burst, l.MaxConnsPerIP, cfg.MaxConns, l.MsgRate, l.MsgBurst, cfg.MaxLine, cfg.IdleTimeout, l.MaxLifetime)}
	if len(l.AllowCIDR) > 0 {
		s.Summary += fmt.Sprintf(", allow-cidr %v", prefixes(l.AllowCIDR))
	}
	if len(l.DenyCIDR) > 0 {
		s.Summary += fmt.Sprintf(", deny-cidr %v", prefixes(l.DenyCIDR))
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
