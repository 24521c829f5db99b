package config

import (
	"errors"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/setting"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// TLS holds the TLS settings of Config.
type TLS struct {
	// CertFile and KeyFile are PEM files (the certificate file may hold the
	// chain). Both empty: an ephemeral self-signed certificate.
	CertFile, KeyFile string
	// MinVersion is tls.VersionTLS12 (Mozilla intermediate) or
	// tls.VersionTLS13 (modern), as tlsconf.ParseVersion reads them.
	MinVersion uint16
	// ALPN lists the application protocols offered.
	ALPN []string
	// HandshakeTimeout bounds the handshake, from accept.
	HandshakeTimeout time.Duration
	// ClientCertWarn warns of a served client whose certificate expires
	// within this long (0: never).
	ClientCertWarn time.Duration
	// CertWarn warns of a server certificate in service that expires
	// within this long (0: never).
	CertWarn time.Duration
	// KeyLogFile, if set, receives every session's secrets in the NSS key
	// log format, for Wireshark. It must be a new file or one only its
	// owner can read.
	KeyLogFile string
	// ReloadInterval is how often the files are checked for changes.
	ReloadInterval time.Duration

	// ClientCAFiles turn on client authentication.
	ClientCAFiles []string
	// ClientAuth is the client-authentication mode given, or nil when none
	// was: then ClientAuthMode is the default for ClientCAFiles.
	ClientAuth *tlsconf.ClientAuth
	// Allow restricts verified clients.
	Allow identity.Allowlist
	// CRLFiles are checked after chain verification.
	CRLFiles []string
	// CRLAllowStale accepts CRLs past their NextUpdate.
	CRLAllowStale bool
	// CRLFetch fetches the CRLs at the http(s) distribution points of
	// client certificates (package revocation); nil when not given: then
	// on with ClientCAFiles and no CRLFiles (see CRLFetchOn).
	CRLFetch *bool
	// CRLMaxSize bounds a fetched CRL, in bytes.
	CRLMaxSize int64
	// RevocationFailOpen serves a client whose revocation status cannot
	// be had (and logs it) instead of refusing it.
	RevocationFailOpen bool
	// Explain tells a refused client why, in one line over TLS, before
	// closing (see tlsconf.Options.Explain). Off by default: it tells
	// strangers what the server checks and whom it trusts.
	Explain bool
	// HideClientCANames asks for a client certificate without naming the
	// client CAs (some deployments must not reveal them).
	HideClientCANames bool

	// OCSP asks the OCSP responder named by each verified client
	// certificate whether it is revoked (before its CRLs).
	OCSP bool
}

// CRLFetchOn reports whether CRLs are fetched from distribution points:
// as given, or else when client certificates are verified against
// ClientCAFiles and no CRLFiles are given.
func (t *TLS) CRLFetchOn() bool {
	if t.CRLFetch != nil {
		return *t.CRLFetch
	}
	return len(t.ClientCAFiles) > 0 && len(t.CRLFiles) == 0
}

// ClientAuthMode is the effective client-authentication mode: as given,
// or else Require with ClientCAFiles and NoClientCert without.
func (t *TLS) ClientAuthMode() tlsconf.ClientAuth {
	switch {
	case t.ClientAuth != nil:
		return *t.ClientAuth
	case len(t.ClientCAFiles) > 0:
		return tlsconf.Require
	}
	return tlsconf.NoClientCert
}

func (t *TLS) validate(plain bool) error {
	if plain {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"`cert`", t.CertFile != ""}, {"`key`", t.KeyFile != ""}, {"`client-ca`", len(t.ClientCAFiles) > 0},
			{"`client-auth`", t.ClientAuth != nil}, {"`crl`", len(t.CRLFiles) > 0}, {"`alpn`", len(t.ALPN) > 0},
			{"`allow-cn`", len(t.Allow.CN) > 0}, {"`allow-ou`", len(t.Allow.OU) > 0},
			{"`allow-dns`", len(t.Allow.DNS) > 0}, {"`allow-uri`", len(t.Allow.URI) > 0},
			{"`keylog`", t.KeyLogFile != ""},
			{"`explain`", t.Explain}, {"`client-ca-names`", t.HideClientCANames},
			{"`crl-fetch`", t.CRLFetch != nil && *t.CRLFetch}, {"`revocation-fail`", t.RevocationFailOpen},
			{"`ocsp`", t.OCSP},
		} {
			if f.set {
				return setting.Errorf(f.key + " is a TLS setting and cannot be used with `plain`")
			}
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return setting.Errorf("`cert` and `key` go together: give both or neither")
	}
	for _, p := range t.ALPN {
		if p == "" || len(p) > 255 {
			return setting.Errorf("`alpn` protocol names must be 1 to 255 bytes, got %q", p)
		}
	}
	switch mode := t.ClientAuthMode(); mode {
	case tlsconf.VerifyIfGiven, tlsconf.Require, tlsconf.Audit:
		if len(t.ClientCAFiles) == 0 {
			return setting.Errorf("`client-auth` %s needs `client-ca` to verify against", mode)
		}
	default:
		if !t.Allow.Empty() {
			return setting.Errorf("`allow-cn`, `allow-ou`, `allow-dns` and `allow-uri` need verified clients: add `client-ca`")
		}
	}
	if mode := t.ClientAuthMode(); t.Explain && mode != tlsconf.VerifyIfGiven && mode != tlsconf.Require {
		if mode == tlsconf.NoClientCert {
			return setting.Errorf("`explain` tells refused clients why, and nothing is refused without `client-ca`")
		}
		return setting.Errorf("`explain` tells refused clients why, and `client-auth` %s refuses no one: use require or verify-if-given", mode)
	}
	if t.HideClientCANames && len(t.ClientCAFiles) == 0 {
		return setting.Errorf("`client-ca-names` hide needs `client-ca`: there are no names to hide")
	}
	if len(t.CRLFiles) > 0 && len(t.ClientCAFiles) == 0 {
		return setting.Errorf("`crl` needs `client-ca`: a CRL is checked against the CA that signed it")
	}
	if t.CRLFetch != nil && *t.CRLFetch && len(t.ClientCAFiles) == 0 {
		return setting.Errorf("`crl-fetch` needs `client-ca`: a fetched CRL is checked against the CA of the chain")
	}
	if t.CRLMaxSize <= 0 {
		return setting.Errorf("`crl-max-size` must be a positive size, got %d", t.CRLMaxSize)
	}
	if t.OCSP && len(t.ClientCAFiles) == 0 {
		return setting.Errorf("`ocsp` needs `client-ca`: it checks verified client certificates")
	}
	if t.ClientCertWarn < 0 {
		return setting.Errorf("`client-cert-warn` must be 0 (off) or a positive duration, got %s", t.ClientCertWarn)
	}
	if t.CertWarn < 0 {
		return setting.Errorf("`cert-warn` must be 0 (off) or a positive duration, got %s", t.CertWarn)
	}
	if t.ReloadInterval <= 0 {
		return errors.New("the reload interval must be positive")
	}
	return nil
}
