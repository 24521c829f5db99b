// Package tlsconf builds the server's *tls.Config and keeps it current: the
// certificate (from files, or an ephemeral self-signed one), the client CAs
// and CRLs for mTLS, the protocol versions and cipher suites, and reloads of
// all of these without dropping connections.
//
// Defaults follow Mozilla's server-side TLS guidelines v6.0: "intermediate"
// (TLS 1.2 and 1.3, ECDHE with AEAD only for 1.2) unless MinVersion is TLS
// 1.3 ("modern"). It verifies client chains, CRLs and allowlists; it accepts
// no connection and logs nothing itself.
package tlsconf
