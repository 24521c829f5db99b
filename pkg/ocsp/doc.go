// Package ocsp asks a certificate's OCSP responder (RFC 6960, with the
// lightweight profile of RFC 5019) whether it is revoked, verifies the
// answer, and caches it until its nextUpdate.
//
// It builds on golang.org/x/crypto/ocsp for the ASN.1 and signatures and
// adds what a server needs around it: a bounded fetch (time and size), the
// checks x/crypto/ocsp leaves to its caller (who may sign, how old an
// answer may be), a bounded cache, and one fetch at a time per certificate
// however many clients present it.
package ocsp
