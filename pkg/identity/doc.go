// Package identity names a TLS client by its certificate and checks it
// against allowlists of common names, organizational units, DNS names and
// URIs (SPIFFE IDs). It is pure: no I/O, no logging, and it fails closed: a
// client with no verified certificate matches no allowlist.
package identity
