package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fetchPKI is a CA made with the openssl CLI whose client certificates
// name a CRL distribution point on a real HTTP server of the test, which
// serves the CA's current CRL (openssl ca -gencrl) at /crl.pem.
type fetchPKI struct {
	t    *testing.T
	dir  string
	srv  *httptest.Server
	hits sync.Map // path -> *atomic.Int64
	// answer, if set for a path, answers it instead of the CRL file.
	answer sync.Map // path -> http.HandlerFunc
}

func newFetchPKI(t *testing.T) *fetchPKI {
	t.Helper()
	f := &fetchPKI{t: t, dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(f.serve)}}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	conf := fmt.Sprintf(`[ ca ]
default_ca = CA_default
[ CA_default ]
database = %[1]s/index.txt
certificate = %[1]s/ca.pem
private_key = %[1]s/ca-key.pem
crlnumber = %[1]s/crlnumber
default_md = sha256
default_crl_days = 1
`, f.dir)
	for name, data := range map[string]string{"ca.cnf": conf, "index.txt": "", "crlnumber": "01\n"} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.newCA("ca", "CRL Fetch Test CA")
	f.issue("server", "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1")
	f.genCRL("-crldays", "1")
	return f
}

func (f *fetchPKI) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := f.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	if h, ok := f.answer.Load(r.URL.Path); ok {
		h.(http.HandlerFunc)(w, r)
		return
	}
	if r.URL.Path != "/crl.pem" {
		http.NotFound(w, r)
		return
	}
	http.ServeFile(w, r, filepath.Join(f.dir, "crl.pem"))
}

// fetches is how many times path was requested.
func (f *fetchPKI) fetches(path string) int64 {
	if n, ok := f.hits.Load(path); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func (f *fetchPKI) url(path string) string { return f.srv.URL + path }

func (f *fetchPKI) openssl(args ...string) {
	f.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = f.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("openssl %s (is openssl installed? make test installs it): %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newCA makes a self-signed CA NAME.pem, NAME-key.pem.
func (f *fetchPKI) newCA(name, cn string) {
	f.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+"-key.pem", "-out", name+".pem", "-subj", "/CN="+cn, "-days", "2",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
}

// issue signs NAME.pem with the CA, with the extensions ext.
func (f *fetchPKI) issue(name, ext string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name+".ext"), []byte(ext+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+"-key.pem", "-out", name+".csr", "-subj", "/CN="+name)
	f.openssl("x509", "-req", "-in", name+".csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
		"-out", name+".pem", "-days", "1", "-extfile", name+".ext")
}

// client issues a client certificate NAME naming the distribution points
// dps (the CA's /crl.pem when none are given).
func (f *fetchPKI) client(name string, dps ...string) {
	f.t.Helper()
	if len(dps) == 0 {
		dps = []string{f.url("/crl.pem")}
	}
	uris := make([]string, len(dps))
	for i, u := range dps {
		uris[i] = "URI:" + u
	}
	f.issue(name, "extendedKeyUsage=clientAuth\ncrlDistributionPoints="+strings.Join(uris, ","))
}

// revoke revokes NAME.pem in the CA's database (the next genCRL lists it).
func (f *fetchPKI) revoke(name string) {
	f.openssl("ca", "-config", "ca.cnf", "-revoke", name+".pem")
}

// genCRL writes crl.pem, which the HTTP server serves, valid as args say
// (-crldays 1, -crlsec 8).
func (f *fetchPKI) genCRL(args ...string) {
	f.openssl(append([]string{"ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem.new"}, args...)...)
	if err := os.Rename(filepath.Join(f.dir, "crl.pem.new"), filepath.Join(f.dir, "crl.pem")); err != nil {
		f.t.Fatal(err)
	}
}

// serveArgs are seclisten's arguments for mTLS against the CA alone: no
// --crl, so the CRLs are fetched.
func (f *fetchPKI) serveArgs(extra ...string) []string {
	return append([]string{"--cert", filepath.Join(f.dir, "server.pem"), "--key", filepath.Join(f.dir, "server-key.pem"),
		"--client-ca", filepath.Join(f.dir, "ca.pem"), "--explain"}, extra...)
}

// serial is NAME.pem's serial number in lower-case hex, as verdicts print it.
func (f *fetchPKI) serial(name string) string {
	return readLeaf(f.t, filepath.Join(f.dir, name+".pem")).SerialNumber.Text(16)
}

// A CRL URL in a certificate is honoured without --crl: a good client is
// served, a revoked one refused with the verdict naming the URL, seen by
// the client (--explain) and in the log.
func TestCRLFetchServesGoodRefusesRevoked(t *testing.T) {
	f := newFetchPKI(t)
	f.client("alice")
	f.client("mallory")
	f.revoke("mallory")
	f.genCRL("-crldays", "1")
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, f.serveArgs("--metrics-addr", maddr)...)

	exchangeWith(t, p.addr, "hello", defaultReply, certArgs(f.dir, "alice")...)
	want := fmt.Sprintf("revoked (serial 0x%s, CRL from %s fetched 0s ago)", f.serial("mallory"), f.url("/crl.pem"))
	out, errOut := pipedSClient(t, p.addr, certArgs(f.dir, "mallory")...)
	if !strings.HasPrefix(out, "error: refused: "+want) {
		t.Errorf("s_client printed %q, want the verdict %q; stderr:\n%s", out, want, errOut)
	}
	rec := p.waitLogMatch("client certificate refused", "revoked", func(r map[string]any) bool { return r["verdict"] == "revoked" })
	if !strings.Contains(fmt.Sprint(rec), f.url("/crl.pem")) {
		t.Errorf("refusal log %v does not name the URL", rec)
	}
	if n := f.fetches("/crl.pem"); n != 1 {
		t.Errorf("%d fetches for two clients, want 1 (cached until nextUpdate)", n)
	}
	fetched := p.waitLog("fetched CRL", 1)
	if fetched["entries"] != float64(1) || fetched["url"] != f.url("/crl.pem") {
		t.Errorf("fetch log %v", fetched)
	}
	var body string
	waitFor(t, "the refusal in the metrics", func() bool {
		_, body = curl(t, "http://"+maddr+"/metrics")
		return strings.Contains(body, `seclisten_handshake_failures_total{verdict="revoked"} 1`)
	})
	for series, want := range map[string]float64{"seclisten_crl_cache_entries": 1, "seclisten_crl_fetches_total": 1,
		"seclisten_crl_fetch_failures_total": 0, `seclisten_handshake_failures_total{verdict="revoked"}`: 1} {
		if got := metric(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if metric(t, body, "seclisten_crl_cache_bytes") <= 0 {
		t.Error("seclisten_crl_cache_bytes is 0 with a CRL cached")
	}
}

// A revocation takes effect within one CRL period: the cached CRL reaches
// its nextUpdate, the server refetches it in the background, and the next
// handshake of the newly revoked client is refused.
func TestCRLFetchRevocationMidRun(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	f := newFetchPKI(t)
	f.client("alice")
	f.genCRL("-crlsec", "8")
	p := startServe(t, f.serveArgs()...)
	exchangeWith(t, p.addr, "before", defaultReply, certArgs(f.dir, "alice")...)
	p.waitLog("fetched CRL", 1)
	// A client served from the cache: a CRL used since its fetch is
	// refreshed before it expires (one nobody used is let go instead).
	exchangeWith(t, p.addr, "cached", defaultReply, certArgs(f.dir, "alice")...)

	f.revoke("alice")
	f.genCRL("-crldays", "1")
	rec := p.waitLog("fetched CRL", 2)
	if rec["entries"] != float64(1) {
		t.Fatalf("refetched CRL %v, want 1 entry", rec)
	}
	out, errOut := pipedSClient(t, p.addr, certArgs(f.dir, "alice")...)
	if want := "error: refused: revoked (serial 0x" + f.serial("alice") + ", CRL from " + f.url("/crl.pem"); !strings.HasPrefix(out, want) {
		t.Errorf("s_client printed %q, want %q…; stderr:\n%s", out, want, errOut)
	}
}

// A crowd of clients of one CA causes one fetch.
func TestCRLFetchSingleFlight(t *testing.T) {
	f := newFetchPKI(t)
	f.client("alice")
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	f.answer.Store("/crl.pem", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		http.ServeFile(w, r, filepath.Join(f.dir, "crl.pem"))
	}))
	p := startServe(t, f.serveArgs(noLimits...)...)
	base := p.fds()
	const n = 10
	var wg sync.WaitGroup
	outs := make([]string, n)
	errs := make([]error, n)
	cfg := f.tlsConfig(t, "alice")
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exchangeOnce(p.addr, cfg, "hi")
		}()
	}
	<-arrived
	// Every client's handshake waits on the one fetch the server holds:
	// its n connections and the fetch's are open.
	waitFor(t, "every handshake waiting on the fetch", func() bool { return p.fds() >= base+n+1 })
	close(release)
	wg.Wait()
	for i, out := range outs {
		if out != defaultReply {
			t.Errorf("client %d got %q (%v), want the reply", i, out, errs[i])
		}
	}
	if got := f.fetches("/crl.pem"); got != 1 {
		t.Errorf("%d fetches for %d concurrent handshakes, want 1", got, n)
	}
}

// Each bad CRL gets a clear verdict (fail closed), no crash, no leaked
// descriptor, no unbounded wait.
func TestCRLFetchBadInputs(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	f := newFetchPKI(t)
	crlPEM, err := os.ReadFile(filepath.Join(f.dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// A CA of the same name with another key signs the "wrong key" CRL.
	wrong := newFetchPKI(t)
	wrongPEM, err := os.ReadFile(filepath.Join(wrong.dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	defer close(stall)
	bodies := map[string]http.HandlerFunc{
		"/huge.pem": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(bytes.Repeat([]byte("A"), 64<<10))
		},
		"/truncated.pem": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(crlPEM[:len(crlPEM)/2]) },
		"/wrong-key.pem": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(wrongPEM) },
		"/slow.pem": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		},
	}
	for path, h := range bodies {
		f.answer.Store(path, h)
	}
	p := startServe(t, f.serveArgs("--crl-max-size", "16KiB", "--handshake-timeout", "2s")...)
	base := p.fds()
	tests := []struct{ name, path, want string }{
		{"huge", "/huge.pem", "the CRL is larger than the limit of 16384 bytes"},
		{"truncated", "/truncated.pem", "no CRL found"},
		{"wrong key", "/wrong-key.pem", "is not signed by the certificate's issuer CN=CRL Fetch Test CA"},
		{"slow", "/slow.pem", "no answer before the handshake's deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ReplaceAll(tt.name, " ", "-")
			f.client(name, f.url(tt.path))
			out, errOut := pipedSClient(t, p.addr, certArgs(f.dir, name)...)
			want := "error: refused: revocation status unknown: CRL fetch failed: "
			if !strings.HasPrefix(out, want) || !strings.Contains(out, tt.want) {
				t.Errorf("s_client printed %q, want %q…%q; stderr:\n%s", out, want, tt.want, errOut)
			}
			// The log says why, once per failed fetch (the refusals of
			// one address are summarised after the first).
			p.waitLogMatch("revocation status unknown: CRL fetch failed; refusing the clients it covers (fail closed)", tt.path,
				func(r map[string]any) bool { return r["url"] == f.url(tt.path) })
		})
	}
	// The server is still serving, and holds no descriptor for them.
	f.client("alice")
	if got, err := exchangeOnce(p.addr, f.tlsConfig(t, "alice"), "still here"); got != defaultReply {
		t.Errorf("alice got %q (%v), want the reply", got, err)
	}
	waitFDs(t, p, base)
}

// A certificate naming 50 distribution points causes at most 3 fetches;
// file: and ldap: URLs are ignored and logged once each.
func TestCRLFetchManyAndIgnoredURLs(t *testing.T) {
	f := newFetchPKI(t)
	var dps []string
	for i := range 50 {
		dps = append(dps, f.url(fmt.Sprintf("/dp%d.pem", i)))
	}
	f.client("many", dps...)
	f.client("ignored", "file:///etc/seclisten/crl.pem", "ldap://ldap.test/cn=CA?certificateRevocationList")
	p := startServe(t, f.serveArgs()...)

	out, _ := pipedSClient(t, p.addr, certArgs(f.dir, "many")...)
	if !strings.Contains(out, "revocation status unknown: CRL fetch failed: "+f.url("/dp")) || !strings.Contains(out, "HTTP status 404") {
		t.Errorf("many: s_client printed %q", out)
	}
	var total int64
	for i := range 50 {
		total += f.fetches(fmt.Sprintf("/dp%d.pem", i))
	}
	if total != 3 {
		t.Errorf("%d fetches for 50 distribution points, want 3", total)
	}

	for range 2 {
		exchangeWith(t, p.addr, "hi", defaultReply, certArgs(f.dir, "ignored")...)
	}
	for _, u := range []string{"file:///etc/seclisten/crl.pem", "ldap://ldap.test/cn=CA?certificateRevocationList"} {
		if n := len(p.logRecordsMatching("ignoring a CRL distribution point: only http and https are fetched", "url", u)); n != 1 {
			t.Errorf("%s logged %d times, want once", u, n)
		}
	}
}

// tlsConfig is a Go client's configuration presenting NAME.pem.
func (f *fetchPKI) tlsConfig(t *testing.T, name string) *tls.Config {
	cert, err := tls.LoadX509KeyPair(filepath.Join(f.dir, name+".pem"), filepath.Join(f.dir, name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: x509Pool(t, filepath.Join(f.dir, "ca.pem")), ServerName: "localhost", Certificates: []tls.Certificate{cert}}
}

// exchangeOnce sends line over TLS and returns the first line read back,
// within the hang guard.
func exchangeOnce(addr string, cfg *tls.Config, line string) (string, error) {
	d := net.Dialer{Timeout: hangGuard}
	conn, err := tls.DialWithDialer(&d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func (p *proc) logRecordsMatching(msg, key, value string) []map[string]any {
	var out []map[string]any
	for _, r := range p.logRecords(msg) {
		if r[key] == value {
			out = append(out, r)
		}
	}
	return out
}

// --revocation-fail open serves a client whose CRL cannot be had, and logs
// why once per failure; closed (the default) refuses it. --crl-fetch=false
// turns fetching off.
func TestCRLFetchFailOpenClosed(t *testing.T) {
	f := newFetchPKI(t)
	f.client("lost", f.url("/missing.pem"))
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	closed := startServe(t, f.serveArgs("--metrics-addr", maddr)...)
	out, _ := pipedSClient(t, closed.addr, certArgs(f.dir, "lost")...)
	if want := "error: refused: revocation status unknown: CRL fetch failed: " + f.url("/missing.pem") + ": HTTP status 404 Not Found"; !strings.HasPrefix(out, want) {
		t.Errorf("closed: s_client printed %q, want %q", out, want)
	}
	var body string
	waitFor(t, "the refusal in the metrics", func() bool {
		_, body = curl(t, "http://"+maddr+"/metrics")
		return strings.Contains(body, `seclisten_handshake_failures_total{verdict="revocation-unknown"} 1`)
	})
	for series, want := range map[string]float64{"seclisten_crl_fetch_failures_total": 1,
		`seclisten_handshake_failures_total{verdict="revocation-unknown"}`: 1} {
		if got := metric(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	open := startServe(t, f.serveArgs("--revocation-fail", "open")...)
	for range 2 {
		exchangeWith(t, open.addr, "hi", defaultReply, certArgs(f.dir, "lost")...)
	}
	if rec := open.logRecord("listening"); rec["crl_fetch"] != true || rec["revocation_fail"] != "open" {
		t.Errorf("start-up line %v, want crl_fetch=true revocation_fail=open", rec)
	}
	warn := open.waitLog("revocation status unknown: CRL fetch failed; serving the clients it covers anyway (fail open)", 1)
	if warn["level"] != "WARN" || warn["url"] != f.url("/missing.pem") {
		t.Errorf("fail-open warning %v", warn)
	}
	if n := len(open.logRecords(warn["msg"].(string))); n != 1 {
		t.Errorf("%d warnings for two clients, want 1", n)
	}

	off := startServe(t, f.serveArgs("--crl-fetch=false")...)
	if rec := off.logRecord("listening"); rec["crl_fetch"] != nil {
		t.Errorf("start-up line %v, want no crl_fetch", rec)
	}
	exchangeWith(t, off.addr, "hi", defaultReply, certArgs(f.dir, "lost")...)
	if n := f.fetches("/missing.pem"); n != 2 {
		t.Errorf("%d fetches, want 2 (one per server fetching)", n)
	}
}

// certs check stays offline unless given --crl-fetch; with it, it fetches
// and gives serve's verdict.
func TestCertsCheckCRLFetch(t *testing.T) {
	f := newFetchPKI(t)
	f.client("mallory")
	f.revoke("mallory")
	f.genCRL("-crldays", "1")
	args := []string{"certs", "check", filepath.Join(f.dir, "mallory.pem"), "--client-ca", filepath.Join(f.dir, "ca.pem")}
	out, err := seclistenCmd(t, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "served: ok") {
		t.Errorf("offline: %v\n%s", err, out)
	}
	if n := f.fetches("/crl.pem"); n != 0 {
		t.Errorf("offline certs check fetched %d times", n)
	}
	cmd := seclistenCmd(t, append(args, "--crl-fetch")...)
	out, _ = cmd.CombinedOutput()
	want := "refused: revoked: revoked (serial 0x" + f.serial("mallory") + ", CRL from " + f.url("/crl.pem") + " fetched 0s ago)"
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), want) {
		t.Errorf("--crl-fetch: exit %d, output:\n%s\nwant %q", code, out, want)
	}
}
