package tlsconf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/tlsconf"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// fixture is a CA, a server certificate and a CRL, written to files.
type fixture struct {
	dir                                string
	ca, other                          *pki.CA
	server                             *pki.Cert
	certFile, keyFile, caFile, crlFile string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{
		dir:      dir,
		ca:       newCA(t, "Client CA"),
		other:    newCA(t, "Other CA"),
		certFile: filepath.Join(dir, "server.pem"),
		keyFile:  filepath.Join(dir, "server-key.pem"),
		caFile:   filepath.Join(dir, "ca.pem"),
		crlFile:  filepath.Join(dir, "ca.crl"),
	}
	f.server = f.writeServer(t, pki.ServerOptions{})
	writeFile(t, f.caFile, f.ca.CertPEM())
	f.writeCRL(t)
	return f
}

func newCA(t *testing.T, cn string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: cn})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeFile replaces path atomically (a new inode, as secret mounts do).
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeServer issues a server certificate and writes it over the
// fixture's certificate and key files.
func (f *fixture) writeServer(t *testing.T, opts pki.ServerOptions) *pki.Cert {
	t.Helper()
	c, err := f.ca.IssueServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(f.certFile, f.keyFile, true); err != nil {
		t.Fatal(err)
	}
	return c
}

// writeCRL writes the CA's CRL revoking the given certificates.
func (f *fixture) writeCRL(t *testing.T, revoked ...*pki.Cert) {
	t.Helper()
	var serials []*big.Int
	for _, c := range revoked {
		serials = append(serials, c.Certificate.SerialNumber)
	}
	data, err := f.ca.CRL(pki.CRLOptions{Revoked: serials})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.crlFile, data)
}

func (f *fixture) client(t *testing.T, opts pki.ClientOptions) *pki.Cert {
	t.Helper()
	c, err := f.ca.IssueClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) opts(mode tlsconf.ClientAuth) tlsconf.Options {
	return tlsconf.Options{
		CertFile: f.certFile, KeyFile: f.keyFile,
		ClientCAFiles: []string{f.caFile}, CRLFiles: []string{f.crlFile},
		ClientAuth: mode,
	}
}

func newSource(t *testing.T, opts tlsconf.Options) *tlsconf.Source {
	t.Helper()
	src, err := tlsconf.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

// clientConfig trusts the fixture's CA and always sends cert (none if nil),
// whatever CAs the server asks for.
func (f *fixture) clientConfig(cert *pki.Cert) *tls.Config {
	return &tls.Config{
		RootCAs:    f.ca.CertPool(),
		ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			tc := cert.TLSCertificate()
			return &tc, nil
		},
	}
}

// hangGuard bounds every wait for an event a test expects: far beyond what
// even a loaded machine needs, it only stops a broken test from hanging.
const hangGuard = 30 * time.Second

// result is the outcome of one handshake, seen from both sides.
type result struct {
	serverErr, clientErr     error
	serverState, clientState tls.ConnectionState
}

// dial runs one TLS handshake over loopback between a server using
// src.Config() and a client using ccfg. The server writes one byte after
// its handshake, which the client reads: in TLS 1.3 the server judges the
// client certificate after the client's handshake has returned.
func dial(t *testing.T, src *tlsconf.Source, ccfg *tls.Config) result {
	t.Helper()
	return dialCtx(t, context.Background(), src, ccfg)
}

// dialCtx is dial with the server's handshake under ctx.
func dialCtx(t *testing.T, ctx context.Context, src *tlsconf.Source, ccfg *tls.Config) result {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type side struct {
		err error
		st  tls.ConnectionState
	}
	srv := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- side{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(hangGuard))
		err = tc.HandshakeContext(ctx)
		if err == nil {
			_, err = tc.Write([]byte("x"))
		}
		srv <- side{err, tc.ConnectionState()}
	}()

	var r result
	d := &net.Dialer{Deadline: time.Now().Add(hangGuard)}
	cc, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), ccfg)
	if err == nil {
		_ = cc.SetDeadline(time.Now().Add(hangGuard))
		buf := make([]byte, 1)
		// ReadFull: the byte may come with the close_notify, as (1, EOF).
		if _, err = io.ReadFull(cc, buf); err == nil && buf[0] != 'x' {
			t.Errorf("client read %q", buf)
		}
		r.clientState = cc.ConnectionState()
		_ = cc.Close()
	}
	r.clientErr = err
	_ = ln.Close()
	select {
	case s := <-srv:
		r.serverErr, r.serverState = s.err, s.st
	case <-time.After(hangGuard):
		t.Fatal("server side did not finish")
	}
	return r
}

func (r result) ok(t *testing.T) {
	t.Helper()
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake failed: server %v; client %v", r.serverErr, r.clientErr)
	}
}

func (r result) failed(t *testing.T) {
	t.Helper()
	if r.serverErr == nil && r.clientErr == nil {
		t.Fatal("handshake succeeded")
	}
}

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint16 // 0: an error
	}{
		{"1.2", tls.VersionTLS12},
		{"1.3", tls.VersionTLS13},
		{"1.1", 0},
		{"1.0", 0},
		{"", 0},
		{"TLS 1.2", 0},
		{" 1.3", 0},
		{"1.4", 0},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := tlsconf.ParseVersion(tt.in)
			if tt.want == 0 {
				if want := `must be 1.2 or 1.3, got "` + tt.in + `"`; err == nil || err.Error() != want {
					t.Fatalf("ParseVersion(%q) = %#x, %v; want the error %q", tt.in, got, err, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
			}
			if name := tlsconf.VersionName(got); name != tt.in {
				t.Errorf("VersionName(%#x) = %q, want %q", got, name, tt.in)
			}
		})
	}
	if name := tlsconf.VersionName(tls.VersionTLS11); name != "0x0302" {
		t.Errorf("VersionName(TLS 1.1) = %q, want 0x0302", name)
	}
}

func TestParseClientAuth(t *testing.T) {
	tests := []struct {
		in      string
		want    tlsconf.ClientAuth
		wantErr bool
	}{
		{"none", tlsconf.NoClientCert, false},
		{"request", tlsconf.Request, false},
		{"verify-if-given", tlsconf.VerifyIfGiven, false},
		{"require", tlsconf.Require, false},
		{"audit", tlsconf.Audit, false},
		{"", 0, true},
		{"Require", 0, true},
		{"verify", 0, true},
		{" require", 0, true},
		{"required", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := tlsconf.ParseClientAuth(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseClientAuth(%q) = %v, want error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "must be request, verify-if-given, require or audit") ||
					!strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Errorf("error %q", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseClientAuth(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestNewFromFiles(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, f.opts(tlsconf.Require))
	m := src.Current()
	if m.Ephemeral {
		t.Error("Ephemeral with a certificate file")
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(f.server.Certificate) {
		t.Errorf("leaf %s, want the file's %s", leaf.Subject, f.server.Certificate.Subject)
	}
	if len(m.CAs) != 1 || !m.CAs[0].Equal(f.ca.Certificate) || m.Pool == nil {
		t.Errorf("CAs %v, pool %v", m.CAs, m.Pool)
	}
	if len(m.CRLs) != 1 || !m.CRLs[0].Issuer.Equal(f.ca.Certificate) {
		t.Errorf("CRLs %v", m.CRLs)
	}
	if got := src.Options(); got.MinVersion != tls.VersionTLS12 || got.Now == nil || got.ClientAuth != tlsconf.Require {
		t.Errorf("Options() = %+v", got)
	}
	if src.Config() == nil || src.Config().GetConfigForClient == nil {
		t.Error("Config() does not dispatch to the current material")
	}
	// A CA bundle: every certificate in it is a client CA; other PEM
	// blocks are skipped.
	bundle := append(append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
		f.ca.CertPEM()...), f.other.CertPEM()...)
	writeFile(t, f.caFile, bundle)
	src = newSource(t, f.opts(tlsconf.Require))
	if got := len(src.Current().CAs); got != 2 {
		t.Errorf("bundle gave %d CAs, want 2", got)
	}
}

func TestNewEphemeral(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	src := newSource(t, tlsconf.Options{Now: func() time.Time { return now }})
	m := src.Current()
	if !m.Ephemeral {
		t.Fatal("not Ephemeral without a certificate file")
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
		t.Errorf("DNS SANs %q, want [localhost]", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("IP SANs %q, want [127.0.0.1 ::1]", ips)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if key, ok := m.Cert.PrivateKey.(*ecdsa.PrivateKey); !ok || !key.PublicKey.Equal(pub) {
		t.Errorf("private key %T does not match the certificate", m.Cert.PrivateKey)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if !leaf.NotBefore.Equal(now.Add(-time.Hour)) || !leaf.NotAfter.Equal(now.Add(7*24*time.Hour)) {
		t.Errorf("validity %v to %v", leaf.NotBefore, leaf.NotAfter)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("EKU %v", leaf.ExtKeyUsage)
	}
	if len(m.CAs) != 0 || m.Pool != nil || len(m.CRLs) != 0 {
		t.Errorf("client CA material without files: %+v", m)
	}
	// A reload keeps the same ephemeral certificate.
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := src.Current(); got.Cert != m.Cert || !got.Ephemeral {
		t.Error("Reload replaced the ephemeral certificate")
	}
}

func TestEphemeralHandshake(t *testing.T) {
	src := newSource(t, tlsconf.Options{})
	leaf, err := tlsconf.Leaf(src.Current().Cert)
	if err != nil {
		t.Fatal(err)
	}
	// A client that pins the ephemeral certificate verifies each SAN.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(name, func(t *testing.T) {
			r := dial(t, src, &tls.Config{RootCAs: pool, ServerName: name})
			r.ok(t)
			if got := r.clientState.PeerCertificates[0]; !got.Equal(leaf) {
				t.Error("served another certificate")
			}
		})
	}
	t.Run("wrong name", func(t *testing.T) {
		dial(t, src, &tls.Config{RootCAs: pool, ServerName: "example.org"}).failed(t)
	})
}

// Options that break their documented rules are a programming error (a
// user's input is checked before it reaches tlsconf): New panics, and never
// serves below TLS 1.2.
func TestNewPanicsOnBrokenOptions(t *testing.T) {
	f := newFixture(t)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	for _, tt := range []struct {
		name string
		opts tlsconf.Options
		want string
	}{
		{"cert without key", tlsconf.Options{CertFile: f.certFile}, "CertFile and KeyFile go together"},
		{"key without cert", tlsconf.Options{KeyFile: f.keyFile}, "CertFile and KeyFile go together"},
		{"TLS 1.1", tlsconf.Options{MinVersion: tls.VersionTLS11}, "MinVersion 0x0302 is not TLS 1.2 or 1.3"},
		{"TLS 1.0", tlsconf.Options{MinVersion: tls.VersionTLS10}, "MinVersion 0x0301 is not TLS 1.2 or 1.3"},
		{"ACME challenges without a source", tlsconf.Options{ACMEChallenges: true}, "ACMEChallenges needs GetCertificate"},
		{"ACME challenges with a source", tlsconf.Options{ACMEChallenges: true, GetCertificate: getCert}, ""},
		{"explain without verification", tlsconf.Options{Explain: true, ClientAuth: tlsconf.Audit}, "Explain needs ClientAuth VerifyIfGiven or Require"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				switch msg, _ := r.(string); {
				case tt.want == "" && r != nil:
					t.Fatalf("New panicked: %v", r)
				case tt.want != "" && !strings.Contains(msg, tt.want):
					t.Fatalf("New panicked with %v, want a panic containing %q", r, tt.want)
				}
			}()
			_, _ = tlsconf.New(tt.opts)
		})
	}
}

func TestNewErrors(t *testing.T) {
	f := newFixture(t)
	other, err := f.ca.IssueServer(pki.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(f.dir, "other-key.pem")
	if err := other.WriteFiles(filepath.Join(f.dir, "other.pem"), otherKey, false); err != nil {
		t.Fatal(err)
	}
	file := func(name, data string) string {
		p := filepath.Join(f.dir, name)
		writeFile(t, p, []byte(data))
		return p
	}
	missing := filepath.Join(f.dir, "missing.pem")
	garbage := file("garbage.pem", "this is not PEM\n")
	brokenCert := file("broken-cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	otherCRL, err := f.other.CRL(pki.CRLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreignCRL := file("other.crl", string(otherCRL))

	tests := []struct {
		name    string
		edit    func(o *tlsconf.Options)
		wantErr []string // substrings
	}{
		{"missing cert", func(o *tlsconf.Options) { o.CertFile = missing },
			[]string{"load certificate", missing, "no such file"}},
		{"missing key", func(o *tlsconf.Options) { o.KeyFile = missing }, []string{"load certificate", missing}},
		{"key of another certificate", func(o *tlsconf.Options) { o.KeyFile = otherKey },
			[]string{"load certificate", f.certFile, otherKey, "private key does not match public key"}},
		{"cert file is garbage", func(o *tlsconf.Options) { o.CertFile = garbage }, []string{"load certificate", garbage}},
		{"missing CA", func(o *tlsconf.Options) { o.ClientCAFiles = []string{missing} },
			[]string{"load client CA", missing, "no such file"}},
		{"CA file without PEM", func(o *tlsconf.Options) { o.ClientCAFiles = []string{garbage} },
			[]string{"load client CA", garbage, "no PEM certificate found"}},
		{"CA file with a broken certificate", func(o *tlsconf.Options) { o.ClientCAFiles = []string{brokenCert} },
			[]string{"load client CA", brokenCert, "certificate 1"}},
		{"CA file is a CRL", func(o *tlsconf.Options) { o.ClientCAFiles = []string{f.crlFile} },
			[]string{"load client CA", "no PEM certificate found"}},
		{"missing CRL", func(o *tlsconf.Options) { o.CRLFiles = []string{missing} },
			[]string{"load CRL", missing, "no such file"}},
		{"CRL of another CA", func(o *tlsconf.Options) { o.CRLFiles = []string{foreignCRL} },
			[]string{"load CRL", foreignCRL, "CRL of CN=Other CA,O=seclisten development is not signed by any client CA"}},
		{"CRL without client CA", func(o *tlsconf.Options) { o.ClientCAFiles = nil },
			[]string{"load CRL", f.crlFile, "is not signed by any client CA"}},
		{"CRL file is garbage", func(o *tlsconf.Options) { o.CRLFiles = []string{garbage} },
			[]string{"load CRL", garbage, "parse CRL"}},
		{"CRL file is a certificate", func(o *tlsconf.Options) { o.CRLFiles = []string{f.caFile} },
			[]string{"load CRL", f.caFile, `PEM block "CERTIFICATE" is not an X509 CRL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.opts(tlsconf.Require)
			tt.edit(&opts)
			src, err := tlsconf.New(opts)
			if err == nil {
				t.Fatalf("New succeeded: %+v", src.Current())
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, f.opts(tlsconf.Require))
	before := src.Current()

	// Same files: new material, same certificate.
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if src.Current() == before {
		t.Error("Reload kept the old material")
	}

	// A new certificate is served after the reload.
	next := f.writeServer(t, pki.ServerOptions{Hosts: []string{"localhost", "next.example"}})
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	m := src.Current()
	if leaf, _ := tlsconf.Leaf(m.Cert); !leaf.Equal(next.Certificate) {
		t.Fatalf("after reload serving %v, want the new certificate", leaf.DNSNames)
	}
	if r := dial(t, src, f.clientConfig(nil)); r.clientErr == nil && !r.clientState.PeerCertificates[0].Equal(next.Certificate) {
		t.Fatal("not serving the reloaded certificate")
	}

	// A broken file: the error says why, the material stays.
	tests := []struct {
		name    string
		breakIt func(t *testing.T)
		want    string
	}{
		{"broken certificate", func(t *testing.T) { writeFile(t, f.certFile, []byte("garbage")) }, "load certificate"},
		{"missing key", func(t *testing.T) { _ = os.Remove(f.keyFile) }, "load certificate"},
		{"broken CA", func(t *testing.T) { writeFile(t, f.caFile, []byte("garbage")) }, "load client CA"},
		{"foreign CRL", func(t *testing.T) {
			data, err := f.other.CRL(pki.CRLOptions{})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, f.crlFile, data)
		}, "load CRL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := src.Current()
			tt.breakIt(t)
			err := src.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload = %v, want an error containing %q", err, tt.want)
			}
			if src.Current() != good {
				t.Fatal("Current() changed after a failed reload")
			}
			// The old material still serves.
			dial(t, src, f.clientConfig(f.client(t, pki.ClientOptions{}))).ok(t)
			// Repair for the next case.
			f.server = f.writeServer(t, pki.ServerOptions{})
			writeFile(t, f.caFile, f.ca.CertPEM())
			f.writeCRL(t)
			if err := src.Reload(); err != nil {
				t.Fatalf("Reload after repair: %v", err)
			}
		})
	}
}

func TestReloadServesNewCertificate(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, f.opts(tlsconf.NoClientCert))
	r := dial(t, src, f.clientConfig(nil))
	r.ok(t)
	if !r.clientState.PeerCertificates[0].Equal(f.server.Certificate) {
		t.Fatal("not serving the file's certificate")
	}
	next := f.writeServer(t, pki.ServerOptions{})
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	r = dial(t, src, f.clientConfig(nil))
	r.ok(t)
	if !r.clientState.PeerCertificates[0].Equal(next.Certificate) {
		t.Fatal("still serving the old certificate after Reload")
	}
}

// reports collects Watch's reports.
type reports chan error

func (r reports) report(err error) {
	select {
	case r <- err:
	default:
	}
}

// next waits for a report.
func (r reports) next(t *testing.T, timeout time.Duration) (error, bool) {
	t.Helper()
	select {
	case err := <-r:
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

func TestWatch(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, f.opts(tlsconf.Require))
	ctx, cancel := context.WithCancel(context.Background())
	rep := make(reports, 100)
	// Watch's looks at the files, in order (a tick every 50 ms for the
	// test's few seconds at most: far fewer than the buffer holds).
	looks := make(chan struct{}, 10_000)
	reset := tlsconf.SetWatchLookHook(func() {
		select {
		case looks <- struct{}{}:
		default:
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Watch(ctx, 50*time.Millisecond, rep.report)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
			reset()
		case <-time.After(hangGuard):
			t.Error("Watch did not return after cancel")
		}
	}()
	nextLook := func(what string) {
		t.Helper()
		select {
		case <-looks:
		case <-time.After(hangGuard):
			t.Fatalf("Watch took no look at the files (%s)", what)
		}
	}
	// Watch's first look is its baseline: changes from now on are seen.
	nextLook("the first")

	// A new certificate: reported as a successful reload. Writing the
	// certificate and the key is two steps, so a reload in between may
	// fail; a later one must succeed.
	old := src.Current()
	next := f.writeServer(t, pki.ServerOptions{})
	deadline := time.Now().Add(hangGuard)
	for {
		err, ok := rep.next(t, time.Until(deadline))
		if !ok {
			t.Fatal("no successful reload reported")
		}
		if err == nil {
			break
		}
	}
	m := src.Current()
	if m == old {
		t.Fatal("material unchanged after a reported reload")
	}
	if leaf, _ := tlsconf.Leaf(m.Cert); !leaf.Equal(next.Certificate) {
		t.Fatal("reloaded material does not hold the new certificate")
	}

	// A broken certificate: reported, and the material stays.
	writeFile(t, f.certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	err, ok := rep.next(t, hangGuard)
	if !ok {
		t.Fatal("broken certificate not reported")
	}
	if err == nil || !strings.Contains(err.Error(), "load certificate") {
		t.Fatalf("report %v, want a load error", err)
	}
	if src.Current() != m {
		t.Fatal("material changed after a failed reload")
	}
	// Untouched files: no reports. Of the next two looks, the second began
	// after the look that reported the broken file had ended: it saw the
	// files unchanged since, and any report it made came before its hook.
	for len(looks) > 0 {
		<-looks
	}
	nextLook("after the broken file")
	nextLook("of untouched files")
	select {
	case err := <-rep:
		t.Errorf("report %v without a change", err)
	default:
	}

	// A revocation in the CRL file applies once reloaded.
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	f.server = f.writeServer(t, pki.ServerOptions{})
	f.writeCRL(t, alice)
	deadline = time.Now().Add(hangGuard)
	for {
		err, ok := rep.next(t, time.Until(deadline))
		if !ok {
			t.Fatal("no successful reload after repair")
		}
		if err == nil && src.Current().CRLs[0].Len() == 1 {
			break
		}
	}
	r := dial(t, src, f.clientConfig(alice))
	var rev *crl.RevokedError
	if !errors.As(r.serverErr, &rev) {
		t.Fatalf("server error %v, want revoked", r.serverErr)
	}
}

func TestWatchNoFiles(t *testing.T) {
	src := newSource(t, tlsconf.Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Watch(context.Background(), 10*time.Millisecond, func(err error) { t.Errorf("report %v", err) })
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Watch without files did not return")
	}
}

func TestClientAuthModes(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice", OrganizationalUnits: []string{"eng"}})
	bob := f.client(t, pki.ClientOptions{CommonName: "bob"})
	revoked := f.client(t, pki.ClientOptions{CommonName: "mallory"})
	serverEKU := f.client(t, pki.ClientOptions{CommonName: "server-ish", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	stranger, err := f.other.IssueClient(pki.ClientOptions{CommonName: "eve"})
	if err != nil {
		t.Fatal(err)
	}
	expired := f.client(t, pki.ClientOptions{CommonName: "old", Validity: pki.Validity{
		NotBefore: time.Now().AddDate(0, 0, -30), NotAfter: time.Now().AddDate(0, 0, -3)}})
	f.writeCRL(t, revoked)

	type check func(t *testing.T, src *tlsconf.Source, r result)
	accepted := func(verified bool) check {
		return func(t *testing.T, _ *tlsconf.Source, r result) {
			t.Helper()
			r.ok(t)
			if got := len(r.serverState.VerifiedChains) > 0; got != verified {
				t.Errorf("verified chains %v, want %v", r.serverState.VerifiedChains, verified)
			}
		}
	}
	rejected := func(target any) check {
		return func(t *testing.T, _ *tlsconf.Source, r result) {
			t.Helper()
			r.failed(t)
			if r.clientErr == nil {
				t.Error("client saw no error")
			}
			var rej *tlsconf.Rejection
			if !errors.As(r.serverErr, &rej) {
				t.Fatalf("server error %v (%T), want a *tlsconf.Rejection", r.serverErr, r.serverErr)
			}
			if !errors.As(r.serverErr, target) {
				t.Fatalf("server error %v does not unwrap to %T", r.serverErr, target)
			}
			if rej.Error() != rej.Err.Error() || !errors.Is(rej, rej.Err) {
				t.Errorf("Rejection %q does not present its cause %q", rej, rej.Err)
			}
		}
	}
	refusedByTLS := func(substr string) check {
		return func(t *testing.T, _ *tlsconf.Source, r result) {
			t.Helper()
			r.failed(t)
			var rej *tlsconf.Rejection
			if errors.As(r.serverErr, &rej) {
				t.Errorf("crypto/tls refusal reported as a Rejection: %v", r.serverErr)
			}
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), substr) {
				t.Errorf("server error %v, want %q", r.serverErr, substr)
			}
		}
	}
	var (
		revokedErr    *crl.RevokedError
		notAllowedErr *identity.NotAllowedError
		verifyErr     *tls.CertificateVerificationError
	)
	noCert := func(t *testing.T, _ *tlsconf.Source, r result) {
		t.Helper()
		rejected(new(*tlsconf.Rejection))(t, nil, r)
		var rej *tlsconf.Rejection
		errors.As(r.serverErr, &rej)
		if !errors.Is(r.serverErr, verdict.ErrNoCertificate) || rej.Leaf != nil {
			t.Errorf("server error %v (leaf %v), want ErrNoCertificate", r.serverErr, rej.Leaf)
		}
	}
	allowAlice := identity.Allowlist{CN: []string{"alice"}}
	tests := []struct {
		name   string
		mode   tlsconf.ClientAuth
		allow  identity.Allowlist
		client *pki.Cert
		check  check
	}{
		{"require good", tlsconf.Require, identity.Allowlist{}, alice, accepted(true)},
		{"require good, allowed", tlsconf.Require, allowAlice, alice, accepted(true)},
		{"require revoked", tlsconf.Require, identity.Allowlist{}, revoked, func(t *testing.T, src *tlsconf.Source, r result) {
			rejected(&revokedErr)(t, src, r)
			var rej *tlsconf.Rejection
			errors.As(r.serverErr, &rej)
			if rej.Leaf == nil || !rej.Leaf.Equal(revoked.Certificate) {
				t.Errorf("Rejection.Leaf %v, want the revoked certificate", rej.Leaf)
			}
			if revokedErr.Serial.Cmp(revoked.Certificate.SerialNumber) != 0 {
				t.Errorf("revoked serial %x", revokedErr.Serial)
			}
		}},
		{"require allowlist miss", tlsconf.Require, allowAlice, bob, func(t *testing.T, src *tlsconf.Source, r result) {
			rejected(&notAllowedErr)(t, src, r)
			if got := notAllowedErr.Error(); got != "CN=bob is not in the allowed common names" {
				t.Errorf("error %q", got)
			}
		}},
		{"require OU allowlist", tlsconf.Require, identity.Allowlist{OU: []string{"eng"}}, alice, accepted(true)},
		{"require OU allowlist miss", tlsconf.Require, identity.Allowlist{OU: []string{"eng"}}, bob, rejected(&notAllowedErr)},
		{"require no certificate", tlsconf.Require, identity.Allowlist{}, nil, refusedByTLS("client didn't provide a certificate")},
		{"require unknown CA", tlsconf.Require, identity.Allowlist{}, stranger, func(t *testing.T, src *tlsconf.Source, r result) {
			refusedByTLS("certificate signed by unknown authority")(t, src, r)
			if !errors.As(r.serverErr, &verifyErr) {
				t.Errorf("server error %T, want *tls.CertificateVerificationError", r.serverErr)
			}
		}},
		{"require expired", tlsconf.Require, identity.Allowlist{}, expired, refusedByTLS("expired")},
		{"require server EKU", tlsconf.Require, identity.Allowlist{}, serverEKU, refusedByTLS("incompatible key usage")},

		{"verify-if-given no certificate", tlsconf.VerifyIfGiven, identity.Allowlist{}, nil, accepted(false)},
		{"verify-if-given no certificate, allowlist set", tlsconf.VerifyIfGiven, allowAlice, nil, noCert},
		{"verify-if-given good", tlsconf.VerifyIfGiven, allowAlice, alice, accepted(true)},
		{"verify-if-given revoked", tlsconf.VerifyIfGiven, identity.Allowlist{}, revoked, rejected(&revokedErr)},
		{"verify-if-given allowlist miss", tlsconf.VerifyIfGiven, allowAlice, bob, rejected(&notAllowedErr)},
		{"verify-if-given unknown CA", tlsconf.VerifyIfGiven, identity.Allowlist{}, stranger, refusedByTLS("unknown authority")},

		{"request unknown CA", tlsconf.Request, identity.Allowlist{}, stranger, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if len(r.serverState.PeerCertificates) != 1 || !r.serverState.PeerCertificates[0].Equal(stranger.Certificate) {
				t.Errorf("peer certificates %v", r.serverState.PeerCertificates)
			}
		}},
		{"request revoked not checked", tlsconf.Request, identity.Allowlist{}, revoked, accepted(false)},
		{"request no certificate", tlsconf.Request, identity.Allowlist{}, nil, accepted(false)},

		{"audit expired", tlsconf.Audit, identity.Allowlist{}, expired, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			err := src.Verify(r.serverState.PeerCertificates)
			var inv x509.CertificateInvalidError
			if !errors.As(err, &inv) || inv.Reason != x509.Expired {
				t.Errorf("Verify = %v, want an x509 Expired error", err)
			}
			if v := verdict.Explain(err, r.serverState.PeerCertificates[0], time.Now()); v.Code != outcome.Expired ||
				!strings.Contains(v.Text, "expired 3 days ago") {
				t.Errorf("verdict %+v", v)
			}
		}},
		{"audit good", tlsconf.Audit, identity.Allowlist{}, alice, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if err := src.Verify(r.serverState.PeerCertificates); err != nil {
				t.Errorf("Verify = %v", err)
			}
		}},
		{"audit revoked", tlsconf.Audit, identity.Allowlist{}, revoked, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if err := src.Verify(r.serverState.PeerCertificates); !errors.As(err, &revokedErr) {
				t.Errorf("Verify = %v, want revoked", err)
			}
		}},
		{"audit allowlist miss", tlsconf.Audit, allowAlice, bob, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if err := src.Verify(r.serverState.PeerCertificates); !errors.As(err, &notAllowedErr) {
				t.Errorf("Verify = %v, want not allowed", err)
			}
		}},
		{"audit unknown CA", tlsconf.Audit, identity.Allowlist{}, stranger, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			var ua x509.UnknownAuthorityError
			if err := src.Verify(r.serverState.PeerCertificates); !errors.As(err, &ua) {
				t.Errorf("Verify = %v, want unknown authority", err)
			}
		}},
		{"audit no certificate", tlsconf.Audit, identity.Allowlist{}, nil, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if err := src.Verify(r.serverState.PeerCertificates); !errors.Is(err, verdict.ErrNoCertificate) {
				t.Errorf("Verify = %v, want ErrNoCertificate", err)
			}
		}},

		{"none ignores certificates", tlsconf.NoClientCert, identity.Allowlist{}, alice, func(t *testing.T, src *tlsconf.Source, r result) {
			accepted(false)(t, src, r)
			if len(r.serverState.PeerCertificates) != 0 {
				t.Error("client certificate requested without client authentication")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.opts(tt.mode)
			opts.Allow = tt.allow
			src := newSource(t, opts)
			tt.check(t, src, dial(t, src, f.clientConfig(tt.client)))
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	serverEKU := f.client(t, pki.ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	stale, err := f.ca.CRL(pki.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	staleFile := filepath.Join(f.dir, "stale.crl")
	writeFile(t, staleFile, stale)

	tests := []struct {
		name  string
		opts  func() tlsconf.Options
		certs []*x509.Certificate
		check func(error) bool
	}{
		{"good", func() tlsconf.Options { return f.opts(tlsconf.Audit) }, []*x509.Certificate{alice.Certificate},
			func(err error) bool { return err == nil }},
		{"none", func() tlsconf.Options { return f.opts(tlsconf.Audit) }, nil,
			func(err error) bool { return errors.Is(err, verdict.ErrNoCertificate) }},
		{"wrong EKU", func() tlsconf.Options { return f.opts(tlsconf.Audit) }, []*x509.Certificate{serverEKU.Certificate},
			func(err error) bool {
				var inv x509.CertificateInvalidError
				return errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage
			}},
		{"stale CRL", func() tlsconf.Options {
			o := f.opts(tlsconf.Audit)
			o.CRLFiles = []string{staleFile}
			return o
		}, []*x509.Certificate{alice.Certificate}, func(err error) bool {
			var s *crl.StaleError
			return errors.As(err, &s)
		}},
		{"stale CRL allowed", func() tlsconf.Options {
			o := f.opts(tlsconf.Audit)
			o.CRLFiles, o.CRLAllowStale = []string{staleFile}, true
			return o
		}, []*x509.Certificate{alice.Certificate}, func(err error) bool { return err == nil }},
		{"clock in the future", func() tlsconf.Options {
			o := f.opts(tlsconf.Audit)
			o.Now = func() time.Time { return now.AddDate(2, 0, 0) }
			return o
		}, []*x509.Certificate{alice.Certificate}, func(err error) bool {
			var inv x509.CertificateInvalidError
			return errors.As(err, &inv) && inv.Reason == x509.Expired
		}},
		{"no client CA", func() tlsconf.Options {
			return tlsconf.Options{CertFile: f.certFile, KeyFile: f.keyFile, ClientAuth: tlsconf.Audit}
		}, []*x509.Certificate{alice.Certificate}, func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "no client CA configured")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, tt.opts())
			if err := src.Verify(tt.certs); !tt.check(err) {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

func TestStaleCRLHandshake(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	now := time.Now()
	data, err := f.ca.CRL(pki.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.crlFile, data)
	for _, allow := range []bool{false, true} {
		opts := f.opts(tlsconf.Require)
		opts.CRLAllowStale = allow
		r := dial(t, newSource(t, opts), f.clientConfig(alice))
		var st *crl.StaleError
		if allow {
			r.ok(t)
		} else if !errors.As(r.serverErr, &st) {
			t.Errorf("stale CRL: server error %v, want *crl.StaleError", r.serverErr)
		}
	}
}

func TestVersions(t *testing.T) {
	f := newFixture(t)
	rsaCert, err := f.ca.IssueServer(pki.ServerOptions{KeyType: pki.RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	rsaCertFile, rsaKeyFile := filepath.Join(f.dir, "rsa.pem"), filepath.Join(f.dir, "rsa-key.pem")
	if err := rsaCert.WriteFiles(rsaCertFile, rsaKeyFile, false); err != nil {
		t.Fatal(err)
	}
	ecdsaSrc := newSource(t, tlsconf.Options{CertFile: f.certFile, KeyFile: f.keyFile})
	rsaSrc := newSource(t, tlsconf.Options{CertFile: rsaCertFile, KeyFile: rsaKeyFile})
	tls13Src := newSource(t, tlsconf.Options{CertFile: f.certFile, KeyFile: f.keyFile, MinVersion: tls.VersionTLS13})
	client := func(edit func(c *tls.Config)) *tls.Config {
		c := f.clientConfig(nil)
		edit(c)
		return c
	}

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		r := dial(t, ecdsaSrc, client(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }))
		r.failed(t)
		if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "client offered only unsupported versions") {
			t.Errorf("server error %v", r.serverErr)
		}
	})
	t.Run("TLS 1.2 default client", func(t *testing.T) {
		r := dial(t, ecdsaSrc, client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }))
		r.ok(t)
		if r.serverState.Version != tls.VersionTLS12 || !slices.Contains(tlsconf.CipherSuites, r.serverState.CipherSuite) {
			t.Errorf("version %x suite %s", r.serverState.Version, tls.CipherSuiteName(r.serverState.CipherSuite))
		}
		if r.serverState.CurveID != tls.X25519 {
			t.Errorf("TLS 1.2 group %v, want X25519", r.serverState.CurveID)
		}
	})
	for _, suite := range tlsconf.CipherSuites {
		name := tls.CipherSuiteName(suite)
		t.Run("TLS 1.2 "+name, func(t *testing.T) {
			src := ecdsaSrc
			if strings.Contains(name, "_RSA_") {
				src = rsaSrc
			}
			r := dial(t, src, client(func(c *tls.Config) { c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{suite} }))
			r.ok(t)
			if r.clientState.CipherSuite != suite {
				t.Errorf("negotiated %s", tls.CipherSuiteName(r.clientState.CipherSuite))
			}
		})
	}
	// Everything crypto/tls still offers outside the six is refused: CBC
	// and RSA key exchange.
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA} {
		name := tls.CipherSuiteName(suite)
		t.Run("TLS 1.2 refused "+name, func(t *testing.T) {
			src := ecdsaSrc
			if strings.Contains(name, "_RSA_") {
				src = rsaSrc
			}
			r := dial(t, src, client(func(c *tls.Config) { c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{suite} }))
			r.failed(t)
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "no cipher suite supported") {
				t.Errorf("server error %v", r.serverErr)
			}
		})
	}
	t.Run("TLS 1.3 default client", func(t *testing.T) {
		r := dial(t, ecdsaSrc, f.clientConfig(nil))
		r.ok(t)
		if r.serverState.Version != tls.VersionTLS13 {
			t.Errorf("version %x", r.serverState.Version)
		}
		if r.serverState.CurveID != tls.X25519MLKEM768 || r.clientState.CurveID != tls.X25519MLKEM768 {
			t.Errorf("group %v / %v, want X25519MLKEM768", r.serverState.CurveID, r.clientState.CurveID)
		}
	})
	groups := []struct {
		offer []tls.CurveID
		want  tls.CurveID // 0: refused
	}{
		{[]tls.CurveID{tls.X25519}, tls.X25519},
		{[]tls.CurveID{tls.CurveP256}, tls.CurveP256},
		{[]tls.CurveID{tls.CurveP384}, tls.CurveP384},
		{[]tls.CurveID{tls.CurveP521}, 0},
		{[]tls.CurveID{tls.CurveP521, tls.CurveP384}, tls.CurveP384},
	}
	for _, g := range groups {
		t.Run("TLS 1.3 groups "+fmtCurves(g.offer), func(t *testing.T) {
			r := dial(t, ecdsaSrc, client(func(c *tls.Config) { c.CurvePreferences = g.offer }))
			if g.want == 0 {
				r.failed(t)
				return
			}
			r.ok(t)
			if r.serverState.CurveID != g.want {
				t.Errorf("group %v, want %v", r.serverState.CurveID, g.want)
			}
		})
	}
	t.Run("MinVersion TLS 1.3 refuses TLS 1.2", func(t *testing.T) {
		r := dial(t, tls13Src, client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }))
		r.failed(t)
		if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "unsupported versions") {
			t.Errorf("server error %v", r.serverErr)
		}
	})
	t.Run("MinVersion TLS 1.3 serves TLS 1.3", func(t *testing.T) {
		r := dial(t, tls13Src, f.clientConfig(nil))
		r.ok(t)
		if r.serverState.Version != tls.VersionTLS13 {
			t.Errorf("version %x", r.serverState.Version)
		}
	})
}

func fmtCurves(ids []tls.CurveID) string {
	var s []string
	for _, id := range ids {
		s = append(s, id.String())
	}
	return strings.Join(s, "+")
}

func TestALPN(t *testing.T) {
	f := newFixture(t)
	src := newSource(t, tlsconf.Options{CertFile: f.certFile, KeyFile: f.keyFile, ALPN: []string{"seclisten/1", "x"}})
	c := f.clientConfig(nil)
	c.NextProtos = []string{"x", "seclisten/1"}
	r := dial(t, src, c)
	r.ok(t)
	if r.serverState.NegotiatedProtocol != "seclisten/1" {
		t.Errorf("ALPN %q, want the server's first choice", r.serverState.NegotiatedProtocol)
	}
	c.NextProtos = []string{"h2"}
	dial(t, src, c).failed(t)
}

func TestResumptionAcrossReload(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	tests := []struct {
		name   string
		mode   tlsconf.ClientAuth
		client *pki.Cert
	}{
		{"no client auth", tlsconf.NoClientCert, nil},
		{"require", tlsconf.Require, alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.writeCRL(t)
			src := newSource(t, f.opts(tt.mode))
			ccfg := f.clientConfig(tt.client)
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)

			first := dial(t, src, ccfg)
			first.ok(t)
			if first.clientState.DidResume {
				t.Fatal("first connection resumed")
			}
			if err := src.Reload(); err != nil {
				t.Fatal(err)
			}
			second := dial(t, src, ccfg)
			second.ok(t)
			if !second.clientState.DidResume || !second.serverState.DidResume {
				t.Fatal("no resumption after Reload: ticket keys did not survive")
			}
			if tt.client == nil {
				return
			}
			// A revocation loaded by a reload applies to resumed sessions
			// too.
			if len(second.serverState.VerifiedChains) == 0 {
				t.Error("resumed session lost its verified chain")
			}
			f.writeCRL(t, tt.client)
			if err := src.Reload(); err != nil {
				t.Fatal(err)
			}
			third := dial(t, src, ccfg)
			var rev *crl.RevokedError
			if !errors.As(third.serverErr, &rev) {
				t.Fatalf("after revocation: server error %v, want revoked", third.serverErr)
			}
		})
	}
}

// With Explain, every client completes the handshake, and Judge refuses
// after it what the mode refuses, on resumed handshakes too: a revocation
// loaded by a reload applies to a session resumed from a ticket issued
// before it.
func TestExplainJudge(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	expired := f.client(t, pki.ClientOptions{CommonName: "old", Validity: pki.Validity{
		NotBefore: time.Now().AddDate(0, 0, -30), NotAfter: time.Now().AddDate(0, 0, -3)}})
	for _, tt := range []struct {
		name   string
		mode   tlsconf.ClientAuth
		client *pki.Cert
		want   string // in Judge's error; "" when accepted
	}{
		{"require, good", tlsconf.Require, alice, ""},
		{"require, none", tlsconf.Require, nil, "no client certificate sent"},
		{"require, expired", tlsconf.Require, expired, "expired"},
		{"verify-if-given, none", tlsconf.VerifyIfGiven, nil, ""},
		{"verify-if-given, expired", tlsconf.VerifyIfGiven, expired, "expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.opts(tt.mode)
			opts.Explain = true
			src := newSource(t, opts)
			r := dial(t, src, f.clientConfig(tt.client))
			r.ok(t)
			err := src.Judge(r.serverState.PeerCertificates)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Judge: %v, want accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Judge: %v, want %q", err, tt.want)
			}
			var rej *tlsconf.Rejection
			if err != nil && (!errors.As(err, &rej) || (tt.client != nil && rej.Leaf == nil)) {
				t.Errorf("Judge: %#v, want a *Rejection naming the leaf", err)
			}
		})
	}

	t.Run("resumed after a revocation", func(t *testing.T) {
		f.writeCRL(t)
		opts := f.opts(tlsconf.Require)
		opts.Explain = true
		src := newSource(t, opts)
		ccfg := f.clientConfig(alice)
		ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
		first := dial(t, src, ccfg)
		first.ok(t)
		if err := src.Judge(first.serverState.PeerCertificates); err != nil {
			t.Fatalf("Judge: %v", err)
		}
		f.writeCRL(t, alice)
		if err := src.Reload(); err != nil {
			t.Fatal(err)
		}
		second := dial(t, src, ccfg)
		second.ok(t)
		if !second.serverState.DidResume {
			t.Fatal("not resumed")
		}
		var rev *crl.RevokedError
		if err := src.Judge(second.serverState.PeerCertificates); !errors.As(err, &rev) {
			t.Fatalf("Judge on the resumed session: %v, want revoked", err)
		}
	})

	t.Run("names the client CAs", func(t *testing.T) {
		opts := f.opts(tlsconf.Require)
		opts.Explain = true
		names := newSource(t, opts).ClientCANames()
		if len(names) != 1 || !strings.Contains(names[0], "CN=Client CA") {
			t.Errorf("ClientCANames = %q", names)
		}
	})
}

func TestLeaf(t *testing.T) {
	ca := newCA(t, "Leaf CA")
	c, err := ca.IssueServer(pki.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tc := c.TLSCertificate()
	noLeaf := tls.Certificate{Certificate: tc.Certificate, PrivateKey: tc.PrivateKey}
	tests := []struct {
		name    string
		cert    *tls.Certificate
		wantErr bool
	}{
		{"parsed", &tc, false},
		{"unparsed", &noLeaf, false},
		{"empty", &tls.Certificate{}, true},
		{"garbage", &tls.Certificate{Certificate: [][]byte{[]byte("garbage")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := tlsconf.Leaf(tt.cert)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || !leaf.Equal(c.Certificate) {
				t.Fatalf("Leaf = %v, %v", leaf, err)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	// Mozilla intermediate v6.0: six ECDHE AEAD suites, hybrid PQ first.
	for _, s := range tlsconf.CipherSuites {
		name := tls.CipherSuiteName(s)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || strings.Contains(name, "CBC") {
			t.Errorf("suite %s", name)
		}
	}
	if len(tlsconf.CipherSuites) != 6 {
		t.Errorf("%d suites", len(tlsconf.CipherSuites))
	}
	want := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
	if !slices.Equal(tlsconf.CurvePreferences, want) {
		t.Errorf("CurvePreferences %v, want %v", tlsconf.CurvePreferences, want)
	}
}

// recorder is a connection that keeps the ClientHello recorded for it.
type recorder struct {
	net.Conn
	hello  *clienthello.Hello
	server *tls.Config
}

func (r *recorder) RecordHello(h *clienthello.Hello, server *tls.Config) {
	r.hello, r.server = h, server
}

// TestConfigForClientRecords checks that every ClientHello is recorded
// with the configuration chosen for it, and that a server name that is
// not a host name is refused.
func TestConfigForClientRecords(t *testing.T) {
	src := newSource(t, tlsconf.Options{})
	for _, tt := range []struct {
		name, sni string
		refused   bool
	}{
		{"no server name", "", false},
		{"host name", "example.com", false},
		{"escape bytes", strings.Repeat("\x1b", 60000), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			cfg, err := src.Config().GetConfigForClient(&tls.ClientHelloInfo{ServerName: tt.sni, Conn: r,
				SupportedVersions: []uint16{tls.VersionTLS13}})
			if r.hello == nil || r.server == nil || !strings.HasPrefix(r.hello.JA4, "t13") {
				t.Fatalf("recorded %+v with %v", r.hello, r.server)
			}
			if tt.refused {
				if cfg != nil || !errors.Is(err, clienthello.ErrServerName) {
					t.Fatalf("GetConfigForClient = %v, %v; want ErrServerName", cfg, err)
				}
				return
			}
			if err != nil || cfg != r.server {
				t.Fatalf("GetConfigForClient = %v, %v; want the recorded config", cfg, err)
			}
		})
	}
}

// revoker is a tlsconf.Revoker that refuses everyone and records the
// value of ctxKey in the context it was given.
type revoker struct {
	mu  sync.Mutex
	got []any
}

type ctxKey struct{}

var errRevokedByHook = errors.New("revoked by the hook")

func (r *revoker) Check(ctx context.Context, chain []*x509.Certificate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ctx.Value(ctxKey{}))
	return errRevokedByHook
}

// Options.Revocation runs on every path that judges a chain, with the
// handshake's context (so a fetch is bounded by the handshake), or the one
// given to VerifyContext and JudgeContext.
func TestRevocationHook(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	ctx := context.WithValue(context.Background(), ctxKey{}, "handshake")
	for _, hide := range []bool{false, true} {
		rev := &revoker{}
		opts := f.opts(tlsconf.Require)
		opts.HideCANames, opts.Revocation = hide, rev
		r := dialCtx(t, ctx, newSource(t, opts), f.clientConfig(alice))
		if !errors.Is(r.serverErr, errRevokedByHook) {
			t.Errorf("hide=%v: server error %v, want the hook's", hide, r.serverErr)
		}
		if len(rev.got) != 1 || rev.got[0] != "handshake" {
			t.Errorf("hide=%v: hook saw contexts %v, want the handshake's", hide, rev.got)
		}
	}
	rev := &revoker{}
	opts := f.opts(tlsconf.Require)
	opts.Explain, opts.Revocation = true, rev
	src := newSource(t, opts)
	r := dialCtx(t, ctx, src, f.clientConfig(alice))
	r.ok(t) // Explain: judged after the handshake
	jctx := context.WithValue(context.Background(), ctxKey{}, "judge")
	if err := src.JudgeContext(jctx, []*x509.Certificate{alice.Certificate}); !errors.Is(err, errRevokedByHook) {
		t.Errorf("JudgeContext = %v, want the hook's error", err)
	}
	if err := src.VerifyContext(jctx, []*x509.Certificate{alice.Certificate}); !errors.Is(err, errRevokedByHook) {
		t.Errorf("VerifyContext = %v, want the hook's error", err)
	}
	if len(rev.got) != 2 || rev.got[0] != "judge" || rev.got[1] != "judge" {
		t.Errorf("hook saw contexts %v, want judge twice", rev.got)
	}
}

// Update puts new options in service with their material, at once; options
// whose files do not load change nothing.
func TestUpdate(t *testing.T) {
	f := newFixture(t)
	alice := f.client(t, pki.ClientOptions{CommonName: "alice"})
	opts := f.opts(tlsconf.Require)
	opts.Allow.CN = []string{"bob"}
	src := newSource(t, opts)
	if err := src.Verify([]*x509.Certificate{alice.Certificate}); err == nil {
		t.Fatal("alice verified under allow-cn bob")
	}
	opts.Allow.CN = []string{"bob", "alice"}
	if err := src.Update(opts); err != nil {
		t.Fatal(err)
	}
	if err := src.Verify([]*x509.Certificate{alice.Certificate}); err != nil {
		t.Errorf("alice refused after the update: %v", err)
	}
	if got := src.Options().Allow.CN; len(got) != 2 {
		t.Errorf("Options().Allow.CN = %q after the update", got)
	}

	broken := opts
	broken.Allow.CN = nil
	broken.ClientCAFiles = []string{filepath.Join(f.dir, "missing.pem")}
	if err := src.Update(broken); err == nil {
		t.Fatal("Update with a missing CA file: no error")
	}
	if got := src.Options().Allow.CN; len(got) != 2 {
		t.Errorf("a failed update changed the options: allow-cn %q", got)
	}
}
