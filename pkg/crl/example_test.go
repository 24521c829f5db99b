package crl_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/pki"
)

// After crypto/tls has verified a client's chain, Check looks its
// certificates up in the CRLs of their issuers.
func ExampleCheck() {
	ca, _ := pki.NewCA(pki.CAOptions{CommonName: "Example CA"})
	client, _ := ca.IssueClient(pki.ClientOptions{CommonName: "mallory"})
	now := time.Now()
	crlPEM, _ := ca.CRL(pki.CRLOptions{
		Revoked:    []*big.Int{client.Certificate.SerialNumber},
		ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(24 * time.Hour),
	})
	lists, err := crl.Parse(crlPEM, []*x509.Certificate{ca.Certificate})
	if err != nil {
		fmt.Println(err)
		return
	}

	err = crl.Check(lists, []*x509.Certificate{client.Certificate, ca.Certificate}, now, false)
	var revoked *crl.RevokedError
	if errors.As(err, &revoked) {
		fmt.Println("revoked by", revoked.CRLIssuer)
	}
	// Output: revoked by CN=Example CA,O=seclisten development
}
