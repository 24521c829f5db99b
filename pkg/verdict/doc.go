// Package verdict turns the errors of client certificate verification into
// a verdict in plain words with the facts behind it ("client certificate
// expired 3 days ago", "signed by an unknown authority: issuer CN=Other
// CA"), and a stable code for scripts and metrics.
//
// The errors come from crypto/tls and crypto/x509 (chain checks), package
// crl (revocation) and package identity (allowlists). Explain never fails:
// an error it does not recognise is reported as it is, with code "failed".
package verdict
