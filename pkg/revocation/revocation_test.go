package revocation

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/internal/lockedbuf"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serialN atomic.Int64

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialN.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: []byte(cn),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

// leaf issues a client certificate naming the distribution points dps.
func (ca *testCA) leaf(t testing.TB, cn string, dps ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1000 + serialN.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CRLDistributionPoints: dps,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// crl is a PEM CRL of ca revoking serials, current for life.
func (ca *testCA) crl(t testing.TB, life time.Duration, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(life),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// crlServer serves body() at /crl.pem and counts the requests.
type crlServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
	hold chan struct{} // if set, each request waits for it to close
	// arrived gets a value for each request (dropped when full).
	arrived chan struct{}
	stall   bool // never answer (until the client gives up)
}

func newCRLServer(t testing.TB, body []byte) *crlServer {
	s := &crlServer{body: body, arrived: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		select {
		case s.arrived <- struct{}{}:
		default:
		}
		s.mu.Lock()
		hold, stall, body := s.hold, s.stall, s.body
		s.mu.Unlock()
		if stall {
			<-r.Context().Done()
			return
		}
		if hold != nil {
			<-hold
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *crlServer) url() string { return s.URL + "/crl.pem" }

func newChecker(t testing.TB, opts Options) (*Checker, *lockedbuf.Buffer, chan error) {
	t.Helper()
	logs := &lockedbuf.Buffer{}
	opts.Log = slog.New(slog.NewTextHandler(logs, nil))
	c := New(opts)
	done := make(chan error, 100)
	c.testHookFetched = func(_ string, err error) { done <- err }
	t.Cleanup(c.Close)
	return c, logs, done
}

func check(c *Checker, leaf *x509.Certificate, ca *testCA) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Check(ctx, []*x509.Certificate{leaf, ca.cert})
}

func TestGoodAndRevoked(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	good, bad := ca.leaf(t, "good", srv.url()), ca.leaf(t, "bad", srv.url())
	srv.set(ca.crl(t, time.Hour, bad.SerialNumber))
	c, _, _ := newChecker(t, Options{})
	if err := check(c, good, ca); err != nil {
		t.Fatalf("good: %v", err)
	}
	err := check(c, bad, ca)
	var rev *crl.RevokedError
	if !errors.As(err, &rev) {
		t.Fatalf("bad: %v, want revoked", err)
	}
	want := fmt.Sprintf("revoked (serial 0x%s, CRL from %s fetched 0s ago)", bad.SerialNumber.Text(16), srv.url())
	if err.Error() != want {
		t.Errorf("text %q, want %q", err, want)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d fetches, want 1 (cached)", n)
	}
	if st := c.Stats(); st.Entries != 1 || st.Bytes <= 0 || st.Fetches != 1 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A crowd of clients of one CA causes one fetch.
func TestSingleFlight(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	srv.set(ca.crl(t, time.Hour))
	srv.hold = make(chan struct{})
	c, _, _ := newChecker(t, Options{})
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		leaf := ca.leaf(t, fmt.Sprint("c", i), srv.url())
		go func() { errs <- check(c, leaf, ca) }()
	}
	// Every checker is waiting on the one fetch the server holds.
	<-srv.arrived
	close(srv.hold)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if h := srv.hits.Load(); h != 1 {
		t.Errorf("%d fetches for %d concurrent checks, want 1", h, n)
	}
}

func TestBadCRLs(t *testing.T) {
	ca := newTestCA(t, "CA")
	other := newTestCA(t, "CA") // same name, other key
	good := ca.crl(t, time.Hour)
	tests := []struct {
		name string
		body []byte
		opts Options
		want string
	}{
		{"huge", bytes.Repeat([]byte("A"), 2<<20), Options{MaxSize: 1 << 20}, "larger than the limit of 1048576 bytes"},
		{"truncated", good[:len(good)/2], Options{}, "no CRL found"},
		{"truncated DER", func() []byte { b, _ := pem.Decode(good); return b.Bytes[:len(b.Bytes)-10] }(), Options{}, "parse CRL"},
		{"wrong key", other.crl(t, time.Hour), Options{}, "not signed by the certificate's issuer"},
		{"stale", func() []byte {
			der, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
				ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: time.Now().Add(-time.Hour)}, ca.cert, ca.key)
			return der
		}(), Options{}, "the CRL is stale"},
		{"garbage", []byte("<html>not found</html>"), Options{}, "parse CRL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCRLServer(t, tt.body)
			leaf := ca.leaf(t, "c", srv.url())
			c, logs, done := newChecker(t, tt.opts)
			err := check(c, leaf, ca)
			<-done // the fetch has logged
			var unk *UnknownError
			if !errors.As(err, &unk) {
				t.Fatalf("err %v, want UnknownError", err)
			}
			if !strings.HasPrefix(err.Error(), "revocation status unknown: CRL fetch failed: "+srv.url()) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q, want it to name the URL and %q", err, tt.want)
			}
			// The failure is remembered: a second client causes no fetch
			// and no log line.
			if err := check(c, leaf, ca); err == nil {
				t.Error("second check passed")
			}
			if h := srv.hits.Load(); h != 1 {
				t.Errorf("%d fetches, want 1", h)
			}
			if n := strings.Count(logs.String(), "CRL fetch failed"); n != 1 {
				t.Errorf("%d log lines, want 1:\n%s", n, logs)
			}
			if st := c.Stats(); st.Failures != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A stalled server: the caller's wait ends with its context, the fetch
// with the fetch timeout.
func TestSlowServer(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	srv.stall = true
	leaf := ca.leaf(t, "c", srv.url())
	c, _, done := newChecker(t, Options{Timeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Check(ctx, []*x509.Certificate{leaf, ca.cert})
	if err == nil || !strings.Contains(err.Error(), "no answer before the handshake's deadline") {
		t.Fatalf("err %v", err)
	}
	// The fetch itself gives up at its timeout.
	select {
	case ferr := <-done:
		if ferr == nil || !strings.Contains(ferr.Error(), "no complete answer within 500ms") {
			t.Errorf("fetch err %v", ferr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fetch never ended")
	}
	if err := check(c, leaf, ca); err == nil || !strings.Contains(err.Error(), "no complete answer within") {
		t.Errorf("next check: %v", err)
	}
}

func TestFailOpen(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, []byte("garbage"))
	leaf := ca.leaf(t, "c", srv.url())
	c, logs, done := newChecker(t, Options{FailOpen: true})
	for range 3 {
		if err := check(c, leaf, ca); err != nil {
			t.Fatalf("fail open refused: %v", err)
		}
	}
	<-done
	if n := strings.Count(logs.String(), "serving the clients it covers anyway (fail open)"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
}

// 50 distribution points cause at most MaxURLsPerCert fetches; file: and
// ldap: ones are ignored and logged once each.
func TestManyAndIgnoredURLs(t *testing.T) {
	ca := newTestCA(t, "CA")
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	dps := []string{"file:///etc/crl.pem", "ldap://ldap.test/cn=CA?certificateRevocationList"}
	for i := range 50 {
		dps = append(dps, fmt.Sprintf("%s/crl%d.pem", srv.URL, i))
	}
	leaf := ca.leaf(t, "c", dps...)
	c, logs, _ := newChecker(t, Options{})
	err := check(c, leaf, ca)
	if err == nil || !strings.Contains(err.Error(), "HTTP status 404") {
		t.Fatalf("err %v", err)
	}
	if h := hits.Load(); h != DefaultMaxURLsPerCert {
		t.Errorf("%d fetches, want %d", h, DefaultMaxURLsPerCert)
	}
	_ = check(c, leaf, ca)
	for _, u := range dps[:2] {
		if n := strings.Count(logs.String(), u); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", u, n, logs)
		}
	}
	// A certificate with only ignored URLs has no revocation information.
	if err := check(c, ca.leaf(t, "d", dps[:2]...), ca); err != nil {
		t.Errorf("ignored-only: %v", err)
	}
}

// The cache is bounded in URLs, and in flight.
func TestCacheBounds(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	srv.set(ca.crl(t, time.Hour))
	c, _, _ := newChecker(t, Options{MaxEntries: 5})
	for i := range 20 {
		leaf := ca.leaf(t, "c", fmt.Sprintf("%s/crl%d.pem", srv.URL, i))
		if err := check(c, leaf, ca); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Entries > 5 {
		t.Errorf("%d entries cached, want <= 5", st.Entries)
	}
	srv.hold = make(chan struct{})
	defer close(srv.hold)
	c2, _, _ := newChecker(t, Options{MaxInFlight: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var errs []error
	for i := range 4 {
		leaf := ca.leaf(t, "c", fmt.Sprintf("%s/x%d.pem", srv.URL, i))
		errs = append(errs, c2.Check(ctx, []*x509.Certificate{leaf, ca.cert}))
	}
	if err := errs[3]; err == nil || !strings.Contains(err.Error(), "fetches already in flight") {
		t.Errorf("4th URL: %v, want in-flight refusal", err)
	}
}

// A CRL is refetched once it reaches its nextUpdate: a revocation takes
// effect within one CRL period.
func TestRefresh(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	leaf := ca.leaf(t, "c", srv.url())
	srv.set(ca.crl(t, 2*time.Second))
	c, logs, done := newChecker(t, Options{})
	if err := check(c, leaf, ca); err != nil {
		t.Fatal(err)
	}
	<-done
	srv.set(ca.crl(t, time.Hour, leaf.SerialNumber))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, 100*time.Millisecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no refresh:\n%s", logs)
	}
	var rev *crl.RevokedError
	if err := check(c, leaf, ca); !errors.As(err, &rev) {
		t.Fatalf("after refresh: %v, want revoked", err)
	}
}

func TestOCSPHook(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	srv.set(ca.crl(t, time.Hour))
	leaf := ca.leaf(t, "c", srv.url())
	var answer Answer
	var ocspErr error
	c, _, _ := newChecker(t, Options{OCSP: func(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error) {
		return answer, ocspErr
	}})
	answer = Answer{Status: Revoked, Source: "OCSP, responder http://ocsp.test"}
	if err := check(c, leaf, ca); err == nil || !strings.Contains(err.Error(), "OCSP, responder http://ocsp.test") {
		t.Errorf("OCSP revoked: %v", err)
	}
	if srv.hits.Load() != 0 {
		t.Error("CRL fetched though OCSP answered")
	}
	answer, ocspErr = Answer{}, errors.New("responder down")
	if err := check(c, leaf, ca); err != nil {
		t.Errorf("OCSP down, CRL good: %v", err)
	}
	srv2 := newCRLServer(t, []byte("garbage"))
	leaf2 := ca.leaf(t, "d", srv2.url())
	err := check(c, leaf2, ca)
	if err == nil || !strings.HasPrefix(err.Error(), "revocation status unknown: OCSP failed: responder down; CRL fetch failed: ") {
		t.Errorf("both down: %v", err)
	}
}

// An OCSP source with no one to ask is no failure; OCSP alone (NoCRLs)
// fetches no CRL; failing open tells Unknown of each client served so.
func TestOCSPOnly(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	srv.set(ca.crl(t, time.Hour))
	leaf := ca.leaf(t, "c", srv.url())
	var ocspErr error
	var told []*UnknownError
	opts := Options{NoCRLs: true, OCSP: func(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error) {
		return Answer{}, ocspErr
	}}
	c, _, _ := newChecker(t, opts)
	ocspErr = ErrNotAsked
	if err := check(c, leaf, ca); err != nil {
		t.Errorf("no responder to ask: %v", err)
	}
	ocspErr = errors.New("responder down")
	err := check(c, leaf, ca)
	var ue *UnknownError
	if !errors.As(err, &ue) || ue.CRL != nil || ue.OCSP == nil {
		t.Errorf("OCSP down, CRLs off: %v", err)
	}
	if srv.hits.Load() != 0 {
		t.Error("a CRL was fetched with NoCRLs")
	}
	opts.FailOpen = true
	opts.Unknown = func(e *UnknownError) { told = append(told, e) }
	open, _, _ := newChecker(t, opts)
	if err := check(open, leaf, ca); err != nil || len(told) != 1 || told[0].OCSP == nil {
		t.Errorf("fail open: %v, told %v", err, told)
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 59 * time.Second: "59s", 2 * time.Minute: "2m", 3 * time.Hour: "3h", 72 * time.Hour: "3d"} {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParseFetched: whatever a CRL URL answers, ParseFetched returns a
// list or an error, never panics.
func FuzzParseFetched(f *testing.F) {
	ca := newTestCA(f, "CA")
	good := ca.crl(f, time.Hour, big.NewInt(1), big.NewInt(-5))
	b, _ := pem.Decode(good)
	f.Add(good)
	f.Add(b.Bytes)
	f.Add(good[:40])
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseFetched(data, ca.cert, time.Now())
		if err == nil && l == nil {
			t.Fatal("nil list without an error")
		}
	})
}

// sub issues an intermediate CA under ca naming the distribution points dps.
func (ca *testCA) sub(t testing.TB, cn string, dps ...string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x2000 + serialN.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: []byte(cn), CRLDistributionPoints: dps,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

// An intermediate is checked against its issuer's CRL, and the leaf
// against the intermediate's: each CRL verified against its own issuer.
func TestIntermediateRevoked(t *testing.T) {
	root := newTestCA(t, "Root")
	rootSrv := newCRLServer(t, nil)
	inter := root.sub(t, "Intermediate", rootSrv.url())
	interSrv := newCRLServer(t, inter.crl(t, time.Hour))
	leaf := inter.leaf(t, "c", interSrv.url())
	chain := []*x509.Certificate{leaf, inter.cert, root.cert}
	c, _, _ := newChecker(t, Options{})
	ctx := context.Background()

	rootSrv.set(root.crl(t, time.Hour))
	if err := c.Check(ctx, chain); err != nil {
		t.Fatalf("clean chain: %v", err)
	}
	c2, _, _ := newChecker(t, Options{})
	rootSrv.set(root.crl(t, time.Hour, inter.cert.SerialNumber))
	err := c2.Check(ctx, chain)
	var rev *crl.RevokedError
	if !errors.As(err, &rev) || rev.Serial.Cmp(inter.cert.SerialNumber) != 0 || !strings.Contains(err.Error(), rootSrv.url()) {
		t.Fatalf("revoked intermediate: %v", err)
	}
	// The root's CRL served for the intermediate's URL is signed by the
	// wrong issuer for the leaf.
	c3, _, _ := newChecker(t, Options{})
	interSrv.set(root.crl(t, time.Hour))
	rootSrv.set(root.crl(t, time.Hour))
	if err := c3.Check(ctx, chain); err == nil || !strings.Contains(err.Error(), "not signed by the certificate's issuer CN=Intermediate") {
		t.Fatalf("root CRL at the intermediate's URL: %v", err)
	}
}

// An expired CRL whose refetch fails is no answer: the client is refused
// (fail closed), never judged by the expired list.
func TestExpiredAndRefetchFails(t *testing.T) {
	ca := newTestCA(t, "CA")
	srv := newCRLServer(t, nil)
	leaf := ca.leaf(t, "c", srv.url())
	srv.set(ca.crl(t, time.Hour))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, _, _ := newChecker(t, Options{Now: clock})
	if err := check(c, leaf, ca); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	srv.set([]byte("garbage"))
	var unk *UnknownError
	if err := check(c, leaf, ca); !errors.As(err, &unk) {
		t.Fatalf("expired CRL, refetch failed: %v, want UnknownError", err)
	}
	if err := check(c, leaf, ca); !errors.As(err, &unk) {
		t.Fatalf("second check: %v, want UnknownError (remembered)", err)
	}
	if h := srv.hits.Load(); h != 2 {
		t.Errorf("%d fetches, want 2", h)
	}
}
