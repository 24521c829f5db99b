// Package admit decides, before any TLS work, whether a connection is
// served: the operator's allow and deny CIDR lists, then the per-IP rate
// and concurrency limits of package ratelimit, keyed on the real client
// address. A refused connection costs no crypto.
//
// It also aggregates refusals for the log, so a flood cannot flood the log:
// the first refusal of an address for a reason in each period is logged at
// once, the rest are counted and summarised at the end of the period
// ("refused 4812 more connections from 203.0.113.7 in the last 10s: rate").
package admit
