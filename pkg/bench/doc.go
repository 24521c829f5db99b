// Package bench is a bounded load generator for TLS (or plain TCP) line
// servers such as seclisten: full and resumed handshake rates, echo round
// trips on persistent connections, the memory cost of idle connections, and
// how a server sorts a connection flood into accepted and refused.
//
// Every run is bounded twice, by time (Options.Duration) and by count
// (Options.MaxOps), so a mistyped flag cannot turn a measurement into an
// unbounded attack on someone's server.
//
// A failed operation is counted in one Class: refused by the server (it
// said so, with a TLS alert access_denied or a line starting with
// RefusedLinePrefix), closed before or after the server sent a byte, other
// TLS alerts by name, timeouts, and so on. Result.Diagnose names the likely
// cause when the server ended most of the failed connections, for the
// caller to word; Result.ErrorRate is for the caller to judge the run by.
package bench
