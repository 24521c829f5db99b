package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/pki"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "Identity Test CA"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs tmpl with ca: for subjects pki.IssueClient cannot make (no
// CN, IP and email SANs).
func issue(t *testing.T, ca *pki.CA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(0x1234abcd)
	}
	tmpl.NotBefore = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tmpl.NotAfter = tmpl.NotBefore.AddDate(1, 0, 0)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestFromCertificateName(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name string
		tmpl *x509.Certificate
		want string
	}{
		{"CN wins over SANs", &x509.Certificate{
			Subject:  pkix.Name{CommonName: "alice", Organization: []string{"Org"}},
			DNSNames: []string{"alice.example"},
			URIs:     []*url.URL{mustURL(t, "spiffe://example.org/alice")},
		}, "CN=alice"},
		{"no CN: first URI", &x509.Certificate{
			Subject:  pkix.Name{Organization: []string{"Org"}},
			DNSNames: []string{"svc.example"},
			URIs:     []*url.URL{mustURL(t, "spiffe://example.org/first"), mustURL(t, "spiffe://example.org/second")},
		}, "URI=spiffe://example.org/first"},
		{"no CN, no URI: first DNS", &x509.Certificate{
			Subject:     pkix.Name{Organization: []string{"Org"}},
			DNSNames:    []string{"one.example", "two.example"},
			IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)},
		}, "DNS=one.example"},
		{"no CN, no URI, no DNS: subject", &x509.Certificate{
			Subject:        pkix.Name{Organization: []string{"Org"}, OrganizationalUnit: []string{"ops"}},
			IPAddresses:    []net.IP{net.IPv4(10, 0, 0, 1)},
			EmailAddresses: []string{"a@example.org"},
		}, "subject=OU=ops,O=Org"},
		{"empty subject", &x509.Certificate{
			EmailAddresses: []string{"a@example.org"},
		}, "subject="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := issue(t, ca, tt.tmpl)
			if got := identity.FromCertificate(c).Name; got != tt.want {
				t.Errorf("Name = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFromCertificateFields(t *testing.T) {
	ca := newCA(t)
	c := issue(t, ca, &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x0a, 0xbc, 0xde, 0xf0, 0x01}),
		// DER sorts the SET of OUs: give them in that order.
		Subject:        pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"dev", "ops"}, Organization: []string{"Org"}},
		DNSNames:       []string{"a.example", "B.example"},
		IPAddresses:    []net.IP{net.IPv4(192, 0, 2, 1), net.ParseIP("2001:db8::1")},
		URIs:           []*url.URL{mustURL(t, "spiffe://example.org/alice"), mustURL(t, "https://example.org/x?y=1")},
		EmailAddresses: []string{"alice@example.org"},
	})
	id := identity.FromCertificate(c)

	sum := sha256.Sum256(c.Raw)
	checks := []struct {
		field     string
		got, want any
	}{
		{"Name", id.Name, "CN=alice"},
		{"Subject", id.Subject, "CN=alice,OU=dev+OU=ops,O=Org"},
		{"CommonName", id.CommonName, "alice"},
		{"OUs", id.OUs, []string{"dev", "ops"}},
		{"DNSNames", id.DNSNames, []string{"a.example", "B.example"}},
		{"URIs", id.URIs, []string{"spiffe://example.org/alice", "https://example.org/x?y=1"}},
		{"Emails", id.Emails, []string{"alice@example.org"}},
		{"IPs", id.IPs, []string{"192.0.2.1", "2001:db8::1"}},
		{"Issuer", id.Issuer, "CN=Identity Test CA,O=seclisten development"},
		{"Serial", id.Serial, "0xabcdef001"},
		{"Fingerprint", id.Fingerprint, hex.EncodeToString(sum[:])},
		{"NotBefore", id.NotBefore, c.NotBefore},
		{"NotAfter", id.NotAfter, c.NotAfter},
		{"SANs", id.SANs(), []string{
			"DNS:a.example", "DNS:B.example",
			"IP:192.0.2.1", "IP:2001:db8::1",
			"URI:spiffe://example.org/alice", "URI:https://example.org/x?y=1",
			"email:alice@example.org",
		}},
	}
	for _, ch := range checks {
		t.Run(ch.field, func(t *testing.T) {
			switch want := ch.want.(type) {
			case []string:
				if got := ch.got.([]string); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", ch.field, got, want)
				}
			case time.Time:
				if got := ch.got.(time.Time); !got.Equal(want) {
					t.Errorf("%s = %v, want %v", ch.field, got, want)
				}
			default:
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.field, ch.got, ch.want)
				}
			}
		})
	}
	if len(id.Fingerprint) != 64 || strings.ToLower(id.Fingerprint) != id.Fingerprint {
		t.Errorf("Fingerprint %q is not 64 lowercase hex digits", id.Fingerprint)
	}
}

func TestFromPKIClient(t *testing.T) {
	ca := newCA(t)
	c, err := ca.IssueClient(pki.ClientOptions{
		CommonName:          "bob",
		OrganizationalUnits: []string{"eng"},
		DNSNames:            []string{"bob.example"},
		URIs:                []string{"spiffe://example.org/bob"},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := identity.FromCertificate(c.Certificate)
	if id.Name != "CN=bob" || id.Serial != "0x"+c.Certificate.SerialNumber.Text(16) {
		t.Errorf("Name %q Serial %q", id.Name, id.Serial)
	}
	if want := []string{"DNS:bob.example", "URI:spiffe://example.org/bob"}; !slices.Equal(id.SANs(), want) {
		t.Errorf("SANs = %q, want %q", id.SANs(), want)
	}
	if err := (identity.Allowlist{CN: []string{"bob"}, OU: []string{"eng"}, DNS: []string{"BOB.example"},
		URI: []string{"spiffe://example.org/bob"}}).Check(id); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestSerial(t *testing.T) {
	tests := []struct {
		serial *big.Int
		want   string
	}{
		{nil, "0x0"},
		{big.NewInt(0), "0x0"},
		{big.NewInt(1), "0x1"},
		{big.NewInt(0x0f), "0xf"},
		{big.NewInt(0xdeadbeef), "0xdeadbeef"},
		{new(big.Int).Lsh(big.NewInt(1), 127), "0x80000000000000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := identity.Serial(&x509.Certificate{SerialNumber: tt.serial}); got != tt.want {
				t.Errorf("Serial = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"bytes", []byte("some DER")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := sha256.Sum256(tt.raw)
			if got, want := identity.Fingerprint(&x509.Certificate{Raw: tt.raw}), hex.EncodeToString(sum[:]); got != want {
				t.Errorf("Fingerprint = %q, want %q", got, want)
			}
		})
	}
}

func TestSANsEmpty(t *testing.T) {
	if s := (identity.Identity{}).SANs(); len(s) != 0 {
		t.Errorf("SANs of empty identity = %q", s)
	}
}

func TestAllowlistCheck(t *testing.T) {
	alice := identity.Identity{
		CommonName: "alice",
		OUs:        []string{"eng", "ops"},
		DNSNames:   []string{"alice.example.org", "Alt.Example.ORG"},
		URIs:       []string{"spiffe://example.org/alice"},
	}
	bare := identity.Identity{Name: "subject="}
	tests := []struct {
		name    string
		allow   identity.Allowlist
		id      identity.Identity
		wantErr string // "" for allowed
	}{
		{"empty allows", identity.Allowlist{}, alice, ""},
		{"empty allows bare", identity.Allowlist{}, bare, ""},
		{"empty lists allow", identity.Allowlist{CN: []string{}, OU: []string{}}, alice, ""},

		{"CN hit", identity.Allowlist{CN: []string{"alice"}}, alice, ""},
		{"CN hit among several", identity.Allowlist{CN: []string{"bob", "alice"}}, alice, ""},
		{"CN miss", identity.Allowlist{CN: []string{"bob"}}, alice, "CN=alice is not in the allowed common names"},
		{"CN case-sensitive", identity.Allowlist{CN: []string{"Alice"}}, alice, "CN=alice is not in the allowed common names"},
		{"CN no substring", identity.Allowlist{CN: []string{"alic"}}, alice, "CN=alice is not in the allowed common names"},
		{"CN absent", identity.Allowlist{CN: []string{"alice"}}, bare, "certificate has no CN, so it matches none of the allowed common names"},
		{"CN empty entry does not match absent CN", identity.Allowlist{CN: []string{""}}, bare, ""},

		{"OU hit first", identity.Allowlist{OU: []string{"eng"}}, alice, ""},
		{"OU hit second", identity.Allowlist{OU: []string{"ops"}}, alice, ""},
		{"OU miss", identity.Allowlist{OU: []string{"sales"}}, alice, "none of OU=eng, OU=ops is in the allowed organizational units"},
		{"OU case-sensitive", identity.Allowlist{OU: []string{"ENG"}}, alice, "none of OU=eng, OU=ops is in the allowed organizational units"},
		{"OU absent", identity.Allowlist{OU: []string{"eng"}}, bare, "certificate has no OU, so it matches none of the allowed organizational units"},

		{"DNS hit", identity.Allowlist{DNS: []string{"alice.example.org"}}, alice, ""},
		{"DNS hit case-insensitive", identity.Allowlist{DNS: []string{"ALICE.example.org"}}, alice, ""},
		{"DNS hit second SAN case-insensitive", identity.Allowlist{DNS: []string{"alt.example.org"}}, alice, ""},
		{"DNS miss", identity.Allowlist{DNS: []string{"bob.example.org"}}, alice, "none of DNS=alice.example.org, DNS=Alt.Example.ORG is in the allowed DNS names"},
		{"DNS no wildcard matching", identity.Allowlist{DNS: []string{"*.example.org"}}, alice, "in the allowed DNS names"},
		{"DNS absent", identity.Allowlist{DNS: []string{"a.example"}}, bare, "certificate has no DNS, so it matches none of the allowed DNS names"},

		{"URI hit", identity.Allowlist{URI: []string{"spiffe://example.org/alice"}}, alice, ""},
		{"URI miss", identity.Allowlist{URI: []string{"spiffe://example.org/bob"}}, alice, "URI=spiffe://example.org/alice is not in the allowed URIs"},
		{"URI case-sensitive", identity.Allowlist{URI: []string{"spiffe://example.org/Alice"}}, alice, "is not in the allowed URIs"},
		{"URI absent", identity.Allowlist{URI: []string{"spiffe://example.org/alice"}}, bare, "certificate has no URI, so it matches none of the allowed URIs"},

		{"AND all hit", identity.Allowlist{CN: []string{"alice"}, OU: []string{"ops"}, DNS: []string{"alice.example.org"},
			URI: []string{"spiffe://example.org/alice"}}, alice, ""},
		{"AND CN hit, OU miss", identity.Allowlist{CN: []string{"alice"}, OU: []string{"sales"}}, alice, "none of OU=eng, OU=ops is in the allowed organizational units"},
		{"AND CN miss reported first", identity.Allowlist{CN: []string{"bob"}, OU: []string{"sales"}}, alice, "CN=alice is not in the allowed common names"},
		{"AND DNS hit, URI miss", identity.Allowlist{DNS: []string{"alice.example.org"}, URI: []string{"spiffe://x"}}, alice, "URI=spiffe://example.org/alice is not in the allowed URIs"},
		{"AND OU hit, DNS miss", identity.Allowlist{OU: []string{"eng"}, DNS: []string{"x.example"}}, alice, "in the allowed DNS names"},
		{"OR within lists", identity.Allowlist{CN: []string{"x", "alice"}, OU: []string{"y", "ops"}, DNS: []string{"z", "ALT.example.org"},
			URI: []string{"w", "spiffe://example.org/alice"}}, alice, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.allow.Check(tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var na *identity.NotAllowedError
			if !errors.As(err, &na) {
				t.Fatalf("Check = %v (%T), want *NotAllowedError", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Check = %q, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(tt.wantErr, na.List) {
				t.Errorf("List = %q for %q", na.List, tt.wantErr)
			}
		})
	}
}

func TestAllowlistEmpty(t *testing.T) {
	tests := []struct {
		allow identity.Allowlist
		want  bool
	}{
		{identity.Allowlist{}, true},
		{identity.Allowlist{CN: []string{}}, true},
		{identity.Allowlist{CN: []string{"a"}}, false},
		{identity.Allowlist{OU: []string{"a"}}, false},
		{identity.Allowlist{DNS: []string{"a"}}, false},
		{identity.Allowlist{URI: []string{"a"}}, false},
	}
	for i, tt := range tests {
		if got := tt.allow.Empty(); got != tt.want {
			t.Errorf("%d: Empty() = %v, want %v", i, got, tt.want)
		}
	}
}

func TestNotAllowedErrorText(t *testing.T) {
	tests := []struct {
		err  identity.NotAllowedError
		want string
	}{
		{identity.NotAllowedError{List: "CN", Presented: []string{"bob"}}, "CN=bob is not in the allowed common names"},
		{identity.NotAllowedError{List: "URI"}, "certificate has no URI, so it matches none of the allowed URIs"},
		{identity.NotAllowedError{List: "OU", Presented: []string{"a", "b"}}, "none of OU=a, OU=b is in the allowed organizational units"},
		{identity.NotAllowedError{List: "DNS", Presented: []string{}}, "certificate has no DNS, so it matches none of the allowed DNS names"},
		{identity.NotAllowedError{List: "DNS", Presented: []string{"a.example"}}, "DNS=a.example is not in the allowed DNS names"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// A certificate described again, after hundreds of others (more than are
// remembered) or parsed anew from the same DER, is described the same; a
// certificate without DER (a template) is described too.
func TestFromCertificateRemembers(t *testing.T) {
	ca := newCA(t)
	first := issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, DNSNames: []string{"a.example"},
		SerialNumber: big.NewInt(1)})
	want := identity.FromCertificate(first)
	if want.Name != "CN=alice" || want.Serial != "0x1" {
		t.Fatalf("described %+v", want)
	}
	for i := range 300 {
		c := issue(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "other"}, SerialNumber: big.NewInt(int64(i + 2))})
		if id := identity.FromCertificate(c); id.Serial != "0x"+big.NewInt(int64(i+2)).Text(16) {
			t.Fatalf("certificate %d described as %+v", i, id)
		}
		if i == 100 || i == 299 {
			again, err := x509.ParseCertificate(first.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := identity.FromCertificate(again); !reflect.DeepEqual(got, want) {
				t.Errorf("after %d others: %+v, want %+v", i+1, got, want)
			}
		}
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "template"}}
	if got := identity.FromCertificate(tmpl); got.Name != "CN=template" {
		t.Errorf("template described as %+v", got)
	}
}
