// Package identity names a TLS client by its certificate and checks it
// against the operator's allowlists (--allow-cn, --allow-ou, --allow-dns,
// --allow-uri). It is pure: no I/O, no logging, and it fails closed: a
// client with no verified certificate matches no allowlist.
package identity
