package admit

import (
	"net/netip"
	"testing"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Loopback is exempt from the per-IP limits unless LimitLoopback; the lists
// apply to it either way.
func TestLoopbackExempt(t *testing.T) {
	limits := Limits{Rate: 0.001, Burst: 1, MaxConcurrent: 1, IPv6Prefix: 64}
	loopback := []string{"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"}

	a := New(Options{Limits: limits})
	for _, s := range loopback {
		for i := range 5 {
			if _, why, ok := a.Admit(netip.MustParseAddr(s)); !ok {
				t.Fatalf("%s refused (%s) on connection %d: loopback must be exempt", s, why, i+1)
			}
		}
	}
	if _, why, ok := a.Admit(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Fatalf("first connection of 192.0.2.1 refused: %s", why)
	}
	if _, why, ok := a.Admit(netip.MustParseAddr("192.0.2.1")); ok || why != outcome.PerIPCap {
		t.Fatalf("second connection of 192.0.2.1: ok %v, %q; want refused by the cap", ok, why)
	}

	limited := New(Options{Limits: limits, LimitLoopback: true})
	for _, s := range []string{"127.0.0.2", "::1"} {
		if _, why, ok := limited.Admit(netip.MustParseAddr(s)); !ok {
			t.Fatalf("first connection of %s refused: %s", s, why)
		}
		if _, _, ok := limited.Admit(netip.MustParseAddr(s)); ok {
			t.Fatalf("second connection of %s admitted with LimitLoopback", s)
		}
	}

	denied := New(Options{Limits: limits, Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}})
	if _, why, ok := denied.Admit(netip.MustParseAddr("127.0.0.9")); ok || why != outcome.DenyList {
		t.Fatalf("denied loopback address: ok %v, %q; want outcome.DenyList", ok, why)
	}
}
