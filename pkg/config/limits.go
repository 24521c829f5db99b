package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// Limits holds the public-endpoint defences of Config.
type Limits struct {
	// Rate is new connections per second per client IP (0: no limit) and
	// Burst the bucket size.
	Rate  float64
	Burst int
	// MaxConnsPerIP caps concurrent connections per client IP (0: no cap).
	MaxConnsPerIP int
	// IPv6Prefix is the prefix length that keys IPv6 clients.
	IPv6Prefix int
	// LimitLoopback applies the per-IP limits to loopback clients too. By
	// default 127.0.0.0/8 and ::1 are exempt, as fail2ban's ignoreip is: a
	// developer's own crowd of local clients is served. The global cap,
	// the timeouts and the CIDR lists apply to loopback either way.
	LimitLoopback bool
	// AllowCIDR, if set, lists the only client addresses served; DenyCIDR
	// the ones never served (it wins).
	AllowCIDR, DenyCIDR []netip.Prefix
	// MsgRate is messages per second per connection (0: no limit) and
	// MsgBurst the bucket size.
	MsgRate  float64
	MsgBurst int
	// MaxLifetime bounds a connection's whole life (0: unbounded).
	MaxLifetime time.Duration
	// ProxyProtocol reads a PROXY header from TrustedProxies, the only
	// peers then allowed to connect.
	ProxyProtocol  bool
	TrustedProxies []netip.Prefix
}

func (l *Limits) validate() error {
	switch {
	case l.Rate < 0:
		return setting.Errorf("`rate` must be 0 (no limit) or more, got %g", l.Rate)
	case l.Rate > 0 && l.Burst < 1:
		return setting.Errorf("`burst` must be at least 1, got %d", l.Burst)
	case l.MaxConnsPerIP < 0:
		return setting.Errorf("`max-conns-per-ip` must be 0 (no cap) or more, got %d", l.MaxConnsPerIP)
	case l.IPv6Prefix < 1 || l.IPv6Prefix > 128:
		return setting.Errorf("`ipv6-prefix` must be from 1 to 128, got %d", l.IPv6Prefix)
	case l.MsgRate < 0:
		return setting.Errorf("`msg-rate` must be 0 (no limit) or more, got %g", l.MsgRate)
	case l.MsgRate > 0 && l.MsgBurst < 1:
		return setting.Errorf("`msg-burst` must be at least 1, got %d", l.MsgBurst)
	case l.MaxLifetime < 0:
		return setting.Errorf("`max-lifetime` must be 0 (unbounded) or a positive duration, got %s", l.MaxLifetime)
	case l.ProxyProtocol && len(l.TrustedProxies) == 0:
		return setting.Errorf("`proxy-protocol` needs `trusted-proxy`: a PROXY header is believed only from your own load balancers")
	case !l.ProxyProtocol && len(l.TrustedProxies) > 0:
		return setting.Errorf("`trusted-proxy` has no effect without `proxy-protocol`")
	}
	return nil
}

// ParseCIDRs parses a list of CIDR prefixes or bare addresses (a bare
// address is a /32 or /128). Prefixes are masked: "10.1.2.3/8" means
// 10.0.0.0/8. IPv4-mapped IPv6 is unmapped.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix like 10.0.0.0/8 or 2001:db8::/32", s)
		}
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return nil, fmt.Errorf("%q: an IPv4-mapped prefix shorter than /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
