package admit

import (
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Reasons for a refusal by the per-IP limits.
const (
	// RefusedRate means the key's token bucket is empty.
	RefusedRate Reason = "rate"
	// RefusedConcurrency means the key already has Limits.MaxConcurrent
	// connections open.
	RefusedConcurrency Reason = "per-ip cap"
	// RefusedTableFull means the key is new and every tracked entry it could
	// replace has open connections (see the package documentation).
	RefusedTableFull Reason = "limiter full"
)

// Defaults for the zero values of Limits.
const (
	// DefaultMaxEntries is the table cap used when Limits.MaxEntries is 0.
	// An entry costs about 220 bytes with its map slot, so a full default
	// table takes about 22 MiB.
	DefaultMaxEntries = 100_000
	// DefaultIPv6Prefix is the prefix length that keys IPv6 addresses when
	// Limits.IPv6Prefix is 0.
	DefaultIPv6Prefix = 64
)

// Limits configures a limiter. The zero value limits nothing.
type Limits struct {
	// Rate is new connections per second per key. Zero, a negative value,
	// NaN or rate.Inf mean no rate limit.
	Rate rate.Limit
	// Burst is the bucket size: how many connections a key may open at once
	// after a quiet period. Below 1 it is 1 (when Rate limits).
	Burst int
	// MaxConcurrent caps the connections open at once per key. Zero or
	// less means no cap, and allow then returns a release that does nothing.
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

// limiter admits or refuses connections per key. It is safe for concurrent
// use; create it with newLimiter.
type limiter struct {
	now     func() time.Time
	epoch   time.Time     // touch times are durations since epoch (monotonic with time.Now)
	limit   rate.Limit    // 0 when rate limiting is off
	burst   int           // bucket size when rate limiting is on
	refill  time.Duration // time for an empty bucket to refill; 0 when the rate is off
	maxConc int           // 0 when there is no concurrency cap
	v6bits  int
	off     bool // nothing to limit: allow admits without a lookup
	seed    maphash.Seed
	shift   uint // 64 - log2(len(shards))
	shards  []shard
}

// shard is one lock's worth of the table.
type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]*entry
	// head and tail hold the entries with no open connection, most recently
	// used first: the sweep and the eviction both take the tail. Entries
	// with open connections are in no list and so are never removed.
	head, tail *entry
	spare      *entry // a few deleted entries kept for reuse, linked by next
	nspare     int
	max        int    // this shard's share of MaxEntries
	seq        uint64 // last connection token issued
	l          *limiter
	_          [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is the state of one key.
type entry struct {
	key        netip.Addr
	lim        rate.Limiter  // unused when the rate is not limited
	touched    time.Duration // last allow with no connection open, or last close; since limiter.epoch
	prev, next *entry
	// slots holds one token per open connection, so that a release func
	// frees its own slot once and never another's. A free slot holds
	// freeBit | the index of the next free slot (0xFFFFFFFF ends the list).
	slots    []uint64
	freeHead int32 // first free slot, -1 if none
	active   int32 // open connections
}

const (
	freeBit = 1 << 63
	// sweepBudget bounds the refilled entries each allow deletes, so a call
	// does O(1) work. Above 1, sweeping outpaces insertion.
	sweepBudget = 4
	// maxSpare bounds the deleted entries a shard keeps for reuse.
	maxSpare = 64
	// maxKeptSlots is the largest slots capacity an entry keeps once its
	// last connection closes; bigger arrays are returned to the GC.
	maxKeptSlots = 8
	// maxShards and minShardEntries set shardCount.
	maxShards       = 64
	minShardEntries = 1024
)

// noop is the release returned when there is nothing to release.
func noop() {}

// newLimiter returns a limiter for opts; see Limits for the zero values.
func newLimiter(opts Limits) *limiter {
	return newLimiterShards(opts, 0)
}

// newLimiterShards is newLimiter with a shard count; 0 means shardCount. Benchmarks use
// it to compare one lock with many.
func newLimiterShards(opts Limits, nshards int) *limiter {
	l := &limiter{
		now:     opts.Now,
		maxConc: max(opts.MaxConcurrent, 0),
		v6bits:  normPrefix(opts.IPv6Prefix),
		seed:    maphash.MakeSeed(),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	if l.maxConc > math.MaxInt32 {
		l.maxConc = math.MaxInt32
	}
	if opts.Rate > 0 && opts.Rate != rate.Inf { // false for NaN too
		l.limit = opts.Rate
		l.burst = max(opts.Burst, 1)
		l.refill = refillTime(l.limit, l.burst)
	}
	l.off = l.limit == 0 && l.maxConc == 0

	maxEntries := opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if nshards <= 0 {
		nshards = shardCount(maxEntries)
	}
	// A power of two, so a hash's top bits pick the shard, and no more
	// than maxEntries, so every shard holds at least one entry.
	nshards = 1 << (bits.Len(uint(min(nshards, maxEntries))) - 1)
	l.shift = uint(64 - bits.TrailingZeros(uint(nshards)))
	l.shards = make([]shard, nshards)
	for i := range l.shards {
		s := &l.shards[i]
		s.l = l
		s.m = make(map[netip.Addr]*entry)
		s.max = maxEntries / nshards
		if i < maxEntries%nshards {
			s.max++ // the shares add up to exactly maxEntries
		}
	}
	return l
}

// shardCount is the number of shards for a table of maxEntries: up to
// maxShards, but at least minShardEntries entries in each, so that the
// per-shard LRU stays close to a global one and random imbalance between
// shards (about 1/sqrt(minShardEntries), 3%) cannot make one shard refuse
// new keys with RefusedTableFull long before the table is full.
//
// Why shard at all: each connection's goroutine calls allow, so under a
// flood every core does. BenchmarkAllowManyIPs (65,536 clients in random
// order, on a 2-core VM) costs the same with one lock or 64 shards on one
// goroutine, about 420 ns, mostly cache misses on the entry and time.Now;
// with two goroutines one lock takes about 470 ns a call against 300 for
// 64 shards (660 against 375 with the concurrency cap), and the gap can
// only grow with more cores. Sharding costs a keyed hash per call, about
// 10 ns, and makes LRU order and table-full refusals per shard, which
// minShardEntries keeps negligible.
func shardCount(maxEntries int) int {
	n := 1
	for n < maxShards && maxEntries/(2*n) >= minShardEntries {
		n *= 2
	}
	return n
}

// refillTime is how long an empty bucket of burst tokens takes to refill
// at r, rounded up; math.MaxInt64 if longer.
func refillTime(r rate.Limit, burst int) time.Duration {
	ns := math.Ceil(float64(burst) / float64(r) * 1e9)
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns) + 1 // one more for float rounding in rate
}

func normPrefix(bits int) int {
	if bits < 1 || bits > 128 {
		return DefaultIPv6Prefix
	}
	return bits
}

// Key returns the key that addr is counted under, as a prefix for logs:
// a /32 for IPv4 and IPv4-mapped IPv6, the address masked to ipv6Prefix
// bits for IPv6 (ipv6Prefix outside 1 to 128 means DefaultIPv6Prefix).
// It returns the zero Prefix for the zero Addr.
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

// keyOf is Key as the map key. bits must be in 1 to 128. All invalid
// addresses share the zero Addr, and with it one bucket and one cap.
func keyOf(addr netip.Addr, bits int) netip.Addr {
	addr = addr.Unmap()
	if !addr.Is6() {
		return addr // IPv4 (no zone possible) or the zero Addr
	}
	p, _ := addr.Prefix(bits) // drops the zone; cannot fail for 1..128
	return p.Addr()
}

// shardOf returns the shard that holds key k. The hash is keyed with a
// random seed so that a client cannot pick addresses that all land in one
// shard and fill its share of the table.
func (l *limiter) shardOf(k netip.Addr) *shard {
	if len(l.shards) == 1 {
		return &l.shards[0]
	}
	b := k.As16()
	return &l.shards[maphash.Bytes(l.seed, b[:])>>l.shift]
}

// allow admits a new connection from addr, or reports why not.
//
// If ok, the connection holds one of its key's MaxConcurrent slots until
// release is called; call release exactly once when the connection ends.
// A second call, even after the slot has been given to another
// connection, does nothing. If not ok, reason says why, and release is a
// func that does nothing (never nil), so a deferred call is harmless.
//
// When MaxConcurrent limits, each admission allocates the release func
// (48 bytes): a pooled func could not tell its holder's second call from a
// later holder's first, and a stray second release would free a slot that
// someone else holds, breaking the cap. Otherwise allow does not allocate
// once the table has warmed up.
func (l *limiter) allow(addr netip.Addr) (release func(), reason Reason, ok bool) {
	if l.off {
		return noop, "", true
	}
	k := keyOf(addr, l.v6bits)
	s := l.shardOf(k)
	now := l.now()
	t := now.Sub(l.epoch)

	s.mu.Lock()
	s.sweep(t, sweepBudget)
	e := s.m[k]
	if e == nil {
		if e = s.add(k, t); e == nil {
			s.mu.Unlock()
			return noop, RefusedTableFull, false
		}
	} else if e.active == 0 {
		// Refused calls count as use too: an entry that is being hammered
		// keeps its empty bucket rather than be evicted first.
		e.touched = t
		s.moveToFront(e)
	}
	// The cap is checked before the bucket, so that a refused call takes
	// no token.
	if l.maxConc > 0 && int(e.active) >= l.maxConc {
		s.mu.Unlock()
		return noop, RefusedConcurrency, false
	}
	if l.limit > 0 && !e.lim.AllowN(now, 1) {
		s.mu.Unlock()
		return noop, RefusedRate, false
	}
	if l.maxConc == 0 {
		s.mu.Unlock()
		return noop, "", true
	}
	idx, tok := s.acquire(e)
	s.mu.Unlock()
	return func() { s.release(e, idx, tok) }, "", true
}

// sweep deletes up to budget refilled entries with no open connection from
// the tail. The list is ordered by touch time (when the clock does not go
// back), so it stops at the first entry that may still hold state.
func (s *shard) sweep(t time.Duration, budget int) {
	for ; budget > 0; budget-- {
		e := s.tail
		if e == nil || t-e.touched < s.l.refill {
			return
		}
		s.unlink(e)
		s.delete(e)
	}
}

// add inserts a fresh entry for k, evicting the least recently used entry
// with no open connection if the shard is full. It returns nil if every
// entry has open connections.
func (s *shard) add(k netip.Addr, t time.Duration) *entry {
	var e *entry
	if len(s.m) >= s.max {
		if e = s.tail; e == nil {
			return nil
		}
		s.unlink(e)
		delete(s.m, e.key)
	} else if e = s.spare; e != nil {
		s.spare = e.next
		s.nspare--
		e.next = nil
	} else {
		e = &entry{freeHead: -1}
	}
	e.key = k
	if s.l.limit > 0 {
		// A new limiter starts full. NewLimiter is inlined, so this
		// copies a stack value and does not allocate.
		e.lim = *rate.NewLimiter(s.l.limit, s.l.burst)
	}
	e.touched = t
	s.m[k] = e
	s.pushFront(e)
	return e
}

// delete removes e, which has no open connection and is in no list, from
// the map, and keeps it for reuse if there is room.
func (s *shard) delete(e *entry) {
	delete(s.m, e.key)
	e.key = netip.Addr{}
	if s.nspare < maxSpare {
		e.next = s.spare
		s.spare = e
		s.nspare++
	}
}

// acquire gives e's next connection a slot and a token unique in s.
func (s *shard) acquire(e *entry) (idx uint32, tok uint64) {
	if e.active == 0 {
		s.unlink(e) // open connections pin the entry
	}
	e.active++
	s.seq++
	tok = s.seq
	if e.freeHead >= 0 {
		idx = uint32(e.freeHead)
		e.freeHead = int32(uint32(e.slots[idx]))
		e.slots[idx] = tok
	} else {
		idx = uint32(len(e.slots))
		e.slots = append(e.slots, tok)
	}
	return idx, tok
}

// release frees slot idx of e if it still holds tok. A token is never
// issued twice in a shard and an entry never moves between shards, so a
// second call, or one after e was reused for another key, finds another
// token (or no slot) and does nothing.
func (s *shard) release(e *entry, idx uint32, tok uint64) {
	t := s.l.now().Sub(s.l.epoch)
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(idx) >= len(e.slots) || e.slots[idx] != tok {
		return
	}
	e.slots[idx] = freeBit | uint64(uint32(e.freeHead))
	e.freeHead = int32(idx)
	e.active--
	if e.active > 0 {
		return
	}
	if cap(e.slots) > maxKeptSlots {
		e.slots = nil
	} else {
		e.slots = e.slots[:0]
	}
	e.freeHead = -1
	if s.l.refill == 0 {
		s.delete(e) // no bucket: an entry without connections is empty
		return
	}
	e.touched = t
	s.pushFront(e)
}

func (s *shard) pushFront(e *entry) {
	e.prev = nil
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	} else {
		s.tail = e
	}
	s.head = e
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) moveToFront(e *entry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}
