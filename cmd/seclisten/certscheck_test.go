package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// certs check gives, offline, the verdict a server with the same settings
// gives: for every certificate of certs/FILES.md, with the same codes and
// words, exit status 0 when served and 1 when refused.
func TestCertsCheck(t *testing.T) {
	dir := pkiDir(t)
	files, err := os.ReadFile(filepath.Join(dir, "FILES.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		code int
		line string // regular expression for the verdict line
	}{
		// The CA's own certificate is a trusted root with no usage limits:
		// a server serves it as a client certificate (it needs the CA key).
		"ca.pem":                   {0, `^served: ok: client certificate verified \(expires in \d+ days\)$`},
		"server.pem":               {1, `^refused: wrong-eku: certificate lacks clientAuth extended key usage \(has serverAuth\)$`},
		"client.pem":               {0, `^served: ok: client certificate verified \(expires in \d+ days\)$`},
		"client-expired.pem":       {1, `^refused: expired: client certificate expired 3 days ago \(not after .*\)$`},
		"client-not-yet-valid.pem": {1, `^refused: not-yet-valid: client certificate not valid until .*$`},
		"client-unknown-ca.pem":    {1, `^refused: unknown-authority: signed by an unknown authority: issuer CN=seclisten Other CA.*$`},
		"client-wrong-eku.pem":     {1, `^refused: wrong-eku: certificate lacks clientAuth extended key usage \(has serverAuth\)$`},
		"client-revoked.pem":       {1, `^refused: revoked: revoked \(serial 0x[0-9a-f]+, CRL of CN=seclisten Dev CA.*\)$`},
		"other-ca.pem":             {1, `^refused: unknown-authority: .*$`},
	}
	listed := regexp.MustCompile(`(?m)^\| ([a-z-]+\.pem)`).FindAllStringSubmatch(string(files), -1)
	if len(listed) < len(want) {
		t.Fatalf("FILES.md lists %d files, want at least %d", len(listed), len(want))
	}
	for _, m := range listed {
		name := m[1]
		if name == "crl.pem" {
			continue
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("FILES.md lists %s, which this test does not check", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			cmd := seclistenCmd(t, "certs", "check", filepath.Join(dir, name),
				"--client-ca", filepath.Join(dir, "ca.pem"), "--crl", filepath.Join(dir, "crl.pem"))
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != w.code {
				t.Errorf("exit status %d, want %d\n%s", code, w.code, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 2 || !strings.HasPrefix(lines[0], "certificate: ") || !regexp.MustCompile(w.line).MatchString(lines[1]) {
				t.Errorf("output:\n%s\nwant a certificate line, then one matching %s", out, w.line)
			}
		})
	}
}

// certs check's bad inputs: one sentence on stderr, exit status 2.
func TestCertsCheckBadInput(t *testing.T) {
	dir := pkiDir(t)
	f := func(n string) string { return filepath.Join(dir, n) }
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no argument", []string{"--client-ca", f("ca.pem")}, "seclisten: certs check takes one argument, the client certificate file\n"},
		{"no client CA", []string{f("client.pem")}, "seclisten: certs check needs --client-ca: the CAs the server trusts\n"},
		{"malformed CA file", []string{f("client.pem"), "--client-ca", f("crl.pem")}, `seclisten: load client CA "` + f("crl.pem") + `": no PEM certificate found` + "\n"},
		{"malformed CRL", []string{f("client.pem"), "--client-ca", f("ca.pem"), "--crl", f("ca.pem")}, `seclisten: load CRL "` + f("ca.pem") + `": PEM block "CERTIFICATE" is not an X509 CRL` + "\n"},
		{"malformed certificate", []string{garbage, "--client-ca", f("ca.pem")}, "seclisten: " + garbage + ": certificate 1 does not parse: "},
		{"missing certificate", []string{f("nope.pem"), "--client-ca", f("ca.pem")}, "seclisten: read " + f("nope.pem") + ": open "},
		{"malformed key", []string{f("client.pem"), "--key", f("ca.pem"), "--client-ca", f("ca.pem")}, "seclisten: " + f("ca.pem") + ": tls: found a certificate rather than a key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := seclistenCmd(t, append([]string{"certs", "check"}, tt.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", stderr.String(), tt.want)
			}
		})
	}
	// A key that parses but is another certificate's: refused, exit 1.
	cmd := seclistenCmd(t, "certs", "check", f("client.pem"), "--key", f("client-expired-key.pem"), "--client-ca", f("ca.pem"))
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "does not match the certificate") {
		t.Errorf("mismatched key: exit %d, output %q", code, out)
	}
}
