// Package proxy reads the PROXY protocol header (v1 text or v2 binary,
// HAProxy's spec) that a load balancer sends before the client's bytes, to
// learn the real client address, so that limits, logs and printed
// identities use it.
//
// Only trusted proxies may connect: a connection from any other address is
// refused before a byte is read, and a trusted proxy must send a header
// (the spec's "MUST not try to guess"). Parsing is github.com/pires/go-proxyproto's
// (v0.15, the first to take this posture); the trust decision, the deadline
// and the error reporting are ours.
package proxy
