// Package ban keeps temporary bans of clients that keep failing: a table,
// keyed like the per-IP limits (pkg/internal/admit: an IPv4 address, an
// IPv6 prefix), that counts abuse outcomes per key in a fixed window and
// bans a key that reaches the count, for a time that doubles with each new
// ban of the same key up to a maximum.
//
// Only outcomes that mean abuse count (Counts): plaintext or garbage on a
// TLS port, handshake timeouts, refused client certificates, protocol-version
// failures and rate refusals. Outcomes that a well-meaning client meets
// through the server's own state (a stale CRL) or through a quirk of its
// TLS stack (no common cipher or ALPN, a closed probe) do not.
//
// # Table policy
//
// The table never holds more than Options.MaxEntries keys. Every entry has
// an expiry: the end of its ban, or, for a key that is only counting or
// only remembered for escalation, the end of its window or of its memory.
// When a new key arrives and the table is full, the entry that expires
// soonest goes first (a min-heap on the expiry), so the longest bans are
// kept. Entries past their expiry are removed by Sweep, which also reports
// each ban that ended, once: expired, found ended by Record before Sweep
// came by, or evicted (up to 1,024 between two sweeps are listed, the
// rest counted).
//
// A key's previous bans are remembered for Options.Max after its last ban
// ends, so a client that comes back after its ban is banned twice as long.
// Lift forgets a key entirely: an operator who lifts a ban forgives it.
//
// Every method takes one short lock: Banned, on the accept path, is a map
// lookup.
package ban
