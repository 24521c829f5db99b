package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/config"
)

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		in      []string
		want    string // space-separated prefixes
		wantErr string
	}{
		{[]string{"10.0.0.0/8"}, "10.0.0.0/8", ""},
		{[]string{"10.1.2.3/8"}, "10.0.0.0/8", ""},
		{[]string{"127.0.0.1"}, "127.0.0.1/32", ""},
		{[]string{"::1"}, "::1/128", ""},
		{[]string{"2001:db8::1/32", " 192.0.2.0/24 "}, "2001:db8::/32 192.0.2.0/24", ""},
		{[]string{"::ffff:10.0.0.0/104"}, "10.0.0.0/8", ""},
		{[]string{"::ffff:1.2.3.4"}, "1.2.3.4/32", ""},
		{[]string{""}, "", ""},
		{[]string{"10.0.0.0/33"}, "", `"10.0.0.0/33" is not a CIDR prefix`},
		{[]string{"example.com"}, "", `"example.com" is not an IP address or CIDR prefix`},
		{[]string{"fe80::1%eth0"}, "", "is not an IP address"},
		{[]string{"::ffff:0:0/90"}, "", "IPv4-mapped prefix shorter than /96"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			got, err := config.ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if strings.Join(s, " ") != tt.want {
				t.Errorf("= %v, want %s", s, tt.want)
			}
		})
	}
}

// FuzzParseCIDRs: never panics; every prefix returned is valid, masked,
// unmapped, and contains the address it was written with.
func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "127.0.0.1", "::1", "2001:db8::/32", "::ffff:10.0.0.0/104",
		"10.0.0.0/33", "", "1.2.3.4/0", "fe80::1%eth0/64", "::/0", "300.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := config.ParseCIDRs([]string{s})
		if err != nil {
			return
		}
		for _, p := range got {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
				t.Fatalf("ParseCIDRs(%q) = %v: not valid, masked and unmapped", s, p)
			}
			addr, _, _ := strings.Cut(strings.TrimSpace(s), "/")
			if a, err := netip.ParseAddr(addr); err == nil && !p.Contains(a.Unmap()) {
				t.Fatalf("ParseCIDRs(%q) = %v does not contain %v", s, p, a)
			}
		}
	})
}

func TestValidateLimits(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*config.Limits)
		wantErr string
	}{
		{"defaults", func(*config.Limits) {}, ""},
		{"no limits", func(l *config.Limits) { l.Rate, l.MaxConnsPerIP, l.MsgRate = 0, 0, 0 }, ""},
		{"negative rate", func(l *config.Limits) { l.Rate = -1 }, "`rate` must be 0 (no limit) or more"},
		{"zero burst", func(l *config.Limits) { l.Burst = 0 }, "`burst` must be at least 1"},
		{"prefix 0", func(l *config.Limits) { l.IPv6Prefix = 0 }, "`ipv6-prefix` must be from 1 to 128"},
		{"prefix 129", func(l *config.Limits) { l.IPv6Prefix = 129 }, "`ipv6-prefix` must be from 1 to 128"},
		{"negative per-ip", func(l *config.Limits) { l.MaxConnsPerIP = -2 }, "`max-conns-per-ip`"},
		{"msg burst", func(l *config.Limits) { l.MsgBurst = 0 }, "`msg-burst` must be at least 1"},
		{"lifetime", func(l *config.Limits) { l.MaxLifetime = -1 }, "`max-lifetime`"},
		{"proxy without trusted", func(l *config.Limits) { l.ProxyProtocol = true }, "`proxy-protocol` needs `trusted-proxy`"},
		{"trusted without proxy", func(l *config.Limits) {
			l.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}, "`trusted-proxy` has no effect without `proxy-protocol`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.Plain = true
			tt.mod(&c.Limits)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
