package config

import (
	"errors"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// TLS holds the TLS settings of Config.
type TLS struct {
	// CertFile and KeyFile are PEM files (the certificate file may hold the
	// chain). Both empty: an ephemeral self-signed certificate.
	CertFile, KeyFile string
	// MinVersion is "1.2" (Mozilla intermediate) or "1.3" (modern).
	MinVersion string
	// ALPN lists the application protocols offered.
	ALPN []string
	// HandshakeTimeout bounds the handshake, from accept.
	HandshakeTimeout time.Duration
	// ReloadInterval is how often the files are checked for changes.
	ReloadInterval time.Duration

	// ClientCAFiles turn on client authentication.
	ClientCAFiles []string
	// ClientAuth is "", request, verify-if-given, require or audit. Empty
	// means require when ClientCAFiles is set, and no client certificate
	// otherwise.
	ClientAuth string
	// AllowCN, AllowOU, AllowDNS and AllowURI restrict verified clients.
	AllowCN, AllowOU, AllowDNS, AllowURI []string
	// CRLFiles are checked after chain verification.
	CRLFiles []string
	// CRLAllowStale accepts CRLs past their NextUpdate.
	CRLAllowStale bool
}

// ClientAuthMode is the effective client-authentication mode: as given, or
// the default for the other settings.
func (t *TLS) ClientAuthMode() string {
	switch {
	case t.ClientAuth != "":
		return t.ClientAuth
	case len(t.ClientCAFiles) > 0:
		return "require"
	}
	return "none"
}

func (t *TLS) allowlistSet() bool {
	return len(t.AllowCN)+len(t.AllowOU)+len(t.AllowDNS)+len(t.AllowURI) > 0
}

func (t *TLS) validate(plain bool) error {
	if plain {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"cert", t.CertFile != ""}, {"key", t.KeyFile != ""}, {"client-ca", len(t.ClientCAFiles) > 0},
			{"client-auth", t.ClientAuth != ""}, {"crl", len(t.CRLFiles) > 0}, {"alpn", len(t.ALPN) > 0},
			{"allow-cn", len(t.AllowCN) > 0}, {"allow-ou", len(t.AllowOU) > 0},
			{"allow-dns", len(t.AllowDNS) > 0}, {"allow-uri", len(t.AllowURI) > 0},
		} {
			if f.set {
				return setting.Errorf("`" + f.key + "` is a TLS setting and cannot be used with `plain`")
			}
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return setting.Errorf("`cert` and `key` go together: give both or neither")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		return setting.Errorf("`tls-min` must be 1.2 or 1.3, got %q", t.MinVersion)
	}
	for _, p := range t.ALPN {
		if p == "" || len(p) > 255 {
			return setting.Errorf("`alpn` protocol names must be 1 to 255 bytes, got %q", p)
		}
	}
	mode := t.ClientAuthMode()
	switch mode {
	case "none", "request":
	case "verify-if-given", "require", "audit":
		if len(t.ClientCAFiles) == 0 {
			return setting.Errorf("`client-auth` %s needs `client-ca` to verify against", mode)
		}
	default:
		return setting.Errorf("`client-auth` must be request, verify-if-given, require or audit, got %q", t.ClientAuth)
	}
	if t.allowlistSet() && (mode == "none" || mode == "request") {
		return setting.Errorf("`allow-cn`, `allow-ou`, `allow-dns` and `allow-uri` need verified clients: add `client-ca`")
	}
	if len(t.CRLFiles) > 0 && len(t.ClientCAFiles) == 0 {
		return setting.Errorf("`crl` needs `client-ca`: a CRL is checked against the CA that signed it")
	}
	if t.ReloadInterval <= 0 {
		return errors.New("the reload interval must be positive")
	}
	return nil
}
