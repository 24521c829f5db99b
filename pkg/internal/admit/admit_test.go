package admit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/seclisten/seclisten/pkg/outcome"
)

func TestAdmitLists(t *testing.T) {
	a := New(Options{
		Allow:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		Deny:   []netip.Prefix{netip.MustParsePrefix("10.0.0.66/32"), netip.MustParsePrefix("fe80::/10")},
		Limits: Limits{IPv6Prefix: 64},
	})
	tests := []struct {
		addr string
		want outcome.Code // "" admitted
	}{
		{"10.1.2.3", ""},
		{"::ffff:10.1.2.3", ""}, // IPv4-mapped is the IPv4 address
		{"10.0.0.66", outcome.DenyList},
		{"192.0.2.1", outcome.NotInAllowList},
		{"2001:db8::1", ""},
		{"2001:db9::1", outcome.NotInAllowList},
		{"fe80::1%eth0", outcome.DenyList}, // the zone does not hide the address
	}
	for _, tt := range tests {
		release, why, ok := a.Admit(netip.MustParseAddr(tt.addr))
		if ok != (tt.want == "") || why != tt.want {
			t.Errorf("Admit(%s) = %v, %q; want refused for %q", tt.addr, ok, why, tt.want)
		}
		if ok {
			release()
		}
	}
}

func TestAdmitLimitsAndKey(t *testing.T) {
	a := New(Options{Limits: Limits{Rate: 1, Burst: 2, MaxConcurrent: 5, IPv6Prefix: 64}})
	addr := netip.MustParseAddr("192.0.2.7")
	for range 2 {
		release, _, ok := a.Admit(addr)
		if !ok {
			t.Fatal("refused within the burst")
		}
		release()
	}
	if _, why, ok := a.Admit(addr); ok || why != outcome.Rate {
		t.Errorf("third = %v, %q; want refused for rate", ok, why)
	}
	if got := a.Key(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); got != "2001:db8:1:2::/64" {
		t.Errorf("Key(IPv6) = %s", got)
	}
	if got := a.Key(addr); got != "192.0.2.7" {
		t.Errorf("Key(IPv4) = %s", got)
	}
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// A flood of refusals makes two log lines per address and reason and
// period, and a spray of addresses a bounded number.
func TestReporterAggregates(t *testing.T) {
	var buf bytes.Buffer
	r := NewReporter(slog.New(slog.NewJSONHandler(&buf, nil)), 0)
	for range 4812 {
		r.Refused("203.0.113.7", outcome.Rate)
	}
	r.Refused("203.0.113.7", outcome.PerIPCap)
	recs := records(t, &buf)
	if len(recs) != 2 || recs[0]["msg"] != "refused connection" || recs[0]["from"] != "203.0.113.7" {
		t.Fatalf("before the flush: %v", recs)
	}
	buf.Reset()
	r.Flush()
	recs = records(t, &buf)
	if len(recs) != 1 || recs[0]["msg"] != "refused more connections" || recs[0]["count"] != float64(4811) || recs[0]["reason"] != "rate" {
		t.Fatalf("flush = %v", recs)
	}
	// A new period logs the first refusal at once again.
	buf.Reset()
	r.Refused("203.0.113.7", outcome.Rate)
	if len(records(t, &buf)) != 1 {
		t.Errorf("first refusal of the new period not logged")
	}

	// Spray: past maxKeys addresses, refusals are counted together.
	buf.Reset()
	r.Flush()
	buf.Reset()
	for i := range 5 * maxKeys {
		r.Refused(fmt.Sprintf("198.51.%d.%d", i/256, i%256), outcome.Rate)
	}
	if n := len(records(t, &buf)); n != maxKeys {
		t.Errorf("%d immediate lines for %d addresses, want at most %d", n, 5*maxKeys, maxKeys)
	}
	buf.Reset()
	r.Flush()
	recs = records(t, &buf)
	if len(recs) != 1 || recs[0]["from"] != otherKey || recs[0]["count"] != float64(4*maxKeys) {
		t.Errorf("spray flush = %v", recs)
	}
}

// With swaps the lists and keeps the per-IP table while the limits stay:
// a client at its cap before stays at its cap after.
func TestWith(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.1")
	lim := Limits{MaxConcurrent: 1}
	a := New(Options{Limits: lim, LimitLoopback: true})
	release, _, ok := a.Admit(addr)
	if !ok {
		t.Fatal("first connection refused")
	}
	b := a.With(Options{Deny: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, Limits: lim, LimitLoopback: true})
	if _, why, ok := b.Admit(addr); ok || why != outcome.PerIPCap {
		t.Errorf("second connection after With: %v, %q; want the per-IP cap kept", ok, why)
	}
	if why, denied := b.Denies(netip.MustParseAddr("198.51.100.7")); !denied || why != outcome.DenyList {
		t.Errorf("Denies = %q, %v; want deny-list", why, denied)
	}
	if _, denied := a.Denies(netip.MustParseAddr("198.51.100.7")); denied {
		t.Error("the old Admitter's lists changed")
	}
	release()
	if r, _, ok := b.Admit(addr); !ok {
		t.Error("refused after the first connection was released")
	} else {
		r()
	}
	c := b.With(Options{Limits: Limits{MaxConcurrent: 2}, LimitLoopback: true})
	r1, _, ok1 := c.Admit(addr)
	r2, _, ok2 := c.Admit(addr)
	if !ok1 || !ok2 {
		t.Error("new limits not applied")
	}
	r1()
	r2()
}
