// Package handshake runs the TLS stage of one connection: it looks at the
// first bytes to tell a TLS ClientHello from plaintext (so a client that
// speaks the wrong protocol gets a clear log line, not a cryptic TLS
// error), runs the handshake under the caller's deadline, and describes a
// failure in plain words.
package handshake
