package config_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

func TestValidateTLS(t *testing.T) {
	tests := []struct {
		name    string
		plain   bool
		mod     func(*config.TLS)
		wantErr string // empty: valid
	}{
		{"defaults: ephemeral cert", false, func(*config.TLS) {}, ""},
		{"cert and key", false, func(c *config.TLS) { c.CertFile, c.KeyFile = "a", "b" }, ""},
		{"cert without key", false, func(c *config.TLS) { c.CertFile = "a" }, "`cert` and `key` go together"},
		{"key without cert", false, func(c *config.TLS) { c.KeyFile = "b" }, "`cert` and `key` go together"},
		{"tls 1.3", false, func(c *config.TLS) { c.MinVersion = tls.VersionTLS13 }, ""},
		{"empty alpn", false, func(c *config.TLS) { c.ALPN = []string{"h2", ""} }, "`alpn` protocol names"},
		{"client ca: require by default", false, func(c *config.TLS) { c.ClientCAFiles = []string{"ca"} }, ""},
		{"request without ca", false, func(c *config.TLS) { c.ClientAuth = new(tlsconf.Request) }, ""},
		{"none without ca", false, func(c *config.TLS) { c.ClientAuth = new(tlsconf.NoClientCert) }, ""},
		{"require without ca", false, func(c *config.TLS) { c.ClientAuth = new(tlsconf.Require) }, "`client-auth` require needs `client-ca`"},
		{"verify-if-given without ca", false, func(c *config.TLS) { c.ClientAuth = new(tlsconf.VerifyIfGiven) }, "`client-auth` verify-if-given needs `client-ca`"},
		{"audit without ca", false, func(c *config.TLS) { c.ClientAuth = new(tlsconf.Audit) }, "`client-auth` audit needs `client-ca`"},
		{"allowlist without ca", false, func(c *config.TLS) { c.Allow.CN = []string{"alice"} }, "need verified clients"},
		{"allowlist with request", false, func(c *config.TLS) {
			c.Allow.URI, c.ClientAuth, c.ClientCAFiles = []string{"spiffe://x"}, new(tlsconf.Request), []string{"ca"}
		}, "need verified clients"},
		{"allowlist with none", false, func(c *config.TLS) {
			c.Allow.CN, c.ClientAuth, c.ClientCAFiles = []string{"alice"}, new(tlsconf.NoClientCert), []string{"ca"}
		}, "need verified clients"},
		{"allowlist with audit", false, func(c *config.TLS) {
			c.Allow.OU, c.ClientAuth, c.ClientCAFiles = []string{"dev"}, new(tlsconf.Audit), []string{"ca"}
		}, ""},
		{"allowlist with default require", false, func(c *config.TLS) {
			c.Allow.DNS, c.ClientCAFiles = []string{"client.test"}, []string{"ca"}
		}, ""},
		{"crl without ca", false, func(c *config.TLS) { c.CRLFiles = []string{"crl"} }, "`crl` needs `client-ca`"},
		{"crl with ca", false, func(c *config.TLS) { c.CRLFiles, c.ClientCAFiles = []string{"crl"}, []string{"ca"} }, ""},
		{"ocsp without ca", false, func(c *config.TLS) { c.OCSP = true }, "`ocsp` needs `client-ca`"},
		{"ocsp with ca, fail open", false, func(c *config.TLS) { c.OCSP, c.RevocationFailOpen, c.ClientCAFiles = true, true, []string{"ca"} }, ""},
		{"ocsp plain", true, func(c *config.TLS) { c.OCSP = true }, "`ocsp` is a TLS setting"},
		{"explain with require", false, func(c *config.TLS) { c.Explain, c.ClientCAFiles = true, []string{"ca"} }, ""},
		{"explain with verify-if-given", false, func(c *config.TLS) {
			c.Explain, c.ClientCAFiles, c.ClientAuth = true, []string{"ca"}, new(tlsconf.VerifyIfGiven)
		}, ""},
		{"explain without ca", false, func(c *config.TLS) { c.Explain = true }, "nothing is refused without `client-ca`"},
		{"explain with audit", false, func(c *config.TLS) {
			c.Explain, c.ClientCAFiles, c.ClientAuth = true, []string{"ca"}, new(tlsconf.Audit)
		}, "`client-auth` audit refuses no one"},
		{"explain with request", false, func(c *config.TLS) {
			c.Explain, c.ClientCAFiles, c.ClientAuth = true, []string{"ca"}, new(tlsconf.Request)
		}, "`client-auth` request refuses no one"},
		{"crl-fetch without ca", false, func(c *config.TLS) { c.CRLFetch = new(true) }, "`crl-fetch` needs `client-ca`"},
		{"crl-fetch off without ca", false, func(c *config.TLS) { c.CRLFetch = new(false) }, ""},
		{"crl-fetch with crl files", false, func(c *config.TLS) {
			c.CRLFetch, c.CRLFiles, c.ClientCAFiles = new(true), []string{"crl"}, []string{"ca"}
		}, ""},
		{"crl-max-size zero", false, func(c *config.TLS) { c.CRLMaxSize = 0 }, "`crl-max-size` must be a positive size"},
		{"plain with crl-fetch", true, func(c *config.TLS) { c.CRLFetch = new(true) }, "`crl-fetch` is a TLS setting"},
		{"plain with revocation-fail open", true, func(c *config.TLS) { c.RevocationFailOpen = true }, "`revocation-fail` is a TLS setting"},
		{"plain", true, func(*config.TLS) {}, ""},
		{"plain with explain", true, func(c *config.TLS) { c.Explain = true }, "`explain` is a TLS setting"},
		{"plain with cert", true, func(c *config.TLS) { c.CertFile = "a" }, "`cert` is a TLS setting and cannot be used with `plain`"},
		{"plain with client ca", true, func(c *config.TLS) { c.ClientCAFiles = []string{"ca"} }, "`client-ca` is a TLS setting"},
		{"plain with allow-dns", true, func(c *config.TLS) { c.Allow.DNS = []string{"x"} }, "`allow-dns` is a TLS setting"},
		{"plain with client-auth none", true, func(c *config.TLS) { c.ClientAuth = new(tlsconf.NoClientCert) }, "`client-auth` is a TLS setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.Plain = tt.plain
			tt.mod(&c.TLS)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestListenAddrDefaults(t *testing.T) {
	c := config.Default()
	if got := c.ListenAddr(); got != config.DefaultTLSAddr {
		t.Errorf("TLS default = %q, want %q", got, config.DefaultTLSAddr)
	}
	c.Plain = true
	if got := c.ListenAddr(); got != config.DefaultPlainAddr {
		t.Errorf("plain default = %q, want %q", got, config.DefaultPlainAddr)
	}
	c.Addr = ":7000"
	if got := c.ListenAddr(); got != ":7000" {
		t.Errorf("explicit = %q", got)
	}
}

func TestClientAuthMode(t *testing.T) {
	var c config.TLS
	if m := c.ClientAuthMode(); m != tlsconf.NoClientCert {
		t.Errorf("no CA: %v, want none", m)
	}
	c.ClientCAFiles = []string{"ca"}
	if m := c.ClientAuthMode(); m != tlsconf.Require {
		t.Errorf("with CA: %v, want require", m)
	}
	c.ClientAuth = new(tlsconf.Audit)
	if m := c.ClientAuthMode(); m != tlsconf.Audit {
		t.Errorf("explicit: %v, want audit", m)
	}
	c.ClientAuth = new(tlsconf.NoClientCert)
	if m := c.ClientAuthMode(); m != tlsconf.NoClientCert {
		t.Errorf("explicit none with CA: %v, want none", m)
	}
}

func TestCRLFetchOn(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tls   config.TLS
		fetch bool
	}{
		{"no client ca", config.TLS{}, false},
		{"client ca alone: on", config.TLS{ClientCAFiles: []string{"ca"}}, true},
		{"client ca and crl: off", config.TLS{ClientCAFiles: []string{"ca"}, CRLFiles: []string{"crl"}}, false},
		{"explicit off", config.TLS{ClientCAFiles: []string{"ca"}, CRLFetch: new(false)}, false},
		{"explicit on with crl", config.TLS{ClientCAFiles: []string{"ca"}, CRLFiles: []string{"crl"}, CRLFetch: new(true)}, true},
	} {
		if got := tt.tls.CRLFetchOn(); got != tt.fetch {
			t.Errorf("%s: CRLFetchOn() = %v, want %v", tt.name, got, tt.fetch)
		}
	}
}
