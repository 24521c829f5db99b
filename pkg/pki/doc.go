// Package pki makes development certificates for seclisten's tests, scripts
// and the `seclisten certs` command: a certificate authority, server and
// client certificates, a CRL, and a complete test PKI with deliberately
// broken client certificates (expired, not yet valid, signed by another CA,
// serverAuth-only, revoked) for exercising mutual TLS.
//
// It is never on the serving path: nothing in pkg/server or pkg/tlsconf
// imports it. Its certificates are for development only; the keys it writes
// are unencrypted.
//
// The certificate profiles follow FiloSottile/mkcert's cert.go: random
// 128-bit serial numbers, SANs typed by what each host parses as (IP address,
// URI, or DNS name), key files written with mode 0600, and validity backdated
// by an hour so that a peer whose clock runs a little behind still accepts a
// certificate made a moment ago.
//
// Keys are ECDSA P-256 by default; RSA 2048 and Ed25519 are available for
// interoperability tests (see KeyType), and a caller may bring its own key
// (ServerOptions.Key), such as a weak RSA-1024 key. A CA made with
// CAOptions.Intermediates can sign one level of intermediate CAs
// (CA.IssueIntermediate); NewSelfSignedServer makes a server certificate
// signed by no CA, which a peer trusts only by trusting it directly.
package pki
