package admit

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// fakeClock is a clock that moves only when told; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// step is one call to Allow in a scripted test: advance the clock, then
// Allow(addr), expecting want ("" means admitted). Admitted connections are
// released at once unless hold is set.
type step struct {
	adv  time.Duration
	addr string
	want outcome.Code
	hold bool
}

func runSteps(t *testing.T, opts Limits, steps []step) *limiter {
	t.Helper()
	clk := newClock()
	opts.Now = clk.Now
	l := newLimiter(opts)
	for i, s := range steps {
		clk.Advance(s.adv)
		release, reason, ok := l.allow(netip.MustParseAddr(s.addr))
		if reason != s.want || ok != (s.want == "") {
			t.Fatalf("step %d: Allow(%s) = %q, %v; want %q", i, s.addr, reason, ok, s.want)
		}
		if release == nil {
			t.Fatalf("step %d: nil release", i)
		}
		if !s.hold {
			release()
		}
		if err := checkInvariants(l); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return l
}

func TestRate(t *testing.T) {
	base := Limits{Rate: 2, Burst: 3} // a token every 500ms
	tests := []struct {
		name  string
		opts  Limits
		steps []step
	}{
		{"burst then refill", base, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{adv: 499 * time.Millisecond, addr: "192.0.2.1", want: outcome.Rate},
			{adv: time.Millisecond, addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{adv: time.Second, addr: "192.0.2.1"}, {addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{adv: time.Hour, addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
		}},
		{"refused calls take no token", base, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
			{adv: 100 * time.Millisecond, addr: "192.0.2.1", want: outcome.Rate},
			{adv: 100 * time.Millisecond, addr: "192.0.2.1", want: outcome.Rate},
			{adv: 300 * time.Millisecond, addr: "192.0.2.1"},
		}},
		{"addresses are independent", base, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{addr: "192.0.2.2"}, {addr: "192.0.2.2"}, {addr: "192.0.2.2"},
			{addr: "192.0.2.2", want: outcome.Rate},
			{addr: "198.51.100.1"},
		}},
		{"burst below 1 means 1", Limits{Rate: 1, Burst: -5}, []step{
			{addr: "192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{adv: time.Second, addr: "192.0.2.1"},
		}},
		{"ipv6 same /64 shares a bucket", base, []step{
			{addr: "2001:db8:1:2::1"}, {addr: "2001:db8:1:2::2"},
			{addr: "2001:db8:1:2:ffff:ffff:ffff:ffff"},
			{addr: "2001:db8:1:2:abcd::9", want: outcome.Rate},
			{addr: "2001:db8:1:3::1"}, // next /64
			{addr: "2001:db8:1:1::1"}, // previous /64
		}},
		{"ipv6 prefix 128 keys each address", Limits{Rate: 2, Burst: 1, IPv6Prefix: 128}, []step{
			{addr: "2001:db8::1"},
			{addr: "2001:db8::1", want: outcome.Rate},
			{addr: "2001:db8::2"},
			{addr: "2001:db8::2", want: outcome.Rate},
		}},
		{"ipv6 prefix 48", Limits{Rate: 2, Burst: 1, IPv6Prefix: 48}, []step{
			{addr: "2001:db8:1:2::1"},
			{addr: "2001:db8:1:ffff::1", want: outcome.Rate},
			{addr: "2001:db8:2::1"},
		}},
		{"ipv6 prefix out of range means 64", Limits{Rate: 2, Burst: 1, IPv6Prefix: 129}, []step{
			{addr: "2001:db8::1"},
			{addr: "2001:db8::ffff", want: outcome.Rate},
			{addr: "2001:db8:0:1::1"},
		}},
		{"ipv4-mapped is ipv4", Limits{Rate: 2, Burst: 2}, []step{
			{addr: "192.0.2.1"},
			{addr: "::ffff:192.0.2.1"},
			{addr: "192.0.2.1", want: outcome.Rate},
			{addr: "::ffff:192.0.2.1", want: outcome.Rate},
			{addr: "::ffff:192.0.2.2"},
		}},
		{"ipv4-mapped is not its /64", Limits{Rate: 2, Burst: 1}, []step{
			{addr: "::ffff:192.0.2.1"},
			{addr: "::ffff:192.0.2.2"}, // same /64 as IPv6, but keyed per IPv4 address
		}},
		{"zone is dropped", Limits{Rate: 2, Burst: 1, IPv6Prefix: 128}, []step{
			{addr: "fe80::1%eth0"},
			{addr: "fe80::1%eth1", want: outcome.Rate},
			{addr: "fe80::1", want: outcome.Rate},
		}},
		{"no rate limit", Limits{}, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
		}},
		{"rate inf is no rate limit", Limits{Rate: rate.Inf, Burst: 1}, []step{
			{addr: "192.0.2.1"}, {addr: "192.0.2.1"}, {addr: "192.0.2.1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.opts, tt.steps) })
	}
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		name  string
		opts  Limits
		steps []step
	}{
		{"cap", Limits{MaxConcurrent: 2}, []step{
			{addr: "192.0.2.1", hold: true}, {addr: "192.0.2.1", hold: true},
			{addr: "192.0.2.1", want: outcome.PerIPCap},
			{addr: "192.0.2.2", hold: true}, // other keys unaffected
			{addr: "2001:db8::1", hold: true}, {addr: "2001:db8::2", hold: true},
			{addr: "2001:db8::3", want: outcome.PerIPCap},
		}},
		{"cap checked before rate", Limits{MaxConcurrent: 1, Rate: 1, Burst: 2}, []step{
			{addr: "192.0.2.1", hold: true},
			{addr: "192.0.2.1", want: outcome.PerIPCap},
			{addr: "192.0.2.1", want: outcome.PerIPCap},
		}},
		{"no cap", Limits{Rate: 100, Burst: 100}, []step{
			{addr: "192.0.2.1", hold: true}, {addr: "192.0.2.1", hold: true},
			{addr: "192.0.2.1", hold: true}, {addr: "192.0.2.1", hold: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.opts, tt.steps) })
	}
}

func mustAllow(t *testing.T, l *limiter, addr netip.Addr) func() {
	t.Helper()
	release, reason, ok := l.allow(addr)
	if !ok {
		t.Fatalf("Allow(%s) refused: %q", addr, reason)
	}
	return release
}

func wantRefused(t *testing.T, l *limiter, addr netip.Addr, want outcome.Code) {
	t.Helper()
	release, reason, ok := l.allow(addr)
	if ok || reason != want {
		t.Fatalf("Allow(%s) = %q, %v; want %q", addr, reason, ok, want)
	}
	release() // a refusal's release must do nothing
	if err := checkInvariants(l); err != nil {
		t.Fatal(err)
	}
}

func TestRelease(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	t.Run("frees one slot, twice is harmless", func(t *testing.T) {
		l := newLimiter(Limits{MaxConcurrent: 2})
		r1 := mustAllow(t, l, a)
		r2 := mustAllow(t, l, a)
		wantRefused(t, l, a, outcome.PerIPCap)
		r1()
		r3 := mustAllow(t, l, a)
		r1() // must not free r2's or r3's slot
		r1()
		wantRefused(t, l, a, outcome.PerIPCap)
		r2()
		r3()
		r2()
		if got := activeOf(l, a); got != 0 {
			t.Fatalf("active = %d after releasing all", got)
		}
		mustAllow(t, l, a)
		mustAllow(t, l, a)
		wantRefused(t, l, a, outcome.PerIPCap)
	})
	t.Run("refused release does nothing", func(t *testing.T) {
		l := newLimiter(Limits{MaxConcurrent: 1})
		r1 := mustAllow(t, l, a)
		for range 5 {
			wantRefused(t, l, a, outcome.PerIPCap) // calls the refusal's release
		}
		if got := activeOf(l, a); got != 1 {
			t.Fatalf("active = %d, want 1", got)
		}
		r1()
		mustAllow(t, l, a)
	})
	t.Run("after eviction pressure", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(Limits{MaxConcurrent: 2, Rate: 1, Burst: 10, MaxEntries: 4, Now: clk.Now})
		held := mustAllow(t, l, a)
		// Spray: every other entry is evicted many times over, a's stays.
		for i := range 1000 {
			mustAllow(t, l, v4(uint32(i)+1<<24))()
			clk.Advance(time.Millisecond)
		}
		if n := size(l); n > 4 {
			t.Fatalf("size = %d > 4", n)
		}
		if got := activeOf(l, a); got != 1 {
			t.Fatalf("active = %d after spray, want 1", got)
		}
		r2 := mustAllow(t, l, a)
		wantRefused(t, l, a, outcome.PerIPCap)
		held()
		r2()
		mustAllow(t, l, a)
		mustAllow(t, l, a)
		wantRefused(t, l, a, outcome.PerIPCap)
	})
	t.Run("stale release after the entry is reused", func(t *testing.T) {
		l := newLimiter(Limits{MaxConcurrent: 1, MaxEntries: 1})
		b := netip.MustParseAddr("192.0.2.2")
		old := mustAllow(t, l, a)
		old()
		// a's entry is idle; b takes it over (MaxEntries 1), then a again.
		rb := mustAllow(t, l, b)
		rb()
		ra := mustAllow(t, l, a)
		old() // stale: must not free ra's slot
		rb()
		wantRefused(t, l, a, outcome.PerIPCap)
		ra()
		mustAllow(t, l, a)
	})
}

// v4 returns the IPv4 address with value n.
func v4(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}

func TestSpray(t *testing.T) {
	const maxEntries = 10_000
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	clk := newClock()
	l := newLimiter(Limits{Rate: 1, Burst: 5, MaxConcurrent: 4, MaxEntries: maxEntries, Now: clk.Now})
	for i := range n {
		release, reason, ok := l.allow(v4(uint32(i) + 1<<24))
		if !ok {
			t.Fatalf("fresh address %d refused: %q", i, reason)
		}
		release()
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
			if got := size(l); got > maxEntries {
				t.Fatalf("after %d addresses: size = %d > %d", i, got, maxEntries)
			}
		}
	}
	if got := size(l); got != maxEntries {
		t.Fatalf("size = %d, want %d (full)", got, maxEntries)
	}
	if err := checkInvariants(l); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("HeapAlloc after %d addresses: %.1f MiB", n, float64(ms.HeapAlloc)/(1<<20))
	if ms.HeapAlloc > 20<<20 {
		t.Fatalf("HeapAlloc = %d bytes after the spray, want < 20 MiB", ms.HeapAlloc)
	}
	runtime.KeepAlive(l)
}

// TestEntrySize checks the per-entry cost that DefaultMaxEntries's comment
// quotes.
func TestEntrySize(t *testing.T) {
	const n = DefaultMaxEntries
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := newLimiter(Limits{Rate: 1, Burst: 5, MaxConcurrent: 4, MaxEntries: n})
	for i := range n {
		mustAllow(t, l, v4(uint32(i)+1<<24))()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry", per)
	if per > 200 {
		t.Fatalf("%.0f bytes per entry, want at most 200", per)
	}
	runtime.KeepAlive(l)
}

func TestTableFull(t *testing.T) {
	const maxEntries = 8
	l := newLimiter(Limits{MaxConcurrent: 2, Rate: 10, Burst: 10, MaxEntries: maxEntries})
	releases := make([]func(), maxEntries)
	for i := range releases {
		releases[i] = mustAllow(t, l, v4(uint32(i+1)))
	}
	newKey := v4(1000)
	wantRefused(t, l, newKey, outcome.LimiterFull)
	wantRefused(t, l, netip.MustParseAddr("2001:db8::1"), outcome.LimiterFull)
	if got := size(l); got != maxEntries {
		t.Fatalf("size = %d, want %d", got, maxEntries)
	}
	// Existing keys still work, up to their cap.
	extra := mustAllow(t, l, v4(1))
	wantRefused(t, l, v4(1), outcome.PerIPCap)
	extra()
	// Once one key has no open connection, its entry can be evicted.
	releases[3]()
	mustAllow(t, l, newKey)
	if got := activeOf(l, v4(4)); got != 0 {
		t.Fatalf("evicted key active = %d", got)
	}
	wantRefused(t, l, v4(4), outcome.LimiterFull)
	if got := size(l); got != maxEntries {
		t.Fatalf("size = %d, want %d", got, maxEntries)
	}
}

// An entry with no open connection stays until the table is full and a
// new key takes its place, least recently used first; without a rate it
// holds nothing, so it goes as soon as its last connection closes.
func TestIdleEntries(t *testing.T) {
	t.Run("least recently used is evicted first", func(t *testing.T) {
		clk := newClock()
		l := newLimiter(Limits{Rate: 1, Burst: 1, MaxConcurrent: 3, MaxEntries: 3, Now: clk.Now})
		a, b, c, d := v4(1), v4(2), v4(3), v4(4)
		for _, k := range []netip.Addr{a, b, c} {
			mustAllow(t, l, k)()
		}
		wantRefused(t, l, a, outcome.Rate) // a is used again: b is now the oldest
		mustAllow(t, l, d)()
		if tracked(l, b) || !tracked(l, a) || !tracked(l, c) || !tracked(l, d) {
			t.Fatalf("after d: a %v, b %v, c %v, d %v; want b evicted",
				tracked(l, a), tracked(l, b), tracked(l, c), tracked(l, d))
		}
		wantRefused(t, l, a, outcome.Rate) // a kept its empty bucket
		mustAllow(t, l, b)()               // b's bucket is fresh: it was evicted
		if got := size(l); got != 3 {
			t.Fatalf("size = %d, want 3", got)
		}
	})
	t.Run("an entry with open connections is never evicted", func(t *testing.T) {
		l := newLimiter(Limits{Rate: 1000, Burst: 1000, MaxConcurrent: 3, MaxEntries: 2})
		held := mustAllow(t, l, v4(1))
		for i := range 100 {
			mustAllow(t, l, v4(uint32(i+2)))()
		}
		if got := activeOf(l, v4(1)); got != 1 {
			t.Fatalf("active = %d after 100 other keys, want 1", got)
		}
		held()
	})
	t.Run("without a rate, idle entries go at once", func(t *testing.T) {
		l := newLimiter(Limits{MaxConcurrent: 3})
		var rs []func()
		for i := range 100 {
			rs = append(rs, mustAllow(t, l, v4(uint32(i+1))))
		}
		if got := size(l); got != 100 {
			t.Fatalf("size = %d, want 100", got)
		}
		for _, r := range rs {
			r()
		}
		if got := size(l); got != 0 {
			t.Fatalf("size = %d after releasing all, want 0", got)
		}
	})
	t.Run("no limits, no table", func(t *testing.T) {
		l := newLimiter(Limits{})
		for i := range 100 {
			mustAllow(t, l, v4(uint32(i+1)))()
		}
		if got := size(l); got != 0 {
			t.Fatalf("size = %d, want 0", got)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	const (
		goroutines = 8
		maxConc    = 3
	)
	iters := 5000
	if testing.Short() {
		iters = 500
	}
	clk := newClock()
	// More keys than entries, so eviction and table-full refusals happen.
	l := newLimiter(Limits{Rate: 1000, Burst: 50, MaxConcurrent: maxConc, MaxEntries: 12, Now: clk.Now})
	var keys []netip.Addr
	for i := range 16 {
		keys = append(keys, v4(uint32(i+1)), netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 15: byte(i)}))
	}
	counts := make([]atomic.Int32, len(keys))
	var refused [4]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			type held struct {
				i       int
				release func()
			}
			var hold []held
			for range iters {
				if len(hold) > 0 && rng.IntN(2) == 0 {
					j := rng.IntN(len(hold))
					h := hold[j]
					hold[j] = hold[len(hold)-1]
					hold = hold[:len(hold)-1]
					counts[h.i].Add(-1) // before release: counts never exceed the truth
					h.release()
					if rng.IntN(4) == 0 {
						h.release()
					}
					continue
				}
				if rng.IntN(50) == 0 {
					clk.Advance(time.Millisecond)
				}
				i := rng.IntN(len(keys))
				release, reason, ok := l.allow(keys[i])
				if !ok {
					switch reason {
					case outcome.Rate:
						refused[1].Add(1)
					case outcome.PerIPCap:
						refused[2].Add(1)
					case outcome.LimiterFull:
						refused[3].Add(1)
					default:
						t.Errorf("refused with reason %q", reason)
					}
					release()
					continue
				}
				refused[0].Add(1)
				if n := counts[i].Add(1); n > maxConc {
					t.Errorf("key %s: %d connections open, cap %d", keys[i], n, maxConc)
				}
				hold = append(hold, held{i, release})
				if n := size(l); n > 12 {
					t.Errorf("size = %d > 12", n)
				}
			}
			for _, h := range hold {
				counts[h.i].Add(-1)
				h.release()
			}
		})
	}
	wg.Wait()
	t.Logf("admitted %d, refused: rate %d, per-ip cap %d, table full %d",
		refused[0].Load(), refused[1].Load(), refused[2].Load(), refused[3].Load())
	if err := checkInvariants(l); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	for _, k := range keys {
		if got := activeOf(l, k); got != 0 {
			t.Fatalf("key %s: active = %d after all released", k, got)
		}
		var rs []func()
		for range maxConc {
			rs = append(rs, mustAllow(t, l, k))
		}
		wantRefused(t, l, k, outcome.PerIPCap)
		for _, r := range rs {
			r()
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		addr string
		bits int
		want string
	}{
		{"192.0.2.1", 64, "192.0.2.1/32"},
		{"192.0.2.1", 128, "192.0.2.1/32"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1/32"},
		{"::ffff:192.0.2.1", 128, "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 0, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", -1, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 129, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 1, "::/1"},
		{"fe80::1%eth0", 128, "fe80::1/128"},
		{"fe80::1:2:3:4%eth0", 64, "fe80::/64"},
		{"::", 64, "::/64"},
		{"::1", 128, "::1/128"},
		{"0.0.0.0", 64, "0.0.0.0/32"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.addr, tt.bits), func(t *testing.T) {
			got := keyPrefix(netip.MustParseAddr(tt.addr), tt.bits)
			if got.String() != tt.want {
				t.Fatalf("Key = %s, want %s", got, tt.want)
			}
		})
	}
	if got := keyPrefix(netip.Addr{}, 64); got.IsValid() {
		t.Fatalf("keyPrefix(zero Addr) = %s, want the zero Prefix", got)
	}
}

func TestInvalidAddrsShareAKey(t *testing.T) {
	l := newLimiter(Limits{MaxConcurrent: 1})
	r := mustAllow(t, l, netip.Addr{})
	wantRefused(t, l, netip.Addr{}, outcome.PerIPCap)
	mustAllow(t, l, netip.IPv4Unspecified())() // a real address is another key
	r()
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    Limits
		wantMax int
		wantOff bool
	}{
		{"zero", Limits{}, DefaultMaxEntries, true},
		{"rate only", Limits{Rate: 1}, DefaultMaxEntries, false},
		{"negative rate", Limits{Rate: -1, MaxEntries: 10}, 10, true},
		{"cap only", Limits{MaxConcurrent: 1, MaxEntries: 10}, 10, false},
		{"negative entries", Limits{Rate: 1, MaxEntries: -1}, DefaultMaxEntries, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.opts)
			if l.max != tt.wantMax || l.off != tt.wantOff {
				t.Fatalf("max %d, off %v; want %d, %v", l.max, l.off, tt.wantMax, tt.wantOff)
			}
		})
	}
}

// TestAllocs counts the allocations of an admission and its release, and
// of each kind of refusal, which must allocate nothing: refusals are what
// a flood is made of.
func TestAllocs(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	same := func(int) netip.Addr { return a }
	tests := []struct {
		name string
		opts Limits
		addr func(i int) netip.Addr
		want float64
	}{
		{"same ip, rate", Limits{Rate: 1e9, Burst: 1e9}, same, 0},
		{"same ip, rate and cap", Limits{Rate: 1e9, Burst: 1e9, MaxConcurrent: 10}, same, 2},
		{"new ips, full table", Limits{Rate: 1, Burst: 5, MaxEntries: 1000}, func(i int) netip.Addr { return v4(uint32(i)) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.opts)
			i := 0
			run := func() {
				i++
				release, reason, ok := l.allow(tt.addr(i))
				if !ok {
					t.Fatalf("refused: %q", reason)
				}
				release()
			}
			for range 5000 { // warm up: fill the table
				run()
			}
			if got := testing.AllocsPerRun(1000, run); got != tt.want {
				t.Fatalf("%v allocations per allow and release, want %v", got, tt.want)
			}
		})
	}

	refusals := []struct {
		why  outcome.Code
		opts Limits
	}{
		{outcome.Rate, Limits{Rate: 1e-9, Burst: 1, MaxConcurrent: 10}},
		{outcome.PerIPCap, Limits{Rate: 1e9, Burst: 1e9, MaxConcurrent: 1}},
		{outcome.LimiterFull, Limits{MaxConcurrent: 1, MaxEntries: 1}},
	}
	for _, tt := range refusals {
		t.Run("refused: "+string(tt.why), func(t *testing.T) {
			l := newLimiter(tt.opts)
			mustAllow(t, l, v4(1)) // held: fills the bucket, the cap or the table
			addr := v4(1)
			if tt.why == outcome.LimiterFull {
				addr = v4(2)
			}
			run := func() {
				release, reason, ok := l.allow(addr)
				if ok || reason != tt.why {
					t.Fatalf("allow = %q, %v; want refused for %q", reason, ok, tt.why)
				}
				release()
			}
			if got := testing.AllocsPerRun(1000, run); got != 0 {
				t.Fatalf("%v allocations per refusal, want 0", got)
			}
		})
	}
}

// activeOf returns the open connections that l counts for addr's key.
func activeOf(l *limiter, addr netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[keyOf(addr, l.v6bits)]; e != nil {
		return e.active
	}
	return 0
}

// tracked reports whether l has an entry for addr's key.
func tracked(l *limiter, addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[keyOf(addr, l.v6bits)] != nil
}

// size returns the number of keys l tracks.
func size(l *limiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// checkInvariants checks the table: no more entries than the cap; the LRU
// list exactly the entries with no open connection (none without a rate),
// linked both ways; no entry beyond the concurrency cap.
func checkInvariants(l *limiter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > l.max {
		return fmt.Errorf("%d entries, max %d", len(l.m), l.max)
	}
	inList := 0
	var prev *entry
	for e := l.head; e != nil; e = e.next {
		if e.prev != prev {
			return fmt.Errorf("broken prev link at %s", e.key)
		}
		if l.m[e.key] != e {
			return fmt.Errorf("listed entry %s not in the map", e.key)
		}
		if e.active != 0 {
			return fmt.Errorf("listed entry %s has %d open", e.key, e.active)
		}
		prev = e
		inList++
		if inList > len(l.m) {
			return fmt.Errorf("list longer than the map")
		}
	}
	if l.tail != prev {
		return fmt.Errorf("tail is not the last entry")
	}
	for k, e := range l.m {
		if e.key != k {
			return fmt.Errorf("entry %s under key %s", e.key, k)
		}
		if keyOf(k, l.v6bits) != k {
			return fmt.Errorf("key %s not normalized", k)
		}
		if e.active < 0 || l.maxConc > 0 && e.active > l.maxConc {
			return fmt.Errorf("key %s: %d open, cap %d", k, e.active, l.maxConc)
		}
		if e.active == 0 {
			if l.limit == 0 {
				return fmt.Errorf("key %s: idle entry kept without a rate", k)
			}
			inList--
		}
	}
	if inList != 0 {
		return fmt.Errorf("list and idle entries differ by %d", inList)
	}
	return nil
}
