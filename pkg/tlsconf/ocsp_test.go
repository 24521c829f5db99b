package tlsconf_test

import (
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

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
