package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// List is one parsed CRL whose signature has been checked.
type List struct {
	CRL    *x509.RevocationList
	Issuer *x509.Certificate // the CA that signed it
	// revoked maps serial numbers (big.Int.Text(16)) to revocation times.
	revoked map[string]time.Time
}

// Parse reads the CRLs in data (PEM "X509 CRL" blocks, or one DER CRL) and
// checks each one's signature against the issuers, by subject and then
// signature.
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
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("parse CRL: %w", err)
		}
		l := &List{CRL: rl, revoked: make(map[string]time.Time, len(rl.RevokedCertificateEntries))}
		for _, ca := range issuers {
			if bytes.Equal(ca.RawSubject, rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
				l.Issuer = ca
				break
			}
		}
		if l.Issuer == nil {
			return nil, fmt.Errorf("CRL of %s is not signed by any client CA", rl.Issuer)
		}
		for _, e := range rl.RevokedCertificateEntries {
			l.revoked[e.SerialNumber.Text(16)] = e.RevocationTime
		}
		lists = append(lists, l)
	}
	return lists, nil
}

// RevokedError reports a revoked certificate.
type RevokedError struct {
	Serial    *big.Int
	Subject   string
	CRLIssuer string
	RevokedAt time.Time
}

func (e *RevokedError) Error() string {
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
			if !allowStale && !l.CRL.NextUpdate.IsZero() && now.After(l.CRL.NextUpdate) {
				return &StaleError{CRLIssuer: l.CRL.Issuer.String(), NextUpdate: l.CRL.NextUpdate}
			}
			if at, ok := l.revoked[cert.SerialNumber.Text(16)]; ok {
				return &RevokedError{Serial: cert.SerialNumber, Subject: cert.Subject.String(),
					CRLIssuer: l.CRL.Issuer.String(), RevokedAt: at}
			}
		}
	}
	return nil
}
