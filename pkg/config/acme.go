package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// ACME holds the automatic-certificate settings of Config.
type ACME struct {
	// Domains are managed from the start.
	Domains []string
	Email   string
	// Agree accepts the CA's terms of service.
	Agree bool
	// CA is the directory URL; empty means Let's Encrypt production, or
	// staging with Staging.
	CA      string
	Staging bool
	// CARootFile is a PEM bundle trusted for the CA's API.
	CARootFile       string
	EABKeyID, EABMAC string
	Profile          string
	// Storage is the directory of accounts, keys and certificates.
	Storage string
	// HTTPAddr answers HTTP-01: "" means ":80", "off" disables it.
	HTTPAddr string
	// DisableTLSALPN stops answering TLS-ALPN-01 on the listener.
	DisableTLSALPN              bool
	AltHTTPPort, AltTLSALPNPort int
	OnDemand                    bool
	OnDemandAllow               []string
	Ask                         string
	// RenewCheckInterval is the longest wait between renewal checks (0:
	// certmagic's default, 10 minutes); a tenth of the shortest lifetime in
	// service is used if shorter. Only tests change it.
	RenewCheckInterval time.Duration
}

// Enabled reports whether certificates come from ACME.
func (a *ACME) Enabled() bool { return len(a.Domains) > 0 || a.OnDemand }

// HTTPListen is the HTTP-01 address, or "" when disabled.
func (a *ACME) HTTPListen() string {
	switch a.HTTPAddr {
	case "off":
		return ""
	case "":
		return ":80"
	}
	return a.HTTPAddr
}

func (a *ACME) validate(c *Config) error {
	if !a.Enabled() {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"`acme-email`", a.Email != ""}, {"`acme-agree`", a.Agree}, {"`acme-ca`", a.CA != ""},
			{"`acme-staging`", a.Staging}, {"`acme-ca-root`", a.CARootFile != ""},
			{"`acme-eab-kid`", a.EABKeyID != ""}, {"`acme-eab-hmac`", a.EABMAC != ""},
			{"`acme-profile`", a.Profile != ""}, {"`acme-http-addr`", a.HTTPAddr != ""},
			{"`acme-alt-http-port`", a.AltHTTPPort != 0}, {"`acme-alt-tls-alpn-port`", a.AltTLSALPNPort != 0},
			{"`acme-on-demand-allow`", len(a.OnDemandAllow) > 0}, {"`acme-ask`", a.Ask != ""},
			{"`acme-disable-tls-alpn`", a.DisableTLSALPN},
		} {
			if f.set {
				return setting.Errorf(f.key + " needs `acme-domain` or `acme-on-demand`")
			}
		}
		return nil
	}
	switch {
	case c.Plain:
		return setting.Errorf("`acme-domain` and `acme-on-demand` need TLS: drop `plain`")
	case c.TLS.CertFile != "" || c.TLS.KeyFile != "":
		return setting.Errorf("`cert`/`key` and ACME are two certificate sources: pick one")
	case !a.Agree:
		return setting.Errorf("ACME needs `acme-agree`: it accepts the CA's terms of service on your behalf (read them first)")
	case a.Staging && a.CA != "":
		return setting.Errorf("`acme-staging` and `acme-ca` both choose the CA: pick one")
	case (a.EABKeyID == "") != (a.EABMAC == ""):
		return setting.Errorf("`acme-eab-kid` and `acme-eab-hmac` go together")
	case a.OnDemand && len(a.OnDemandAllow) == 0 && a.Ask == "":
		return setting.Errorf("`acme-on-demand` needs `acme-on-demand-allow` or `acme-ask`: unrestricted issuance would let anyone make you request certificates")
	case !a.OnDemand && (len(a.OnDemandAllow) > 0 || a.Ask != ""):
		return setting.Errorf("`acme-on-demand-allow` and `acme-ask` gate `acme-on-demand`: add it")
	}
	if a.DisableTLSALPN && a.HTTPListen() == "" {
		return setting.Errorf("`acme-disable-tls-alpn` with `acme-http-addr` off leaves no challenge to solve")
	}
	for _, d := range a.Domains {
		if strings.HasPrefix(d, "*.") {
			return setting.Errorf("`acme-domain` %q: wildcard certificates need the DNS-01 challenge, which seclisten does not do (use `acme-on-demand` with `acme-on-demand-allow` %q)", d, d)
		}
		if !validHostname(d) || !strings.Contains(d, ".") && d != "localhost" {
			return setting.Errorf("`acme-domain` %q is not a domain name", d)
		}
	}
	for _, p := range a.OnDemandAllow {
		if !validHostname(strings.TrimPrefix(p, "*.")) {
			return setting.Errorf("`acme-on-demand-allow` %q is not a name or *.name pattern", p)
		}
	}
	if a.CA != "" {
		if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			return setting.Errorf("`acme-ca` %q is not an https:// directory URL", a.CA)
		}
	}
	if a.Ask != "" {
		if u, err := url.Parse(a.Ask); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return setting.Errorf("`acme-ask` %q is not an http(s) URL", a.Ask)
		}
	}
	if h := a.HTTPListen(); h != "" {
		if err := ValidateAddr(h); err != nil {
			return setting.Errorf("`acme-http-addr`: %w (or \"off\")", err)
		}
	}
	for _, p := range []struct {
		key string
		v   int
	}{{"`acme-alt-http-port`", a.AltHTTPPort}, {"`acme-alt-tls-alpn-port`", a.AltTLSALPNPort}} {
		if p.v < 0 || p.v > 65535 {
			return setting.Errorf(p.key+" must be a port from 1 to 65535, got %d", p.v)
		}
	}
	if c.ListenPort() == 0 {
		return setting.Errorf("ACME needs a fixed `addr` port: the CA validates TLS-ALPN-01 on it")
	}
	if a.Storage == "" {
		return setting.Errorf("ACME needs a storage directory (`acme-storage`)")
	}
	return nil
}
