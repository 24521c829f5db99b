package config_test

import (
	"testing"

	"github.com/seclisten/seclisten/pkg/config"
)

// The ACME rules live in config.Validate alone (acme.New trusts its
// options): each is checked here, worded with keys.
func TestValidateACME(t *testing.T) {
	acme := func(edit func(c *config.Config)) func(c *config.Config) {
		return func(c *config.Config) {
			c.Addr = "127.0.0.1:8443"
			c.ACME.Domains = []string{"example.com"}
			c.ACME.Agree = true
			c.ACME.Storage = "/var/lib/seclisten/acme"
			edit(c)
		}
	}
	for _, tt := range []struct {
		name    string
		edit    func(c *config.Config)
		wantErr string // the whole sentence; empty means valid
	}{
		{"off", func(*config.Config) {}, ""},
		{"domain", acme(func(*config.Config) {}), ""},
		{"localhost", acme(func(c *config.Config) { c.ACME.Domains = []string{"localhost"} }), ""},
		{"on demand with allow", acme(func(c *config.Config) {
			c.ACME.Domains, c.ACME.OnDemand, c.ACME.OnDemandAllow = nil, true, []string{"*.example.com"}
		}), ""},
		{"on demand with ask", acme(func(c *config.Config) { c.ACME.OnDemand, c.ACME.Ask = true, "http://127.0.0.1:9/ask" }), ""},
		{"staging", acme(func(c *config.Config) { c.ACME.Staging = true }), ""},
		{"http off, tls-alpn on", acme(func(c *config.Config) { c.ACME.HTTPAddr = "off" }), ""},

		{"email without acme", func(c *config.Config) { c.ACME.Email = "ops@example.com" },
			"`acme-email` needs `acme-domain` or `acme-on-demand`"},
		{"agree without acme", func(c *config.Config) { c.ACME.Agree = true }, "`acme-agree` needs `acme-domain` or `acme-on-demand`"},
		{"no tls-alpn without acme", func(c *config.Config) { c.ACME.DisableTLSALPN = true },
			"`acme-disable-tls-alpn` needs `acme-domain` or `acme-on-demand`"},
		{"plain", acme(func(c *config.Config) { c.Plain = true }), "`acme-domain` and `acme-on-demand` need TLS: drop `plain`"},
		{"cert files too", acme(func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = "c", "k" }),
			"`cert`/`key` and ACME are two certificate sources: pick one"},
		{"terms not agreed", acme(func(c *config.Config) { c.ACME.Agree = false }),
			"ACME needs `acme-agree`: it accepts the CA's terms of service on your behalf (read them first)"},
		{"staging and CA", acme(func(c *config.Config) { c.ACME.Staging, c.ACME.CA = true, "https://ca.test/dir" }),
			"`acme-staging` and `acme-ca` both choose the CA: pick one"},
		{"EAB half", acme(func(c *config.Config) { c.ACME.EABKeyID = "kid" }), "`acme-eab-kid` and `acme-eab-hmac` go together"},
		{"on demand ungated", acme(func(c *config.Config) { c.ACME.OnDemand = true }),
			"`acme-on-demand` needs `acme-on-demand-allow` or `acme-ask`: unrestricted issuance would let anyone make you request certificates"},
		{"gate without on demand", acme(func(c *config.Config) { c.ACME.Ask = "https://ask.test/" }),
			"`acme-on-demand-allow` and `acme-ask` gate `acme-on-demand`: add it"},
		{"no challenge", acme(func(c *config.Config) { c.ACME.DisableTLSALPN, c.ACME.HTTPAddr = true, "off" }),
			"`acme-disable-tls-alpn` with `acme-http-addr` off leaves no challenge to solve"},
		{"wildcard", acme(func(c *config.Config) { c.ACME.Domains = []string{"*.example.com"} }),
			"`acme-domain` \"*.example.com\": wildcard certificates need the DNS-01 challenge, which seclisten does not do (use `acme-on-demand` with `acme-on-demand-allow` \"*.example.com\")"},
		{"bad domain", acme(func(c *config.Config) { c.ACME.Domains = []string{"bad name"} }), "`acme-domain` \"bad name\" is not a domain name"},
		{"single label", acme(func(c *config.Config) { c.ACME.Domains = []string{"intranet"} }), "`acme-domain` \"intranet\" is not a domain name"},
		{"bad pattern", acme(func(c *config.Config) {
			c.ACME.Domains, c.ACME.OnDemand, c.ACME.OnDemandAllow = nil, true, []string{"a b"}
		}), "`acme-on-demand-allow` \"a b\" is not a name or *.name pattern"},
		{"http CA", acme(func(c *config.Config) { c.ACME.CA = "http://ca.test/dir" }), "`acme-ca` \"http://ca.test/dir\" is not an https:// directory URL"},
		{"ftp ask", acme(func(c *config.Config) { c.ACME.OnDemand, c.ACME.Ask = true, "ftp://ask.test" }),
			"`acme-ask` \"ftp://ask.test\" is not an http(s) URL"},
		{"bad http addr", acme(func(c *config.Config) { c.ACME.HTTPAddr = "nope" }), "`acme-http-addr`: \"nope\" is not host:port (or \"off\")"},
		{"alt port", acme(func(c *config.Config) { c.ACME.AltHTTPPort = 70000 }), "`acme-alt-http-port` must be a port from 1 to 65535, got 70000"},
		{"any port", acme(func(c *config.Config) { c.Addr = "127.0.0.1:0" }), "ACME needs a fixed `addr` port: the CA validates TLS-ALPN-01 on it"},
		{"any port, written 00", acme(func(c *config.Config) { c.Addr = "127.0.0.1:00" }), "ACME needs a fixed `addr` port: the CA validates TLS-ALPN-01 on it"},
		{"no storage", acme(func(c *config.Config) { c.ACME.Storage = "" }), "ACME needs a storage directory (`acme-storage`)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Validate() = %v\nwant %s", err, tt.wantErr)
			}
		})
	}
}

func TestListenPort(t *testing.T) {
	for addr, want := range map[string]int{"": 8443, "127.0.0.1:8443": 8443, ":0": 0, "[::1]:00": 0, "nope": -1, "h:99999": -1, "h:x": -1} {
		c := config.Default()
		c.Addr = addr
		if got := c.ListenPort(); got != want {
			t.Errorf("ListenPort() of %q = %d, want %d", addr, got, want)
		}
	}
}
