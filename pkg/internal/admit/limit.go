package admit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Defaults for the zero values of Limits.
const (
	// DefaultMaxEntries is the table cap used when Limits.MaxEntries is 0.
	// An entry costs about 200 bytes with its map slot (TestEntrySize), so
	// a full default table takes about 19 MiB.
	DefaultMaxEntries = 100_000
	// DefaultIPv6Prefix is the prefix length that keys IPv6 addresses when
	// Limits.IPv6Prefix is 0.
	DefaultIPv6Prefix = 64
)

// Limits are the per-IP limits. The zero value limits nothing.
type Limits struct {
	// Rate is new connections per second per key. Zero, a negative value,
	// NaN or rate.Inf mean no rate limit.
	Rate rate.Limit
	// Burst is the bucket size: how many connections a key may open at once
	// after a quiet period. Below 1 it is 1 (when Rate limits).
	Burst int
	// MaxConcurrent caps the connections open at once per key. Zero or
	// less means no cap.
	MaxConcurrent int
	// IPv6Prefix is the prefix length, from 1 to 128, that IPv6 addresses
	// are masked to before keying; 128 keys each address. Other values mean
	// DefaultIPv6Prefix.
	IPv6Prefix int
	// MaxEntries caps the keys tracked at once. Zero or less means
	// DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// limiter applies Limits: a table of entries, one per key, under one lock.
// One lock is enough: a call costs a few hundred nanoseconds beside an
// accept and a handshake of tens of microseconds or more, so even under a
// flood the lock is not where connections wait (BenchmarkAllowManyIPs).
type limiter struct {
	now     func() time.Time
	limit   rate.Limit // 0 when the rate is not limited
	burst   int
	maxConc int // 0 when there is no concurrency cap
	v6bits  int
	max     int  // MaxEntries
	off     bool // nothing to limit: allow admits without a lookup

	mu sync.Mutex
	m  map[netip.Addr]*entry
	// head and tail hold the entries with no open connection, most
	// recently used first; eviction takes the tail. Entries with open
	// connections are in no list, so they are never evicted.
	head, tail *entry

	// fleet is the fleet-wide share of the rate (fleet.go).
	fleet fleetState
}

// entry is the state of one key.
type entry struct {
	key        netip.Addr
	lim        rate.Limiter // unused when the rate is not limited
	active     int          // open connections
	prev, next *entry
	fleetEntry // the fleet's share (fleet.go), 16 bytes
}

// slot is an admitted connection's hold on its entry. While it is held the
// entry has open connections, so it is neither evicted nor reused for
// another key; done makes a second release a no-op, so a stray call can
// never free a slot that another connection holds.
type slot struct {
	l    *limiter
	e    *entry
	done atomic.Bool
}

func (s *slot) release() {
	if !s.done.Swap(true) {
		s.l.release(s.e)
	}
}

// noRelease is the release of a connection that holds no slot.
func noRelease() {}

// newLimiter returns a limiter for o; see Limits for the zero values.
func newLimiter(o Limits) *limiter {
	l := &limiter{
		now:     o.Now,
		maxConc: max(o.MaxConcurrent, 0),
		v6bits:  normPrefix(o.IPv6Prefix),
		max:     o.MaxEntries,
		m:       make(map[netip.Addr]*entry),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.fleet.epoch = l.now()
	l.fleet.replicas.Store(1)
	if l.max <= 0 {
		l.max = DefaultMaxEntries
	}
	if o.Rate > 0 && o.Rate != rate.Inf { // false for NaN too
		l.limit = o.Rate
		l.burst = max(o.Burst, 1)
	}
	l.off = l.limit == 0 && l.maxConc == 0
	return l
}

func normPrefix(bits int) int {
	if bits < 1 || bits > 128 {
		return DefaultIPv6Prefix
	}
	return bits
}

// keyPrefix returns the key that addr is counted under, as a prefix for
// logs: a /32 for IPv4 and IPv4-mapped IPv6, the address masked to
// ipv6Prefix bits for IPv6 (ipv6Prefix outside 1 to 128 means
// DefaultIPv6Prefix). It returns the zero Prefix for the zero Addr.
func keyPrefix(addr netip.Addr, ipv6Prefix int) netip.Prefix {
	k := keyOf(addr, normPrefix(ipv6Prefix))
	switch {
	case k.Is4():
		return netip.PrefixFrom(k, 32)
	case k.Is6():
		return netip.PrefixFrom(k, normPrefix(ipv6Prefix))
	}
	return netip.Prefix{}
}

// keyOf is keyPrefix as the map key. bits must be in 1 to 128. All invalid
// addresses share the zero Addr, and with it one bucket and one cap.
func keyOf(addr netip.Addr, bits int) netip.Addr {
	addr = addr.Unmap()
	if !addr.Is6() {
		return addr // IPv4 (no zone possible) or the zero Addr
	}
	p, _ := addr.Prefix(bits) // drops the zone; cannot fail for 1..128
	return p.Addr()
}

// allow admits a new connection from addr, or reports why not.
//
// If ok, the connection holds one of its key's MaxConcurrent slots until
// release is called. Calling release again does nothing. If not ok, reason
// says why, and release is a func that does nothing (never nil).
//
// A refusal does not allocate. An admission under a concurrency cap
// allocates its slot and the release func (48 bytes in two objects): a
// pooled slot could not tell its holder's second call from a later
// holder's first. Otherwise allow does not allocate once the table is full.
func (l *limiter) allow(addr netip.Addr) (release func(), reason outcome.Code, ok bool) {
	if l.off {
		return noRelease, "", true
	}
	k := keyOf(addr, l.v6bits)
	now := l.now()

	l.mu.Lock()
	e := l.m[k]
	if e == nil {
		if e = l.add(k); e == nil {
			l.mu.Unlock()
			return noRelease, outcome.LimiterFull, false
		}
	} else if e.active == 0 {
		// Refused calls count as use too: an entry that is being hammered
		// keeps its empty bucket rather than be evicted first.
		l.unlink(e)
		l.pushFront(e)
	}
	// The cap is checked before the bucket, so that a refused call takes
	// no token.
	if l.maxConc > 0 && e.active >= l.maxConc {
		l.mu.Unlock()
		return noRelease, outcome.PerIPCap, false
	}
	shared := l.limit > 0 && l.fleet.on.Load()
	if shared && !l.fleetAllows(e, now) {
		l.mu.Unlock()
		return noRelease, outcome.Rate, false
	}
	if l.limit > 0 && !e.lim.AllowN(now, 1) {
		l.mu.Unlock()
		return noRelease, outcome.Rate, false
	}
	if shared {
		e.fleetTake()
	}
	if l.maxConc == 0 {
		l.mu.Unlock()
		return noRelease, "", true
	}
	if e.active == 0 {
		l.unlink(e) // open connections pin the entry
	}
	e.active++
	l.mu.Unlock()
	s := &slot{l: l, e: e}
	return s.release, "", true
}

// add inserts a fresh entry for k, evicting the least recently used entry
// with no open connection if the table is full. It returns nil if every
// entry has open connections.
func (l *limiter) add(k netip.Addr) *entry {
	var e *entry
	if len(l.m) < l.max {
		e = new(entry)
	} else if e = l.tail; e != nil {
		l.unlink(e)
		delete(l.m, e.key)
	} else {
		return nil
	}
	e.key = k
	e.fleetEntry = e.fleetEntry.fresh()
	if l.limit > 0 {
		// A new limiter starts full. NewLimiter is inlined, so this
		// copies a stack value and does not allocate.
		e.lim = *rate.NewLimiter(l.limit, l.burst)
	}
	l.m[k] = e
	l.pushFront(e)
	return e
}

// release gives back one of e's slots.
func (l *limiter) release(e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.active--
	switch {
	case e.active > 0:
	case l.limit == 0:
		delete(l.m, e.key) // no bucket: an entry without connections is empty
	default:
		l.pushFront(e)
	}
}

func (l *limiter) pushFront(e *entry) {
	e.prev = nil
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
}

func (l *limiter) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
