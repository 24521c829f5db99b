package ocsp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/ocsp/ocsptest"
)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64 = 100

func issue(t testing.TB, parent *ca, tmpl *x509.Certificate) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{c, key}
}

func newCA(t testing.TB, name string) *ca {
	return issue(t, nil, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature})
}

func leaf(t testing.TB, issuer *ca, urls ...string) *x509.Certificate {
	return issue(t, issuer, &x509.Certificate{Subject: pkix.Name{CommonName: "client"}, OCSPServer: urls,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).cert
}

// responder serves r on loopback and returns its URL.
func responder(t *testing.T, r http.Handler) string {
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCheck(t *testing.T) {
	root := newCA(t, "Client CA")
	other := newCA(t, "Other CA")
	for _, tc := range []struct {
		name   string
		mode   ocsptest.Mode
		revoke bool
		status ocsp.Status
		err    string
	}{
		{"good", ocsptest.Normal, false, ocsp.Good, ""},
		{"revoked", ocsptest.Normal, true, ocsp.Revoked, ""},
		{"garbage", ocsptest.Garbage, false, 0, "bad response: not a DER-encoded OCSP response (29 bytes)"},
		{"old", ocsptest.Old, false, 0, "old response: its nextUpdate"},
		{"other serial", ocsptest.OtherSerial, false, 0, "no response matching the supplied certificate"},
		{"wrong key", ocsptest.WrongKey, false, 0, "response not signed by the issuer CN=Client CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &ocsptest.Responder{Issuer: root.cert, Key: root.key, Validity: time.Hour}
			r.SetMode(tc.mode)
			url := responder(t, r)
			cert := leaf(t, root, url)
			if tc.revoke {
				r.Revoke(cert.SerialNumber, time.Now().Add(-time.Minute))
			}
			c := ocsp.New(ocsp.Options{})
			a, err := c.Check(context.Background(), cert, root.cert)
			if tc.err != "" {
				var e *ocsp.Error
				if !errors.As(err, &e) || e.Responder != url || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want an *ocsp.Error from %s containing %q", err, url, tc.err)
				}
				return
			}
			if err != nil || a.Status != tc.status || a.Responder != url {
				t.Fatalf("Check = %+v, %v; want %v from %s", a, err, tc.status, url)
			}
			if tc.revoke && (a.RevokedAt.IsZero() || a.Reason != xocsp.KeyCompromise) {
				t.Fatalf("revoked answer without time or reason: %+v", a)
			}
		})
	}
	t.Run("issuer mismatch", func(t *testing.T) {
		// A response signed by another CA for a certificate of root.
		r := &ocsptest.Responder{Issuer: other.cert, Key: other.key, Validity: time.Hour}
		cert := leaf(t, root, responder(t, r))
		_, err := ocsp.New(ocsp.Options{}).Check(context.Background(), cert, root.cert)
		if err == nil || !strings.Contains(err.Error(), "not signed by the issuer") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDelegatedResponder(t *testing.T) {
	root := newCA(t, "Client CA")
	for _, tc := range []struct {
		name string
		eku  []x509.ExtKeyUsage
		err  string
	}{
		{"ocsp signing", []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, ""},
		{"no ocsp signing", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, "not an OCSP responder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delegate := issue(t, root, &x509.Certificate{Subject: pkix.Name{CommonName: "OCSP"}, ExtKeyUsage: tc.eku})
			cert := leaf(t, root, "http://127.0.0.1:1/")
			now := time.Now()
			der, err := xocsp.CreateResponse(root.cert, delegate.cert, xocsp.Response{Status: xocsp.Good,
				SerialNumber: cert.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Certificate: delegate.cert}, delegate.key)
			if err != nil {
				t.Fatal(err)
			}
			a, err := ocsp.Verify(der, cert, root.cert, now, time.Minute, time.Hour)
			if tc.err == "" && (err != nil || a.Status != ocsp.Good) {
				t.Fatalf("Verify = %+v, %v", a, err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestVerifyTimes(t *testing.T) {
	root := newCA(t, "Client CA")
	cert := leaf(t, root, "http://127.0.0.1:1/")
	now := time.Now().Truncate(time.Second)
	for _, tc := range []struct {
		name       string
		this, next time.Time
		err        string
	}{
		{"fresh", now.Add(-time.Minute), now.Add(time.Hour), ""},
		{"future", now.Add(time.Hour), now.Add(2 * time.Hour), "response from the future"},
		{"expired", now.Add(-2 * time.Hour), now.Add(-time.Hour), "old response"},
		{"no next update, recent", now.Add(-time.Minute), time.Time{}, ""},
		{"no next update, old", now.Add(-2 * time.Hour), time.Time{}, "old response"},
		{"next before this", now.Add(-time.Minute), now.Add(-2 * time.Minute), "nextUpdate before thisUpdate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := xocsp.CreateResponse(root.cert, root.cert, xocsp.Response{Status: xocsp.Good,
				SerialNumber: cert.SerialNumber, ThisUpdate: tc.this, NextUpdate: tc.next}, root.key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ocsp.Verify(der, cert, root.cert, now, 0, time.Hour)
			if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestBadResponders: each failure is an *ocsp.Error naming the responder,
// within the fetch timeout.
func TestBadResponders(t *testing.T) {
	root := newCA(t, "Client CA")
	t.Run("no answer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var conns []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c) // accepted, never answered
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		cert := leaf(t, root, "http://"+ln.Addr().String()+"/")
		start := time.Now()
		_, err = ocsp.New(ocsp.Options{Timeout: 300 * time.Millisecond}).Check(context.Background(), cert, root.cert)
		if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the fetch took %s despite a 300ms timeout", d)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cert := leaf(t, root, "http://"+addr+"/")
		_, err = ocsp.New(ocsp.Options{}).Check(context.Background(), cert, root.cert)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("huge", func(t *testing.T) {
		url := responder(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(make([]byte, 1<<20))
		}))
		cert := leaf(t, root, url)
		_, err := ocsp.New(ocsp.Options{MaxResponse: 1000}).Check(context.Background(), cert, root.cert)
		if err == nil || !strings.Contains(err.Error(), "response larger than 1000 bytes") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("HTTP error", func(t *testing.T) {
		url := responder(t, http.NotFoundHandler())
		_, err := ocsp.New(ocsp.Options{}).Check(context.Background(), leaf(t, root, url), root.cert)
		if err == nil || !strings.Contains(err.Error(), "HTTP status 404") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		url := responder(t, http.RedirectHandler("http://127.0.0.1:1/", http.StatusFound))
		_, err := ocsp.New(ocsp.Options{}).Check(context.Background(), leaf(t, root, url), root.cert)
		if err == nil || !strings.Contains(err.Error(), "HTTP status 302") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no http responder", func(t *testing.T) {
		for _, urls := range [][]string{nil, {"ldap://ca.test/"}, {"https://ca.test/"}, {"file:///etc/passwd"}} {
			_, err := ocsp.New(ocsp.Options{}).Check(context.Background(), leaf(t, root, urls...), root.cert)
			if !errors.Is(err, ocsp.ErrNoResponder) {
				t.Fatalf("%v: err = %v", urls, err)
			}
		}
	})
}

func TestResponderChoice(t *testing.T) {
	root := newCA(t, "Client CA")
	cert := leaf(t, root, "ldap://ca.test/", "http://a.test/", "http://b.test/")
	if got := ocsp.Responder(cert); got != "http://a.test/" {
		t.Fatalf("Responder = %q", got)
	}
}

// TestCacheAndFlight: answers are cached until nextUpdate; concurrent
// checks of one certificate cause one fetch.
func TestCacheAndFlight(t *testing.T) {
	root := newCA(t, "Client CA")
	r := &ocsptest.Responder{Issuer: root.cert, Key: root.key, Validity: time.Hour}
	url := responder(t, r)
	cert := leaf(t, root, url)
	now := time.Now()
	clock := func() time.Time { return now }
	var mu sync.Mutex
	c := ocsp.New(ocsp.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock() }})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if a, err := c.Check(context.Background(), cert, root.cert); err != nil || a.Status != ocsp.Good {
				t.Errorf("Check = %+v, %v", a, err)
			}
		})
	}
	wg.Wait()
	if n := r.Requests.Load(); n != 1 {
		t.Fatalf("%d requests for 50 concurrent checks of one certificate, want 1", n)
	}
	// Revoked at the responder: the cache still says good until nextUpdate.
	r.Revoke(cert.SerialNumber, now)
	if a, _ := c.Check(context.Background(), cert, root.cert); a.Status != ocsp.Good {
		t.Fatalf("cached answer = %v, want good", a.Status)
	}
	mu.Lock()
	clock = func() time.Time { return now.Add(time.Hour + time.Second) }
	mu.Unlock()
	if a, err := c.Check(context.Background(), cert, root.cert); err != nil || a.Status != ocsp.Revoked {
		t.Fatalf("after nextUpdate: %+v, %v; want revoked", a, err)
	}
	if g, rv, u, e := c.Results(); g != 51 || rv != 1 || u != 0 || e != 0 || c.Len() != 1 {
		t.Fatalf("results %d/%d/%d/%d, cache %d", g, rv, u, e, c.Len())
	}
}

func TestCacheBounded(t *testing.T) {
	root := newCA(t, "Client CA")
	r := &ocsptest.Responder{Issuer: root.cert, Key: root.key, Validity: time.Hour}
	url := responder(t, r)
	c := ocsp.New(ocsp.Options{MaxEntries: 5})
	for range 20 {
		if _, err := c.Check(context.Background(), leaf(t, root, url), root.cert); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 5 {
		t.Fatalf("cache holds %d answers, want the bound 5", n)
	}
}

// TestRetryAfter: a failed responder is not asked again for RetryAfter;
// checks fail at once with its last error.
func TestRetryAfter(t *testing.T) {
	root := newCA(t, "Client CA")
	r := &ocsptest.Responder{Issuer: root.cert, Key: root.key, Validity: time.Hour}
	r.SetMode(ocsptest.Garbage)
	url := responder(t, r)
	c := ocsp.New(ocsp.Options{RetryAfter: time.Hour})
	for range 10 {
		_, err := c.Check(context.Background(), leaf(t, root, url), root.cert)
		if err == nil || !strings.Contains(err.Error(), "bad response") {
			t.Fatalf("err = %v", err)
		}
	}
	if n := r.Requests.Load(); n != 1 {
		t.Fatalf("%d requests to a failing responder, want 1", n)
	}
	if _, _, _, e := c.Results(); e != 10 {
		t.Fatalf("%d errors counted, want 10", e)
	}
}

func TestJudge(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := ocsp.Judge(ocsp.Answer{Status: ocsp.Revoked, Responder: "http://ca.test/ocsp", RevokedAt: at}, nil)
	if want := "revoked (OCSP, responder http://ca.test/ocsp, at 2026-01-02T03:04:05Z)"; err == nil || err.Error() != want {
		t.Fatalf("revoked: %v, want %q", err, want)
	}
	if err := ocsp.Judge(ocsp.Answer{Status: ocsp.Good}, nil); err != nil {
		t.Fatal(err)
	}
	err = ocsp.Judge(ocsp.Answer{Status: ocsp.Unknown, Responder: "http://ca.test/ocsp"}, nil)
	if want := "revocation status unknown: OCSP failed: responder http://ca.test/ocsp does not know the certificate (status unknown)"; err == nil || err.Error() != want {
		t.Fatalf("unknown: %v", err)
	}
	err = ocsp.Judge(ocsp.Answer{}, &ocsp.Error{Responder: "http://ca.test/ocsp", Err: errors.New("no answer within 5s")})
	var u *ocsp.UnknownError
	if !errors.As(err, &u) || u.Responder != "http://ca.test/ocsp" ||
		err.Error() != "revocation status unknown: OCSP failed: responder http://ca.test/ocsp: no answer within 5s" {
		t.Fatalf("failed: %v", err)
	}
}

// TestNoLeak: failed fetches leave no goroutine behind.
func TestNoLeak(t *testing.T) {
	root := newCA(t, "Client CA")
	r := &ocsptest.Responder{Issuer: root.cert, Key: root.key}
	r.SetMode(ocsptest.Hang)
	srv := httptest.NewServer(r)
	before := runtime.NumGoroutine()
	c := ocsp.New(ocsp.Options{Timeout: 100 * time.Millisecond, RetryAfter: time.Nanosecond})
	for range 5 {
		if _, err := c.Check(context.Background(), leaf(t, root, srv.URL), root.cert); err == nil {
			t.Fatal("a hanging responder gave an answer")
		}
	}
	srv.CloseClientConnections()
	srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
		}
		runtime.Gosched()
	}
}
