package ban

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/outcome"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func addr(s string) netip.Addr           { return netip.MustParseAddr(s) }
func fail(t *Table, a string, n int) int { return failWith(t, a, n, outcome.NotTLS) }

// failWith records n failures of a and returns how many started a ban.
func failWith(t *Table, a string, n int, c outcome.Code) int {
	bans := 0
	for range n {
		if _, ok := t.Record(addr(a), c); ok {
			bans++
		}
	}
	return bans
}

func table(c *clock, o Options) *Table {
	if o.After == 0 {
		o.After, o.Window = 3, time.Minute
	}
	if o.For == 0 {
		o.For, o.Max = 10*time.Second, time.Minute
	}
	o.Now = c.now
	return New(o)
}

func TestBanAfterCount(t *testing.T) {
	c := newClock()
	tb := table(c, Options{})
	fail(tb, "203.0.113.7", 2)
	if tb.Banned(addr("203.0.113.7")) {
		t.Fatal("banned after 2 of 3 failures")
	}
	b, ok := tb.Record(addr("203.0.113.7"), outcome.UnknownAuthority)
	if !ok {
		t.Fatal("third failure did not ban")
	}
	if got, want := b.Message(), "ban 203.0.113.7 for 10s after 3 failures in 1m0s (last: unknown-authority)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !tb.Banned(addr("203.0.113.7")) || tb.Banned(addr("203.0.113.8")) {
		t.Error("ban does not hold for its key only")
	}
	// Failures of a banned key (connections in flight) change nothing.
	if n := fail(tb, "203.0.113.7", 10); n != 0 {
		t.Errorf("%d new bans while banned", n)
	}
	if l := tb.List(); len(l) != 1 || l[0].Until.Sub(l[0].Since) != 10*time.Second || l[0].Count != 3 {
		t.Errorf("List = %+v", l)
	}
	c.add(10 * time.Second)
	if tb.Banned(addr("203.0.113.7")) {
		t.Error("still banned after its end")
	}
	ended, _, _ := tb.Sweep()
	if len(ended) != 1 || ended[0].Key != "203.0.113.7" {
		t.Errorf("Sweep ended %+v", ended)
	}
	if ended, _, _ := tb.Sweep(); len(ended) != 0 {
		t.Errorf("second Sweep ended %+v again", ended)
	}
	if tb.Active() != 0 {
		t.Errorf("Active = %d", tb.Active())
	}
}

func TestBanWindowResets(t *testing.T) {
	c := newClock()
	tb := table(c, Options{})
	for range 5 {
		fail(tb, "203.0.113.7", 2)
		c.add(time.Minute)
	}
	if tb.Banned(addr("203.0.113.7")) {
		t.Error("banned for failures in different windows")
	}
}

func TestBanEscalates(t *testing.T) {
	c := newClock()
	tb := table(c, Options{For: time.Second, Max: 5 * time.Second})
	var got []time.Duration
	for range 5 {
		for {
			if b, ok := tb.Record(addr("2001:db8::1"), outcome.Rate); ok {
				got = append(got, b.For)
				if b.Key != "2001:db8::/64" {
					t.Errorf("key %q", b.Key)
				}
				c.add(b.For)
				tb.Sweep()
				break
			}
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ban durations %v, want %v", got, want)
		}
	}
	// Forgotten after Max past the last ban: the next ban is For again.
	c.add(5 * time.Second)
	tb.Sweep()
	fail(tb, "2001:db8::2", 2)
	if b, ok := tb.Record(addr("2001:db8::3"), outcome.Rate); !ok || b.For != time.Second {
		t.Errorf("after the memory: %+v %v, want a 1s ban", b, ok)
	}
}

func TestBanExempt(t *testing.T) {
	c := newClock()
	tb := table(c, Options{ExemptLoopback: true, Never: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	for _, a := range []string{"127.0.0.2", "::1", "198.51.100.9", "::ffff:198.51.100.9"} {
		if n := fail(tb, a, 10); n != 0 || tb.Banned(addr(a)) {
			t.Errorf("%s banned", a)
		}
	}
	if n := failWith(tb, "203.0.113.7", 10, outcome.CRLStale); n != 0 {
		t.Error("crl-stale counted")
	}
	if n := failWith(tb, "203.0.113.7", 10, outcome.HandshakeClosed); n != 0 {
		t.Error("handshake-closed counted")
	}
	if tb.Len() != 0 {
		t.Errorf("%d entries for exempt addresses and uncounted outcomes", tb.Len())
	}
	tb = table(c, Options{})
	if n := fail(tb, "127.0.0.2", 3); n != 1 {
		t.Error("loopback not banned without ExemptLoopback")
	}
}

func TestBanLift(t *testing.T) {
	c := newClock()
	tb := table(c, Options{})
	fail(tb, "2001:db8::1", 3)
	for _, bad := range []string{"", "x", "2001:db8::/48", "2001:db8::1/128"} {
		if _, _, err := tb.Lift(bad); err == nil {
			t.Errorf("Lift(%q): no error", bad)
		}
	}
	if _, ok, err := tb.Lift("2001:db8::/64"); !ok || err != nil {
		t.Fatalf("Lift = %v, %v", ok, err)
	}
	if tb.Banned(addr("2001:db8::1")) {
		t.Error("banned after Lift")
	}
	if _, ok, _ := tb.Lift("2001:db8::/64"); ok {
		t.Error("lifted twice")
	}
	if ended, _, _ := tb.Sweep(); len(ended) != 0 {
		t.Errorf("a lifted ban ended again: %+v", ended)
	}
	// Lifting forgives: the next ban is the first again.
	if b, ok := tb.Record(addr("2001:db8::9"), outcome.NotTLS); ok || b.For != 0 {
		t.Error("count survived Lift")
	}
}

// A storm of 20,000 addresses keeps the table at its cap, and the longest
// bans survive it.
func TestBanStormBounded(t *testing.T) {
	c := newClock()
	const limit = 1000
	tb := table(c, Options{After: 1, Window: time.Minute, For: time.Hour, Max: 24 * time.Hour, MaxEntries: limit})
	if _, ok := tb.Record(addr("203.0.113.7"), outcome.NotTLS); !ok {
		t.Fatal("no ban")
	}
	c.add(time.Second)
	tb2 := table(c, Options{After: 1, Window: time.Minute, For: time.Minute, Max: time.Hour, MaxEntries: limit})
	for i := range 20_000 {
		a := netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})
		tb.Record(a, outcome.NotTLS)
		tb2.Record(a, outcome.NotTLS)
		if tb.Len() > limit || tb2.Len() > limit {
			t.Fatalf("%d entries past the cap of %d", max(tb.Len(), tb2.Len()), limit)
		}
	}
	if tb.Len() != limit || tb.Active() != limit || len(tb.List()) != limit {
		t.Errorf("Len %d Active %d List %d, want %d", tb.Len(), tb.Active(), len(tb.List()), limit)
	}
	// Every ban in tb lasts an hour; 203.0.113.7's ends soonest, so it went first.
	if tb.Banned(addr("203.0.113.7")) {
		t.Error("the ban that ends soonest was not evicted first")
	}
	if !tb.Banned(netip.AddrFrom4([4]byte{127, 0, 78, 31})) {
		t.Error("the newest ban was evicted")
	}
	// Every evicted ban ends once: listed up to maxPending, counted beyond.
	ended, unlisted, _ := tb.Sweep()
	if len(ended) != maxPending || unlisted != 20_001-limit-maxPending || !ended[0].Evicted || ended[0].Key != "203.0.113.7" {
		t.Errorf("Sweep after the storm: %d ended (first %+v), %d unlisted", len(ended), ended[0], unlisted)
	}
	if ended, unlisted, _ := tb.Sweep(); len(ended) != 0 || unlisted != 0 {
		t.Errorf("evicted bans reported twice: %d, %d", len(ended), unlisted)
	}
}

// A ban that ended before Sweep came by, then a new ban of the same key:
// both ends are reported, once each.
func TestBanEndedBeforeSweep(t *testing.T) {
	c := newClock()
	tb := table(c, Options{})
	fail(tb, "203.0.113.7", 3)
	c.add(10 * time.Second)
	if n := fail(tb, "203.0.113.7", 3); n != 1 {
		t.Fatalf("%d new bans", n)
	}
	if tb.Active() != 1 {
		t.Errorf("Active = %d, want 1", tb.Active())
	}
	ended, _, _ := tb.Sweep()
	if len(ended) != 1 || ended[0].Evicted || ended[0].For != 10*time.Second {
		t.Errorf("Sweep = %+v, want the first ban", ended)
	}
	c.add(20 * time.Second)
	if ended, _, _ := tb.Sweep(); len(ended) != 1 || ended[0].For != 20*time.Second {
		t.Errorf("Sweep = %+v, want the second (20s) ban", ended)
	}
}

// BenchmarkBanStorm measures the memory of a full table: bytes per entry.
func BenchmarkBanStorm(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newClock()
		tb := table(c, Options{After: 1, Window: time.Minute, For: time.Hour, Max: 24 * time.Hour, MaxEntries: n})
		for i := range n {
			tb.Record(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), outcome.NotTLS)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(tb)
	}
}
