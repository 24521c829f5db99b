package verdict_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/sanitize"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// FuzzExplainCertificate feeds certificates (DER) through every verdict the
// chain checks can give, the identity, and the allowlists. The seed corpus
// (testdata/fuzz/FuzzExplainCertificate) holds pki-made certificates,
// truncations of them and garbage; f.Add adds fresh ones.
func FuzzExplainCertificate(f *testing.F) {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "Fuzz CA"})
	if err != nil {
		f.Fatal(err)
	}
	client, err := ca.IssueClient(pki.ClientOptions{CommonName: "fuzz client", OrganizationalUnits: []string{"ou1", "ou2"},
		DNSNames: []string{"client.example"}, URIs: []string{"spiffe://example.org/fuzz"}})
	if err != nil {
		f.Fatal(err)
	}
	server, err := ca.IssueServer(pki.ServerOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, der := range [][]byte{ca.Certificate.Raw, client.Certificate.Raw, server.Certificate.Raw} {
		f.Add(der)
		f.Add(der[:len(der)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("garbage"))

	reasons := []x509.InvalidReason{x509.Expired, x509.IncompatibleUsage, x509.TooManyIntermediates, x509.NotAuthorizedToSign}
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			v := verdict.Explain(fmt.Errorf("tls: failed to parse client certificate: %w", err), nil, time.Now())
			if v.Code != outcome.Malformed {
				t.Errorf("parse error %v explained as %+v", err, v)
			}
			return
		}
		// Certificate names are attacker-controlled; the verdict text
		// must be one line with nothing a terminal would act on.
		check := func(what string, v verdict.Verdict) {
			t.Helper()
			if v.Code == "" {
				t.Errorf("%s: empty code (text %q)", what, v.Text)
			}
			if v.Text == "" {
				t.Errorf("%s: empty text (code %q)", what, v.Code)
			}
			if sanitize.String([]byte(v.Text)) != v.Text {
				t.Errorf("%s: text %q holds bytes that must be escaped", what, v.Text)
			}
		}

		var errs []error
		for _, r := range reasons {
			errs = append(errs, x509.CertificateInvalidError{Cert: cert, Reason: r})
		}
		errs = append(errs,
			x509.UnknownAuthorityError{Cert: cert},
			&tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{cert}, Err: x509.UnknownAuthorityError{}},
			&tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{cert},
				Err: x509.CertificateInvalidError{Reason: x509.Expired}},
		)
		nows := []time.Time{cert.NotBefore.Add(-time.Hour), cert.NotAfter.Add(time.Hour), {}, time.Now(),
			cert.NotBefore, cert.NotAfter}
		for i, e := range errs {
			for j, now := range nows {
				for _, leaf := range []*x509.Certificate{cert, nil} {
					what := fmt.Sprintf("error %d (%v), now %d, leaf %v", i, e, j, leaf != nil)
					v := verdict.Explain(e, leaf, now)
					check(what, v)
					if v.Code == outcome.OK {
						t.Errorf("%s: verdict OK", what)
					}
				}
			}
		}
		if v := verdict.Explain(x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}, cert, cert.NotAfter.Add(time.Hour)); v.Code != outcome.Expired {
			t.Errorf("expired an hour ago: %+v", v)
		}
		if v := verdict.Explain(x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}, cert, cert.NotBefore.Add(-time.Hour)); v.Code != outcome.NotYetValid {
			t.Errorf("valid in an hour: %+v", v)
		}

		id := identity.FromCertificate(cert)
		if id.Name == "" || !strings.HasPrefix(id.Serial, "0x") || len(id.Fingerprint) != 64 {
			t.Errorf("identity %q serial %q fingerprint %q", id.Name, id.Serial, id.Fingerprint)
		}
		_ = id.SANs()
		// A certificate matches the allowlist of its own names.
		self := identity.Allowlist{CN: []string{id.CommonName}, OU: id.OUs, DNS: id.DNSNames, URI: id.URIs}
		if err := self.Check(id); err != nil {
			t.Errorf("own allowlist refused: %v", err)
		}
		// And no certificate matches names it cannot hold.
		const sentinel = "\x00never"
		never := identity.Allowlist{CN: []string{sentinel}, OU: []string{sentinel}, DNS: []string{sentinel}, URI: []string{sentinel}}
		err = never.Check(id)
		if id.CommonName == sentinel {
			return
		}
		var na *identity.NotAllowedError
		if !errors.As(err, &na) {
			t.Fatalf("impossible allowlist: Check = %v", err)
		}
		v := verdict.Explain(err, cert, time.Now())
		if v.Code != outcome.NotAllowed {
			t.Errorf("not allowed explained as %+v", v)
		}
		check("not allowed", v)
	})
}
