package ban

import (
	"container/heap"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/admit"
	"github.com/seclisten/seclisten/pkg/internal/cidr"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// DefaultMaxEntries is the table cap used when Options.MaxEntries is 0. An
// entry costs about 170 bytes with its map and heap slots
// (BenchmarkBanStorm), so a full default table takes about 17 MiB.
const DefaultMaxEntries = 100_000

// counted are the outcomes that mean abuse (see Counts).
var counted = map[outcome.Code]bool{
	outcome.NotTLS:           true,
	outcome.HandshakeTimeout: true,
	outcome.ProtocolVersion:  true,
	outcome.Rate:             true,
	outcome.NoCertificate:    true,
	outcome.Expired:          true,
	outcome.NotYetValid:      true,
	outcome.UnknownAuthority: true,
	outcome.WrongEKU:         true,
	outcome.Revoked:          true,
	outcome.NotAllowed:       true,
	outcome.ChainTooLong:     true,
	outcome.Malformed:        true,
	outcome.VerifyFailed:     true,
}

// Counts reports whether an outcome counts towards a ban: plaintext or
// garbage on a TLS port (not-tls), a handshake timeout, no TLS version in
// common (protocol-version: scanners probing for SSLv3 and TLS 1.0), a rate
// refusal, and every refused client certificate (no-certificate where one
// is required, expired, not-yet-valid, unknown-authority, wrong-eku,
// revoked, not-allowed, chain-too-long, malformed, verify-failed).
//
// Not counted: crl-stale (the server's CRL is old: every client of the CA
// is refused through no fault of its own), handshake-closed (a port probe
// or TCP health check), no-cipher, no-alpn, bad-sni and tls-error (a
// client's TLS stack disagreeing, not abuse), tls-on-plain, and any other
// code.
func Counts(c outcome.Code) bool { return counted[c] }

// Codes lists the outcomes that count, in outcome order.
func Codes() []outcome.Code {
	var out []outcome.Code
	for _, c := range outcome.All(0) {
		if counted[c] {
			out = append(out, c)
		}
	}
	return out
}

// Options configure a Table.
type Options struct {
	// After failures within Window ban a key. Both must be positive.
	After  int
	Window time.Duration
	// For is the first ban of a key; each new ban of a key still
	// remembered doubles it, up to Max (at least For).
	For, Max time.Duration
	// IPv6Prefix keys IPv6 clients, as admit.Limits.IPv6Prefix does.
	IPv6Prefix int
	// Never lists addresses never banned (the operator's allow list).
	Never []netip.Prefix
	// ExemptLoopback never bans 127.0.0.0/8 and ::1, like the limits.
	ExemptLoopback bool
	// MaxEntries caps the keys tracked; zero or less means
	// DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Ban is one ban, as Record, Sweep and List report it.
type Ban struct {
	// Key is the banned client as the limits name it: an IPv4 address, or
	// an IPv6 prefix ("2001:db8::/64").
	Key string `json:"key"`
	// Since and Until bound the ban.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Count is the failures that started it, within Window.
	Count int `json:"count"`
	// LastReason is the outcome of the last of them.
	LastReason outcome.Code `json:"last_reason"`
	// For is Until - Since.
	For time.Duration `json:"-"`
	// Window is the window the failures were counted in.
	Window time.Duration `json:"-"`
	// Evicted, in a ban Sweep reports ended, says it ended early: the
	// table was full and it was the entry that ended soonest.
	Evicted bool `json:"-"`
}

// Message is the ban's log line, in a fixed form for log watchers:
// "ban 203.0.113.7 for 10m0s after 10 failures in 1m0s (last: rate)".
func (b Ban) Message() string {
	return fmt.Sprintf("ban %s for %s after %d failures in %s (last: %s)", b.Key, b.For, b.Count, b.Window, b.LastReason)
}

// entry is the state of one key. Times are Unix nanoseconds.
type entry struct {
	key         netip.Addr
	windowStart int64
	failures    int32
	strikes     int32 // bans so far, while remembered
	last        outcome.Code
	since       int64 // start of the current or last ban; 0: never banned
	until       int64 // its end
	banned      bool  // the ban has not been reported ended yet
	count       int32 // failures that started the current ban
	remember    int64 // strikes are forgotten after this
	exp         int64 // heap key: when the entry can go
	idx         int   // heap index
}

// Table is the ban table. It is safe for concurrent use.
type Table struct {
	o       Options
	now     func() time.Time
	changed chan struct{}

	mu sync.Mutex
	m  map[netip.Addr]*entry
	h  expHeap
	// active counts entries with banned set.
	active int
	// pending are the bans that ended outside Sweep (evicted, or found
	// ended by Record), for the next Sweep to report; at most maxPending,
	// the rest counted in dropped.
	pending []Ban
	dropped int
}

// maxPending bounds the ended bans waiting for Sweep.
const maxPending = 1024

// New returns a Table. o.After and o.Window must be positive.
func New(o Options) *Table {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	o.Max = max(o.Max, o.For)
	t := &Table{o: o, now: o.Now, changed: make(chan struct{}, 1), m: make(map[netip.Addr]*entry)}
	if t.now == nil {
		t.now = time.Now
	}
	return t
}

// Changed receives after a new ban, so a sweeper can wake for its end.
func (t *Table) Changed() <-chan struct{} { return t.changed }

func (t *Table) keyOf(addr netip.Addr) netip.Addr {
	return admit.KeyPrefix(addr, t.o.IPv6Prefix).Addr()
}

func (t *Table) name(k netip.Addr) string {
	p := admit.KeyPrefix(k, t.o.IPv6Prefix)
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Key names the key addr is banned under.
func (t *Table) Key(addr netip.Addr) string { return t.name(t.keyOf(addr)) }

// exempt reports whether addr is never banned.
func (t *Table) exempt(addr netip.Addr) bool {
	addr = addr.Unmap()
	return (t.o.ExemptLoopback && addr.IsLoopback()) || cidr.Contains(t.o.Never, addr)
}

// Banned reports whether addr is banned now.
func (t *Table) Banned(addr netip.Addr) bool {
	k := t.keyOf(addr)
	now := t.now().UnixNano()
	t.mu.Lock()
	e := t.m[k]
	b := e != nil && e.banned && now < e.until
	t.mu.Unlock()
	return b
}

// Record counts a failure of addr for reason. If it starts a ban, it
// returns the ban and true. Outcomes that do not count (Counts), exempt
// addresses and keys already banned change nothing: a banned client's
// connections still in flight cannot extend its ban.
func (t *Table) Record(addr netip.Addr, reason outcome.Code) (Ban, bool) {
	if !Counts(reason) || t.exempt(addr) {
		return Ban{}, false
	}
	k := t.keyOf(addr)
	now := t.now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.unbanned(k, now)
	if e == nil {
		return Ban{}, false
	}
	if e.strikes > 0 && now >= e.remember {
		e.strikes = 0
	}
	if e.failures == 0 || now-e.windowStart >= int64(t.o.Window) {
		e.windowStart, e.failures = now, 0
	}
	e.failures++
	e.last = reason
	if int(e.failures) < t.o.After {
		t.fix(e, max(e.windowStart+int64(t.o.Window), e.remember))
		return Ban{}, false
	}
	return t.start(e, now), true
}

// start bans e now for its failures, under the lock.
func (t *Table) start(e *entry, now int64) Ban {
	if e.strikes > 0 && now >= e.remember {
		e.strikes = 0
	}
	d := t.duration(e.strikes)
	t.active++
	e.banned, e.since, e.until = true, now, now+int64(d)
	e.count, e.failures = e.failures, 0
	e.strikes++
	e.remember = e.until + int64(t.o.Max)
	t.fix(e, e.until)
	select {
	case t.changed <- struct{}{}:
	default:
	}
	return t.ban(e)
}

// unbanned returns k's entry, made if need be, to count a failure or start
// a ban; nil when k is banned now. Under the lock.
func (t *Table) unbanned(k netip.Addr, now int64) *entry {
	e := t.m[k]
	if e != nil && e.banned {
		if now < e.until {
			return nil
		}
		t.end(e, false) // ended, and Sweep has not come by yet
	}
	if e == nil {
		e = t.add(k)
	}
	return e
}

// duration is the ban after strikes earlier ones: For doubled each time,
// at most Max.
func (t *Table) duration(strikes int32) time.Duration {
	d := t.o.For
	for i := int32(0); i < strikes && d < t.o.Max; i++ {
		d *= 2
	}
	return min(d, t.o.Max)
}

func (t *Table) ban(e *entry) Ban {
	return Ban{Key: t.name(e.key), Since: time.Unix(0, e.since).UTC(), Until: time.Unix(0, e.until).UTC(), Count: int(e.count),
		LastReason: e.last, For: time.Duration(e.until - e.since), Window: t.o.Window}
}

// add inserts a fresh entry for k, evicting the entry that expires soonest
// when the table is full.
func (t *Table) add(k netip.Addr) *entry {
	if len(t.m) >= t.o.MaxEntries {
		v := t.h[0]
		if v.banned {
			t.end(v, true)
		}
		t.remove(v)
	}
	e := &entry{key: k}
	t.m[k] = e
	heap.Push(&t.h, e)
	return e
}

func (t *Table) fix(e *entry, exp int64) {
	e.exp = exp
	heap.Fix(&t.h, e.idx)
}

// end ends e's ban outside Sweep, which will report it.
func (t *Table) end(e *entry, evicted bool) {
	if len(t.pending) < maxPending {
		b := t.ban(e)
		b.Evicted = evicted
		t.pending = append(t.pending, b)
	} else {
		t.dropped++
	}
	e.banned = false
	t.active--
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *Table) remove(e *entry) {
	heap.Remove(&t.h, e.idx)
	delete(t.m, e.key)
	if e.banned {
		t.active--
	}
}

// Sweep removes the entries past their expiry and returns the bans that
// have ended since the last Sweep, each once, and how many more ended
// unlisted (past maxPending evictions between two sweeps). next is when
// the next entry expires, the end of a ban or of a count (zero: the table
// is empty): the time to sweep again.
func (t *Table) Sweep() (ended []Ban, unlisted int, next time.Time) {
	now := t.now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	ended, unlisted = t.pending, t.dropped
	t.pending, t.dropped = nil, 0
	for len(t.h) > 0 && t.h[0].exp <= now {
		e := t.h[0]
		if e.banned {
			ended = append(ended, t.ban(e))
			e.banned = false
			t.active--
			t.fix(e, max(e.remember, e.windowStart+int64(t.o.Window)))
			continue
		}
		t.remove(e)
	}
	if len(t.h) > 0 {
		next = time.Unix(0, t.h[0].exp)
	}
	return ended, unlisted, next
}

// ParseKey parses a key as List and the log name it: an IP address (an
// IPv6 address names its prefix), or the IPv6 prefix itself.
func (t *Table) ParseKey(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		want := admit.KeyPrefix(p.Addr(), t.o.IPv6Prefix)
		if p.Masked() != want {
			return netip.Addr{}, fmt.Errorf("%q is not a key: clients are keyed by %s", s, want)
		}
		return want.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address or IPv6 prefix", s)
	}
	return t.keyOf(a), nil
}

// Lift ends the ban of key (as ParseKey reads it) now and forgets the key,
// its earlier bans too. It returns the ban and true if one was in force.
func (t *Table) Lift(key string) (Ban, bool, error) {
	k, err := t.ParseKey(key)
	if err != nil {
		return Ban{}, false, err
	}
	now := t.now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[k]
	if e == nil || !e.banned || now >= e.until {
		return Ban{}, false, nil
	}
	b := t.ban(e)
	t.remove(e)
	return b, true, nil
}

// List returns the bans in force, soonest to end first.
func (t *Table) List() []Ban {
	now := t.now().UnixNano()
	t.mu.Lock()
	out := make([]Ban, 0, t.active)
	for _, e := range t.h {
		if e.banned && now < e.until {
			out = append(out, t.ban(e))
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Ban) int { return a.Until.Compare(b.Until) })
	return out
}

// Active is the number of bans not yet reported ended.
func (t *Table) Active() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

// Len is the number of keys tracked (never more than MaxEntries).
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// expHeap orders entries by expiry, soonest first.
type expHeap []*entry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *expHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *expHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
