package main

import (
	"os/exec"
	"strings"
	"testing"
)

// sClientOutput runs openssl s_client with no input (it connects, prints the
// session, and leaves) and returns all it printed.
func sClientOutput(t *testing.T, addr string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", append([]string{"s_client", "-connect", addr}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run openssl s_client (make test installs openssl): %v", err)
	}
	return string(out)
}

// A client that sends no certificate is told which CAs the server asked
// for; with --client-ca-names hide the request names none, and the verdict
// says they are hidden.
func TestClientCANames(t *testing.T) {
	dir := pkiDir(t)
	const dev = "CN=seclisten Dev CA,O=seclisten development"

	t.Run("shown", func(t *testing.T) {
		p := startServe(t, mtlsArgs(dir)...)
		out := sClientOutput(t, p.addr, certArgs(dir, "")...)
		if !strings.Contains(out, "Acceptable client certificate CA names") || !strings.Contains(out, "CN = seclisten Dev CA") {
			t.Errorf("s_client was not asked for the dev CA:\n%s", out)
		}
		rec := p.waitLog("client certificate refused", 1)
		if want := "no client certificate sent; the server asked for one issued by " + dev; rec["reason"] != want {
			t.Errorf("reason %q, want %q", rec["reason"], want)
		}
	})

	t.Run("hidden", func(t *testing.T) {
		p := startServe(t, mtlsArgs(dir, "--client-ca-names", "hide")...)
		out := sClientOutput(t, p.addr, certArgs(dir, "")...)
		if !strings.Contains(out, "No client certificate CA names sent") || strings.Contains(out, "Acceptable client certificate CA names") {
			t.Errorf("s_client was told the CA names:\n%s", out)
		}
		rec := p.waitLog("client certificate refused", 1)
		if want := "no client certificate sent; the server asked for one without naming the CAs it trusts (their names are hidden)"; rec["reason"] != want {
			t.Errorf("reason %q, want %q", rec["reason"], want)
		}
		// Verification still holds without the names: the good client is
		// served, a foreign one refused.
		exchangeWith(t, p.addr, "hello", defaultReply, certArgs(dir, "client")...)
		sc := startSClient(t, p.addr, certArgs(dir, "client-unknown-ca")...)
		sc.send("x\n")
		if sc.wait() == 0 {
			t.Error("a client of another CA was served with the names hidden")
		}
		p.waitLogMatch("client certificate refused", "the unknown CA refused", func(r map[string]any) bool {
			return r["verdict"] == "unknown-authority"
		})
	})

	t.Run("hidden with explain", func(t *testing.T) {
		p := startServe(t, mtlsArgs(dir, "--client-ca-names", "hide", "--explain")...)
		out := sClientOutput(t, p.addr, append(certArgs(dir, "client-expired"), "-quiet")...)
		if !strings.Contains(out, "error: refused: client certificate expired") || strings.Contains(out, "the server trusts") {
			t.Errorf("the refused client read:\n%s\nwant the verdict without the CA names", out)
		}
		out = sClientOutput(t, p.addr, append(certArgs(dir, ""), "-quiet")...)
		if !strings.Contains(out, "error: refused: no client certificate sent; the server asked for one without naming the CAs it trusts (their names are hidden)") {
			t.Errorf("the client without a certificate read:\n%s", out)
		}
	})
}
