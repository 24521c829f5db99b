package admit

import (
	"net/netip"
)

// Reason says why a connection was refused. Its values are short, stable
// strings meant for logs and metric labels.
type Reason string

// Reasons for a refusal by the lists.
const (
	Denied     Reason = "deny list"
	NotAllowed Reason = "not in allow list"
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
	ipv6Prefix  int
	// exemptLoopback skips the limiter for loopback addresses.
	exemptLoopback bool
}

// New returns an Admitter.
func New(opts Options) *Admitter {
	return &Admitter{allow: opts.Allow, deny: opts.Deny, limiter: newLimiter(opts.Limits),
		ipv6Prefix: opts.Limits.IPv6Prefix, exemptLoopback: !opts.LimitLoopback}
}

// Key names the address as the limits see it: the address itself for
// IPv4, its prefix for IPv6 (so "2001:db8::/64").
func (a *Admitter) Key(addr netip.Addr) string {
	p := keyPrefix(addr.Unmap(), a.ipv6Prefix)
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Admit decides on a connection from addr. When it is admitted, release
// must be called exactly once when the connection ends.
func (a *Admitter) Admit(addr netip.Addr) (release func(), refused Reason, ok bool) {
	addr = addr.Unmap()
	if contains(a.deny, addr) {
		return nil, Denied, false
	}
	if len(a.allow) > 0 && !contains(a.allow, addr) {
		return nil, NotAllowed, false
	}
	if a.exemptLoopback && addr.IsLoopback() {
		return noRelease, "", true
	}
	release, reason, ok := a.limiter.allow(addr)
	if !ok {
		return nil, reason, false
	}
	return release, "", true
}

// noRelease is the release of a connection the limiter does not track.
func noRelease() {}

func contains(list []netip.Prefix, addr netip.Addr) bool {
	for _, p := range list {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
