// Package crl checks client certificate chains against X.509 certificate
// revocation lists (RFC 5280 section 5).
//
// crypto/tls never consults CRLs, so Check does, after chain
// verification: each CRL must be signed by one of the configured client CAs
// (checked when it is loaded), and a CRL past its NextUpdate fails closed
// unless the caller allows stale CRLs. A CA without a CRL is not checked.
package crl
