// Package acme obtains and renews certificates automatically with ACME
// (RFC 8555), through certmagic: TLS-ALPN-01 answered on seclisten's own
// listener, HTTP-01 on a small HTTP server of its own, any ACME CA
// (Let's Encrypt, ZeroSSL, step-ca, Pebble), persistent storage shared by
// replicas, and on-demand issuance that is always gated.
//
// It builds its own certmagic Cache and Config and never touches
// certmagic.Default or certmagic.DefaultACME. It binds no port but the
// HTTP-01 address it is given.
package acme
