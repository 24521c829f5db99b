package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/ocsp/ocsptest"
)

// opensslCA is a CA made with the openssl CLI (`openssl req -x509`, `openssl
// ca`), with the index file `openssl ocsp` answers from.
type opensslCA struct {
	t   *testing.T
	dir string
}

const opensslCAConfig = `[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = seclisten OCSP Test CA
[ ca ]
default_ca = testca
[ testca ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
certificate = ca.pem
private_key = ca-key.pem
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
`

func newOpenSSLCA(t *testing.T) *opensslCA {
	t.Helper()
	ca := &opensslCA{t: t, dir: t.TempDir()}
	ca.write("ca.cnf", opensslCAConfig)
	ca.write("index.txt", "")
	ca.write("serial", "1000\n")
	ca.openssl("req", "-config", "ca.cnf", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "30", "-extensions", "v3_ca")
	return ca
}

func (ca *opensslCA) path(name string) string { return filepath.Join(ca.dir, name) }

func (ca *opensslCA) write(name, data string) {
	ca.t.Helper()
	if err := os.WriteFile(ca.path(name), []byte(data), 0o600); err != nil {
		ca.t.Fatal(err)
	}
}

func (ca *opensslCA) openssl(args ...string) {
	ca.t.Helper()
	cmd := osexec.Command("openssl", args...)
	cmd.Dir = ca.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		ca.t.Fatalf("openssl %s: %v (is openssl installed? make test installs it)\n%s", strings.Join(args, " "), err, out)
	}
}

// issue makes NAME.pem and NAME-key.pem, a client certificate (or a server
// one for 127.0.0.1 and localhost) whose AIA names the OCSP responder url.
func (ca *opensslCA) issue(name string, server bool, url string) *x509.Certificate {
	ca.t.Helper()
	ext := "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nauthorityInfoAccess = OCSP;URI:" + url + "\n"
	if server {
		ext += "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n"
	} else {
		ext += "extendedKeyUsage = clientAuth\n"
	}
	ca.write(name+".ext", "[ ext ]\n"+ext)
	ca.openssl("req", "-config", "ca.cnf", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+"-key.pem", "-out", name+".csr", "-subj", "/CN="+name)
	ca.openssl("ca", "-batch", "-config", "ca.cnf", "-in", name+".csr", "-out", name+".pem",
		"-extfile", name+".ext", "-extensions", "ext", "-notext")
	return readLeaf(ca.t, ca.path(name+".pem"))
}

// revoke revokes NAME.pem in the index (`openssl ca -revoke`).
func (ca *opensslCA) revoke(name string) {
	ca.t.Helper()
	ca.openssl("ca", "-config", "ca.cnf", "-revoke", name+".pem")
}

// chain writes NAME-chain.pem: the certificate, then the CA's.
func (ca *opensslCA) chain(name string) string {
	ca.t.Helper()
	leaf, err := os.ReadFile(ca.path(name + ".pem"))
	if err != nil {
		ca.t.Fatal(err)
	}
	root, err := os.ReadFile(ca.path("ca.pem"))
	if err != nil {
		ca.t.Fatal(err)
	}
	ca.write(name+"-chain.pem", string(leaf)+string(root))
	return ca.path(name + "-chain.pem")
}

// clientArgs are s_client's arguments to present client NAME and trust
// the CA.
func (ca *opensslCA) clientArgs(name string) []string {
	return []string{"-CAfile", ca.path("ca.pem"), "-verify_return_error",
		"-cert", ca.path(name + ".pem"), "-key", ca.path(name + "-key.pem")}
}

// serveArgs are seclisten's arguments to serve certificate NAME (a file
// holding the chain if chain) and verify clients against the CA with OCSP.
func (ca *opensslCA) serveArgs(name string, chain bool, extra ...string) []string {
	cert := ca.path(name + ".pem")
	if chain {
		cert = ca.chain(name)
	}
	return append([]string{"--cert", cert, "--key", ca.path(name + "-key.pem"),
		"--client-ca", ca.path("ca.pem"), "--ocsp", "--explain", "--once", "--json"}, extra...)
}

// startResponder runs the real `openssl ocsp` responder on port, answering
// from the CA's index with a nextUpdate a minute ahead, until the test ends.
// It reports false if the port was taken meanwhile (the port is in the
// certificates, so it is chosen before openssl binds it).
func (ca *opensslCA) startResponder(port int) bool {
	ca.t.Helper()
	cmd := osexec.Command("openssl", "ocsp", "-index", "index.txt", "-port", fmt.Sprint(port),
		"-rsigner", "ca.pem", "-rkey", "ca-key.pem", "-CA", "ca.pem", "-nmin", "1")
	cmd.Dir = ca.dir
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		ca.t.Fatalf("start openssl ocsp: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ca.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Its own line says it listens. (Not a probe connection: openssl ocsp
	// then waits on the probe, which sends no request, for ever.)
	deadline := time.After(hangGuard)
	for {
		text, more := out.next()
		if strings.Contains(text, "waiting for OCSP client connections") {
			return true
		}
		select {
		case <-more:
		case <-exited:
			if strings.Contains(out.String(), "Address already in use") {
				return false
			}
			ca.t.Fatalf("openssl ocsp exited:\n%s", out.String())
		case <-deadline:
			ca.t.Fatalf("openssl ocsp not listening after %s:\n%s", hangGuard, out.String())
		}
	}
}

// goResponder serves an x/crypto/ocsp responder for the CA on a free
// loopback port, until the test ends or stop is called, and returns it
// with its URL.
func (ca *opensslCA) goResponder(validity time.Duration) (r *ocsptest.Responder, url string, stop func()) {
	ca.t.Helper()
	data, err := os.ReadFile(ca.path("ca-key.pem"))
	if err != nil {
		ca.t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		ca.t.Fatal("ca-key.pem: no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		ca.t.Fatal(err)
	}
	r = &ocsptest.Responder{Issuer: readLeaf(ca.t, ca.path("ca.pem")), Key: key.(crypto.Signer), Validity: validity}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ca.t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: hangGuard}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = srv.Close()
			<-done
		})
	}
	ca.t.Cleanup(stop)
	return r, "http://" + ln.Addr().String(), stop
}

// silentResponder accepts connections and never answers, until the test
// ends; it returns its URL.
func silentResponder(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// sClientStatus runs `openssl s_client -status` (asking for a stapled OCSP
// response) and returns what it printed.
func sClientStatus(t *testing.T, addr string, ca *opensslCA) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-status", "-CAfile", ca.path("ca.pem"))
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil || err != nil && !errors.As(err, new(*osexec.ExitError)) {
		t.Fatalf("openssl s_client -status: %v\n%s", err, out)
	}
	return string(out)
}

// expectRefused runs s_client with client NAME of ca and expects the
// --explain refusal line starting with prefix, then the log record of the
// refusal with that verdict code.
func expectRefused(t *testing.T, p *proc, ca *opensslCA, name, code, prefix string) {
	t.Helper()
	out, errOut := pipedSClient(t, p.addr, ca.clientArgs(name)...)
	out = withoutSerial(out)
	if !strings.HasPrefix(out, "error: refused: "+prefix) {
		t.Fatalf("client %s read %q, want error: refused: %s…; stderr:\n%s", name, out, prefix, errOut)
	}
	var ev map[string]any
	p.await("the reject event of "+name, func() bool {
		for _, e := range parseJSONLines(t, completeLines(p.stdout.String())) {
			if cert, _ := e["client_cert"].(map[string]any); e["event"] == "reject" && cert["name"] == "CN="+name {
				ev = e
			}
		}
		return ev != nil
	})
	if ev["code"] != code || !strings.HasPrefix(withoutSerial(fmt.Sprint(ev["reason"])), prefix) {
		t.Fatalf("--json reject event: code %v reason %q, want %s %q…", ev["code"], ev["reason"], code, prefix)
	}
}

// withoutSerial drops the serial from a revoked verdict ("revoked (serial
// 0x1f, OCSP, …" reads "revoked (OCSP, …"): the tests' serials are random.
func withoutSerial(s string) string {
	return serialInVerdict.ReplaceAllString(s, "(")
}

var serialInVerdict = regexp.MustCompile(`\(serial 0x[0-9a-f]+, `)

// completeLines is s up to its last newline: a line still being written
// is left out.
func completeLines(s string) string {
	return s[:strings.LastIndexByte(s, '\n')+1]
}

func expectServed(t *testing.T, p *proc, ca *opensslCA, name string) {
	t.Helper()
	if out, errOut := pipedSClient(t, p.addr, ca.clientArgs(name)...); out != defaultReply+"\n" {
		t.Fatalf("client %s read %q, want the reply; stderr:\n%s", name, out, errOut)
	}
}

// The real `openssl ocsp` responder: a good client is served, a client
// revoked in the CA's index is refused with the OCSP verdict (seen by the
// client with --explain, and in the log), and the server certificate,
// which names the responder, is stapled (`openssl s_client -status`).
func TestOCSPOpenSSLResponder(t *testing.T) {
	var ca *opensslCA
	var url string
	for try := 0; ; try++ {
		ca = newOpenSSLCA(t)
		port := freePort(t)
		url = fmt.Sprintf("http://127.0.0.1:%d", port)
		ca.issue("good", false, url)
		ca.issue("revoked", false, url)
		ca.issue("server", true, url)
		ca.revoke("revoked")
		if ca.startResponder(port) {
			break
		}
		if try == 5 {
			t.Fatal("openssl ocsp found every port taken")
		}
	}
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, ca.serveArgs("server", true, "--metrics-addr", maddr)...)
	if rec := p.logRecord("listening"); rec["ocsp"] != true || rec["revocation_fail"] != "closed" {
		t.Errorf("start-up line = %v, want ocsp=true revocation_fail=closed", rec)
	}

	expectServed(t, p, ca, "good")
	expectRefused(t, p, ca, "revoked", "revoked", "revoked (OCSP, responder "+url+", at ")
	rec := p.waitLog("client certificate refused", 1)
	if rec["verdict"] != "revoked" || !strings.HasPrefix(withoutSerial(fmt.Sprint(rec["reason"])), "revoked (OCSP, responder "+url+", at ") {
		t.Errorf("log: %v", rec)
	}

	rec = p.waitLog("OCSP staple refreshed", 1)
	if rec["responder"] != url {
		t.Errorf("staple from %v, want %s", rec["responder"], url)
	}
	out := sClientStatus(t, p.addr, ca)
	for _, want := range []string{"OCSP Response Status: successful", "Cert Status: good"} {
		if !strings.Contains(out, want) {
			t.Errorf("s_client -status does not show %q:\n%s", want, out)
		}
	}
	_, body := curl(t, "http://"+maddr+"/metrics")
	for series, want := range map[string]float64{
		`seclisten_ocsp_checks_total{result="good"}`:         1,
		`seclisten_ocsp_checks_total{result="revoked"}`:      1,
		`seclisten_ocsp_checks_total{result="error"}`:        0,
		`seclisten_ocsp_cache_entries`:                       2,
		`seclisten_ocsp_staple_refreshes_total{result="ok"}`: 1,
	} {
		if got := metric(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if age := metric(t, body, "seclisten_ocsp_staple_age_seconds"); age < 0 || age > 120 {
		t.Errorf("staple age %v s", age)
	}
	p.stop()
}

// Revocation mid-run: a client served a moment ago is refused at its next
// handshake once the cached answer has expired. The responder here (Go's
// x/crypto/ocsp) answers with nextUpdate = thisUpdate, so nothing is
// cached and the next handshake asks again; `openssl ocsp` cannot give
// less than a minute (-nmin 1). A responder whose answers last an hour is
// not asked again within the hour: the client stays served from the cache.
func TestOCSPRevokedMidRun(t *testing.T) {
	ca := newOpenSSLCA(t)
	now, nowURL, _ := ca.goResponder(time.Nanosecond)
	hour, hourURL, _ := ca.goResponder(time.Hour)
	alice := ca.issue("alice", false, nowURL)
	bob := ca.issue("bob", false, hourURL)
	ca.issue("server", true, "http://127.0.0.1:1")
	p := startServe(t, ca.serveArgs("server", false)...)

	expectServed(t, p, ca, "alice")
	now.Revoke(alice.SerialNumber, time.Now())
	expectRefused(t, p, ca, "alice", "revoked", "revoked (OCSP, responder "+nowURL+", at ")

	expectServed(t, p, ca, "bob")
	hour.Revoke(bob.SerialNumber, time.Now())
	expectServed(t, p, ca, "bob")
	if n := hour.Requests.Load(); n != 1 {
		t.Errorf("the responder was asked %d times, want once: the answer is cached until its nextUpdate", n)
	}
	p.stop()
}

// Responders that misbehave: each gives the client a clear verdict
// (revocation-unknown, fail closed), within the fetch timeout, and is not
// asked again at once however many clients come; with --revocation-fail
// open the client is served and the failure is logged once.
func TestOCSPBadResponders(t *testing.T) {
	ca := newOpenSSLCA(t)
	type bad struct {
		name, why string
		r         *ocsptest.Responder
		url       string
	}
	var cases []*bad
	for _, c := range []struct {
		name string
		mode ocsptest.Mode
		why  string
	}{
		{"garbage", ocsptest.Garbage, "bad response: not a DER-encoded OCSP response (29 bytes)"},
		{"old", ocsptest.Old, "old response: its nextUpdate"},
		{"other-serial", ocsptest.OtherSerial, "bad response: no response matching the supplied certificate"},
		{"wrong-key", ocsptest.WrongKey, "response not signed by the issuer CN=seclisten OCSP Test CA"},
		{"unknown", ocsptest.UnknownStatus, ""},
	} {
		r, url, _ := ca.goResponder(time.Hour)
		r.SetMode(c.mode)
		why := c.why
		if c.mode == ocsptest.UnknownStatus {
			why = "responder " + url + ": it does not know the certificate (status unknown)"
		} else {
			why = "responder " + url + ": " + why
		}
		cases = append(cases, &bad{c.name, why, r, url})
	}
	silent := silentResponder(t)
	cases = append(cases, &bad{"silent", "responder " + silent + ": no answer within 5s", nil, silent})
	refused := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cases = append(cases, &bad{"refused", "responder " + refused + ": Post \"" + refused + "\": dial tcp", nil, refused})
	for _, c := range cases {
		ca.issue(c.name, false, c.url)
	}
	ca.issue("server", true, "http://127.0.0.1:1")
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, ca.serveArgs("server", false, "--metrics-addr", maddr)...)
	base := p.fds()

	for _, c := range cases {
		expectRefused(t, p, ca, c.name, "revocation-unknown", "revocation status unknown: OCSP failed: "+c.why)
	}
	// Again: each responder failed a moment ago and is not asked again
	// (for 10s): the verdict comes at once, and names the first failure.
	for _, c := range cases {
		out, _ := pipedSClient(t, p.addr, ca.clientArgs(c.name)...)
		if !strings.Contains(out, "revocation status unknown: OCSP failed: "+c.why) {
			t.Errorf("%s again: %q", c.name, out)
		}
		if c.r != nil {
			if n := c.r.Requests.Load(); n != 1 && c.name != "unknown" {
				t.Errorf("%s: the responder was asked %d times, want once", c.name, n)
			}
		}
	}
	// No descriptor left behind: at most one idle keep-alive connection
	// per responder that answered (five), none to the silent one, and one
	// more the process opens after start whatever it serves (/dev/null).
	p.fdsBelow(base + 5 + 2)
	_, body := curl(t, "http://"+maddr+"/metrics")
	if got := metric(t, body, `seclisten_ocsp_checks_total{result="error"}`); got != float64(2*(len(cases)-1)) {
		t.Errorf("error checks = %v, want %d", got, 2*(len(cases)-1))
	}
	if got := metric(t, body, `seclisten_ocsp_checks_total{result="unknown"}`); got != 2 {
		t.Errorf("unknown checks = %v, want 2", got)
	}
	if got := metric(t, body, `seclisten_handshake_failures_total{verdict="revocation-unknown"}`); got != float64(2*len(cases)) {
		t.Errorf("revocation-unknown failures = %v, want %d", got, 2*len(cases))
	}
	p.stop()

	t.Run("fail open", func(t *testing.T) {
		p := startServe(t, ca.serveArgs("server", false, "--revocation-fail", "open")...)
		expectServed(t, p, ca, "unknown")
		expectServed(t, p, ca, "unknown")
		p.waitLog("handshake", 2)
		warns := p.logRecords("serving clients whose revocation status is unknown (failing open)")
		if len(warns) != 1 || warns[0]["responder"] != cases[4].url || warns[0]["code"] != "revocation-unknown" {
			t.Fatalf("fail-open warnings: %v, want one for %s", warns, cases[4].url)
		}
		if !strings.Contains(fmt.Sprint(warns[0]["flags"]), "--revocation-fail") {
			t.Errorf("the warning does not name --revocation-fail: %v", warns[0])
		}
		p.stop()
	})
}

// Stapling: the staple is refreshed before it expires; when the responder
// goes away the last staple is kept until its nextUpdate, then dropped; a
// reload fetches again and keeps the staple if the fetch fails; a
// certificate file without the issuer, or a responder down at start, is
// logged and the server serves without a staple.
func TestOCSPStapling(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	// stapled serves a certificate (with its chain) whose responder's
	// answers last validity, once the first staple is in service.
	stapled := func(t *testing.T, validity time.Duration, extra ...string) (ca *opensslCA, p *proc, url string, stop func()) {
		ca = newOpenSSLCA(t)
		_, url, stop = ca.goResponder(validity)
		ca.issue("server", true, url)
		p = startServe(t, append([]string{"--cert", ca.chain("server"), "--key", ca.path("server-key.pem")}, extra...)...)
		p.waitLog("OCSP staple refreshed", 1)
		return ca, p, url, stop
	}
	t.Run("refresh, then expiry", func(t *testing.T) {
		maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		ca, p, url, stop := stapled(t, 6*time.Second, "--metrics-addr", maddr)
		if out := sClientStatus(t, p.addr, ca); !strings.Contains(out, "Cert Status: good") {
			t.Fatalf("no good staple:\n%s", out)
		}
		p.waitLog("OCSP staple refreshed", 2)
		stop()
		rec := p.waitLog("OCSP staple refresh failed: keeping the last staple until it expires", 1)
		if !strings.Contains(fmt.Sprint(rec["err"]), url) {
			t.Errorf("the failure does not name the responder: %v", rec)
		}
		p.waitLog("OCSP staple refresh failed and the staple expired: serving without one", 1)
		if out := sClientStatus(t, p.addr, ca); !strings.Contains(out, "OCSP response: no response sent") {
			t.Fatalf("an expired staple is still served:\n%s", out)
		}
		_, body := curl(t, "http://"+maddr+"/metrics")
		if age := metric(t, body, "seclisten_ocsp_staple_age_seconds"); age != -1 {
			t.Errorf("staple age %v, want -1 (none)", age)
		}
		if ok, failed := metric(t, body, `seclisten_ocsp_staple_refreshes_total{result="ok"}`),
			metric(t, body, `seclisten_ocsp_staple_refreshes_total{result="failed"}`); ok != 2 || failed != 2 {
			t.Errorf("refreshes ok %v failed %v, want 2 and 2", ok, failed)
		}
		p.stop()
	})
	t.Run("reload keeps the staple when the responder is gone", func(t *testing.T) {
		ca, p, _, stop := stapled(t, time.Hour)
		stop()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.waitLog("OCSP staple refresh failed: keeping the last staple until it expires", 1)
		if out := sClientStatus(t, p.addr, ca); !strings.Contains(out, "Cert Status: good") {
			t.Fatalf("the last staple is not served:\n%s", out)
		}
		p.stop()
	})
	t.Run("no issuer in the certificate file", func(t *testing.T) {
		ca := newOpenSSLCA(t)
		r, url, _ := ca.goResponder(time.Hour)
		ca.issue("server", true, url)
		p := startServe(t, "--cert", ca.path("server.pem"), "--key", ca.path("server-key.pem"))
		rec := p.waitLog("OCSP stapling off: the certificate file must hold the issuer's certificate after the leaf (the chain) to ask the responder", 1)
		if rec["responder"] != url {
			t.Errorf("record %v", rec)
		}
		if out := sClientStatus(t, p.addr, ca); !strings.Contains(out, "OCSP response: no response sent") {
			t.Errorf("a staple without an issuer:\n%s", out)
		}
		if n := r.Requests.Load(); n != 0 {
			t.Errorf("the responder was asked %d times", n)
		}
		p.stop()
	})
	t.Run("responder down at start", func(t *testing.T) {
		ca := newOpenSSLCA(t)
		url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		ca.issue("server", true, url)
		p := startServe(t, "--cert", ca.chain("server"), "--key", ca.path("server-key.pem"))
		rec := p.waitLog("OCSP staple fetch failed: serving without a staple", 1)
		if !strings.Contains(fmt.Sprint(rec["err"]), "connection refused") {
			t.Errorf("record %v", rec)
		}
		if out := sClientStatus(t, p.addr, ca); !strings.Contains(out, "OCSP response: no response sent") {
			t.Errorf("s_client -status:\n%s", out)
		}
		p.stop()
	})
}
