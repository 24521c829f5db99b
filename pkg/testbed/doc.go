// Package testbed is a bench of misbehaving TLS servers that grades the
// clients that connect to them.
//
// Each Case is one server on its own port: a good one, and one for each
// way a server can be wrong (an expired certificate, the wrong host name,
// an incomplete chain, an old protocol version, a handshake that stalls or
// stops half-way, a revoked certificate...). A Testbed opens them all,
// watches every handshake and grades it: a client that completes a
// handshake with a bad server has accepted what it should have refused
// (Fail), one that refuses it passes (Pass), and the alert it sent is the
// evidence. A Card sums the grades up per case.
//
// The certificates are the testbed's own: NewMaterial keeps a testbed CA
// in a directory and issues every leaf afresh at each start, since their
// validity is relative to now and their URLs (CRL distribution point,
// issuer certificate) name the testbed's address.
package testbed
