package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// List is one CRL whose signature has been checked, reduced to what a
// revocation check needs: its issuer, its validity window and the set of
// revoked serial numbers. The parsed *x509.RevocationList is dropped as
// soon as the set is built, so a CRL costs about its serials' bytes plus
// four bytes each (see serialSet), not the parse's hundreds of bytes an
// entry.
type List struct {
	Issuer     *x509.Certificate // the CA that signed it
	IssuerName string            // the CRL's issuer, as printed in verdicts
	ThisUpdate time.Time
	NextUpdate time.Time // zero when the CRL names none
	Number     *big.Int  // the CRL number, nil when absent
	revoked    serialSet
}

// Len is the number of revoked serial numbers the list holds.
func (l *List) Len() int { return l.revoked.len() }

// Size is about how many bytes the list retains (the set of serials and
// the fixed fields; the issuer certificate is shared and not counted).
func (l *List) Size() int64 { return l.revoked.size() + 128 }

// Revoked reports whether serial is on the list.
func (l *List) Revoked(serial *big.Int) bool { return l.revoked.has(serialKey(serial)) }

// Parse reads the CRLs in data (PEM "X509 CRL" blocks, or one DER CRL) and
// checks each one's signature against the issuers, by subject and then
// signature. Each CRL is parsed, reduced to a List and its parse dropped
// before the next one is parsed: at most one full parse is alive at a time.
func Parse(data []byte, issuers []*x509.Certificate) ([]*List, error) {
	var ders [][]byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", b.Type)
		}
		ders = append(ders, b.Bytes)
	}
	if len(ders) == 0 {
		if len(bytes.TrimSpace(data)) == 0 || bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, errors.New("no CRL found")
		}
		ders = [][]byte{data}
	}
	var lists []*List
	for _, der := range ders {
		l, err := parseOne(der, issuers)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	return lists, nil
}

func parseOne(der []byte, issuers []*x509.Certificate) (*List, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	l := &List{IssuerName: rl.Issuer.String(), ThisUpdate: rl.ThisUpdate, NextUpdate: rl.NextUpdate, Number: rl.Number}
	for _, ca := range issuers {
		if bytes.Equal(ca.RawSubject, rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
			l.Issuer = ca
			break
		}
	}
	if l.Issuer == nil {
		return nil, &UnsignedError{CRLIssuer: rl.Issuer.String()}
	}
	keys := make([][]byte, len(rl.RevokedCertificateEntries))
	for i, e := range rl.RevokedCertificateEntries {
		keys[i] = serialKey(e.SerialNumber)
	}
	l.revoked = newSerialSet(keys)
	return l, nil
}

// UnsignedError reports a CRL that none of the issuers given to Parse
// signed.
type UnsignedError struct {
	CRLIssuer string // the issuer the CRL names
}

func (e *UnsignedError) Error() string {
	return fmt.Sprintf("CRL of %s is not signed by any client CA", e.CRLIssuer)
}

// serialKey is the bytes a serial number is kept as: its magnitude,
// big-endian, without leading zeros, and a 0x00 byte before a negative
// one's (a magnitude never starts with 0x00, so the two cannot meet).
func serialKey(n *big.Int) []byte {
	b := n.Bytes()
	if n.Sign() < 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// serialSet is a sorted set of serial numbers in one byte arena: the
// serials' bytes back to back, ordered by (length, bytes), and where each
// starts. A typical 16-byte serial costs 20 bytes; a lookup is a binary
// search.
type serialSet struct {
	arena []byte
	start []uint32 // start[i] is where serial i begins; it ends at start[i+1] or len(arena)
}

func newSerialSet(keys [][]byte) serialSet {
	slices.SortFunc(keys, compareKeys)
	keys = slices.CompactFunc(keys, func(a, b []byte) bool { return bytes.Equal(a, b) })
	n := 0
	for _, k := range keys {
		n += len(k)
	}
	s := serialSet{arena: make([]byte, 0, n), start: make([]uint32, len(keys))}
	for i, k := range keys {
		s.start[i] = uint32(len(s.arena))
		s.arena = append(s.arena, k...)
	}
	return s
}

func compareKeys(a, b []byte) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}

func (s *serialSet) len() int { return len(s.start) }

func (s *serialSet) size() int64 { return int64(cap(s.arena) + 4*cap(s.start)) }

func (s *serialSet) at(i int) []byte {
	end := len(s.arena)
	if i+1 < len(s.start) {
		end = int(s.start[i+1])
	}
	return s.arena[s.start[i]:end]
}

func (s *serialSet) has(key []byte) bool {
	lo, hi := 0, len(s.start)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := compareKeys(s.at(mid), key); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

// RevokedError reports a revoked certificate.
type RevokedError struct {
	Serial    *big.Int
	Subject   string
	CRLIssuer string
	// Source, when set, names where the revocation came from instead of
	// the CRL's issuer: "CRL from http://ca.test/crl.pem fetched 2m ago".
	Source string
}

func (e *RevokedError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("revoked (serial 0x%s, %s)", e.Serial.Text(16), e.Source)
	}
	return fmt.Sprintf("revoked (serial 0x%s, CRL of %s)", e.Serial.Text(16), e.CRLIssuer)
}

// StaleError reports a CRL past its NextUpdate: it may no longer list every
// revoked certificate, so the check fails closed.
type StaleError struct {
	CRLIssuer  string
	NextUpdate time.Time
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("CRL of %s is stale (next update was due %s); refusing to trust it",
		e.CRLIssuer, e.NextUpdate.UTC().Format(time.RFC3339))
}

// Stale reports whether the list is past its NextUpdate at now.
func (l *List) Stale(now time.Time) bool {
	return !l.NextUpdate.IsZero() && now.After(l.NextUpdate)
}

// Check checks every certificate of a verified chain (leaf first, root
// last) that has a CRL from its issuer. It returns a *RevokedError, a
// *StaleError (unless allowStale) or nil.
func Check(lists []*List, chain []*x509.Certificate, now time.Time, allowStale bool) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		for _, l := range lists {
			if !l.Issuer.Equal(issuer) {
				continue
			}
			if !allowStale && l.Stale(now) {
				return &StaleError{CRLIssuer: l.IssuerName, NextUpdate: l.NextUpdate}
			}
			if l.Revoked(cert.SerialNumber) {
				return &RevokedError{Serial: cert.SerialNumber, Subject: cert.Subject.String(), CRLIssuer: l.IssuerName}
			}
		}
	}
	return nil
}
