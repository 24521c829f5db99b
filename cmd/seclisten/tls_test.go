package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With no certificate, seclisten serves an ephemeral self-signed one and
// logs its fingerprint: the one clients see.
func TestTLSEphemeralCertificate(t *testing.T) {
	p := startServe(t)
	rec := p.logRecord("listening")
	if rec["mode"] != "tls" || !strings.Contains(fmt.Sprint(rec["cert"]), "ephemeral") {
		t.Fatalf("listening record = %v, want TLS with an ephemeral certificate", rec)
	}
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	if got := hex.EncodeToString(sum[:]); rec["cert_sha256"] != got {
		t.Errorf("logged fingerprint %v, served certificate has %s", rec["cert_sha256"], got)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("ephemeral certificate: %v", err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Errorf("ephemeral certificate: %v", err)
	}
	// And openssl s_client talks to it.
	exchangeWith(t, p.addr, "Hello Server!", defaultReply)
	lines := p.stdoutLines(1)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "] Hello Server!") {
		t.Errorf("stdout = %q", lines)
	}
	p.stop()
}

// Every client certificate of the test PKI, through openssl s_client against
// a server that requires client certificates: the good one is served and
// named; each broken one is refused with its own verdict in plain words, a
// reject event, and the matching TLS alert.
func TestMTLSVerdicts(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, "--json")...)

	sc := exchangeWith(t, p.addr, "hello from client", defaultReply, certArgs(dir, "client")...)
	sc.stdin.Close()
	line := p.stdoutLines(3)[2] // connect, handshake, message
	if !strings.Contains(line, `"event":"message"`) || !strings.Contains(line, `"peer":"CN=client 127.0.0.1:`) {
		t.Errorf("message event = %s, want the peer named by its certificate", line)
	}
	hs := p.waitLog("handshake", 1)
	if hs["verdict"] != "ok" || hs["client_subject"] != "CN=client,OU=dev,O=seclisten development" {
		t.Errorf("handshake log = %v", hs)
	}

	tests := []struct {
		cert, code, reason, alert string
	}{
		{"", "no-certificate", "no client certificate sent", "certificate required"},
		{"client-expired", "expired", "client certificate expired 3 days ago (not after ", "certificate expired"},
		// crypto/tls sends certificate_expired for both sides of the window.
		{"client-not-yet-valid", "not-yet-valid", "client certificate not valid until ", "certificate expired"},
		{"client-unknown-ca", "unknown-authority", "signed by an unknown authority: issuer CN=seclisten Other CA", "unknown ca"},
		{"client-wrong-eku", "wrong-eku", "certificate lacks clientAuth extended key usage (has serverAuth)", "bad certificate"},
		{"client-revoked", "revoked", "revoked (serial 0x", "bad certificate"},
	}
	ran := 0 // subtests run: -run may pick some
	for _, tt := range tests {
		name := tt.cert
		if name == "" {
			name = "no certificate"
		}
		t.Run(name, func(t *testing.T) {
			ran++
			sc := startSClient(t, p.addr, certArgs(dir, tt.cert)...)
			sc.send("must not be printed\n")
			if code := sc.wait(); code == 0 {
				t.Errorf("s_client exit status 0, want a failure")
			}
			if !strings.Contains(sc.stderr.String(), "alert "+tt.alert) {
				t.Errorf("s_client did not get the %q alert:\n%s", tt.alert, sc.stderr.String())
			}
			// Each verdict is refused once per server: its record is this
			// subtest's, whichever subtests run before it.
			rec := p.waitLogMatch("client certificate refused", "verdict "+tt.code, func(r map[string]any) bool {
				return r["verdict"] == tt.code
			})
			if !strings.Contains(rec["reason"].(string), tt.reason) {
				t.Errorf("log = %v, want reason %q", rec, tt.reason)
			}
			if tt.cert != "" && rec["client_subject"] != "CN="+tt.cert+",O=seclisten development" {
				t.Errorf("log names %v, want the refused certificate", rec["client_subject"])
			}
		})
	}
	if strings.Contains(p.stdout.String(), "must not be printed") {
		t.Errorf("a refused client's message was printed")
	}
	rejects := func() int { return strings.Count(p.stdout.String(), `"event":"reject"`) }
	p.await("a reject event per refusal", func() bool { return rejects() >= ran })
	p.stop()
	if n := rejects(); n != ran {
		t.Errorf("%d reject events, want %d", n, ran)
	}
}

// Allowlists: a certificate that matches is served; one that does not is
// refused with what it presented.
func TestMTLSAllowlists(t *testing.T) {
	dir := pkiDir(t)
	out, err := seclistenCmd(t, "certs", "issue", "--client", "bob", "--ca", filepath.Join(dir, "ca.pem"),
		"--ca-key", filepath.Join(dir, "ca-key.pem"), "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("certs issue: %v\n%s", err, out)
	}

	p := startServe(t, mtlsArgs(dir, "--allow-cn", "client", "--allow-cn", "alice")...)
	exchangeWith(t, p.addr, "hi", defaultReply, certArgs(dir, "client")...)
	sc := startSClient(t, p.addr, certArgs(dir, "bob")...)
	sc.send("hi\n")
	sc.wait()
	rec := p.waitLog("client certificate refused", 1)
	if rec["verdict"] != "not-allowed" || rec["reason"] != "CN=bob is not in the allowed common names" {
		t.Errorf("log = %v", rec)
	}
	p.stop()

	// SPIFFE IDs: client.pem carries spiffe://seclisten.test/client.
	p = startServe(t, mtlsArgs(dir, "--allow-uri", "spiffe://seclisten.test/client")...)
	exchangeWith(t, p.addr, "hi", defaultReply, certArgs(dir, "client")...)
	sc = startSClient(t, p.addr, certArgs(dir, "bob")...)
	sc.send("hi\n")
	sc.wait()
	rec = p.waitLog("client certificate refused", 1)
	if rec["reason"] != "certificate has no URI, so it matches none of the allowed URIs" {
		t.Errorf("log = %v", rec)
	}
	p.stop()
}

// request mode shows what a client presents, without verifying it.
func TestMTLSRequestModeShowsUnverifiedCertificate(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, "--client-auth", "request", "--json")
	exchangeWith(t, p.addr, "hi", defaultReply, "-cert", filepath.Join(dir, "client-unknown-ca.pem"),
		"-key", filepath.Join(dir, "client-unknown-ca-key.pem"))
	hs := p.waitLog("handshake", 1)
	if hs["verdict"] != "unverified" || hs["client_subject"] != "CN=client-unknown-ca,O=seclisten development" ||
		hs["client_issuer"] != "CN=seclisten Other CA,O=seclisten development" {
		t.Errorf("handshake log = %v", hs)
	}
	var msg string
	for _, l := range p.stdoutLines(3) {
		if strings.Contains(l, `"event":"message"`) {
			msg = l
		}
	}
	if !strings.Contains(msg, `"peer":"unverified CN=client-unknown-ca 127.0.0.1:`) {
		t.Errorf("message event = %s", msg)
	}
	p.stop()
}

// audit mode serves everyone and logs the verdict require would give.
func TestMTLSAuditMode(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, "--client-auth", "audit")...)
	exchangeWith(t, p.addr, "expired but served", defaultReply, certArgs(dir, "client-expired")...)
	rec := p.waitLog("audit: a require server would refuse this client; serving it anyway", 1)
	if rec["verdict"] != "expired" || !strings.Contains(rec["reason"].(string), "expired 3 days ago") {
		t.Errorf("audit log = %v", rec)
	}
	exchangeWith(t, p.addr, "revoked but served", defaultReply, certArgs(dir, "client-revoked")...)
	rec = p.waitLog("audit: a require server would refuse this client; serving it anyway", 2)
	if rec["verdict"] != "revoked" {
		t.Errorf("audit log = %v", rec)
	}
	exchangeWith(t, p.addr, "good", defaultReply, certArgs(dir, "client")...)
	p.waitLog("audit: client certificate verified; a require server would accept it", 1)
	lines := p.stdoutLines(3)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "[unverified CN=client-expired ") ||
		!strings.HasPrefix(lines[2], "[CN=client ") {
		t.Errorf("stdout = %q", lines)
	}
	p.stop()
}

// TLS 1.1 is refused; 1.2 (with an ECDHE AEAD suite only) and 1.3 are
// served; --tls-min 1.3 refuses 1.2.
func TestTLSVersions(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, "--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"))
	ca := certArgs(dir, "")

	sc := startSClient(t, p.addr, append(ca, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")...)
	sc.send("x\n")
	if sc.wait() == 0 || !strings.Contains(sc.stderr.String(), "alert protocol version") {
		t.Errorf("TLS 1.1 not refused with protocol_version:\n%s", sc.stderr.String())
	}
	rec := p.waitLog("handshake failed", 1)
	if rec["verdict"] != "protocol-version" || !strings.Contains(rec["reason"].(string), "no common TLS version: the client offers at most TLS 1.1, the server needs TLS 1.2 or later") {
		t.Errorf("log = %v", rec)
	}

	exchangeWith(t, p.addr, "tls12", defaultReply, append(ca, "-tls1_2")...)
	hs := p.waitLog("handshake", 1)
	if hs["tls_version"] != "TLS 1.2" || !strings.HasPrefix(hs["cipher"].(string), "TLS_ECDHE_ECDSA_WITH_") {
		t.Errorf("TLS 1.2 handshake = %v", hs)
	}
	// A CBC suite is not offered.
	sc = startSClient(t, p.addr, append(ca, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")...)
	sc.send("x\n")
	if sc.wait() == 0 {
		t.Errorf("a CBC-only TLS 1.2 client was served")
	}

	exchangeWith(t, p.addr, "tls13", defaultReply, append(ca, "-tls1_3")...)
	hs = p.waitLog("handshake", 2)
	if hs["tls_version"] != "TLS 1.3" || hs["group"] != "X25519" {
		t.Errorf("TLS 1.3 handshake = %v", hs)
	}
	p.stop()

	p = startServe(t, "--tls-min", "1.3")
	sc = startSClient(t, p.addr, "-tls1_2")
	sc.send("x\n")
	if sc.wait() == 0 {
		t.Errorf("--tls-min 1.3 served TLS 1.2")
	}
	exchangeWith(t, p.addr, "modern", defaultReply, "-tls1_3")
	p.stop()
}

// The wrong protocol gets a clear log line: plaintext or HTTP on the TLS
// port, a TLS ClientHello on the plain port.
func TestWrongProtocol(t *testing.T) {
	p := startServe(t)
	c := newClient(t, p.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expectLine("HTTP/1.0 400 Bad Request\r")
	rec := p.waitLog("handshake failed", 1)
	if rec["reason"] != `client sent plaintext, not a TLS ClientHello: "GET / HTTP/1.1"` {
		t.Errorf("log = %v", rec)
	}
	// Another address: refusals of one address are logged in full once
	// per period, then summarised.
	c2 := newClientFrom(t, "127.0.0.3", p.addr)
	c2.send("hello \x1b[31m\n")
	c2.expectLine("error: this port speaks TLS: connect with TLS (openssl s_client)")
	rec = p.waitLog("handshake failed", 2)
	if rec["reason"] != `client sent plaintext, not a TLS ClientHello: "hello \x1b[31m"` {
		t.Errorf("log = %v", rec)
	}
	p.stop()

	p = startServer(t)
	sc := startSClient(t, p.addr)
	sc.send("x\n")
	sc.wait()
	rec = p.waitLog("refused: TLS on the plain port", 1)
	if !strings.Contains(rec["reason"].(string), "client sent a TLS ClientHello to the plain port") {
		t.Errorf("log = %v", rec)
	}
	if out := p.stdout.String(); out != "" {
		t.Errorf("ClientHello bytes printed: %q", out)
	}
	p.stop()
}

// --report answers each line with what the server saw.
func TestReport(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, "--report", "--alpn", "seclisten-test")...)
	sc := startSClient(t, p.addr, append(certArgs(dir, "client"), "-alpn", "seclisten-test")...)
	sc.send("what did you see?\n")
	got := sc.expectLine("")
	for _, want := range []string{"identity=CN=client ", "remote_addr=127.0.0.1:", " verdict=ok ",
		`tls_version="TLS 1.3"`, "cipher=TLS_", "group=X25519 ", "alpn=seclisten-test ", "sni=localhost ",
		"resumed=false", "client_sha256="} {
		if !strings.Contains(got, want) {
			t.Errorf("report %q lacks %q", got, want)
		}
	}
	p.stop()

	p = startServe(t, mtlsArgs(dir, "--report", "--json")...)
	sc = startSClient(t, p.addr, certArgs(dir, "client")...)
	sc.send("json please\n")
	got = sc.expectLine("")
	rec := parseJSONLines(t, got)[0]
	if rec["identity"] != "CN=client" || rec["verdict"] != "ok" || rec["resumed"] != false || len(rec["client_sha256"].(string)) != 64 {
		t.Errorf("JSON report = %v", rec)
	}
	p.stop()
}

// SIGHUP swaps the certificate for new connections while an old one keeps
// talking; a broken file keeps the old certificate in service; a change of
// the files alone reloads too.
func TestHotReload(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, noLimits...)...)
	old := tlsClient(t, dir, p.addr)
	oldFP := fingerprint(old)
	old.send("before\n")
	old.expectLine(defaultReply)

	issueServer(t, dir, "localhost,127.0.0.1")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog("reloaded TLS material", 1)
	waitFor(t, "new certificate served", func() bool { return fingerprint(tlsClient(t, dir, p.addr)) != oldFP })
	newFP := fingerprint(tlsClient(t, dir, p.addr))
	// The old connection still talks, on the old certificate.
	old.send("after\n")
	old.expectLine(defaultReply)

	// A broken certificate file: the reload fails, the certificate stays.
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rec := p.waitLog("reload failed: keeping the TLS material in service", 1)
	if !strings.Contains(fmt.Sprint(rec["err"]), "server.pem") {
		t.Errorf("reload failure does not name the file: %v", rec)
	}
	if fp := fingerprint(tlsClient(t, dir, p.addr)); fp != newFP {
		t.Errorf("served certificate changed after a failed reload")
	}

	// Fixing the files reloads without a signal.
	issueServer(t, dir, "localhost,127.0.0.1")
	p.waitLogMatch("reloaded TLS material", "trigger file change", func(r map[string]any) bool {
		return r["trigger"] == "file change"
	})
	waitFor(t, "certificate after the file change", func() bool {
		fp := fingerprint(tlsClient(t, dir, p.addr))
		return fp != newFP && fp != oldFP
	})
	p.stop()
}

// A client that sends nothing, or drips half a ClientHello, is closed at the
// handshake timeout, counted from accept: the server closes it (the log
// says timeout), not before the timeout, and the dripping client while it
// still has most of its bytes to send.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	p := startServe(t, "--handshake-timeout", timeout.String())
	// Before the dial: the server's deadline cannot start earlier.
	start := time.Now()
	silent := newClient(t, p.addr)
	silent.expectEOF()
	if d := time.Since(start); d < timeout {
		t.Errorf("silent client closed after %s, before the %s timeout", d, timeout)
	}

	// A real ClientHello, one byte every 50 ms, a client on a terrible
	// link (the pause is the behaviour under test). Half of it (700 bytes
	// or more) takes over half a minute to drip: without an absolute
	// deadline, each byte would extend it, and the client would finish.
	hello := clientHello(t)
	start = time.Now()
	drip, err := dialFrom(t, "127.0.0.4", p.addr) // its own address: its own log line
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	closed := make(chan error, 1)
	go func() {
		// The server sends nothing before the handshake: the read ends
		// when it closes, or at the hang guard.
		_ = drip.SetReadDeadline(time.Now().Add(hangGuard))
		_, err := drip.Read(make([]byte, 64))
		closed <- err
	}()
	var readErr error
	sent := 0
drip:
	for _, b := range hello[:len(hello)/2] {
		if _, err := drip.Write([]byte{b}); err != nil {
			break
		}
		sent++
		select {
		case readErr = <-closed:
			break drip
		case <-time.After(50 * time.Millisecond):
		}
	}
	if sent == len(hello)/2 {
		readErr = <-closed
		t.Errorf("the dripping client sent half its ClientHello (%d bytes) before the server closed", sent)
	}
	if !closedByPeer(readErr) {
		t.Errorf("dripping client: read %v, want the server's close", readErr)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("dripping client closed after %s, before the %s timeout", d, timeout)
	}
	t.Logf("dripping client closed after %d of %d bytes, %s", sent, len(hello)/2, time.Since(start).Round(time.Millisecond))
	for _, src := range []string{"127.0.0.1", "127.0.0.4"} {
		p.waitLogMatch("handshake not completed", "from "+src, func(r map[string]any) bool {
			return strings.HasPrefix(fmt.Sprint(r["remote_addr"]), src+":")
		})
	}
	recs := p.logRecords("handshake not completed")
	if len(recs) != 2 || recs[0]["verdict"] != "handshake-timeout" || recs[1]["verdict"] != "handshake-timeout" {
		t.Errorf("log = %v, want two handshake timeouts", recs)
	}
	p.stop()
}

// --- helpers

// tlsConn is a Go TLS client connection with a line reader.
type tlsConn struct {
	*client
	tc *tls.Conn
}

func tlsClient(t *testing.T, dir, addr string) *tlsConn {
	t.Helper()
	pool := x509Pool(t, filepath.Join(dir, "ca.pem"))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	raw := dial(t, addr)
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	t.Cleanup(func() { tc.Close() })
	c := &client{t: t, conn: raw, r: bufioReader(tc)}
	c.w = tc
	return &tlsConn{client: c, tc: tc}
}

func fingerprint(c *tlsConn) string {
	sum := sha256.Sum256(c.tc.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}

func issueServer(t *testing.T, dir, hosts string) {
	t.Helper()
	out, err := seclistenCmd(t, "certs", "issue", "--server", hosts, "--name", "server", "--force",
		"--ca", filepath.Join(dir, "ca.pem"), "--ca-key", filepath.Join(dir, "ca-key.pem"), "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("certs issue --server: %v\n%s", err, out)
	}
}

// clientHello records the ClientHello a Go client sends.
func clientHello(t *testing.T) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
		_ = tc.Handshake()
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || n < 10 {
		t.Fatalf("read ClientHello: %d bytes, %v", n, err)
	}
	return buf[:n]
}

// --report over plain TCP says what little there is to see.
func TestReportPlain(t *testing.T) {
	p := startServer(t, "--report")
	c := newClient(t, p.addr)
	c.send("what did you see?\n")
	c.expectLine(fmt.Sprintf("identity=%[1]s remote_addr=%[1]s tls_version=none", c.conn.LocalAddr()))
	p.stop()
}
