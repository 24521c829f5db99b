// Package bench is a bounded load generator for TLS (or plain TCP) line
// servers such as seclisten: full and resumed handshake rates, echo round
// trips on persistent connections, the memory cost of idle connections, and
// how a server sorts a connection flood into accepted and refused.
//
// Every run is bounded twice, by time (Options.Duration) and by count
// (Options.MaxOps), so a mistyped flag cannot turn a measurement into an
// unbounded attack on someone's server.
package bench
