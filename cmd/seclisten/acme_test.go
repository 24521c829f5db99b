package main

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyServed checks, with openssl s_client -verify_return_error, that the
// listener serves a chain for name that Pebble's root verifies, and that the
// exchange works over it.
func verifyServed(t *testing.T, addr, name, root string, extra ...string) {
	t.Helper()
	args := append([]string{"-servername", name, "-CAfile", root, "-verify_return_error", "-verify_hostname", name}, extra...)
	exchangeWith(t, addr, "over an ACME certificate", defaultReply, args...)
}

// servedSerial is the serial of the certificate served for name.
func servedSerial(t *testing.T, addr, name string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TLS-ALPN-01 answered on the listener itself, real validation by Pebble;
// openssl verifies the served chain; a restart reuses the stored
// certificate without a new order.
func TestACMETLSALPN01AndRestart(t *testing.T) {
	port := freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	storage := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := peb.acmeArgs(t, storage, "--addr", addr, "--acme-domain", "seclisten.test", "--acme-http-addr", "off")

	p := startServe(t, args...)
	rec := p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	if rec["domain"] != "seclisten.test" || rec["not_after"] == nil {
		t.Errorf("log = %v", rec)
	}
	p.waitLog("ACME certificate obtained", 1)
	root := peb.issuingRoot()
	verifyServed(t, addr, "seclisten.test", root)
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders, want 1", n)
	}
	serial := servedSerial(t, addr, "seclisten.test")
	p.stop()

	// The restart loads the certificate from storage: no new order.
	p = startServe(t, args...)
	p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	if got := servedSerial(t, addr, "seclisten.test"); got != serial {
		t.Errorf("after a restart the served serial is %s, want the stored %s", got, serial)
	}
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders after the restart, want still 1", n)
	}
	if recs := p.logRecords("ACME certificate obtained"); len(recs) != 0 {
		t.Errorf("restart obtained a new certificate: %v", recs)
	}
	p.stop()
}

// HTTP-01 on --acme-http-addr, with TLS-ALPN-01 off so only HTTP-01 can
// succeed.
func TestACMEHTTP01(t *testing.T) {
	port, httpPort := freePort(t), freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: freePort(t), httpPort: httpPort})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", addr, "--acme-domain", "http01.seclisten.test",
		"--acme-http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--acme-disable-tls-alpn")...)
	p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	verifyServed(t, addr, "http01.seclisten.test", peb.issuingRoot())
	p.stop()
}

// Under --client-auth require, the CA's TLS-ALPN-01 validation still gets
// through (it carries no client certificate), so short-lived certificates
// renew; a client pretending to be the CA never reaches the exchange.
func TestACMERenewalUnderRequiredMTLS(t *testing.T) {
	dir := pkiDir(t)
	port := freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", addr, "--acme-domain", "renew.seclisten.test",
		"--acme-http-addr", "off", "--acme-profile", "tiny", "--acme-renew-check-interval", "1s",
		"--client-ca", filepath.Join(dir, "ca.pem"), "--client-auth", "require", "--log-level", "debug",
		"--rate", "0")...)
	p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	first := servedSerial(t, addr, "renew.seclisten.test")

	// 30-second certificates renew with a third of their life left.
	rec := p.waitLogWithin("ACME certificate renewed", 1, 60*time.Second)
	if rec["domain"] != "renew.seclisten.test" {
		t.Errorf("renewal log = %v", rec)
	}
	waitFor(t, "the renewed certificate in service", func() bool {
		return servedSerial(t, addr, "renew.seclisten.test") != first
	})
	if len(p.logRecords("ACME TLS-ALPN-01 validation answered")) < 2 {
		t.Errorf("expected TLS-ALPN-01 validations for the order and the renewal")
	}

	// mTLS still holds for everyone else: the good client is served with
	// the renewed certificate, no certificate is refused.
	exchangeWith(t, addr, "hello", defaultReply, append([]string{"-servername", "renew.seclisten.test",
		"-CAfile", peb.issuingRoot(), "-verify_return_error"}, "-cert", filepath.Join(dir, "client.pem"),
		"-key", filepath.Join(dir, "client-key.pem"))...)
	sc := startSClient(t, addr, "-servername", "renew.seclisten.test")
	sc.send("no cert\n")
	sc.wait()
	p.waitLog("client certificate refused", 1)

	// A client that offers only acme-tls/1 gets no exchange.
	raw := dial(t, addr)
	c := tls.Client(raw, &tls.Config{ServerName: "renew.seclisten.test", InsecureSkipVerify: true,
		NextProtos: []string{"acme-tls/1"}})
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if err := c.Handshake(); err == nil {
		fmt.Fprintf(c, "sneaking in\n")
		buf := make([]byte, 100)
		if n, err := c.Read(buf); err == nil {
			t.Errorf("an acme-tls/1 client got an answer: %q", buf[:n])
		}
	}
	c.Close()
	// Anything the connection printed, it printed before the server
	// logged its close.
	rec = p.waitLogMatch("connection closed", "of the acme-tls/1 client", func(r map[string]any) bool {
		return r["remote_addr"] == raw.LocalAddr().String()
	})
	if strings.Contains(p.stdout.String(), "sneaking in") || rec["messages"] != float64(0) {
		t.Errorf("an acme-tls/1 connection reached the exchange: %v", rec)
	}
	p.stop()
}

// A CA that refuses the renewal order's name for the certificate it
// replaces (ARI's "replaces") does not block renewal: here the contact
// address changed over a restart, so the renewal comes from a new account,
// and the CA refuses to let it replace another account's certificate.
// The refusal is logged, and the retry, which leaves the name out,
// renews.
func TestACMERenewalReplacesRefused(t *testing.T) {
	port := freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	storage := t.TempDir()
	const name = "replaces.seclisten.test"
	args := func() []string {
		return peb.acmeArgs(t, storage, "--addr", addr, "--acme-domain", name,
			"--acme-http-addr", "off", "--acme-profile", "tiny", "--log-level", "debug")
	}
	p := startServe(t, args()...)
	p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	first := servedSerial(t, addr, name)
	p.stop()

	p = startServe(t, args()...) // a new contact address: a new account
	p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	if got := servedSerial(t, addr, name); got != first {
		t.Fatalf("after the restart the served serial is %s, want the stored %s", got, first)
	}
	rec := p.waitLogWithin(msgRenewFailed, 1, 60*time.Second)
	if !strings.Contains(fmt.Sprint(rec["err"]), "urn:ietf:params:acme:error:") || rec["attempt"] != float64(1) {
		t.Errorf("failure record %v, want the CA's refusal", rec)
	}
	p.waitLogWithin("ACME certificate renewed", 1, 60*time.Second)
	if n := len(p.logRecords(msgRenewFailed)); n != 1 {
		t.Errorf("%d failed attempts before the renewal, want 1: the first retry leaves the name out", n)
	}
	waitFor(t, "the renewed certificate in service", func() bool {
		return servedSerial(t, addr, name) != first
	})
	p.stop()
}

// On demand: an allowed name gets a certificate at its first handshake; a
// name outside the allowlist gets none, and no order is placed.
func TestACMEOnDemand(t *testing.T) {
	port := freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", addr, "--acme-on-demand",
		"--acme-on-demand-allow", "*.ondemand.test", "--acme-http-addr", "off", "--log-level", "debug")...)
	root := peb.issuingRoot()
	verifyServed(t, addr, "a.ondemand.test", root)
	if n := peb.orders(); n != 1 {
		t.Errorf("%d orders after the first on-demand name, want 1", n)
	}

	sc := startSClient(t, addr, "-servername", "evil.example.test", "-CAfile", root)
	sc.send("x\n")
	if sc.wait() == 0 {
		t.Errorf("a name outside the allowlist was served")
	}
	sc = startSClient(t, addr, "-servername", "b.c.ondemand.test", "-CAfile", root)
	sc.send("x\n")
	sc.wait()
	// An order for a refused name would be placed during its handshake:
	// once the server has closed both connections, it is too late for one.
	p.await("both refused handshakes closed", func() bool {
		n := 0
		for _, r := range p.logRecords("connection closed") {
			if r["reason"] == "handshake-failed" {
				n++
			}
		}
		return n >= 2
	})
	if n := peb.orders(); n != 1 {
		t.Errorf("%d orders after refused names, want still 1", n)
	}
	p.stop()
}

// The CA is down at start: seclisten keeps serving, retries with backoff,
// and gets its certificate once the CA comes up.
func TestACMECADownAtStart(t *testing.T) {
	port := freePort(t)
	peb := newPebble(t, pebbleOptions{tlsPort: port, httpPort: freePort(t)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", addr, "--acme-domain", "late.seclisten.test",
		"--acme-http-addr", "off")...)
	rec := p.waitLogWithin("ACME: no certificate yet; retrying", 1, 20*time.Second)
	if rec["attempt"] != float64(1) {
		t.Errorf("retry log = %v", rec)
	}
	// Still alive and answering handshakes (without a certificate yet).
	c := newClient(t, addr)
	c.send("plaintext\n")
	if _, err := c.readLine(); err != nil {
		t.Errorf("listener not answering while the CA is down: %v", err)
	}
	peb.start()
	p.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	verifyServed(t, addr, "late.seclisten.test", peb.issuingRoot())
	// The backoff doubles from 5 s, each wait drawn from its upper half:
	// read from the records, not from the clock.
	for i, r := range p.logRecords("ACME: no certificate yet; retrying") {
		ns, _ := r["retry_in"].(float64) // JSON logs durations in nanoseconds
		if least := (5 * time.Second << i) / 2; time.Duration(ns) < least-time.Second/2 {
			t.Errorf("retry %d in %s, want at least %s: backoff too eager", i+1, time.Duration(ns), least)
		}
	}
	p.stop()
}
