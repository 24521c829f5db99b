package pki

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// initFiles are the files Init writes, in the order it writes them.
var initFiles = []string{
	"ca.pem", "ca-key.pem",
	"server.pem", "server-key.pem",
	"client.pem", "client-key.pem",
	"client-expired.pem", "client-expired-key.pem",
	"client-not-yet-valid.pem", "client-not-yet-valid-key.pem",
	"client-unknown-ca.pem", "client-unknown-ca-key.pem",
	"client-wrong-eku.pem", "client-wrong-eku-key.pem",
	"client-revoked.pem", "client-revoked-key.pem",
	"other-ca.pem", "other-ca-key.pem",
	"crl.pem",
	"FILES.md",
}

var keyTypes = []KeyType{ECDSAP256, RSA2048, Ed25519}

func TestParseKeyType(t *testing.T) {
	tests := []struct {
		in      string
		want    KeyType
		wantErr bool
	}{
		{"ecdsa-p256", ECDSAP256, false},
		{"rsa2048", RSA2048, false},
		{"ed25519", Ed25519, false},
		{"ECDSA-P256", ECDSAP256, false},
		{"", 0, true},
		{"rsa", 0, true},
		{"ecdsa", 0, true},
		{"rsa4096", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeyType(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKeyType(%q) = %v, want error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "ecdsa-p256, rsa2048, ed25519") {
					t.Errorf("error %q does not list the valid key types", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKeyType(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != strings.ToLower(tt.in) {
				t.Errorf("String() = %q, want %q", got.String(), strings.ToLower(tt.in))
			}
		})
	}
	if s := KeyType(42).String(); s != "KeyType(42)" {
		t.Errorf("KeyType(42).String() = %q", s)
	}
}

// TestInit makes one PKI per key type and checks it from every side: files
// and modes, x509 verification of each certificate, the CRL, OpenSSL's view
// and real TLS handshakes.
func TestInit(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt.String(), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "new", "certs") // Init creates it
			res, err := Init(dir, InitOptions{KeyType: kt})
			if err != nil {
				t.Fatalf("Init: %v", err)
			}
			t.Run("files", func(t *testing.T) { checkInitFiles(t, dir, res) })
			t.Run("verify", func(t *testing.T) { checkInitVerify(t, dir, kt) })
			t.Run("crl", func(t *testing.T) { checkInitCRL(t, dir) })
			t.Run("openssl", func(t *testing.T) { checkInitOpenSSL(t, dir) })
			t.Run("handshake", func(t *testing.T) { checkInitHandshake(t, dir) })
		})
	}
}

func checkInitFiles(t *testing.T, dir string, res *InitResult) {
	if res.Dir != dir {
		t.Errorf("result Dir = %q, want %q", res.Dir, dir)
	}
	var want []string
	for _, name := range initFiles {
		want = append(want, filepath.Join(dir, name))
	}
	if !slices.Equal(res.Files, want) {
		t.Errorf("result Files =\n%q\nwant\n%q", res.Files, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, slices.Sorted(slices.Values(initFiles))) {
		t.Errorf("directory holds %q, want exactly %q (temporary files left behind?)", got, initFiles)
	}
	for _, name := range initFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		wantMode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "-key.pem") {
			wantMode = 0o600
		}
		if fi.Mode() != wantMode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), wantMode)
		}
	}
	readme, err := os.ReadFile(filepath.Join(dir, "FILES.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range initFiles {
		if !strings.HasSuffix(name, "-key.pem") && !bytes.Contains(readme, []byte(name)) {
			t.Errorf("FILES.md does not mention %s", name)
		}
	}
	for _, s := range []string{
		"openssl s_client -connect 127.0.0.1:8443 -CAfile ca.pem -cert client.pem -key client-key.pem",
		"-cert client-expired.pem -key client-expired-key.pem",
		"rejected: client certificate expired",
		"rejected: client certificate not yet valid",
		"rejected: signed by an unknown authority",
		"rejected: certificate lacks clientAuth extended key usage",
		"revoked (serial 0x",
		"Leaf only",
	} {
		if !bytes.Contains(readme, []byte(s)) {
			t.Errorf("FILES.md lacks %q", s)
		}
	}
}

// verifyErr checks the error of x509.Verify.
type verifyErr func(error) bool

func isValid(err error) bool { return err == nil }

func isInvalid(reason x509.InvalidReason, detail string) verifyErr {
	return func(err error) bool {
		var e x509.CertificateInvalidError
		return errors.As(err, &e) && e.Reason == reason && strings.Contains(e.Detail, detail)
	}
}

func isUnknownAuthority(err error) bool {
	var e x509.UnknownAuthorityError
	return errors.As(err, &e)
}

func checkInitVerify(t *testing.T, dir string, kt KeyType) {
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	if ca.Subject.CommonName != DefaultCACommonName || !ca.IsCA || !ca.BasicConstraintsValid ||
		ca.MaxPathLen != 0 || !ca.MaxPathLenZero ||
		ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || len(ca.SubjectKeyId) != 20 {
		t.Errorf("CA: CN %q IsCA %v MaxPathLen %d/%v KeyUsage %v SKID %x; want a leaf-only CA with cert and CRL signing",
			ca.Subject.CommonName, ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage, ca.SubjectKeyId)
	}
	if other := readCert(t, filepath.Join(dir, "other-ca.pem")); other.Subject.CommonName != OtherCACommonName {
		t.Errorf("other CA CN = %q, want %q", other.Subject.CommonName, OtherCACommonName)
	}

	server := readCert(t, filepath.Join(dir, "server.pem"))
	if !slices.Equal(server.DNSNames, []string{"localhost"}) {
		t.Errorf("server DNS SANs = %q, want [localhost]", server.DNSNames)
	}
	var ips []string
	for _, ip := range server.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("server IP SANs = %q, want [127.0.0.1 ::1]", ips)
	}
	if server.Subject.CommonName != "localhost" {
		t.Errorf("server CN = %q, want localhost", server.Subject.CommonName)
	}
	wantKU := x509.KeyUsageDigitalSignature
	if kt == RSA2048 {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if server.KeyUsage != wantKU {
		t.Errorf("server KeyUsage = %v, want %v", server.KeyUsage, wantKU)
	}
	data, err := os.ReadFile(filepath.Join(dir, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("BEGIN CERTIFICATE")); n != 1 {
		t.Errorf("server.pem holds %d certificates, want the leaf only", n)
	}

	client := readCert(t, filepath.Join(dir, "client.pem"))
	if client.Subject.CommonName != "client" || !slices.Equal(client.Subject.OrganizationalUnit, []string{ClientOU}) ||
		len(client.URIs) != 1 || client.URIs[0].String() != ClientURI {
		t.Errorf("client: CN %q OU %q URIs %v", client.Subject.CommonName, client.Subject.OrganizationalUnit, client.URIs)
	}

	tests := []struct {
		file  string
		usage x509.ExtKeyUsage
		check verifyErr
	}{
		{"server.pem", x509.ExtKeyUsageServerAuth, isValid},
		{"client.pem", x509.ExtKeyUsageClientAuth, isValid},
		{"client-expired.pem", x509.ExtKeyUsageClientAuth, isInvalid(x509.Expired, "is after")},
		{"client-not-yet-valid.pem", x509.ExtKeyUsageClientAuth, isInvalid(x509.Expired, "is before")},
		{"client-unknown-ca.pem", x509.ExtKeyUsageClientAuth, isUnknownAuthority},
		{"client-wrong-eku.pem", x509.ExtKeyUsageClientAuth, isInvalid(x509.IncompatibleUsage, "")},
		{"client-wrong-eku.pem", x509.ExtKeyUsageServerAuth, isValid},
		// Revocation is not a chain property: the chain verifies, and
		// only the CRL (checked in checkInitCRL) condemns it.
		{"client-revoked.pem", x509.ExtKeyUsageClientAuth, isValid},
		{"server.pem", x509.ExtKeyUsageClientAuth, isInvalid(x509.IncompatibleUsage, "")},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".pem"), func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, tt.file))
			_, err := cert.Verify(x509.VerifyOptions{
				Roots:     roots,
				KeyUsages: []x509.ExtKeyUsage{tt.usage},
			})
			if !tt.check(err) {
				t.Errorf("Verify(%s, %v) = %v", tt.file, tt.usage, err)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 || cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %x is not a random positive 128-bit number", cert.SerialNumber)
			}
			if !cert.BasicConstraintsValid || cert.IsCA {
				t.Errorf("leaf lacks basicConstraints CA:FALSE")
			}
			// The key file holds the certificate's key, of the
			// requested type.
			keyFile := strings.TrimSuffix(filepath.Join(dir, tt.file), ".pem") + "-key.pem"
			keyPEM, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
				t.Errorf("%s is not PKCS #8", keyFile)
			}
			key, err := parseKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !publicKeysEqual(key.Public(), cert.PublicKey) {
				t.Errorf("%s does not match %s", keyFile, tt.file)
			}
			checkKeyType(t, cert, kt)
		})
	}
}

func checkKeyType(t *testing.T, cert *x509.Certificate, kt KeyType) {
	t.Helper()
	var ok bool
	switch kt {
	case ECDSAP256:
		var k *ecdsa.PublicKey
		k, ok = cert.PublicKey.(*ecdsa.PublicKey)
		ok = ok && k.Curve.Params().Name == "P-256"
	case RSA2048:
		var k *rsa.PublicKey
		k, ok = cert.PublicKey.(*rsa.PublicKey)
		ok = ok && k.N.BitLen() == 2048
	case Ed25519:
		_, ok = cert.PublicKey.(ed25519.PublicKey)
	}
	if !ok {
		t.Errorf("%s: public key %T, want %v", cert.Subject.CommonName, cert.PublicKey, kt)
	}
}

func checkInitCRL(t *testing.T, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("crl.pem is not an X509 CRL PEM block")
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CRL signature does not check with the CA: %v", err)
	}
	other := readCert(t, filepath.Join(dir, "other-ca.pem"))
	if err := crl.CheckSignatureFrom(other); err == nil {
		t.Errorf("CRL signature checks with the other CA")
	}
	revoked := readCert(t, filepath.Join(dir, "client-revoked.pem"))
	if len(crl.RevokedCertificateEntries) != 1 ||
		crl.RevokedCertificateEntries[0].SerialNumber.Cmp(revoked.SerialNumber) != 0 {
		t.Errorf("CRL lists %v, want only client-revoked's serial %x", crl.RevokedCertificateEntries, revoked.SerialNumber)
	}
	if crl.Number == nil || crl.Number.Sign() <= 0 {
		t.Errorf("CRL number = %v, want positive", crl.Number)
	}
	now := time.Now()
	if crl.ThisUpdate.After(now) || crl.NextUpdate.Before(now.Add(29*24*time.Hour)) {
		t.Errorf("CRL current %v to %v; want from before now to ~30 days ahead", crl.ThisUpdate, crl.NextUpdate)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "FILES.md"))
	if err != nil {
		t.Fatal(err)
	}
	if s := serialHex(revoked.SerialNumber); !bytes.Contains(readme, []byte(s)) {
		t.Errorf("FILES.md does not give the revoked serial %s", s)
	}
}

// openssl returns the path of the openssl binary. A missing openssl fails the
// test: it is a required test tool, never a reason to skip.
func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for this test: %v", err)
	}
	return path
}

func checkInitOpenSSL(t *testing.T, dir string) {
	bin := openssl(t)
	tests := []struct {
		name   string
		args   string
		wantOK bool
		output string // expected in the combined output
	}{
		{"client ok", "verify -CAfile ca.pem -purpose sslclient client.pem", true, "client.pem: OK"},
		{"server ok", "verify -CAfile ca.pem -purpose sslserver server.pem", true, "server.pem: OK"},
		{"client not expiring", "x509 -in client.pem -noout -checkend 86400", true, "will not expire"},
		{"expired checkend", "x509 -in client-expired.pem -noout -checkend 0", false, "will expire"},
		{"expired", "verify -CAfile ca.pem -purpose sslclient client-expired.pem", false, "certificate has expired"},
		{"not yet valid", "verify -CAfile ca.pem -purpose sslclient client-not-yet-valid.pem", false, "not yet valid"},
		{"unknown ca", "verify -CAfile ca.pem -purpose sslclient client-unknown-ca.pem", false, "unable to get local issuer certificate"},
		{"other ca", "verify -CAfile other-ca.pem -purpose sslclient client-unknown-ca.pem", true, "OK"},
		{"wrong eku", "verify -CAfile ca.pem -purpose sslclient client-wrong-eku.pem", false, "unsuitable certificate purpose"},
		{"revoked", "verify -CAfile ca.pem -crl_check -CRLfile crl.pem client-revoked.pem", false, "certificate revoked"},
		{"not revoked", "verify -CAfile ca.pem -crl_check -CRLfile crl.pem -purpose sslclient client.pem", true, "client.pem: OK"},
		{"crl signature", "crl -in crl.pem -noout -CAfile ca.pem", true, "verify OK"},
		{"key", "pkey -in client-key.pem -noout", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, strings.Fields(tt.args)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if tt.wantOK && err != nil {
				t.Errorf("openssl %s: %v, want success\n%s", tt.args, err, out)
			}
			if !tt.wantOK {
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Errorf("openssl %s: %v, want a non-zero exit\n%s", tt.args, err, out)
				}
			}
			if !strings.Contains(string(out), tt.output) {
				t.Errorf("openssl %s output lacks %q:\n%s", tt.args, tt.output, out)
			}
		})
	}
}

func checkInitHandshake(t *testing.T, dir string) {
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, "ca.pem")))

	tests := []struct {
		name      string
		serverErr verifyErr // what the server's handshake returns
	}{
		{"client", isValid},
		{"client-expired", isInvalid(x509.Expired, "")},
		{"client-not-yet-valid", isInvalid(x509.Expired, "")},
		{"client-unknown-ca", isUnknownAuthority},
		{"client-wrong-eku", isInvalid(x509.IncompatibleUsage, "")},
		// crypto/tls checks chains only; seclisten checks the CRL.
		{"client-revoked", isValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, tt.name+".pem"), filepath.Join(dir, tt.name+"-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			serverErr, clientErr := handshake(t, serverCert, pool, clientCert)
			if !tt.serverErr(serverErr) {
				t.Errorf("server handshake error: %v", serverErr)
			}
			if (serverErr == nil) != (clientErr == nil) {
				t.Errorf("server error %v, but client error %v", serverErr, clientErr)
			}
		})
	}
}

// handshake runs a TLS server on loopback with serverCert, requiring client
// certificates from caPool, and connects to it with clientCert, trusting
// caPool for the server. It returns the server's handshake error and the
// client's error from dialling and reading the server's greeting.
func handshake(t *testing.T, serverCert tls.Certificate, caPool *x509.CertPool, clientCert tls.Certificate) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    caPool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			done <- err
			return
		}
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			done <- err
			return
		}
		_, err = conn.Write([]byte("hello\n"))
		done <- err
	}()

	// The client sends its certificate whatever CAs the server names, as
	// openssl s_client -cert does; Go would otherwise withhold a
	// certificate from an unacceptable CA.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		RootCAs: caPool, // the server name checked is 127.0.0.1, an IP SAN
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &clientCert, nil
		},
	})
	if err == nil {
		if err = conn.SetDeadline(time.Now().Add(10 * time.Second)); err == nil {
			// With TLS 1.3 the client finishes its handshake before the
			// server checks its certificate; the verdict arrives on read.
			var line string
			line, err = bufio.NewReader(conn).ReadString('\n')
			if err == nil && line != "hello\n" {
				t.Errorf("client read %q", line)
			}
		}
		conn.Close()
	}
	return <-done, err
}

// TestTLSCertificateInProcess runs a handshake with certificates that never
// touch the disk, for each key type.
func TestTLSCertificateInProcess(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt.String(), func(t *testing.T) {
			t.Parallel()
			ca, err := NewCA(CAOptions{KeyType: kt, CommonName: "in-process CA"})
			if err != nil {
				t.Fatal(err)
			}
			server, err := ca.IssueServer(ServerOptions{Hosts: []string{"127.0.0.1"}, KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			client, err := ca.IssueClient(ClientOptions{CommonName: "alice", KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			serverErr, clientErr := handshake(t, server.TLSCertificate(), ca.CertPool(), client.TLSCertificate())
			if serverErr != nil || clientErr != nil {
				t.Fatalf("handshake: server %v, client %v", serverErr, clientErr)
			}
			// A client certificate from another CA is refused.
			other, err := NewCA(CAOptions{KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			stranger, err := other.IssueClient(ClientOptions{KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			serverErr, _ = handshake(t, server.TLSCertificate(), ca.CertPool(), stranger.TLSCertificate())
			if !isUnknownAuthority(serverErr) {
				t.Fatalf("handshake with a stranger: server %v, want unknown authority", serverErr)
			}
		})
	}
}

// snapshot returns every file in dir and its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = "symlink to " + target
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(data)
	}
	return m
}

func TestInitRefusesOverwrite(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(t *testing.T, dir string)
		wantFirst string // the file the error must name
	}{
		{
			name: "complete PKI",
			prepare: func(t *testing.T, dir string) {
				if _, err := Init(dir, InitOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			wantFirst: "ca.pem",
		},
		{
			name:      "only the last target",
			prepare:   func(t *testing.T, dir string) { writeTestFile(t, filepath.Join(dir, "FILES.md"), "mine") },
			wantFirst: "FILES.md",
		},
		{
			name: "two targets in the middle",
			prepare: func(t *testing.T, dir string) {
				writeTestFile(t, filepath.Join(dir, "crl.pem"), "mine")
				writeTestFile(t, filepath.Join(dir, "client-revoked-key.pem"), "mine")
			},
			wantFirst: "client-revoked-key.pem",
		},
		{
			name: "dangling symlink",
			prepare: func(t *testing.T, dir string) {
				if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "client-key.pem")); err != nil {
					t.Fatal(err)
				}
			},
			wantFirst: "client-key.pem",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tt.prepare(t, dir)
			before := snapshot(t, dir)

			res, err := Init(dir, InitOptions{})
			if err == nil {
				t.Fatalf("Init over existing files succeeded: %v", res.Files)
			}
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("error %v does not wrap fs.ErrExist", err)
			}
			if want := filepath.Join(dir, tt.wantFirst); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if res != nil && len(res.Files) != 0 {
				t.Errorf("refused Init reports written files %q", res.Files)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) {
				t.Errorf("refused Init changed the directory: %d entries before, %d after", len(before), len(after))
			}
			for name, data := range before {
				if after[name] != data {
					t.Errorf("refused Init changed %s", name)
				}
			}

			res, err = Init(dir, InitOptions{Force: true})
			if err != nil {
				t.Fatalf("Init with Force: %v", err)
			}
			if len(res.Files) != len(initFiles) {
				t.Errorf("Init with Force wrote %d files, want %d", len(res.Files), len(initFiles))
			}
			after = snapshot(t, dir)
			for name, data := range before {
				if slices.Contains(initFiles, name) && after[name] == data {
					t.Errorf("Init with Force left %s unchanged", name)
				}
			}
			if fi, err := os.Lstat(filepath.Join(dir, "client-key.pem")); err != nil || fi.Mode() != 0o600 {
				t.Errorf("client-key.pem after Force: %v, %v; want a 0600 regular file", fi.Mode(), err)
			}
		})
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIssueServerHosts(t *testing.T) {
	ca := newTestCA(t)
	longHost := strings.Repeat("a", 60) + ".example.test" // over the CN's 64 characters
	tests := []struct {
		name    string
		hosts   []string
		cn      string
		dns     []string
		ips     []string
		uris    []string
		wantErr string
	}{
		{name: "default", cn: "localhost", dns: []string{"localhost"}, ips: []string{"127.0.0.1", "::1"}},
		{
			name:  "mixed",
			hosts: []string{"example.test", "*.example.test", "10.0.0.1", "[fe80::1]", "2001:db8::1", "spiffe://example.test/server", "under_score.test"},
			cn:    "example.test",
			dns:   []string{"example.test", "*.example.test", "under_score.test"},
			ips:   []string{"10.0.0.1", "fe80::1", "2001:db8::1"},
			uris:  []string{"spiffe://example.test/server"},
		},
		{name: "ip first", hosts: []string{"127.0.0.1", "localhost"}, cn: "127.0.0.1", dns: []string{"localhost"}, ips: []string{"127.0.0.1"}},
		{name: "bracketed IPv6", hosts: []string{" [::1] "}, cn: "::1", ips: []string{"::1"}},
		{name: "long name", hosts: []string{longHost}, cn: "", dns: []string{longHost}},
		{name: "empty host", hosts: []string{"localhost", " "}, wantErr: "empty host"},
		{name: "space", hosts: []string{"bad host"}, wantErr: `contains ' '`},
		{name: "port", hosts: []string{"localhost:8443"}, wantErr: `contains ':'`},
		{name: "trailing dot", hosts: []string{"example.test."}, wantErr: "empty or over-long label"},
		{name: "inner wildcard", hosts: []string{"a.*.test"}, wantErr: `contains '*'`},
		{name: "uri without host", hosts: []string{"spiffe://"}, wantErr: "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ca.IssueServer(ServerOptions{Hosts: tt.hosts})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("IssueServer(%q) error = %v, want %q", tt.hosts, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert := c.Certificate
			var ips, uris []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			for _, u := range cert.URIs {
				uris = append(uris, u.String())
			}
			if cert.Subject.CommonName != tt.cn || !slices.Equal(cert.DNSNames, tt.dns) ||
				!slices.Equal(ips, tt.ips) || !slices.Equal(uris, tt.uris) {
				t.Errorf("CN %q DNS %q IP %q URI %q; want CN %q DNS %q IP %q URI %q",
					cert.Subject.CommonName, cert.DNSNames, ips, uris, tt.cn, tt.dns, tt.ips, tt.uris)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v, want serverAuth", cert.ExtKeyUsage)
			}
			for _, h := range tt.dns {
				if strings.HasPrefix(h, "*.") {
					h = "www" + h[1:]
				}
				if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.CertPool(), DNSName: h}); err != nil {
					t.Errorf("verify for %s: %v", h, err)
				}
			}
		})
	}
}

func TestIssueClientOptions(t *testing.T) {
	ca := newTestCA(t)
	t.Run("default", func(t *testing.T) {
		before := time.Now()
		c, err := ca.IssueClient(ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cert := c.Certificate
		if cert.Subject.CommonName != "client" || !slices.Equal(cert.Subject.Organization, []string{Organization}) {
			t.Errorf("subject %s", cert.Subject)
		}
		if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("usage %v / %v", cert.KeyUsage, cert.ExtKeyUsage)
		}
		checkWindow(t, cert, before.Add(-Backdate), before.AddDate(0, 0, DefaultLeafDays))
		if !bytes.Equal(cert.AuthorityKeyId, ca.Certificate.SubjectKeyId) {
			t.Errorf("AuthorityKeyId %x, want the CA's SubjectKeyId %x", cert.AuthorityKeyId, ca.Certificate.SubjectKeyId)
		}
	})
	t.Run("names", func(t *testing.T) {
		c, err := ca.IssueClient(ClientOptions{
			CommonName:          "alice",
			OrganizationalUnits: []string{"ops", "dev"},
			DNSNames:            []string{"alice.example.test"},
			URIs:                []string{"spiffe://example.test/ns/prod/sa/alice"},
			Validity:            Validity{Days: 7},
		})
		if err != nil {
			t.Fatal(err)
		}
		cert := c.Certificate
		// DER sorts the OUs, which share one SET OF.
		if cert.Subject.CommonName != "alice" || !slices.Equal(slices.Sorted(slices.Values(cert.Subject.OrganizationalUnit)), []string{"dev", "ops"}) ||
			!slices.Equal(cert.DNSNames, []string{"alice.example.test"}) ||
			len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://example.test/ns/prod/sa/alice" {
			t.Errorf("subject %s DNS %q URIs %v", cert.Subject, cert.DNSNames, cert.URIs)
		}
		if d := cert.NotAfter.Sub(cert.NotBefore); d != 7*24*time.Hour+Backdate {
			t.Errorf("validity %v, want 7 days plus the backdating", d)
		}
	})
	t.Run("explicit window", func(t *testing.T) {
		nb := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		na := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
		c, err := ca.IssueClient(ClientOptions{Validity: Validity{NotBefore: nb, NotAfter: na}})
		if err != nil {
			t.Fatal(err)
		}
		checkWindow(t, c.Certificate, nb, na)
		c, err = ca.IssueClient(ClientOptions{Validity: Validity{NotBefore: nb, Days: 10}})
		if err != nil {
			t.Fatal(err)
		}
		checkWindow(t, c.Certificate, nb, nb.AddDate(0, 0, 10))
	})
	t.Run("ext key usage override", func(t *testing.T) {
		c, err := ca.IssueClient(ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Certificate.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
			t.Errorf("ExtKeyUsage = %v", c.Certificate.ExtKeyUsage)
		}
	})

	errTests := []struct {
		name    string
		opts    ClientOptions
		wantErr string
	}{
		{"relative URI", ClientOptions{URIs: []string{"alice"}}, "not absolute"},
		{"bad URI", ClientOptions{URIs: []string{"spiffe://a b/%zz"}}, "parse URI"},
		{"bad DNS", ClientOptions{DNSNames: []string{"alice example"}}, "DNS name"},
		{"negative days", ClientOptions{Validity: Validity{Days: -1}}, "negative"},
		{"inverted window", ClientOptions{Validity: Validity{
			NotBefore: time.Now(), NotAfter: time.Now().Add(-time.Hour),
		}}, "before it starts"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.IssueClient(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IssueClient error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func checkWindow(t *testing.T, cert *x509.Certificate, notBefore, notAfter time.Time) {
	t.Helper()
	const slack = 5 * time.Second
	if d := cert.NotBefore.Sub(notBefore); d < -slack || d > slack {
		t.Errorf("NotBefore %v, want about %v", cert.NotBefore, notBefore)
	}
	if d := cert.NotAfter.Sub(notAfter); d < -slack || d > slack {
		t.Errorf("NotAfter %v, want about %v", cert.NotAfter, notAfter)
	}
}

func TestNewCAOptions(t *testing.T) {
	before := time.Now()
	ca, err := NewCA(CAOptions{CommonName: "Test Root", KeyType: Ed25519, Validity: Validity{Days: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Certificate.Subject.CommonName != "Test Root" {
		t.Errorf("CN = %q", ca.Certificate.Subject.CommonName)
	}
	checkWindow(t, ca.Certificate, before.Add(-Backdate), before.AddDate(0, 0, 2))
	checkKeyType(t, ca.Certificate, Ed25519)

	def, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkWindow(t, def.Certificate, before.Add(-Backdate), before.AddDate(0, 0, DefaultCADays))
	if def.Certificate.SerialNumber.Cmp(ca.Certificate.SerialNumber) == 0 {
		t.Errorf("two CAs share serial %x", ca.Certificate.SerialNumber)
	}
	if _, err := NewCA(CAOptions{KeyType: KeyType(9)}); err == nil {
		t.Errorf("NewCA with an unknown key type succeeded")
	}
}

func TestZeroCA(t *testing.T) {
	var zero CA
	if _, err := zero.IssueClient(ClientOptions{}); err == nil || !strings.Contains(err.Error(), "no certificate or key") {
		t.Errorf("IssueClient from a zero CA: %v", err)
	}
	if _, err := zero.CRL(CRLOptions{}); err == nil {
		t.Errorf("CRL from a zero CA succeeded")
	}
}

func TestCRL(t *testing.T) {
	ca := newTestCA(t)
	this := time.Now().Add(-time.Minute).Truncate(time.Second)
	serials := []*big.Int{big.NewInt(0x1f), big.NewInt(42)}
	data, err := ca.CRL(CRLOptions{Revoked: serials, ThisUpdate: this, Number: big.NewInt(7)})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Certificate); err != nil {
		t.Errorf("CheckSignatureFrom: %v", err)
	}
	if crl.Number.Int64() != 7 || !crl.ThisUpdate.Equal(this) || !crl.NextUpdate.Equal(this.AddDate(0, 0, DefaultCRLDays)) {
		t.Errorf("number %v this %v next %v", crl.Number, crl.ThisUpdate, crl.NextUpdate)
	}
	var got []int64
	for _, e := range crl.RevokedCertificateEntries {
		got = append(got, e.SerialNumber.Int64())
	}
	if !slices.Equal(got, []int64{0x1f, 42}) {
		t.Errorf("revoked %v", got)
	}

	empty, err := ca.CRL(CRLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode(empty)
	crl, err = x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 0 || crl.Number.Sign() <= 0 {
		t.Errorf("empty CRL: %d entries, number %v", len(crl.RevokedCertificateEntries), crl.Number)
	}

	if _, err := ca.CRL(CRLOptions{ThisUpdate: this, NextUpdate: this}); err == nil {
		t.Errorf("CRL with NextUpdate == ThisUpdate succeeded")
	}
	if _, err := ca.CRL(CRLOptions{Revoked: []*big.Int{nil}}); err == nil {
		t.Errorf("CRL with a nil serial succeeded")
	}
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	orig := readCert(t, path("ca.pem"))

	// Other encodings of the same CA key.
	key, err := parseKeyPEM(readFile(t, path("ca-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, path("ca-key-sec1.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})))
	writeTestFile(t, path("ca-key-encrypted.pem"), "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
	writeTestFile(t, path("ca-key-legacy-encrypted.pem"),
		"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END EC PRIVATE KEY-----\n")
	// A CA certificate followed by its key in one file, as some tools write.
	writeTestFile(t, path("ca-bundle.pem"), string(readFile(t, path("ca.pem")))+string(readFile(t, path("ca-key.pem"))))

	rsaCA, err := NewCA(CAOptions{KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, path("rsa-ca.pem"), string(rsaCA.CertPEM()))
	writeTestFile(t, path("rsa-ca-key.pem"), string(pem.EncodeToMemory(&pem.Block{
		Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaCA.Key.(*rsa.PrivateKey)),
	})))

	tests := []struct {
		name     string
		cert     string
		key      string
		want     *x509.Certificate
		wantErr  string
		wantIsEr error
	}{
		{name: "pkcs8", cert: "ca.pem", key: "ca-key.pem", want: orig},
		{name: "sec1", cert: "ca.pem", key: "ca-key-sec1.pem", want: orig},
		{name: "pkcs1", cert: "rsa-ca.pem", key: "rsa-ca-key.pem", want: rsaCA.Certificate},
		{name: "bundle", cert: "ca-bundle.pem", key: "ca-bundle.pem", want: orig},
		{name: "other CA's key", cert: "ca.pem", key: "other-ca-key.pem", wantErr: "does not match", wantIsEr: ErrKeyMismatch},
		{name: "leaf key", cert: "ca.pem", key: "client-key.pem", wantErr: "does not match", wantIsEr: ErrKeyMismatch},
		{name: "not a CA", cert: "server.pem", key: "server-key.pem", wantErr: "not a CA"},
		{name: "missing cert", cert: "nope.pem", key: "ca-key.pem", wantErr: "nope.pem", wantIsEr: fs.ErrNotExist},
		{name: "missing key", cert: "ca.pem", key: "nope.pem", wantErr: "nope.pem", wantIsEr: fs.ErrNotExist},
		{name: "key as cert", cert: "ca-key.pem", key: "ca-key.pem", wantErr: "no CERTIFICATE"},
		{name: "cert as key", cert: "ca.pem", key: "ca.pem", wantErr: "no private key"},
		{name: "encrypted", cert: "ca.pem", key: "ca-key-encrypted.pem", wantErr: "encrypted"},
		{name: "legacy encrypted", cert: "ca.pem", key: "ca-key-legacy-encrypted.pem", wantErr: "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := LoadCA(path(tt.cert), path(tt.key))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadCA error = %v, want %q", err, tt.wantErr)
				}
				if tt.wantIsEr != nil && !errors.Is(err, tt.wantIsEr) {
					t.Errorf("LoadCA error %v does not wrap %v", err, tt.wantIsEr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadCA: %v", err)
			}
			if !ca.Certificate.Equal(tt.want) {
				t.Fatalf("LoadCA returned %s, want %s", ca.Certificate.Subject, tt.want.Subject)
			}
			checkIssues(t, ca, tt.want)
		})
	}
}

// TestLoadCAOpenSSL loads CAs made by openssl in its traditional key formats,
// including the EC PARAMETERS block `openssl ecparam -genkey` writes.
func TestLoadCAOpenSSL(t *testing.T) {
	bin := openssl(t)
	tests := []struct {
		name   string
		genkey string
	}{
		{"ecparam", "ecparam -name prime256v1 -genkey -out key.pem"},
		{"genrsa traditional", "genrsa -traditional -out key.pem 2048"},
		{"genpkey ed25519", "genpkey -algorithm ed25519 -out key.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			run := func(args ...string) {
				t.Helper()
				cmd := exec.Command(bin, args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			run(strings.Fields(tt.genkey)...)
			run("req", "-x509", "-new", "-key", "key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=openssl CA",
				"-addext", "basicConstraints=critical,CA:TRUE",
				"-addext", "keyUsage=critical,keyCertSign,cRLSign",
				"-addext", "subjectKeyIdentifier=hash")
			ca, err := LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem"))
			if err != nil {
				t.Fatalf("LoadCA: %v", err)
			}
			checkIssues(t, ca, ca.Certificate)
		})
	}
}

// checkIssues checks that ca can issue certificates and CRLs that verify
// against root.
func checkIssues(t *testing.T, ca *CA, root *x509.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(root)
	c, err := ca.IssueClient(ClientOptions{CommonName: "loaded"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Certificate.Verify(x509.VerifyOptions{
		Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("certificate from the loaded CA: %v", err)
	}
	data, err := ca.CRL(CRLOptions{Revoked: []*big.Int{c.Certificate.SerialNumber}})
	if err != nil {
		t.Fatalf("CRL from the loaded CA: %v", err)
	}
	block, _ := pem.Decode(data)
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(root); err != nil {
		t.Errorf("CRL from the loaded CA: %v", err)
	}
}

func TestIssueFiles(t *testing.T) {
	ca := newTestCA(t)
	dir := filepath.Join(t.TempDir(), "out")

	tests := []struct {
		name     string
		issue    func(Output) (*IssueResult, error)
		out      Output
		wantName string
		wantErr  string
	}{
		{
			name: "client named by CN",
			issue: func(o Output) (*IssueResult, error) {
				return IssueClientFiles(ca, o, ClientOptions{
					CommonName: "alice",
					URIs:       []string{"spiffe://example.test/alice"},
					DNSNames:   []string{"alice.example.test"},
					Validity:   Validity{Days: 30},
				})
			},
			out:      Output{Dir: dir},
			wantName: "alice",
		},
		{
			name: "client exists",
			issue: func(o Output) (*IssueResult, error) {
				return IssueClientFiles(ca, o, ClientOptions{CommonName: "alice"})
			},
			out:     Output{Dir: dir},
			wantErr: "alice.pem: file already exists",
		},
		{
			name: "client forced",
			issue: func(o Output) (*IssueResult, error) {
				return IssueClientFiles(ca, o, ClientOptions{CommonName: "alice"})
			},
			out:      Output{Dir: dir, Force: true},
			wantName: "alice",
		},
		{
			name: "server wildcard",
			issue: func(o Output) (*IssueResult, error) {
				return IssueServerFiles(ca, o, ServerOptions{Hosts: []string{"*.example.test", "example.test"}})
			},
			out:      Output{Dir: dir},
			wantName: "_wildcard.example.test",
		},
		{
			name: "server IPv6",
			issue: func(o Output) (*IssueResult, error) {
				return IssueServerFiles(ca, o, ServerOptions{Hosts: []string{"::1"}})
			},
			out:      Output{Dir: dir},
			wantName: "__1",
		},
		{
			name: "explicit name",
			issue: func(o Output) (*IssueResult, error) {
				return IssueServerFiles(ca, o, ServerOptions{})
			},
			out:      Output{Dir: dir, Name: "web"},
			wantName: "web",
		},
		{
			name: "name with a directory",
			issue: func(o Output) (*IssueResult, error) {
				return IssueClientFiles(ca, o, ClientOptions{})
			},
			out:     Output{Dir: dir, Name: "../escape"},
			wantErr: "plain name",
		},
		{
			name: "bad options",
			issue: func(o Output) (*IssueResult, error) {
				return IssueClientFiles(ca, o, ClientOptions{URIs: []string{"relative"}})
			},
			out:     Output{Dir: dir, Name: "bad"},
			wantErr: "not absolute",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshotIfExists(t, dir)
			res, err := tt.issue(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if after := snapshotIfExists(t, dir); len(after) != len(before) {
					t.Errorf("failed issue changed the directory")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tt.wantName+".pem"); res.CertFile != want {
				t.Errorf("CertFile = %q, want %q", res.CertFile, want)
			}
			if want := filepath.Join(dir, tt.wantName+"-key.pem"); res.KeyFile != want {
				t.Errorf("KeyFile = %q, want %q", res.KeyFile, want)
			}
			for file, mode := range map[string]fs.FileMode{res.CertFile: 0o644, res.KeyFile: 0o600} {
				if fi, err := os.Stat(file); err != nil || fi.Mode() != mode {
					t.Errorf("%s: %v, %v; want mode %v", file, fi.Mode(), err, mode)
				}
			}
			pair, err := tls.LoadX509KeyPair(res.CertFile, res.KeyFile)
			if err != nil {
				t.Fatalf("files do not load as a key pair: %v", err)
			}
			if !bytes.Equal(pair.Certificate[0], res.Cert.Certificate.Raw) {
				t.Errorf("file holds another certificate than the result")
			}
		})
	}
}

func snapshotIfExists(t *testing.T, dir string) map[string]string {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return snapshot(t, dir)
}

func TestCertWriteFiles(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "sub", "c.pem"), filepath.Join(dir, "k", "c-key.pem")
	if err := ca.WriteFiles(certFile, keyFile, false); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate.Equal(ca.Certificate) {
		t.Errorf("round trip changed the certificate")
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode() != 0o600 {
		t.Errorf("key file: %v, %v", fi.Mode(), err)
	}

	// Only the key exists: the certificate must not be written either.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	err = ca.WriteFiles(certFile, keyFile, false)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("WriteFiles over an existing key: %v", err)
	}
	if _, err := os.Stat(certFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused WriteFiles wrote %s", certFile)
	}
	if err := ca.WriteFiles(certFile, keyFile, true); err != nil {
		t.Fatalf("WriteFiles with force: %v", err)
	}
}

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(CAOptions{CommonName: t.Name() + " CA"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := parseCertPEM(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

// opensslText returns `openssl x509 -text -noout` for cert.
func opensslText(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	bin := openssl(t)
	file := filepath.Join(t.TempDir(), "cert.pem")
	writeTestFile(t, file, string(EncodeCertPEM(cert)))
	out, err := exec.Command(bin, "x509", "-in", file, "-text", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -text: %v\n%s", err, out)
	}
	return string(out)
}

func TestIssueIntermediate(t *testing.T) {
	root, err := NewCA(CAOptions{CommonName: "Test Root", Intermediates: true, Validity: Validity{Days: 30}})
	if err != nil {
		t.Fatal(err)
	}
	rc := root.Certificate
	if rc.MaxPathLen != 1 || rc.MaxPathLenZero || !rc.IsCA {
		t.Errorf("root MaxPathLen %d/%v IsCA %v, want 1/false/true", rc.MaxPathLen, rc.MaxPathLenZero, rc.IsCA)
	}
	if text := opensslText(t, rc); !strings.Contains(text, "CA:TRUE, pathlen:1") {
		t.Errorf("openssl does not show pathlen:1:\n%s", text)
	}

	inter, err := root.IssueIntermediate(IntermediateOptions{CommonName: "Test Intermediate", KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	ic := inter.Certificate
	if ic.Subject.CommonName != "Test Intermediate" || !slices.Equal(ic.Subject.Organization, []string{Organization}) ||
		!ic.IsCA || !ic.BasicConstraintsValid || ic.MaxPathLen != 0 || !ic.MaxPathLenZero ||
		ic.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || len(ic.SubjectKeyId) != 20 ||
		!bytes.Equal(ic.AuthorityKeyId, rc.SubjectKeyId) || !bytes.Equal(ic.RawIssuer, rc.RawSubject) {
		t.Errorf("intermediate: CN %q O %q IsCA %v MaxPathLen %d/%v KeyUsage %v SKID %x AKID %x (root SKID %x)",
			ic.Subject.CommonName, ic.Subject.Organization, ic.IsCA, ic.MaxPathLen, ic.MaxPathLenZero,
			ic.KeyUsage, ic.SubjectKeyId, ic.AuthorityKeyId, rc.SubjectKeyId)
	}
	checkKeyType(t, ic, RSA2048)
	// DefaultCADays would outlive the 30-day root: capped at the root.
	if !ic.NotAfter.Equal(rc.NotAfter) {
		t.Errorf("intermediate NotAfter %v, want the root's %v", ic.NotAfter, rc.NotAfter)
	}
	text := opensslText(t, ic)
	for _, s := range []string{"CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "Authority Key Identifier", "Subject Key Identifier"} {
		if !strings.Contains(text, s) {
			t.Errorf("openssl text of the intermediate lacks %q:\n%s", s, text)
		}
	}
	short, err := root.IssueIntermediate(IntermediateOptions{Validity: Validity{Days: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := rc.Subject.CommonName + " Intermediate"; short.Certificate.Subject.CommonName != want {
		t.Errorf("default CN %q, want %q", short.Certificate.Subject.CommonName, want)
	}
	if !short.Certificate.NotAfter.Before(rc.NotAfter) {
		t.Errorf("2-day intermediate NotAfter %v not before the root's %v", short.Certificate.NotAfter, rc.NotAfter)
	}

	// root -> intermediate -> leaf verifies with x509 and openssl.
	leaf, err := inter.IssueServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inters := x509.NewCertPool()
	inters.AddCert(ic)
	chains, err := leaf.Certificate.Verify(x509.VerifyOptions{
		Roots: root.CertPool(), Intermediates: inters, DNSName: "localhost",
	})
	if err != nil {
		t.Fatalf("leaf via intermediate: %v", err)
	}
	if len(chains) != 1 || len(chains[0]) != 3 {
		t.Errorf("chains %v, want one of length 3", chains)
	}
	if _, err := leaf.Certificate.Verify(x509.VerifyOptions{Roots: root.CertPool(), DNSName: "localhost"}); err == nil {
		t.Errorf("leaf verified without its intermediate")
	}
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "root.pem"), string(root.CertPEM()))
	writeTestFile(t, filepath.Join(dir, "inter.pem"), string(inter.CertPEM()))
	writeTestFile(t, filepath.Join(dir, "leaf.pem"), string(leaf.CertPEM()))
	cmd := exec.Command(openssl(t), "verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "-purpose", "sslserver", "leaf.pem")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "leaf.pem: OK") {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
	// The intermediate signs CRLs.
	if _, err := inter.CRL(CRLOptions{Revoked: []*big.Int{leaf.Certificate.SerialNumber}}); err != nil {
		t.Errorf("CRL from the intermediate: %v", err)
	}

	// Neither a leaves-only root nor the intermediate may sign intermediates.
	for name, ca := range map[string]*CA{"leaves-only root": newTestCA(t), "intermediate": inter} {
		_, err := ca.IssueIntermediate(IntermediateOptions{})
		if err == nil || !strings.Contains(err.Error(), "may sign leaves only (make it with CAOptions.Intermediates)") {
			t.Errorf("%s: IssueIntermediate error = %v", name, err)
		}
	}
	var zero CA
	if _, err := zero.IssueIntermediate(IntermediateOptions{}); err == nil {
		t.Errorf("IssueIntermediate from a zero CA succeeded")
	}
	if _, err := root.IssueIntermediate(IntermediateOptions{Validity: Validity{NotBefore: rc.NotAfter.Add(time.Hour)}}); err == nil ||
		!strings.Contains(err.Error(), "expires") {
		t.Errorf("intermediate starting after the root expires: %v", err)
	}

	// The default stays leaves-only.
	if def := newTestCA(t).Certificate; def.MaxPathLen != 0 || !def.MaxPathLenZero {
		t.Errorf("default CA MaxPathLen %d/%v, want 0/true", def.MaxPathLen, def.MaxPathLenZero)
	}
}

// TestIssueServerWeakRSAKey brings a 1024-bit RSA key for a deliberately
// weak server certificate: it verifies against the CA and carries
// keyEncipherment like any RSA server certificate.
func TestIssueServerWeakRSAKey(t *testing.T) {
	ca := newTestCA(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// KeyType is ignored when Key is set.
	c, err := ca.IssueServer(ServerOptions{Hosts: []string{"weak.example.test"}, Key: weak, KeyType: Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	if c.Key != weak {
		t.Errorf("Cert.Key is not the key given")
	}
	pub, ok := c.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 1024 || !pub.Equal(weak.Public()) {
		t.Fatalf("public key %T is not the given RSA-1024 key", c.Certificate.PublicKey)
	}
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; c.Certificate.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want digitalSignature|keyEncipherment", c.Certificate.KeyUsage)
	}
	if _, err := c.Certificate.Verify(x509.VerifyOptions{
		Roots: ca.CertPool(), DNSName: "weak.example.test",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Errorf("verify: %v", err)
	}
	text := opensslText(t, c.Certificate)
	for _, s := range []string{"Public-Key: (1024 bit)", "Digital Signature, Key Encipherment"} {
		if !strings.Contains(text, s) {
			t.Errorf("openssl text lacks %q:\n%s", s, text)
		}
	}

	// A caller's ECDSA key gets no keyEncipherment.
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err = ca.IssueServer(ServerOptions{Key: ec, KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Certificate.PublicKey.(*ecdsa.PublicKey).Equal(ec.Public()) || c.Certificate.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("ECDSA P-384 key: public key %T KeyUsage %v", c.Certificate.PublicKey, c.Certificate.KeyUsage)
	}
}

func TestIssueServerURLs(t *testing.T) {
	ca := newTestCA(t)
	crlURLs := []string{"http://pki.example.test/ca.crl", "https://pki.example.test/ca.crl"}
	aiaURLs := []string{"http://pki.example.test/ca.cer"}
	c, err := ca.IssueServer(ServerOptions{CRLDistributionPoints: crlURLs, IssuingCertificateURL: aiaURLs})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Certificate.CRLDistributionPoints, crlURLs) || !slices.Equal(c.Certificate.IssuingCertificateURL, aiaURLs) {
		t.Errorf("CRL DPs %q AIA %q", c.Certificate.CRLDistributionPoints, c.Certificate.IssuingCertificateURL)
	}
	if _, err := c.Certificate.Verify(x509.VerifyOptions{Roots: ca.CertPool(), DNSName: "localhost"}); err != nil {
		t.Errorf("verify: %v", err)
	}
	text := opensslText(t, c.Certificate)
	for _, s := range []string{
		"X509v3 CRL Distribution Points", "URI:http://pki.example.test/ca.crl", "URI:https://pki.example.test/ca.crl",
		"Authority Information Access", "CA Issuers - URI:http://pki.example.test/ca.cer",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("openssl text lacks %q:\n%s", s, text)
		}
	}
	// Without URLs the extensions are absent.
	plain, err := ca.IssueServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Certificate.CRLDistributionPoints) != 0 || len(plain.Certificate.IssuingCertificateURL) != 0 {
		t.Errorf("plain certificate has CRL DPs %q AIA %q", plain.Certificate.CRLDistributionPoints, plain.Certificate.IssuingCertificateURL)
	}

	bad := []string{"", "pki.example.test/ca.crl", "/ca.crl", "ftp://pki.example.test/ca.crl", "ldap://pki.example.test/cn=ca", "http:///ca.crl", "http://[::1/ca.crl"}
	for _, u := range bad {
		_, err := ca.IssueServer(ServerOptions{CRLDistributionPoints: []string{u}})
		if err == nil || !strings.Contains(err.Error(), "CRL distribution point") || !strings.Contains(err.Error(), "URL") {
			t.Errorf("CRL DP %q: error = %v", u, err)
		}
		_, err = ca.IssueServer(ServerOptions{IssuingCertificateURL: []string{u}})
		if err == nil || !strings.Contains(err.Error(), "issuing certificate URL") {
			t.Errorf("AIA %q: error = %v", u, err)
		}
	}
}

func TestNewSelfSignedServer(t *testing.T) {
	before := time.Now()
	c, err := NewSelfSignedServer(ServerOptions{Hosts: []string{"self.example.test", "127.0.0.1"}, KeyType: RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	cert := c.Certificate
	if !cert.BasicConstraintsValid || cert.IsCA {
		t.Errorf("BasicConstraintsValid %v IsCA %v, want CA:FALSE", cert.BasicConstraintsValid, cert.IsCA)
	}
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) || cert.Subject.CommonName != "self.example.test" {
		t.Errorf("issuer %s subject %s, want self-issued for self.example.test", cert.Issuer, cert.Subject)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not signed by its own key: %v", err)
	}
	if !slices.Equal(cert.DNSNames, []string{"self.example.test"}) || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("SANs DNS %q IP %v", cert.DNSNames, cert.IPAddresses)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) ||
		cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("ExtKeyUsage %v KeyUsage %v", cert.ExtKeyUsage, cert.KeyUsage)
	}
	checkKeyType(t, cert, RSA2048)
	checkWindow(t, cert, before.Add(-Backdate), before.AddDate(0, 0, DefaultLeafDays))
	self := x509.NewCertPool()
	self.AddCert(cert)
	for _, h := range []string{"self.example.test", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{
			Roots: self, DNSName: h, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("verify for %s against itself: %v", h, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: newTestCA(t).CertPool(), DNSName: "self.example.test"}); !isUnknownAuthority(err) {
		t.Errorf("verify against a CA: %v, want unknown authority", err)
	}
	text := opensslText(t, cert)
	for _, s := range []string{"CA:FALSE", "TLS Web Server Authentication", "DNS:self.example.test", "IP Address:127.0.0.1"} {
		if !strings.Contains(text, s) {
			t.Errorf("openssl text lacks %q:\n%s", s, text)
		}
	}

	// Defaults, a caller's key and URLs go through the same template code.
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	def, err := NewSelfSignedServer(ServerOptions{Key: key, CRLDistributionPoints: []string{"http://pki.example.test/x.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	if def.Key != key || def.Certificate.Subject.CommonName != "localhost" || len(def.Certificate.IPAddresses) != 2 ||
		def.Certificate.KeyUsage&x509.KeyUsageKeyEncipherment == 0 ||
		!slices.Equal(def.Certificate.CRLDistributionPoints, []string{"http://pki.example.test/x.crl"}) {
		t.Errorf("default hosts with RSA-1024 key: CN %q IPs %v KeyUsage %v CRL DPs %q",
			def.Certificate.Subject.CommonName, def.Certificate.IPAddresses, def.Certificate.KeyUsage, def.Certificate.CRLDistributionPoints)
	}
	serverTLS := def.TLSCertificate()
	pool := x509.NewCertPool()
	pool.AddCert(def.Certificate)
	if serverErr, clientErr := handshakeNoClientCert(t, serverTLS, pool); serverErr != nil || clientErr != nil {
		t.Errorf("handshake with a self-signed server: server %v, client %v", serverErr, clientErr)
	}

	for _, tt := range []struct {
		opts    ServerOptions
		wantErr string
	}{
		{ServerOptions{Hosts: []string{"bad host"}}, `contains ' '`},
		{ServerOptions{IssuingCertificateURL: []string{"file:///ca.cer"}}, "not an absolute http(s) URL"},
		{ServerOptions{Validity: Validity{Days: -1}}, "negative"},
		{ServerOptions{KeyType: KeyType(9)}, "unknown key type"},
	} {
		if _, err := NewSelfSignedServer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) ||
			!strings.Contains(err.Error(), "self-signed") {
			t.Errorf("NewSelfSignedServer(%+v) error = %v, want %q", tt.opts, err, tt.wantErr)
		}
	}
}

// handshakeNoClientCert runs a TLS handshake over loopback TCP between a
// server with cert and a client trusting roots, without client
// authentication. The server name checked is 127.0.0.1, an IP SAN.
func handshakeNoClientCert(t *testing.T, cert tls.Certificate, roots *x509.CertPool) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			done <- err
			return
		}
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			done <- err
			return
		}
		_, err = conn.Write([]byte("hello\n"))
		done <- err
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: roots})
	if err == nil {
		if err = conn.SetDeadline(time.Now().Add(10 * time.Second)); err == nil {
			var line string
			line, err = bufio.NewReader(conn).ReadString('\n')
			if err == nil && line != "hello\n" {
				t.Errorf("client read %q", line)
			}
		}
		conn.Close()
	}
	return <-done, err
}

// An intermediate names its parent's CRL; a bad URL is refused.
func TestIssueIntermediateCRLDistributionPoints(t *testing.T) {
	root, err := NewCA(CAOptions{Intermediates: true})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.IssueIntermediate(IntermediateOptions{CRLDistributionPoints: []string{"http://127.0.0.1:9/ca.crl"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := inter.Certificate.CRLDistributionPoints; !slices.Equal(got, []string{"http://127.0.0.1:9/ca.crl"}) {
		t.Errorf("CRL distribution points %q", got)
	}
	if text := opensslText(t, inter.Certificate); !strings.Contains(text, "URI:http://127.0.0.1:9/ca.crl") {
		t.Errorf("openssl does not show the CRL distribution point:\n%s", text)
	}
	if _, err := root.IssueIntermediate(IntermediateOptions{CRLDistributionPoints: []string{"ldap://x/y"}}); err == nil ||
		!strings.Contains(err.Error(), "CRL distribution point") {
		t.Errorf("ldap URL: %v, want a CRL distribution point error", err)
	}
}
