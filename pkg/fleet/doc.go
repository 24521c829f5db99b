// Package fleet keeps the state replicas share in Redis: a
// certmagic.Storage (values, listing, stat and expiring locks) for ACME,
// the session-ticket keys, rotated fleet-wide so that a ticket one replica
// issues resumes on any other, the per-IP rate limits (Limits: local
// leases of one bucket per client, synced in batches) and the bans (Bans:
// stored with their expiry and announced by pub/sub). A Client tracks
// whether Redis answers and reports each change of state once; while
// Redis is away, callers keep what they last had (certificates in
// certmagic's cache, the last ticket keys, the local limits and bans).
package fleet
