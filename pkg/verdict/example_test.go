package verdict_test

import (
	"crypto/x509"
	"fmt"
	"log"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// A verification error in plain words, with its outcome code.
func ExampleExplain() {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	client, err := ca.IssueClient(pki.ClientOptions{CommonName: "alice",
		Validity: pki.Validity{NotBefore: now.AddDate(0, 0, -30), NotAfter: now.AddDate(0, 0, -3)}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Certificate.Verify(x509.VerifyOptions{Roots: ca.CertPool(), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	v := verdict.Explain(err, client.Certificate, now)
	fmt.Println(v.Code)
	fmt.Println(v.Text)
	// Output:
	// expired
	// client certificate expired 3 days ago (not after 2026-11-27T12:00:00Z)
}
