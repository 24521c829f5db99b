package verdict_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/revocation"
	"github.com/seclisten/seclisten/pkg/verdict"
)

func newCA(t testing.TB, opts pki.CAOptions) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newClient(t testing.TB, ca *pki.CA, opts pki.ClientOptions) *pki.Cert {
	t.Helper()
	c, err := ca.IssueClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify runs x509 verification as a require-mode server does: roots, the
// clientAuth usage, and the time of the check.
func verify(leaf *x509.Certificate, roots *x509.CertPool, intermediates []*x509.Certificate, now time.Time) error {
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range intermediates {
		opts.Intermediates.AddCert(c)
	}
	_, err := leaf.Verify(opts)
	return err
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestExplain(t *testing.T) {
	// Certificates carry whole seconds; so does now, for exact durations.
	now := time.Now().Truncate(time.Second)
	ca := newCA(t, pki.CAOptions{CommonName: "Client CA"})
	otherCA := newCA(t, pki.CAOptions{CommonName: "Other CA"})
	expiredCA := newCA(t, pki.CAOptions{CommonName: "Old CA", Validity: pki.Validity{
		NotBefore: now.AddDate(0, 0, -60), NotAfter: now.Add(-50 * time.Hour)}})

	good := newClient(t, ca, pki.ClientOptions{CommonName: "alice"})
	expiredLeaf := newClient(t, ca, pki.ClientOptions{CommonName: "old", Validity: pki.Validity{
		NotBefore: now.AddDate(0, 0, -30), NotAfter: now.Add(-(3*24 + 1) * time.Hour)}})
	futureLeaf := newClient(t, ca, pki.ClientOptions{CommonName: "future", Validity: pki.Validity{
		NotBefore: now.Add(5 * 24 * time.Hour), NotAfter: now.AddDate(0, 0, 30)}})
	strangerLeaf := newClient(t, otherCA, pki.ClientOptions{CommonName: "stranger"})
	serverOnly := newClient(t, ca, pki.ClientOptions{CommonName: "server-ish",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	twoEKUs := newClient(t, ca, pki.ClientOptions{CommonName: "mail",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageCodeSigning}})
	underExpiredCA := newClient(t, expiredCA, pki.ClientOptions{CommonName: "orphan"})
	// A leaf used as a CA: its certificate is not allowed to sign.
	leafAsCA := &pki.CA{Cert: *good}
	signedByLeaf := newClient(t, leafAsCA, pki.ClientOptions{CommonName: "sub"})

	real := func(c *pki.Cert, roots *pki.CA, inter ...*x509.Certificate) error {
		err := verify(c.Certificate, roots.CertPool(), inter, now)
		if err == nil {
			t.Fatalf("verify %s: no error", c.Certificate.Subject)
		}
		return err
	}
	_, parseErr := x509.ParseCertificate([]byte("\x30\x03\x02\x01\x00"))
	if parseErr == nil {
		t.Fatal("garbage certificate parsed")
	}
	revoked := &crl.RevokedError{Serial: big.NewInt(0xabc), Subject: "CN=mallory", CRLIssuer: "CN=Client CA"}
	stale := &crl.StaleError{CRLIssuer: "CN=Client CA", NextUpdate: now.Add(-time.Hour)}
	notAllowed := identity.Allowlist{CN: []string{"alice"}}.Check(identity.Identity{CommonName: "bob"})

	tests := []struct {
		name     string
		err      error
		leaf     *x509.Certificate
		wantCode outcome.Code
		wantText string // exact unless contains is set
		contains bool
	}{
		{"nil", nil, nil, outcome.OK, "client certificate verified", false},
		{"nil with leaf", nil, good.Certificate, outcome.OK, "client certificate verified", false},

		{"expired", real(expiredLeaf, ca), expiredLeaf.Certificate, outcome.Expired,
			"client certificate expired 3 days ago (not after " + stamp(expiredLeaf.Certificate.NotAfter) + ")", false},
		{"expired without leaf", real(expiredLeaf, ca), nil, outcome.Expired,
			"client certificate expired 3 days ago (not after " + stamp(expiredLeaf.Certificate.NotAfter) + ")", false},
		{"not yet valid", real(futureLeaf, ca), futureLeaf.Certificate, outcome.NotYetValid,
			"client certificate not valid until " + stamp(futureLeaf.Certificate.NotBefore) + " (5 days from now)", false},
		{"expired CA in chain", real(underExpiredCA, expiredCA), underExpiredCA.Certificate, outcome.Expired,
			"certificate CN=Old CA,O=seclisten development in the chain expired 2 days ago (not after " +
				stamp(expiredCA.Certificate.NotAfter) + ")", false},
		{"unknown authority", real(strangerLeaf, ca), strangerLeaf.Certificate, outcome.UnknownAuthority,
			"signed by an unknown authority: issuer CN=Other CA,O=seclisten development", false},
		{"wrong EKU", real(serverOnly, ca), serverOnly.Certificate, outcome.WrongEKU,
			"certificate lacks clientAuth extended key usage (has serverAuth)", false},
		{"wrong EKUs", real(twoEKUs, ca), twoEKUs.Certificate, outcome.WrongEKU,
			"certificate lacks clientAuth extended key usage (has emailProtection, codeSigning)", false},
		// x509 reports a leaf that signed another as an unknown authority
		// (the candidate parent "cannot sign this kind of certificate").
		{"signed by a leaf", real(signedByLeaf, ca, good.Certificate), signedByLeaf.Certificate, outcome.UnknownAuthority,
			"signed by an unknown authority: issuer CN=alice,O=seclisten development", false},

		{"revoked", revoked, good.Certificate, outcome.Revoked, "revoked (serial 0xabc, CRL of CN=Client CA)", false},
		{"revoked, fetched CRL", &crl.RevokedError{Serial: big.NewInt(0x1f), CRLIssuer: "CN=Client CA", Source: "CRL from http://ca.test/crl.pem fetched 2m ago"},
			good.Certificate, outcome.Revoked, "revoked (serial 0x1f, CRL from http://ca.test/crl.pem fetched 2m ago)", false},
		{"revocation unknown", &revocation.UnknownError{CRL: errors.New("http://ca.test/crl.pem: HTTP status 404 Not Found")},
			good.Certificate, outcome.RevocationUnknown, "revocation status unknown: CRL fetch failed: http://ca.test/crl.pem: HTTP status 404 Not Found", false},
		{"revoked wrapped", fmt.Errorf("check: %w", revoked), nil, outcome.Revoked, "revoked (serial 0xabc, CRL of CN=Client CA)", false},
		{"stale", stale, good.Certificate, outcome.CRLStale, stale.Error(), false},
		{"OCSP revoked", fmt.Errorf("check: %w", &crl.RevokedError{Serial: big.NewInt(0x1f), Source: "OCSP, responder http://ca.test/ocsp, at " + now.UTC().Format(time.RFC3339)}), good.Certificate,
			outcome.Revoked, "revoked (serial 0x1f, OCSP, responder http://ca.test/ocsp, at " + now.UTC().Format(time.RFC3339) + ")", false},
		{"OCSP unknown", &revocation.UnknownError{OCSP: &ocsp.Error{Responder: "http://ca.test/ocsp",
			Err: errors.New("no answer within 5s")}}, good.Certificate, outcome.RevocationUnknown,
			"revocation status unknown: OCSP failed: responder http://ca.test/ocsp: no answer within 5s", false},
		{"not allowed", notAllowed, good.Certificate, outcome.NotAllowed, "CN=bob is not in the allowed common names", false},
		{"not allowed wrapped", fmt.Errorf("reject: %w", notAllowed), nil, outcome.NotAllowed, "CN=bob is not in the allowed common names", false},
		{"no certificate", verdict.ErrNoCertificate, nil, outcome.NoCertificate, "no client certificate sent", false},
		{"no certificate wrapped", fmt.Errorf("x: %w", verdict.ErrNoCertificate), nil, outcome.NoCertificate, "no client certificate sent", false},
		{"crypto/tls no certificate", errors.New("tls: client didn't provide a certificate"), nil, outcome.NoCertificate,
			"no client certificate sent", false},

		{"tls verification error, expired", &tls.CertificateVerificationError{
			UnverifiedCertificates: []*x509.Certificate{expiredLeaf.Certificate}, Err: real(expiredLeaf, ca)}, nil,
			outcome.Expired, "client certificate expired 3 days ago", true},
		{"tls verification error, unknown authority", &tls.CertificateVerificationError{
			UnverifiedCertificates: []*x509.Certificate{strangerLeaf.Certificate}, Err: real(strangerLeaf, ca)}, nil,
			outcome.UnknownAuthority, "signed by an unknown authority: issuer CN=Other CA,O=seclisten development is not one of the trusted CAs; the client sent only its leaf: if that issuer is an intermediate under a trusted root, the client must send it too (openssl s_client -cert_chain, or a full-chain certificate file)", false},
		{"tls verification error, wrong EKU", &tls.CertificateVerificationError{
			UnverifiedCertificates: []*x509.Certificate{serverOnly.Certificate}, Err: real(serverOnly, ca)}, nil,
			outcome.WrongEKU, "certificate lacks clientAuth extended key usage (has serverAuth)", false},
		{"tls verification error, bare unknown authority", &tls.CertificateVerificationError{
			UnverifiedCertificates: []*x509.Certificate{strangerLeaf.Certificate}, Err: x509.UnknownAuthorityError{}}, nil,
			outcome.UnknownAuthority, "signed by an unknown authority: issuer CN=Other CA,O=seclisten development is not one of the trusted CAs; the client sent only its leaf: if that issuer is an intermediate under a trusted root, the client must send it too (openssl s_client -cert_chain, or a full-chain certificate file)", false},
		{"tls verification error, bare expired", &tls.CertificateVerificationError{
			UnverifiedCertificates: []*x509.Certificate{expiredLeaf.Certificate}, Err: x509.CertificateInvalidError{Reason: x509.Expired}}, nil,
			outcome.Expired, "client certificate expired 3 days ago", true},

		{"bare unknown authority", x509.UnknownAuthorityError{}, nil, outcome.UnknownAuthority, "signed by an unknown authority", false},
		{"bare unknown authority, leaf given", x509.UnknownAuthorityError{}, strangerLeaf.Certificate, outcome.UnknownAuthority,
			"signed by an unknown authority: issuer CN=Other CA,O=seclisten development", false},
		{"bare expired", x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time is after"}, nil, outcome.Expired,
			"client certificate expired or not yet valid: current time is after", false},
		{"bare incompatible usage", x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}, nil, outcome.WrongEKU,
			"certificate lacks clientAuth extended key usage (has none)", false},
		{"too many intermediates", x509.CertificateInvalidError{Reason: x509.TooManyIntermediates}, nil, outcome.ChainTooLong,
			"certificate chain too long: x509: too many intermediates for path length constraint", false},
		{"too many constraints", x509.CertificateInvalidError{Reason: x509.TooManyConstraints}, nil, outcome.ChainTooLong,
			"certificate chain too long: ", true},
		{"not authorized to sign", x509.CertificateInvalidError{Cert: good.Certificate, Reason: x509.NotAuthorizedToSign}, nil, outcome.Malformed,
			"certificate chain invalid: x509: certificate is not authorized to sign other certificates", false},
		{"name constraints", x509.CertificateInvalidError{Reason: x509.CANotAuthorizedForThisName, Detail: "x"}, nil, outcome.Malformed,
			"certificate chain invalid: ", true},
		{"other invalid reason", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign + 100}, nil, outcome.VerifyFailed, "x509: ", true},

		{"malformed", fmt.Errorf("tls: failed to parse client certificate: %w", parseErr), nil, outcome.Malformed,
			"client certificate malformed: failed to parse client certificate: " + parseErr.Error(), false},
		{"x509 malformed", parseErr, nil, outcome.Malformed, "client certificate malformed: " + parseErr.Error(), false},
		{"unsupported key", errors.New("tls: client certificate contains an unsupported public key of type *dh.PublicKey"), nil,
			outcome.Malformed, "client certificate malformed: client certificate contains an unsupported public key of type *dh.PublicKey", false},
		{"unknown", errors.New("tls: something odd"), nil, outcome.VerifyFailed, "something odd", false},
		{"unknown without prefix", errors.New("connection reset by peer"), nil, outcome.VerifyFailed, "connection reset by peer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verdict.Explain(tt.err, tt.leaf, now)
			if v.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q (text %q, err %v)", v.Code, tt.wantCode, v.Text, tt.err)
			}
			if tt.contains {
				if !strings.Contains(v.Text, tt.wantText) {
					t.Errorf("Text = %q, want it to contain %q", v.Text, tt.wantText)
				}
			} else if v.Text != tt.wantText {
				t.Errorf("Text = %q\nwant   %q", v.Text, tt.wantText)
			}
			if strings.ContainsAny(v.Text, "\r\n") {
				t.Errorf("Text %q is not one line", v.Text)
			}
		})
	}
}

func TestExplainOKVerdict(t *testing.T) {
	if v := verdict.Explain(nil, nil, time.Time{}); v != verdict.OKVerdict {
		t.Errorf("Explain(nil) = %+v, want OKVerdict", v)
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 seconds"},
		{time.Second, "1 second"},
		{1500 * time.Millisecond, "1 second"},
		{40 * time.Second, "40 seconds"},
		{time.Minute, "60 seconds"},
		{119 * time.Second, "119 seconds"},
		{2 * time.Minute, "2 minutes"},
		{59 * time.Minute, "59 minutes"},
		{119 * time.Minute, "119 minutes"},
		{2 * time.Hour, "2 hours"},
		{5*time.Hour + 59*time.Minute, "5 hours"},
		{47 * time.Hour, "47 hours"},
		{48 * time.Hour, "2 days"},
		{3*24*time.Hour + 23*time.Hour, "3 days"},
		{365 * 24 * time.Hour, "365 days"},
		{-time.Second, "1 second"},
		{-40 * time.Second, "40 seconds"},
		{-5 * time.Minute, "5 minutes"},
		{-3 * time.Hour, "3 hours"},
		{-3 * 24 * time.Hour, "3 days"},
		{1<<63 - 1, "106751 days"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := verdict.Ago(tt.d); got != tt.want {
				t.Errorf("Ago(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

// A client controls the names in its certificate: the verdict quotes them
// escaped, on one line.
func TestExplainSanitizesCertificateNames(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "evil\nline\u202e\x1b[31m\u009b"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.IssueClient(pki.ClientOptions{CommonName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	v := verdict.Explain(x509.UnknownAuthorityError{Cert: leaf.Certificate}, nil, time.Now())
	want := `signed by an unknown authority: issuer CN=evil\nline\u202e\x1b[31m\u009b,O=seclisten development`
	if v.Text != want {
		t.Errorf("Text = %q, want %q", v.Text, want)
	}
}

// A certificate's names run to any length; the verdict's text does not.
func TestExplainBoundsText(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: strings.Repeat("\x1b", 20000)})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.IssueClient(pki.ClientOptions{CommonName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	v := verdict.Explain(x509.UnknownAuthorityError{Cert: leaf.Certificate}, nil, time.Now())
	if len(v.Text) > verdict.MaxText+32 || !strings.HasSuffix(v.Text, " bytes)") || !strings.HasPrefix(v.Text, "signed by an unknown authority: issuer CN=\\x1b") {
		t.Errorf("Text is %d bytes: %.120q…%q", len(v.Text), v.Text, v.Text[max(0, len(v.Text)-40):])
	}
}

// The chain doctor: what the client sent says why its chain leads to no
// trusted CA.
func TestChainDoctor(t *testing.T) {
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := int64(0)
	mk := func(cn string, parent *x509.Certificate, ca bool, aia string) *x509.Certificate {
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: ca, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if aia != "" {
			tmpl.IssuingCertificateURL = []string{aia}
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	trusted := mk("Trusted Root", nil, true, "")
	root := mk("Acme Root", nil, true, "")
	inter := mk("Acme Intermediate", root, true, "")
	leaf := mk("alice", inter, false, "http://ca.example/acme-intermediate.crt")
	self := mk("selfie", nil, false, "")
	pool := x509.NewCertPool()
	pool.AddCert(trusted)
	verify := func(sent ...*x509.Certificate) error {
		opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, c := range sent[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := sent[0].Verify(opts)
		return &tls.CertificateVerificationError{UnverifiedCertificates: sent, Err: err}
	}
	for _, tt := range []struct {
		name string
		sent []*x509.Certificate
		want string
	}{
		{"leaf without its intermediate", []*x509.Certificate{leaf},
			"signed by an unknown authority: issuer CN=Acme Intermediate is not one of the trusted CAs; the client sent only its leaf: " +
				"if that issuer is an intermediate under a trusted root, the client must send it too " +
				"(openssl s_client -cert_chain, or a full-chain certificate file); " +
				"the issuer's certificate is at http://ca.example/acme-intermediate.crt (AIA caIssuers)"},
		{"chain to an untrusted root", []*x509.Certificate{leaf, inter, root},
			"signed by an unknown authority: the chain the client sent leads to the root CN=Acme Root, which the server does not trust"},
		{"chain without its root", []*x509.Certificate{leaf, inter},
			"signed by an unknown authority: the chain the client sent (2 certificates) ends at CN=Acme Intermediate, issued by CN=Acme Root, which is not one of the trusted CAs"},
		{"self-signed", []*x509.Certificate{self},
			"signed by an unknown authority: issuer CN=selfie: the client certificate is self-signed, not issued by a trusted CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := verdict.Explain(verify(tt.sent...), nil, now)
			if v.Code != outcome.UnknownAuthority || v.Text != tt.want {
				t.Errorf("Explain = %s %q\nwant %q", v.Code, v.Text, tt.want)
			}
		})
	}
}
