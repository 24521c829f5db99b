// Package admit decides, before any TLS work, whether a connection is
// served: the operator's allow and deny CIDR lists, then per-IP limits,
// keyed on the real client address. A refused connection costs no crypto.
//
// The limits are a token bucket (golang.org/x/time/rate) that caps the rate
// of new connections and a counter that caps the connections open at once.
// Every accepted connection meets them before any TLS work, so Admit is a
// map lookup under one short lock: no logging, sleeping, I/O or background
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
//   - An entry with open connections is never evicted, so the per-key
//     concurrency cap is exact.
//   - When a new key arrives and the table is full, the least recently used
//     entry with no open connection is evicted. If its bucket has refilled
//     it carries no state; if not, eviction only gives its key a fresh
//     bucket sooner, which an attacker spraying source addresses gets
//     anyway, so it weakens no rate guarantee.
//   - If every entry has open connections, a new key is refused with
//     outcome.LimiterFull: admission fails closed rather than forget a count.
//     This can only happen if MaxEntries is below the number of
//     connections the server holds at once; keep MaxEntries well above the
//     global connection cap (the default, 100,000, is ten times
//     seclisten's default cap).
//   - Without a rate limit, an entry whose last connection closes holds
//     nothing and is deleted at once. With one, entries stay until they are
//     evicted: a table that has filled stays full, at its bound in memory
//     (about 200 bytes an entry; see DefaultMaxEntries).
//
// Each admitted connection's release is its own: it frees the slot it
// took, once, however often it is called, and never one that another
// connection holds.
//
// A refused call consumes nothing: Admit checks the concurrency cap first
// and takes a token only when it admits. Time is read from Limits.Now, so
// tests run on a fake clock.
//
// # A fleet's share
//
// Replicas of a fleet can share the rate limit (pkg/fleet keeps one
// bucket per key in Redis). Admit then also checks the key's local
// allowance, a lease from the fleet or, without one, a share of the
// balance it last learned (fleet.go); a background sync reports what each
// key used (FleetReports) and applies the fleet's answers (FleetAnswers).
// Admit still takes no other lock, does no I/O and allocates nothing more;
// while the fleet is off (SetFleet), only the local bucket applies.
//
// # Logging refusals
//
// Reporter aggregates refusals for the log, so a flood cannot flood the
// log: the first refusal of an address for a reason in each period is
// logged at once, the rest are counted and summarised at the end of the
// period ("refused 4812 more connections from 203.0.113.7 in the last
// 10s: rate").
package admit
