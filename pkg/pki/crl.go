package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// DefaultCRLDays is how long a CRL is current when CRLOptions gives no
// NextUpdate.
const DefaultCRLDays = 30

// CRLOptions configures CA.CRL. The zero value makes an empty CRL current
// from now for DefaultCRLDays.
type CRLOptions struct {
	// Revoked are the serial numbers of the revoked certificates, such as
	// cert.SerialNumber. Each is listed as revoked at ThisUpdate.
	Revoked []*big.Int
	// ThisUpdate is when the CRL was issued. Zero means now.
	ThisUpdate time.Time
	// NextUpdate is when the next CRL is due; verifiers treat the CRL as
	// stale after it. Zero means DefaultCRLDays after ThisUpdate.
	NextUpdate time.Time
	// Number is the CRL number (RFC 5280 section 5.2.3), which must grow
	// with each CRL a CA issues. Nil means ThisUpdate in Unix seconds,
	// which grows on its own.
	Number *big.Int
}

// CRL returns a PEM "X509 CRL" block listing opts.Revoked, signed by ca.
// The CA certificate must carry the cRLSign key usage and a subject key
// identifier (every CA NewCA makes does).
func (ca *CA) CRL(opts CRLOptions) ([]byte, error) {
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("create CRL: %w", err)
	}
	thisUpdate := opts.ThisUpdate
	if thisUpdate.IsZero() {
		thisUpdate = time.Now()
	}
	nextUpdate := opts.NextUpdate
	if nextUpdate.IsZero() {
		nextUpdate = thisUpdate.AddDate(0, 0, DefaultCRLDays)
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, fmt.Errorf("create CRL of %s: next update (%s) is not after this update (%s)",
			ca.Certificate.Subject, nextUpdate.UTC().Format(time.RFC3339), thisUpdate.UTC().Format(time.RFC3339))
	}
	number := opts.Number
	if number == nil {
		number = big.NewInt(thisUpdate.Unix())
	}
	entries := make([]x509.RevocationListEntry, 0, len(opts.Revoked))
	for _, serial := range opts.Revoked {
		if serial == nil {
			return nil, fmt.Errorf("create CRL of %s: nil serial number in revoked list", ca.Certificate.Subject)
		}
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   serial,
			RevocationTime: thisUpdate,
		})
	}
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Certificate, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create CRL of %s: %w", ca.Certificate.Subject, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
