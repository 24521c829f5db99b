// Package admit decides, before any TLS work, whether a connection is
// served: the operator's allow and deny CIDR lists, then per-IP limits,
// keyed on the real client address. A refused connection costs no crypto.
//
// The limits are a token bucket (golang.org/x/time/rate) that caps the rate
// of new connections and a counter that caps the connections open at once.
// They are the first check every accepted connection meets, so Admit is a
// map lookup under a short lock: no logging, sleeping, I/O or background
// goroutine.
//
// # Keys
//
// An IPv4 address is its own key, and so is an IPv4-mapped IPv6 address
// (::ffff:192.0.2.1 is unmapped first), so a dual-stack socket cannot give
// one client two buckets. An IPv6 address is masked to Limits.IPv6Prefix
// bits (default 64): a single customer or host usually holds a whole /64
// (RFC 6177, RFC 8981 temporary addresses), so keying per /128 would hand
// it 2^64 fresh buckets. The zone is dropped. Admitter.Key names the key an
// address maps to, for logs.
//
// # Table policy
//
// The table of tracked keys never holds more than Limits.MaxEntries
// entries, however many source addresses there are:
//
//   - An entry with no open connection whose bucket has refilled (it saw no
//     admission or release for Burst/Rate) carries no state: it is the same
//     as a fresh entry, and may be deleted at any time. Such entries are
//     swept lazily, a few at a time on each call to Admit, from the least
//     recently used end.
//   - When a new key arrives and the table is full, the least recently used
//     entry with no open connection is evicted, refilled or not. That only
//     gives its key a fresh bucket sooner, which an attacker spraying source
//     addresses gets anyway, so it weakens no rate guarantee.
//   - An entry with open connections is never swept or evicted, so the
//     per-key concurrency cap is exact.
//   - If every entry has open connections, a new key is refused with
//     RefusedTableFull: the limiter fails closed rather than forget a
//     count. This can only happen if MaxEntries is below the number of
//     connections the server holds at once; keep MaxEntries well above the
//     global connection cap (the default, 100,000, is ten times
//     seclisten's default cap).
//
// So that cores admitting different clients do not wait on one lock, a
// table of 2,048 entries or more is split into up to 64 shards, each with
// its own lock, LRU list and equal share of MaxEntries (at least 1,024).
// A key's shard is chosen by a hash keyed with a random seed, so clients
// cannot crowd one shard; eviction order and the table-full refusal are
// per shard, which with shares this large differs from a single table by
// a few percent at most.
//
// A refused call consumes nothing: Admit checks the concurrency cap first
// and takes a token only when it admits. Time is read from Limits.Now, so
// tests run on a fake clock.
//
// # Logging refusals
//
// Reporter aggregates refusals for the log, so a flood cannot flood the
// log: the first refusal of an address for a reason in each period is
// logged at once, the rest are counted and summarised at the end of the
// period ("refused 4812 more connections from 203.0.113.7 in the last
// 10s: rate").
package admit
