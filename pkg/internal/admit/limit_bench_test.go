package admit

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
)

// The benchmarks run on the real clock. Those through benchAllow use a rate
// high enough that every call is admitted: they measure the admit path,
// then release. "rate" limits the rate only (release is a no-op);
// "rate+cap" also counts connections.
var benchOpts = []struct {
	name string
	opts Limits
}{
	{"rate", Limits{Rate: 1e9, Burst: 1e9}},
	{"rate+cap", Limits{Rate: 1e9, Burst: 1e9, MaxConcurrent: 1 << 20}},
}

func benchAllow(b *testing.B, l *limiter, addr netip.Addr) {
	release, reason, ok := l.allow(addr)
	if !ok {
		b.Fatalf("refused: %q", reason)
	}
	release()
}

func BenchmarkAllowSameIP(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	for _, o := range benchOpts {
		b.Run("serial/"+o.name, func(b *testing.B) {
			l := newLimiter(o.opts)
			b.ReportAllocs()
			for b.Loop() {
				benchAllow(b, l, addr)
			}
		})
		b.Run("parallel/"+o.name, func(b *testing.B) {
			l := newLimiter(o.opts)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchAllow(b, l, addr)
				}
			})
		})
	}
}

// BenchmarkAllowManyIPs goes through 1<<16 addresses, in random order, that
// all fit in the table: the cost of a lookup that misses the CPU caches.
func BenchmarkAllowManyIPs(b *testing.B) {
	const n = 1 << 16
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = v4(uint32(i) + 1<<24)
		} else {
			addrs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(i >> 8), 5: byte(i), 15: 1})
		}
	}
	// Shuffled after the table is filled, so that entries that are
	// neighbours in memory are not used one after the other.
	warm := func(l *limiter) *limiter {
		for _, a := range addrs {
			benchAllow(b, l, a)
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		return l
	}
	for _, o := range benchOpts {
		b.Run("serial/"+o.name, func(b *testing.B) {
			l := warm(newLimiter(o.opts))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				benchAllow(b, l, addrs[i%n])
				i++
			}
		})
		b.Run("parallel/"+o.name, func(b *testing.B) {
			l := warm(newLimiter(o.opts))
			var next atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919)) // goroutines start apart
				for pb.Next() {
					benchAllow(b, l, addrs[i%n])
					i++
				}
			})
		})
	}
}

// BenchmarkAllowSpray gives every call a new address, so once the table
// is full each call evicts the least recently used entry: the cost of a
// spoofed-source or botnet flood.
func BenchmarkAllowSpray(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			l := newLimiter(Limits{Rate: 10, Burst: 20, MaxConcurrent: 32, MaxEntries: 10_000})
			var next atomic.Uint32
			b.ReportAllocs()
			if !parallel {
				for b.Loop() {
					benchAllow(b, l, v4(next.Add(1)))
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchAllow(b, l, v4(next.Add(1)))
				}
			})
		})
	}
}

// BenchmarkAllowRefused is the refusal path, what a flood from one address
// costs once its bucket is empty or its cap is reached.
func BenchmarkAllowRefused(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		name string
		opts Limits
	}{
		{"rate", Limits{Rate: 1e-9, Burst: 1}},
		{"cap", Limits{Rate: 1e9, Burst: 1e9, MaxConcurrent: 1}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			l := newLimiter(tt.opts)
			l.allow(addr) // takes the only token, or the only slot
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := l.allow(addr); ok {
					b.Fatal("admitted")
				}
			}
		})
	}
}
