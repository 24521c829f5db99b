package tlsconf_test

import (
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/ocsp/ocsptest"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// TestOCSP: with Options.OCSP, a client certificate its responder calls
// revoked is refused at the handshake; one whose status cannot be had is
// refused, or served under RevocationFailOpen.
func TestOCSP(t *testing.T) {
	f := newFixture(t)
	r := &ocsptest.Responder{Issuer: f.ca.Certificate, Key: f.ca.Key, Validity: time.Hour}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	good := f.client(t, pki.ClientOptions{CommonName: "good", OCSPServer: []string{srv.URL}})
	revoked := f.client(t, pki.ClientOptions{CommonName: "revoked", OCSPServer: []string{srv.URL}})
	r.Revoke(revoked.Certificate.SerialNumber, time.Now().Add(-time.Minute))
	none := f.client(t, pki.ClientOptions{CommonName: "no responder"})
	opts := func(open bool, unknown func(*ocsp.UnknownError)) tlsconf.Options {
		o := f.opts(tlsconf.Require)
		o.OCSP = ocsp.New(ocsp.Options{RetryAfter: time.Nanosecond})
		o.RevocationFailOpen, o.RevocationUnknown = open, unknown
		return o
	}
	t.Run("good", func(t *testing.T) {
		dial(t, newSource(t, opts(false, nil)), f.clientConfig(good)).ok(t)
	})
	t.Run("no responder named", func(t *testing.T) {
		dial(t, newSource(t, opts(false, nil)), f.clientConfig(none)).ok(t)
	})
	t.Run("revoked", func(t *testing.T) {
		res := dial(t, newSource(t, opts(true, nil)), f.clientConfig(revoked))
		var re *ocsp.RevokedError
		if !errors.As(res.serverErr, &re) || re.Responder != srv.URL {
			t.Fatalf("server error %v, want *ocsp.RevokedError from %s", res.serverErr, srv.URL)
		}
	})
	t.Run("unknown fails closed", func(t *testing.T) {
		r.SetMode(ocsptest.Garbage)
		t.Cleanup(func() { r.SetMode(ocsptest.Normal) })
		res := dial(t, newSource(t, opts(false, nil)), f.clientConfig(good))
		var ue *ocsp.UnknownError
		if !errors.As(res.serverErr, &ue) || ue.Responder != srv.URL {
			t.Fatalf("server error %v, want *ocsp.UnknownError", res.serverErr)
		}
	})
	t.Run("unknown fails open", func(t *testing.T) {
		r.SetMode(ocsptest.Garbage)
		t.Cleanup(func() { r.SetMode(ocsptest.Normal) })
		var told []*ocsp.UnknownError
		dial(t, newSource(t, opts(true, func(e *ocsp.UnknownError) { told = append(told, e) })), f.clientConfig(good)).ok(t)
		if len(told) != 1 || told[0].Responder != srv.URL {
			t.Fatalf("RevocationUnknown told %v", told)
		}
	})
	t.Run("audit reports it", func(t *testing.T) {
		o := opts(false, nil)
		o.ClientAuth = tlsconf.Audit
		var re *ocsp.RevokedError
		if err := newSource(t, o).Verify([]*x509.Certificate{revoked.Certificate}); !errors.As(err, &re) {
			t.Fatalf("Verify = %v, want *ocsp.RevokedError", err)
		}
	})
}

// TestStaple: SetStaple staples a response to the certificate in service;
// a reload of the same certificate keeps it, and Changed says so.
func TestStaple(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, tlsconf.Options{CertFile: f.certFile, KeyFile: f.keyFile})
	leaf := src.Current().Cert.Certificate[0]
	now := time.Now()
	info := tlsconf.StapleInfo{ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	if src.SetStaple([]byte("another leaf"), []byte("staple"), info) {
		t.Fatal("stapled to a certificate not in service")
	}
	if !src.SetStaple(leaf, []byte("staple"), info) {
		t.Fatal("SetStaple refused the certificate in service")
	}
	res := dial(t, src, f.clientConfig(nil))
	res.ok(t)
	if got := string(res.clientState.OCSPResponse); got != "staple" {
		t.Fatalf("client got staple %q", got)
	}
	changed := src.Changed()
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by Reload")
	}
	if m := src.Current(); string(m.Cert.OCSPStaple) != "staple" || m.Staple != info {
		t.Fatalf("reload of the same certificate dropped its staple: %q %+v", m.Cert.OCSPStaple, m.Staple)
	}
	f.writeServer(t, pki.ServerOptions{})
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := src.Current(); m.Cert.OCSPStaple != nil || !m.Staple.NextUpdate.IsZero() {
		t.Fatal("a new certificate kept the old one's staple")
	}
	if src.SetStaple(leaf, []byte("staple"), info) {
		t.Fatal("stapled to the replaced certificate")
	}
	if res := dial(t, src, f.clientConfig(nil)); res.clientState.OCSPResponse != nil {
		t.Fatal("staple served for the new certificate")
	}
}
