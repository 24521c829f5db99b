package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// devCA is how a refusal names the development PKI's CA.
const devCA = "CN=seclisten Dev CA,O=seclisten development"

// With --explain, a refused client completes the handshake and reads the
// verdict in its own stream, in TLS 1.2 and 1.3, whatever the verdict;
// nothing it sent is printed or answered. This is what `echo hi |
// openssl s_client` shows a developer.
func TestExplainTellsTheClientWhy(t *testing.T) {
	dir := pkiDir(t)
	stale := filepath.Join(t.TempDir(), "stale-crl.pem")
	writeStaleCRL(t, dir, stale)

	servers := map[string]*proc{
		"require":   startServe(t, mtlsArgs(dir, "--explain", "--json")...),
		"allowlist": startServe(t, mtlsArgs(dir, "--explain", "--json", "--allow-cn", "alice")...),
		"stale": startServe(t, "--explain", "--json", "--cert", filepath.Join(dir, "server.pem"),
			"--key", filepath.Join(dir, "server-key.pem"), "--client-ca", filepath.Join(dir, "ca.pem"), "--crl", stale),
	}
	if rec := servers["require"].logRecord("listening"); rec["explain"] != true {
		t.Errorf("start-up line = %v, want explain=true", rec)
	}

	tests := []struct {
		server, cert, code, reason string
	}{
		{"require", "", "no-certificate", "no client certificate sent"},
		{"require", "client-expired", "expired", "client certificate expired 3 days ago (not after "},
		{"require", "client-not-yet-valid", "not-yet-valid", "client certificate not valid until "},
		{"require", "client-unknown-ca", "unknown-authority", "signed by an unknown authority: issuer CN=seclisten Other CA"},
		{"require", "client-wrong-eku", "wrong-eku", "certificate lacks clientAuth extended key usage (has serverAuth)"},
		{"require", "client-revoked", "revoked", "revoked (serial 0x"},
		{"allowlist", "client", "not-allowed", "CN=client is not in the allowed common names"},
		{"stale", "client", "crl-stale", "CRL of " + devCA + " is stale"},
	}
	// Refusals per server and code among the subtests that ran, so that
	// each subtest waits for its own reject event, alone or not.
	rejects := map[string]int{}
	ran := map[string]bool{}
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		for _, tt := range tests {
			name := tt.cert
			if name == "" {
				name = "no certificate"
			}
			p := servers[tt.server]
			t.Run(version+"/"+tt.server+"/"+name, func(t *testing.T) {
				ran[tt.server] = true
				rejects[tt.server+" "+tt.code]++
				want := rejects[tt.server+" "+tt.code]
				out, errOut := pipedSClient(t, p.addr, append(certArgs(dir, tt.cert), version)...)
				line, rest, _ := strings.Cut(out, "\n")
				if !strings.Contains(line, tt.reason) {
					t.Errorf("s_client printed %q, want the verdict %q; stderr:\n%s", line, tt.reason, errOut)
				}
				// A client without a certificate is told which CAs were
				// asked for; any other, which the server trusts.
				suffix := "; the server trusts " + devCA
				if tt.code == "no-certificate" {
					suffix = "; the server asked for one issued by " + devCA
				}
				if !strings.HasPrefix(line, "error: refused: ") || !strings.HasSuffix(line, suffix) {
					t.Errorf("s_client printed %q, want error: refused: ...%s", line, suffix)
				}
				if rest != "" {
					t.Errorf("s_client printed %q after the refusal, want nothing", rest)
				}
				p.await("a reject event with code "+tt.code, func() bool {
					return strings.Count(p.stdout.String(), `"event":"reject"`) >= 1 &&
						strings.Count(p.stdout.String(), `"code":"`+tt.code+`"`) >= want
				})
			})
		}
	}
	for name, p := range servers {
		if !ran[name] {
			continue
		}
		// Every refusal's reject event came first (awaited above): what the
		// clients sent would have been printed before it.
		if strings.Contains(p.stdout.String(), `"event":"message"`) || strings.Contains(p.stdout.String(), `"hi"`) {
			t.Errorf("%s server printed what a refused client sent:\n%s", name, p.stdout.String())
		}
		rec := p.waitLog("client certificate refused", 1)
		if rec["level"] != "WARN" {
			t.Errorf("refusal logged at %v, want WARN", rec["level"])
		}
	}

	// A good certificate is served as without --explain.
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		exchangeWith(t, servers["require"].addr, "hello", defaultReply, append(certArgs(dir, "client"), version)...)
	}
}

// verify-if-given with --explain still serves a client without a
// certificate, and refuses one with a bad certificate.
func TestExplainVerifyIfGiven(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, "--explain", "--client-auth", "verify-if-given")...)
	exchangeWith(t, p.addr, "anonymous", defaultReply, certArgs(dir, "")...)
	out, errOut := pipedSClient(t, p.addr, certArgs(dir, "client-expired")...)
	if !strings.HasPrefix(out, "error: refused: client certificate expired 3 days ago") {
		t.Errorf("s_client printed %q; stderr:\n%s", out, errOut)
	}
}

// A refused client that keeps sending is not read: it gets its line and a
// close_notify, and the server closes the connection all the same.
func TestExplainClosesAClientThatKeepsSending(t *testing.T) {
	dir := pkiDir(t)
	p := startServe(t, mtlsArgs(dir, "--explain", "--write-timeout", "1s")...)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client-expired.pem"), filepath.Join(dir, "client-expired-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(dial(t, p.addr), &tls.Config{RootCAs: x509Pool(t, filepath.Join(dir, "ca.pem")),
		ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	wrote := make(chan error, 1)
	go func() {
		spam := []byte(strings.Repeat("spam\n", 1000))
		for {
			if _, err := conn.Write(spam); err != nil {
				wrote <- err
				return
			}
		}
	}()
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "error: refused: client certificate expired") {
		t.Fatalf("read %q, %v; want the refusal", line, err)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Errorf("after the refusal: %v, want EOF (close_notify)", err)
	}
	select {
	case <-wrote:
	case <-time.After(hangGuard):
		t.Fatalf("a client still sending after the refusal was not closed in %s", hangGuard)
	}
	p.waitLog("client certificate refused", 1)
	if strings.Contains(p.stdout.String(), "spam") {
		t.Errorf("the server printed what a refused client sent")
	}
}

// pipedSClient runs `echo hi | openssl s_client -quiet -connect addr` with
// extra args, as a developer would, and returns what it printed once it
// exits (within the hang guard). Output collects all of stdout before it
// returns, so nothing the server sent is lost to a race with Wait.
func pipedSClient(t *testing.T, addr string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", addr, "-quiet"}, args...)...)
	cmd.Stdin = strings.NewReader("hi\n")
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("s_client still running after %s; stderr:\n%s", hangGuard, errBuf.String())
	}
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("run openssl s_client (is openssl installed? make test installs it): %v", err)
	}
	return string(out), errBuf.String()
}

// writeStaleCRL writes to file an empty CRL of the PKI in dir whose next
// update is an hour past.
func writeStaleCRL(t *testing.T, dir, file string) {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	data, err := ca.CRL(pki.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
