package crl_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/pki"
)

func newCA(t testing.TB, cn string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: cn})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newClient(t *testing.T, ca *pki.CA, cn string) *pki.Cert {
	t.Helper()
	c, err := ca.IssueClient(pki.ClientOptions{CommonName: cn})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeCRL(t *testing.T, ca *pki.CA, opts pki.CRLOptions) []byte {
	t.Helper()
	p, err := ca.CRL(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func derOf(t *testing.T, pemData []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(pemData)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

// newSubCA makes a CA certificate signed by parent that may itself sign
// certificates below it (pki.NewCA makes only path-length-0 CAs).
func newSubCA(t *testing.T, parent *pki.CA, cn string, maxPathLen int) *pki.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{pki.Organization}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            maxPathLen,
		MaxPathLenZero:        maxPathLen == 0,
	}
	parentCert, parentKey := tmpl, any(key)
	if parent != nil {
		parentCert, parentKey = parent.Certificate, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki.CA{Cert: pki.Cert{Certificate: cert, Key: key}}
}

func TestParse(t *testing.T) {
	ca := newCA(t, "CA One")
	other := newCA(t, "CA Two")
	// Same subject as ca, different key: a CRL it signs names ca as its
	// issuer but does not verify with ca's key.
	impostor := newCA(t, "CA One")
	leaf := newClient(t, ca, "alice")

	one := makeCRL(t, ca, pki.CRLOptions{Revoked: []*big.Int{leaf.Certificate.SerialNumber}})
	two := makeCRL(t, other, pki.CRLOptions{})
	badSig := bytes.Clone(derOf(t, one))
	badSig[len(badSig)-1] ^= 0x01 // last byte of the signature's S integer

	tests := []struct {
		name    string
		data    []byte
		issuers []*x509.Certificate
		want    []*x509.Certificate // issuer of each list
		wantErr string
	}{
		{"one PEM", one, []*x509.Certificate{ca.Certificate}, []*x509.Certificate{ca.Certificate}, ""},
		{"two PEM", append(bytes.Clone(one), two...), []*x509.Certificate{other.Certificate, ca.Certificate},
			[]*x509.Certificate{ca.Certificate, other.Certificate}, ""},
		{"PEM with surrounding text", append(append([]byte("comment\n"), one...), "trailer\n"...),
			[]*x509.Certificate{ca.Certificate}, []*x509.Certificate{ca.Certificate}, ""},
		{"DER", derOf(t, one), []*x509.Certificate{ca.Certificate}, []*x509.Certificate{ca.Certificate}, ""},
		{"empty", nil, []*x509.Certificate{ca.Certificate}, nil, "no CRL found"},
		{"whitespace", []byte(" \n\t"), []*x509.Certificate{ca.Certificate}, nil, "no CRL found"},
		{"broken PEM", []byte("-----BEGIN X509 CRL-----\nnot base64!\n"), []*x509.Certificate{ca.Certificate}, nil, "no CRL found"},
		{"garbage", []byte("this is not a CRL at all"), []*x509.Certificate{ca.Certificate}, nil, "parse CRL"},
		{"truncated DER", derOf(t, one)[:40], []*x509.Certificate{ca.Certificate}, nil, "parse CRL"},
		{"certificate PEM", ca.CertPEM(), []*x509.Certificate{ca.Certificate}, nil, `PEM block "CERTIFICATE" is not an X509 CRL`},
		{"CRL then certificate", append(bytes.Clone(one), ca.CertPEM()...), []*x509.Certificate{ca.Certificate}, nil, `PEM block "CERTIFICATE" is not an X509 CRL`},
		{"unknown issuer", two, []*x509.Certificate{ca.Certificate}, nil, "CRL of CN=CA Two,O=seclisten development is not signed by any client CA"},
		{"no issuers", one, nil, nil, "CRL of CN=CA One,O=seclisten development is not signed by any client CA"},
		{"second of two unknown", append(bytes.Clone(one), two...), []*x509.Certificate{ca.Certificate}, nil, "CRL of CN=CA Two"},
		{"wrong signature", badSig, []*x509.Certificate{ca.Certificate}, nil, "CRL of CN=CA One,O=seclisten development is not signed by any client CA"},
		{"same subject other key", makeCRL(t, impostor, pki.CRLOptions{}), []*x509.Certificate{ca.Certificate}, nil, "is not signed by any client CA"},
		{"same subject, right key second", makeCRL(t, impostor, pki.CRLOptions{}), []*x509.Certificate{ca.Certificate, impostor.Certificate},
			[]*x509.Certificate{impostor.Certificate}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lists, err := crl.Parse(tt.data, tt.issuers)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse: got %d lists, want error containing %q", len(lists), tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error %q, want it to contain %q", err, tt.wantErr)
				}
				if lists != nil {
					t.Errorf("Parse returned lists with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(lists) != len(tt.want) {
				t.Fatalf("got %d lists, want %d", len(lists), len(tt.want))
			}
			for i, l := range lists {
				if !l.Issuer.Equal(tt.want[i]) {
					t.Errorf("list %d issuer %s, want %s", i, l.Issuer.Subject, tt.want[i].Subject)
				}
				if l.ThisUpdate.IsZero() || l.IssuerName == "" {
					t.Errorf("list %d has no thisUpdate or issuer name", i)
				}
			}
		})
	}
}

func TestParseRevokedEntries(t *testing.T) {
	ca := newCA(t, "CA")
	a, b := newClient(t, ca, "a"), newClient(t, ca, "b")
	lists, err := crl.Parse(makeCRL(t, ca, pki.CRLOptions{Revoked: []*big.Int{a.Certificate.SerialNumber}}), []*x509.Certificate{ca.Certificate})
	if err != nil {
		t.Fatal(err)
	}
	if l := lists[0]; l.Len() != 1 || !l.Revoked(a.Certificate.SerialNumber) || l.Revoked(b.Certificate.SerialNumber) {
		t.Fatalf("revoked set of %d, want a's serial only", l.Len())
	}
	chain := func(c *pki.Cert) []*x509.Certificate { return []*x509.Certificate{c.Certificate, ca.Certificate} }
	if err := crl.Check(lists, chain(a), time.Now(), false); err == nil {
		t.Error("a: not reported revoked")
	}
	if err := crl.Check(lists, chain(b), time.Now(), false); err != nil {
		t.Errorf("b: %v", err)
	}
}

func TestCheck(t *testing.T) {
	now := time.Now()
	ca := newCA(t, "Client CA")
	other := newCA(t, "Other CA")
	revoked := newClient(t, ca, "mallory")
	good := newClient(t, ca, "alice")
	otherLeaf := newClient(t, other, "bob")

	// Three levels: root -> intermediate -> leaf, with the intermediate
	// revoked by the root's CRL and a CRL of the intermediate revoking
	// nothing.
	root := newSubCA(t, nil, "Root CA", 1)
	inter := newSubCA(t, root, "Intermediate CA", 0)
	interLeaf := newClient(t, inter, "carol")
	chain3, err := interLeaf.Certificate.Verify(x509.VerifyOptions{
		Roots:         root.CertPool(),
		Intermediates: inter.CertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("verify 3-level chain: %v", err)
	}
	if len(chain3[0]) != 3 {
		t.Fatalf("chain has %d certificates, want 3", len(chain3[0]))
	}

	parse := func(t *testing.T, issuers []*x509.Certificate, pems ...[]byte) []*crl.List {
		t.Helper()
		lists, err := crl.Parse(bytes.Join(pems, nil), issuers)
		if err != nil {
			t.Fatal(err)
		}
		return lists
	}
	caIssuers := []*x509.Certificate{ca.Certificate, other.Certificate}
	current := parse(t, caIssuers, makeCRL(t, ca, pki.CRLOptions{Revoked: []*big.Int{revoked.Certificate.SerialNumber}}))
	stale := parse(t, caIssuers, makeCRL(t, ca, pki.CRLOptions{
		Revoked:    []*big.Int{revoked.Certificate.SerialNumber},
		ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour),
	}))
	// The other CA's CRL lists the serial revoked by ca, and bob's too: it
	// must only apply to certificates the other CA issued.
	otherCRL := parse(t, caIssuers, makeCRL(t, other, pki.CRLOptions{
		Revoked:    []*big.Int{good.Certificate.SerialNumber},
		ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour),
	}))
	chainIssuers := []*x509.Certificate{root.Certificate, inter.Certificate}
	rootCRL := parse(t, chainIssuers, makeCRL(t, root, pki.CRLOptions{Revoked: []*big.Int{inter.Certificate.SerialNumber}}))
	interCRL := parse(t, chainIssuers, makeCRL(t, inter, pki.CRLOptions{}))
	interRevokesLeaf := parse(t, chainIssuers, makeCRL(t, inter, pki.CRLOptions{Revoked: []*big.Int{interLeaf.Certificate.SerialNumber}}))
	emptyRoot := parse(t, chainIssuers, makeCRL(t, root, pki.CRLOptions{}))

	chain := func(c *pki.Cert, issuer *pki.CA) []*x509.Certificate {
		return []*x509.Certificate{c.Certificate, issuer.Certificate}
	}
	type want struct {
		revoked *x509.Certificate // the certificate reported revoked
		crlBy   string            // CRLIssuer of the error
		stale   bool
	}
	tests := []struct {
		name       string
		lists      []*crl.List
		chain      []*x509.Certificate
		now        time.Time
		allowStale bool
		want       want
	}{
		{"not revoked", current, chain(good, ca), now, false, want{}},
		{"revoked", current, chain(revoked, ca), now, false, want{revoked: revoked.Certificate, crlBy: "CN=Client CA,O=seclisten development"}},
		{"no lists", nil, chain(revoked, ca), now, false, want{}},
		{"leaf only chain", current, []*x509.Certificate{revoked.Certificate}, now, false, want{}},
		{"stale", stale, chain(good, ca), now, false, want{stale: true, crlBy: "CN=Client CA,O=seclisten development"}},
		{"stale revoked", stale, chain(revoked, ca), now, false, want{stale: true, crlBy: "CN=Client CA,O=seclisten development"}},
		{"stale allowed", stale, chain(good, ca), now, true, want{}},
		{"stale allowed still revokes", stale, chain(revoked, ca), now, true, want{revoked: revoked.Certificate, crlBy: "CN=Client CA,O=seclisten development"}},
		{"stale CRL current at an earlier now", stale, chain(good, ca), now.Add(-2 * time.Hour), false, want{}},
		{"current CRL stale at a later now", current, chain(good, ca), now.AddDate(0, 0, pki.DefaultCRLDays+1), false, want{stale: true, crlBy: "CN=Client CA"}},
		{"other issuer's CRL ignored", otherCRL, chain(good, ca), now, false, want{}},
		{"other issuer's stale CRL ignored", append(append([]*crl.List{}, otherCRL...), current...), chain(good, ca), now, false, want{}},
		{"other issuer's CRL applies to its own", otherCRL, chain(otherLeaf, other), now, false, want{stale: true, crlBy: "CN=Other CA"}},
		{"intermediate revoked", append(append([]*crl.List{}, interCRL...), rootCRL...), chain3[0], now, false,
			want{revoked: inter.Certificate, crlBy: "CN=Root CA,O=seclisten development"}},
		{"leaf revoked by intermediate", append(append([]*crl.List{}, emptyRoot...), interRevokesLeaf...), chain3[0], now, false,
			want{revoked: interLeaf.Certificate, crlBy: "CN=Intermediate CA,O=seclisten development"}},
		{"3-level chain clean", append(append([]*crl.List{}, emptyRoot...), interCRL...), chain3[0], now, false, want{}},
		{"root CRL only, leaf fine", emptyRoot, chain3[0], now, false, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := crl.Check(tt.lists, tt.chain, tt.now, tt.allowStale)
			var rev *crl.RevokedError
			var st *crl.StaleError
			switch {
			case tt.want.revoked != nil:
				if !errors.As(err, &rev) {
					t.Fatalf("Check = %v, want *RevokedError", err)
				}
				c := tt.want.revoked
				if rev.Serial.Cmp(c.SerialNumber) != 0 {
					t.Errorf("Serial %x, want %x", rev.Serial, c.SerialNumber)
				}
				if rev.Subject != c.Subject.String() {
					t.Errorf("Subject %q, want %q", rev.Subject, c.Subject)
				}
				if !strings.HasPrefix(rev.CRLIssuer, tt.want.crlBy) {
					t.Errorf("CRLIssuer %q, want %q", rev.CRLIssuer, tt.want.crlBy)
				}
				wantText := "revoked (serial 0x" + c.SerialNumber.Text(16) + ", CRL of " + rev.CRLIssuer + ")"
				if err.Error() != wantText {
					t.Errorf("Error() = %q, want %q", err, wantText)
				}
			case tt.want.stale:
				if !errors.As(err, &st) {
					t.Fatalf("Check = %v, want *StaleError", err)
				}
				if !strings.HasPrefix(st.CRLIssuer, tt.want.crlBy) {
					t.Errorf("CRLIssuer %q, want %q", st.CRLIssuer, tt.want.crlBy)
				}
				if !st.NextUpdate.Before(tt.now) {
					t.Errorf("NextUpdate %v not before now %v", st.NextUpdate, tt.now)
				}
				wantPrefix := "CRL of " + st.CRLIssuer + " is stale (next update was due " + st.NextUpdate.UTC().Format(time.RFC3339) + ")"
				if !strings.HasPrefix(err.Error(), wantPrefix) {
					t.Errorf("Error() = %q, want prefix %q", err, wantPrefix)
				}
			default:
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
			}
		})
	}
}

func TestRevokedErrorText(t *testing.T) {
	e := &crl.RevokedError{Serial: big.NewInt(0xbeef), CRLIssuer: "CN=Test CA"}
	if got, want := e.Error(), "revoked (serial 0xbeef, CRL of CN=Test CA)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	s := &crl.StaleError{CRLIssuer: "CN=Test CA", NextUpdate: time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}
	want := "CRL of CN=Test CA is stale (next update was due 2024-01-02T02:04:05Z); refusing to trust it"
	if got := s.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
