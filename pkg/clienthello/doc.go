// Package clienthello describes what a TLS client offered in its
// ClientHello: versions, cipher suites, groups, signature schemes, ALPN
// protocols and server name, by name, and the client's JA4 fingerprint.
//
// A ClientHello is the one message every TLS client sends, so it is
// recorded for every handshake, failed or not, and it is all the client's
// to fill: every list and string in a Hello is bounded (MaxString bytes,
// MaxList entries, with what was dropped counted), and a server name that
// is not a valid host name is refused (CheckServerName).
package clienthello
