package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pebble, Let's Encrypt's ACME test server, and its DNS companion
// pebble-challtestsrv are pinned as tools in go.mod and built once, on first
// use, from the module cache: a real ACME CA on loopback, offline.
var (
	pebbleOnce sync.Once
	pebbleBins struct {
		pebble, challtestsrv, certs string
		err                         error
	}
)

func buildPebble(t *testing.T) {
	t.Helper()
	pebbleOnce.Do(func() {
		dir := filepath.Dir(binary)
		for name, pkg := range map[string]string{
			"pebble":              "github.com/letsencrypt/pebble/v2/cmd/pebble",
			"pebble-challtestsrv": "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv",
		} {
			out, err := osexec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
			if err != nil {
				pebbleBins.err = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		out, err := osexec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
		if err != nil {
			pebbleBins.err = fmt.Errorf("locate the pebble module: %v", err)
			return
		}
		pebbleBins.pebble = filepath.Join(dir, "pebble")
		pebbleBins.challtestsrv = filepath.Join(dir, "pebble-challtestsrv")
		pebbleBins.certs = filepath.Join(strings.TrimSpace(string(out)), "test", "certs")
	})
	if pebbleBins.err != nil {
		t.Fatal(pebbleBins.err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pebble is a running Pebble with its DNS server.
type pebble struct {
	t                  *testing.T
	dir                string // the ACME directory URL
	mgmt               string // the management API
	apiRoot            string // the PEM file that signs Pebble's API certificate
	cmd                *osexec.Cmd
	log                *lockedBuffer
	done               chan struct{}
	listen, mgmtListen string
	dnsAddr            string
	configFile         string
}

type pebbleOptions struct {
	tlsPort, httpPort int // where Pebble validates TLS-ALPN-01 and HTTP-01
	listen            string
}

// startPebble starts pebble-challtestsrv (every name resolves to 127.0.0.1)
// and Pebble, configured for fast, deterministic tests: no validation
// sleep, no nonce rejection, no authorization reuse, and two profiles:
// "default" (90 days) and "tiny" (30 seconds, for renewals).
//
// Its ports are picked free a moment before Pebble binds them, so another
// process on the machine can take one first: then Pebble exits saying so,
// and it is started again on fresh ports, up to three times.
func startPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := newPebble(t, o)
		err := p.tryStart()
		if err == nil {
			return p
		}
		if attempt == 3 || o.listen != "" || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("pebble, attempt %d: %v; again on other ports", attempt, err)
	}
}

func newPebble(t *testing.T, o pebbleOptions) *pebble {
	t.Helper()
	buildPebble(t)
	dir := t.TempDir()
	if o.listen == "" {
		o.listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	p := &pebble{t: t, listen: o.listen, mgmtListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		dnsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), apiRoot: filepath.Join(pebbleBins.certs, "pebble.minica.pem"),
		log: &lockedBuffer{}}
	p.dir = "https://" + p.listen + "/dir"
	p.mgmt = "https://" + p.mgmtListen
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  p.listen,
		"managementListenAddress":        p.mgmtListen,
		"certificate":                    filepath.Join(pebbleBins.certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(pebbleBins.certs, "localhost", "key.pem"),
		"httpPort":                       o.httpPort,
		"tlsPort":                        o.tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 0, "order": 0},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default": map[string]any{"description": "90 days", "validityPeriod": 7776000},
			"tiny":    map[string]any{"description": "renewal tests", "validityPeriod": 30},
		},
	}}
	data, _ := json.Marshal(cfg)
	p.configFile = filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(p.configFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	dns := osexec.Command(pebbleBins.challtestsrv, "-dnsserver", p.dnsAddr, "-defaultIPv4", "127.0.0.1",
		"-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	dns.Stdout, dns.Stderr = io.Discard, io.Discard
	if err := dns.Start(); err != nil {
		t.Fatalf("start pebble-challtestsrv: %v", err)
	}
	t.Cleanup(func() { _ = dns.Process.Kill(); _ = dns.Wait() })
	return p
}

// start runs Pebble (again, after stop) and waits until its directory answers.
func (p *pebble) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatal(err)
	}
}

// tryStart runs Pebble and waits until its directory answers, or Pebble
// exits (an error with its log), or the hang guard passes.
func (p *pebble) tryStart() error {
	t := p.t
	t.Helper()
	p.cmd = osexec.Command(pebbleBins.pebble, "-config", p.configFile, "-dnsserver", p.dnsAddr, "-strict=false")
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	p.done = make(chan struct{})
	cmd, done := p.cmd, p.done
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	// Nothing tells when Pebble listens: poll its directory, and stop at
	// once if it exits.
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	guard := time.After(hangGuard)
	for {
		if resp, err := p.client().Get(p.dir); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("pebble exited at start: %s", tail(p.log.String(), 2000))
		case <-guard:
			return fmt.Errorf("pebble's directory did not answer within %s; pebble log:\n%s", hangGuard, tail(p.log.String(), 2000))
		case <-poll.C:
		}
	}
}

func (p *pebble) client() *http.Client {
	pool := x509.NewCertPool()
	data, err := os.ReadFile(p.apiRoot)
	if err != nil {
		p.t.Fatal(err)
	}
	pool.AppendCertsFromPEM(data)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// issuingRoot writes the root Pebble signs certificates with (made anew at
// every start) to a file, for openssl -CAfile.
func (p *pebble) issuingRoot() string {
	p.t.Helper()
	resp, err := p.client().Get(p.mgmt + "/roots/0")
	if err != nil {
		p.t.Fatalf("fetch pebble root: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("fetch pebble root: %d %v", resp.StatusCode, err)
	}
	f := filepath.Join(p.t.TempDir(), "pebble-root.pem")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// orders counts the orders Pebble has received.
func (p *pebble) orders() int {
	return strings.Count(p.log.String(), "Added order")
}

// acmeArgs are seclisten's flags to get certificates from this Pebble. The
// profile is always named: with several, Pebble picks one at random for an
// order that names none (a later --acme-profile in extra wins).
func (p *pebble) acmeArgs(t *testing.T, storage string, extra ...string) []string {
	return append([]string{"--acme-agree", "--acme-profile", "default", "--acme-email", fmt.Sprintf("ops-%d@seclisten.test", time.Now().UnixNano()),
		"--acme-ca", p.dir, "--acme-ca-root", p.apiRoot, "--acme-storage", storage}, extra...)
}
