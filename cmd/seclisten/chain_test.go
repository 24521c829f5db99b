package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// opensslChain makes, with openssl, a root, an intermediate under it and a
// client leaf under the intermediate, as a real private CA would.
func opensslChain(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext.cnf")
	if err := os.WriteFile(ext, []byte(`[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityInfoAccess = caIssuers;URI:http://ca.example/acme-intermediate.crt
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, k := range []string{"root", "inter", "leaf"} {
		run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k+"-key.pem")
	}
	run("req", "-x509", "-new", "-key", "root-key.pem", "-subj", "/CN=Acme Root", "-days", "30",
		"-extensions", "ca", "-config", ext, "-out", "root.pem")
	run("req", "-new", "-key", "inter-key.pem", "-subj", "/CN=Acme Intermediate", "-out", "inter.csr")
	run("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root-key.pem", "-CAcreateserial",
		"-days", "30", "-extfile", ext, "-extensions", "ca", "-out", "inter.pem")
	run("req", "-new", "-key", "leaf-key.pem", "-subj", "/CN=alice", "-out", "leaf.csr")
	run("x509", "-req", "-in", "leaf.csr", "-CA", "inter.pem", "-CAkey", "inter-key.pem", "-CAcreateserial",
		"-days", "30", "-extfile", ext, "-extensions", "leaf", "-out", "leaf.pem")
	return dir
}

// A client that sends its leaf without the intermediate is told so, with
// where to find the intermediate; with the intermediate (s_client
// -cert_chain) it is served.
func TestChainDoctor(t *testing.T) {
	chain := opensslChain(t)
	pkiDir := pkiDir(t)
	p := startServe(t, "--cert", filepath.Join(pkiDir, "server.pem"), "--key", filepath.Join(pkiDir, "server-key.pem"),
		"--client-ca", filepath.Join(chain, "root.pem"))
	client := []string{"-CAfile", filepath.Join(pkiDir, "ca.pem"), "-servername", "localhost",
		"-cert", filepath.Join(chain, "leaf.pem"), "-key", filepath.Join(chain, "leaf-key.pem")}

	sc := startSClient(t, p.addr, client...)
	sc.send("leaf only\n")
	if code := sc.wait(); code == 0 {
		t.Errorf("s_client exited 0 with a leaf whose chain the server cannot build")
	}
	rec := p.waitLog("client certificate refused", 1)
	for _, want := range []string{"issuer CN=Acme Intermediate is not one of the trusted CAs",
		"the client sent only its leaf", "openssl s_client -cert_chain",
		"http://ca.example/acme-intermediate.crt (AIA caIssuers)"} {
		if !strings.Contains(rec["reason"].(string), want) {
			t.Errorf("reason %q lacks %q", rec["reason"], want)
		}
	}

	exchangeWith(t, p.addr, "with chain", defaultReply, append(client, "-cert_chain", filepath.Join(chain, "inter.pem"))...)
	if lines := p.stdoutLines(1); len(lines) != 1 || !strings.HasPrefix(lines[0], "[CN=alice ") || !strings.HasSuffix(lines[0], "] with chain") {
		t.Errorf("stdout %q, want the client named CN=alice", lines)
	}
}
