package admit

import (
	"net/netip"

	"github.com/seclisten/seclisten/pkg/internal/cidr"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// Options configure an Admitter. The zero lists admit every address.
type Options struct {
	// Allow, if not empty, lists the only addresses served.
	Allow []netip.Prefix
	// Deny lists addresses never served; it wins over Allow.
	Deny []netip.Prefix
	// Limits are the per-IP limits.
	Limits Limits
	// LimitLoopback applies Limits to loopback addresses (127.0.0.0/8, ::1)
	// too. By default they are exempt, like fail2ban's default ignoreip: a
	// developer's test suite on the same machine must not be throttled.
	// The lists apply to loopback either way.
	LimitLoopback bool
}

// Admitter applies the lists and the limits. It is safe for concurrent use.
type Admitter struct {
	allow, deny []netip.Prefix
	limiter     *limiter
	limits      Limits // what limiter applies
	// exemptLoopback skips the limiter for loopback addresses.
	exemptLoopback bool
}

// New returns an Admitter.
func New(opts Options) *Admitter {
	return &Admitter{allow: opts.Allow, deny: opts.Deny, limiter: newLimiter(opts.Limits), limits: opts.Limits,
		exemptLoopback: !opts.LimitLoopback}
}

// With returns an Admitter for opts that keeps a's per-IP table (the
// rate buckets and the connection counts) when opts.Limits are a's, so a
// new policy neither forgets nor double-counts the clients already
// connected; new limits start a new table. The connections a admitted
// release their slots in a's table either way.
func (a *Admitter) With(opts Options) *Admitter {
	n := &Admitter{allow: opts.Allow, deny: opts.Deny, limiter: a.limiter, limits: a.limits,
		exemptLoopback: !opts.LimitLoopback}
	o, l := opts.Limits, a.limits
	if o.Rate != l.Rate || o.Burst != l.Burst || o.MaxConcurrent != l.MaxConcurrent ||
		o.IPv6Prefix != l.IPv6Prefix || o.MaxEntries != l.MaxEntries {
		n.limiter, n.limits = newLimiter(o), o
		n.limiter.inheritFleet(a.limiter)
	}
	return n
}

// Denies reports whether the lists refuse addr (the per-IP limits aside):
// for connections admitted under other lists.
func (a *Admitter) Denies(addr netip.Addr) (outcome.Code, bool) {
	addr = addr.Unmap()
	if cidr.Contains(a.deny, addr) {
		return outcome.DenyList, true
	}
	if len(a.allow) > 0 && !cidr.Contains(a.allow, addr) {
		return outcome.NotInAllowList, true
	}
	return "", false
}

// Key names the address as the limits see it: the address itself for
// IPv4, its prefix for IPv6 (so "2001:db8::/64").
func (a *Admitter) Key(addr netip.Addr) string {
	p := keyPrefix(addr, a.limiter.v6bits)
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Admit decides on a connection from addr. When it is admitted, call
// release when the connection ends; a second call does nothing. When it
// is refused, refused says why and release does nothing. release is never
// nil.
func (a *Admitter) Admit(addr netip.Addr) (release func(), refused outcome.Code, ok bool) {
	addr = addr.Unmap()
	if cidr.Contains(a.deny, addr) {
		return noRelease, outcome.DenyList, false
	}
	if len(a.allow) > 0 && !cidr.Contains(a.allow, addr) {
		return noRelease, outcome.NotInAllowList, false
	}
	if a.exemptLoopback && addr.IsLoopback() {
		return noRelease, "", true
	}
	return a.limiter.allow(addr)
}

// KeyPrefix is the key that addr is counted under, as a prefix: a /32 for
// IPv4 and IPv4-mapped IPv6, the address masked to ipv6Prefix bits for
// IPv6 (outside 1 to 128: DefaultIPv6Prefix). Other tables that must key
// clients as the limits do (the ban table) use it.
func KeyPrefix(addr netip.Addr, ipv6Prefix int) netip.Prefix { return keyPrefix(addr, ipv6Prefix) }
