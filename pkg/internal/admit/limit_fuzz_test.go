package admit

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// FuzzLimiter runs the operations the input spells against a limiter with a
// small table, and checks it against a model of the open connections.
//
// The first four bytes pick the options; then each operation is an opcode
// byte and an argument byte:
//
//	0, 1  Allow from an address derived from the argument
//	2     release the (argument mod n)-th open connection
//	3     advance the clock by argument*10ms
//	4     call an old release again: a released or a refused one
func FuzzLimiter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{3, 2, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 0, 4, 0, 0, 1})
	f.Add([]byte{1, 1, 0, 2, 0, 1, 0, 2, 0, 3, 0, 4, 2, 1, 0, 5, 4, 0, 0, 2})
	f.Add([]byte{7, 3, 3, 3, 0, 0x41, 0, 0x42, 1, 0x81, 1, 0x82, 3, 200, 0, 0xc1, 2, 3, 4, 1, 0, 0x41})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		clk := newClock()
		opts := Limits{
			MaxEntries:    1 + int(data[0]%8),
			MaxConcurrent: int(data[1] % 4),
			Burst:         1 + int(data[2]%4),
			Rate:          []rate.Limit{0, 1, 10, 1000}[data[3]%4],
			IPv6Prefix:    []int{64, 128, 56, 1}[data[3]>>2%4],
			Now:           clk.Now,
		}
		l := newLimiter(opts)
		type conn struct {
			key     netip.Addr
			release func()
		}
		var open []conn
		var stale []func()            // released or refused: calling them must do nothing
		model := map[netip.Addr]int{} // open connections per key
		busy := func() int {          // keys with open connections
			n := 0
			for _, c := range model {
				if c > 0 {
					n++
				}
			}
			return n
		}
		check := func(op int) {
			if err := checkInvariants(l); err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
			if n := size(l); n > opts.MaxEntries {
				t.Fatalf("op %d: size = %d > MaxEntries %d", op, n, opts.MaxEntries)
			}
			for k, c := range model {
				if got := activeOf(l, k); got != c {
					t.Fatalf("op %d: key %s: limiter counts %d open, model %d", op, k, got, c)
				}
				if opts.MaxConcurrent > 0 && c > opts.MaxConcurrent {
					t.Fatalf("op %d: key %s: %d open, cap %d", op, k, c, opts.MaxConcurrent)
				}
			}
		}
		for op, rest := 0, data[4:]; len(rest) >= 2; op, rest = op+1, rest[2:] {
			arg := rest[1]
			switch rest[0] % 5 {
			case 0, 1:
				addr := fuzzAddr(arg)
				k := keyOf(addr, l.v6bits)
				wasTracked := tracked(l, addr)
				before := model[k]
				release, reason, ok := l.allow(addr)
				if release == nil {
					t.Fatalf("op %d: nil release", op)
				}
				if ok != (reason == "") {
					t.Fatalf("op %d: ok %v with reason %q", op, ok, reason)
				}
				switch reason {
				case "":
					if opts.MaxConcurrent > 0 {
						if before >= opts.MaxConcurrent {
							t.Fatalf("op %d: %s admitted with %d open, cap %d", op, addr, before, opts.MaxConcurrent)
						}
						model[k]++
						open = append(open, conn{k, release})
					}
				case outcome.Rate:
					if opts.Rate == 0 || !wasTracked {
						t.Fatalf("op %d: %s refused for rate (rate %v, tracked %v)", op, addr, opts.Rate, wasTracked)
					}
				case outcome.PerIPCap:
					if before != opts.MaxConcurrent || opts.MaxConcurrent == 0 {
						t.Fatalf("op %d: %s refused for concurrency with %d open, cap %d", op, addr, before, opts.MaxConcurrent)
					}
				case outcome.LimiterFull:
					// The table is full only when every entry has open
					// connections.
					if wasTracked || busy() != opts.MaxEntries {
						t.Fatalf("op %d: %s refused, table full, with %d busy keys of %d (tracked %v)",
							op, addr, busy(), opts.MaxEntries, wasTracked)
					}
				default:
					t.Fatalf("op %d: unknown reason %q", op, reason)
				}
				if !ok {
					stale = append(stale, release)
				}
			case 2:
				if len(open) == 0 {
					continue
				}
				i := int(arg) % len(open)
				c := open[i]
				open = append(open[:i], open[i+1:]...)
				c.release()
				model[c.key]--
				stale = append(stale, c.release)
			case 3:
				clk.Advance(time.Duration(arg) * 10 * time.Millisecond)
			case 4:
				if len(stale) > 0 {
					stale[int(arg)%len(stale)]()
				}
			}
			check(op)
		}
		for _, c := range open {
			c.release()
			model[c.key]--
		}
		check(-1)
		if opts.Rate == 0 && size(l) != 0 {
			t.Fatalf("no rate and nothing open, but size = %d", size(l))
		}
		// With every bucket refilled, every key admits again.
		clk.Advance(time.Hour)
		for k := range model {
			release, reason, ok := l.allow(k)
			if !ok {
				t.Fatalf("key %s refused after all released and refilled: %q", k, reason)
			}
			release()
		}
	})
}

// fuzzAddr maps a byte to one of a few dozen addresses that collide in
// interesting ways: IPv4, the same as IPv4-mapped IPv6, IPv6 in a few /64s
// and /56s, and link-local with zones.
func fuzzAddr(b byte) netip.Addr {
	low := b & 0x0f
	switch b >> 6 {
	case 0:
		return netip.AddrFrom4([4]byte{192, 0, 2, low})
	case 1:
		return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: low})
	case 2:
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 6: b >> 4 & 3, 7: b >> 5 & 1, 15: low})
	default:
		zone := []string{"", "eth0", "eth1", "lo"}[b>>4&3]
		return netip.AddrFrom16([16]byte{0xfe, 0x80, 15: low}).WithZone(zone)
	}
}
