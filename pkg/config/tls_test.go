package config_test

import (
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/config"
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
		{"tls 1.3", false, func(c *config.TLS) { c.MinVersion = "1.3" }, ""},
		{"tls 1.1", false, func(c *config.TLS) { c.MinVersion = "1.1" }, "`tls-min` must be 1.2 or 1.3, got \"1.1\""},
		{"empty alpn", false, func(c *config.TLS) { c.ALPN = []string{"h2", ""} }, "`alpn` protocol names"},
		{"client ca: require by default", false, func(c *config.TLS) { c.ClientCAFiles = []string{"ca"} }, ""},
		{"request without ca", false, func(c *config.TLS) { c.ClientAuth = "request" }, ""},
		{"require without ca", false, func(c *config.TLS) { c.ClientAuth = "require" }, "`client-auth` require needs `client-ca`"},
		{"audit without ca", false, func(c *config.TLS) { c.ClientAuth = "audit" }, "`client-auth` audit needs `client-ca`"},
		{"unknown mode", false, func(c *config.TLS) { c.ClientAuth = "maybe"; c.ClientCAFiles = []string{"ca"} }, "`client-auth` must be request, verify-if-given, require or audit, got \"maybe\""},
		{"allowlist without ca", false, func(c *config.TLS) { c.AllowCN = []string{"alice"} }, "need verified clients"},
		{"allowlist with request", false, func(c *config.TLS) {
			c.AllowURI, c.ClientAuth, c.ClientCAFiles = []string{"spiffe://x"}, "request", []string{"ca"}
		}, "need verified clients"},
		{"allowlist with audit", false, func(c *config.TLS) {
			c.AllowOU, c.ClientAuth, c.ClientCAFiles = []string{"dev"}, "audit", []string{"ca"}
		}, ""},
		{"crl without ca", false, func(c *config.TLS) { c.CRLFiles = []string{"crl"} }, "`crl` needs `client-ca`"},
		{"crl with ca", false, func(c *config.TLS) { c.CRLFiles, c.ClientCAFiles = []string{"crl"}, []string{"ca"} }, ""},
		{"plain", true, func(*config.TLS) {}, ""},
		{"plain with cert", true, func(c *config.TLS) { c.CertFile = "a" }, "`cert` is a TLS setting and cannot be used with `plain`"},
		{"plain with client ca", true, func(c *config.TLS) { c.ClientCAFiles = []string{"ca"} }, "`client-ca` is a TLS setting"},
		{"plain with allow-dns", true, func(c *config.TLS) { c.AllowDNS = []string{"x"} }, "`allow-dns` is a TLS setting"},
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
	if m := c.ClientAuthMode(); m != "none" {
		t.Errorf("no CA: %q, want none", m)
	}
	c.ClientCAFiles = []string{"ca"}
	if m := c.ClientAuthMode(); m != "require" {
		t.Errorf("with CA: %q, want require", m)
	}
	c.ClientAuth = "audit"
	if m := c.ClientAuthMode(); m != "audit" {
		t.Errorf("explicit: %q, want audit", m)
	}
}
