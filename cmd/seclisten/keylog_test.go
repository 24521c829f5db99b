package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --keylog writes the NSS key log (TLS 1.2 and 1.3) to a new file of mode
// 0600, says so in the log, and marks every handshake.
func TestKeyLog(t *testing.T) {
	dir := pkiDir(t)
	keys := filepath.Join(t.TempDir(), "keys.log")
	p := startServe(t, "--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--keylog", keys)
	if rec := p.waitLog("writing TLS session keys: anyone who reads the file can decrypt the traffic it covers", 1); rec["keylog"] != keys {
		t.Errorf("warning %v, want the file named", rec)
	}
	exchangeWith(t, p.addr, "one", defaultReply, append(certArgs(dir, ""), "-tls1_3")...)
	exchangeWith(t, p.addr, "two", defaultReply, append(certArgs(dir, ""), "-tls1_2")...)
	for _, rec := range []map[string]any{p.waitLog("handshake", 1), p.waitLog("handshake", 2)} {
		if rec["keylog"] != true {
			t.Errorf("handshake record without keylog=true: %v", rec)
		}
	}
	fi, err := os.Stat(keys)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key log mode %04o, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_TRAFFIC_SECRET_0 ", "CLIENT_RANDOM "} {
		if !strings.Contains(string(data), "\n"+label) && !strings.HasPrefix(string(data), label) {
			t.Errorf("key log has no %s line:\n%s", label, data)
		}
	}
}

// A key log file that others can read is refused at start; a private one is
// appended to.
func TestKeyLogFileModes(t *testing.T) {
	dir := pkiDir(t)
	args := func(f string) []string {
		return []string{"serve", "--addr", "127.0.0.1:0", "--cert", filepath.Join(dir, "server.pem"),
			"--key", filepath.Join(dir, "server-key.pem"), "--keylog", f}
	}
	open := filepath.Join(t.TempDir(), "open.log")
	if err := os.WriteFile(open, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := seclistenCmd(t, args(open)...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `seclisten: key log "`+open+`" has mode 0644: others could read the session keys; use a new file, or chmod 600 it`) {
		t.Errorf("a readable key log: %v\n%s", err, out)
	}

	private := filepath.Join(t.TempDir(), "private.log")
	if err := os.WriteFile(private, []byte("# earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, args(private)[3:]...)
	exchangeWith(t, p.addr, "hi", defaultReply, certArgs(dir, "")...)
	p.waitLog("handshake", 1)
	data, err := os.ReadFile(private)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# earlier\n") || !strings.Contains(string(data), "CLIENT_HANDSHAKE_TRAFFIC_SECRET ") {
		t.Errorf("private key log not appended to:\n%s", data)
	}
}
