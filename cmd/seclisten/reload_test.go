package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mtlsExchange opens an mTLS connection from src with the PKI's client
// certificate name, and returns a line client, or the error of the
// handshake or of the first exchange.
func mtlsExchange(t *testing.T, dir, name, src, addr, line string) (*client, string, error) {
	t.Helper()
	raw, err := dialFrom(t, src, addr)
	if err != nil {
		return nil, "", err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: x509Pool(t, filepath.Join(dir, "ca.pem")), ServerName: "localhost",
		Certificates: []tls.Certificate{cert}})
	_ = raw.SetDeadline(time.Now().Add(hangGuard))
	if err := tc.Handshake(); err != nil {
		return nil, "", err
	}
	c := &client{t: t, conn: raw, r: bufioReader(tc), w: tc}
	if _, err := tc.Write([]byte(line + "\n")); err != nil {
		return c, "", err
	}
	reply, err := c.readLine()
	return c, reply, err
}

// A reload under load: 20 clients connected and sending while the
// allowlist, a deny list and the reply change in the file. No connection
// is dropped and those in flight keep the old reply; new connections get
// the new policy: the new reply, a newly allowed certificate served, a
// newly denied address refused. A broken file then keeps the policy, logs
// its problems and counts the failure.
func TestReloadUnderLoad(t *testing.T) {
	dir := pkiDir(t)
	out, err := seclistenCmd(t, "certs", "issue", "--client", "carol", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("certs issue: %v\n%s", err, out)
	}
	policy := func(cns, deny, reply string) string {
		return fmt.Sprintf("cert = %q\nkey = %q\nclient-ca = [%q]\ncrl = %q\nallow-cn = %s\ndeny-cidr = %s\nreply = %q\n",
			filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"),
			filepath.Join(dir, "crl.pem"), cns, deny, reply)
	}
	conf := writeFile(t, "seclisten.toml", policy(`["client"]`, `[]`, "old"))
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, "--config", conf, "--metrics-addr", maddr)
	if got := p.logRecord("listening")["config"]; got != conf {
		t.Errorf("start-up line names config %v, want %s", got, conf)
	}

	// Before: carol is not allowed, 127.0.0.5 is served.
	if _, reply, err := mtlsExchange(t, dir, "carol", "127.0.0.1", p.addr, "hi"); err == nil {
		t.Fatalf("carol served before the reload (reply %q)", reply)
	}
	if _, reply, err := mtlsExchange(t, dir, "client", "127.0.0.5", p.addr, "hi"); err != nil || reply != "old" {
		t.Fatalf("127.0.0.5 before the reload: %q, %v", reply, err)
	}

	const clients, rounds = 20, 5
	conns := make([]*client, clients)
	for i := range conns {
		c, reply, err := mtlsExchange(t, dir, "client", "127.0.0.1", p.addr, fmt.Sprintf("client %d hello", i))
		if err != nil || reply != "old" {
			t.Fatalf("client %d: %q, %v", i, reply, err)
		}
		conns[i] = c
	}
	// The clients keep sending while the reload happens.
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := make(chan struct{})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := range rounds {
				if _, err := c.w.Write([]byte(fmt.Sprintf("client %d round %d\n", i, j))); err != nil {
					errs <- fmt.Errorf("client %d round %d: write: %v", i, j, err)
					return
				}
				if reply, err := c.readLine(); err != nil || reply != "old" {
					errs <- fmt.Errorf("client %d round %d: %q, %v (want the old reply)", i, j, reply, err)
					return
				}
			}
		}()
	}
	if err := os.WriteFile(conf, []byte(policy(`["client", "carol"]`, `["127.0.0.5/32"]`, "new")), 0o600); err != nil {
		t.Fatal(err)
	}
	close(start)
	if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// One line, with the diff of what changed.
	rec := p.waitLog(`reload: allow-cn ["client"] -> ["client","carol"], deny-cidr [] -> ["127.0.0.5/32"], reply "old" -> "new"`, 1)
	if rec["config"] != conf {
		t.Errorf("reload line names config %v, want %s", rec["config"], conf)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// After the reload line, each connection in flight still has the
	// policy it was admitted under.
	for i, c := range conns {
		c.send(fmt.Sprintf("client %d after the reload\n", i))
		c.expectLine("old")
		c.conn.Close()
	}

	// New connections get the new policy.
	if _, reply, err := mtlsExchange(t, dir, "client", "127.0.0.1", p.addr, "hi"); err != nil || reply != "new" {
		t.Errorf("new connection: %q, %v; want the new reply", reply, err)
	}
	if _, reply, err := mtlsExchange(t, dir, "carol", "127.0.0.1", p.addr, "hi"); err != nil || reply != "new" {
		t.Errorf("carol after the reload: %q, %v; want served", reply, err)
	}
	if _, reply, err := mtlsExchange(t, dir, "client", "127.0.0.5", p.addr, "hi"); err == nil {
		t.Errorf("127.0.0.5 served after it was denied (reply %q)", reply)
	}
	_, body := curl(t, "http://"+maddr+"/metrics")
	if v := metric(t, body, "seclisten_config_last_reload_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last reload timestamp %v", v)
	}
	if v := metric(t, body, "seclisten_reload_failures_total"); v != 0 {
		t.Errorf("reload failures %v before a bad reload", v)
	}

	// A broken file keeps the policy, logs every problem, and counts.
	if err := os.WriteFile(conf, []byte("reply = \"broken\"\nbogus = 1\nmax-conns-per-ip = \"lots\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog("reload failed: keeping the policy in service", 2)
	var problems []string
	for _, r := range p.logRecords("reload failed: keeping the policy in service") {
		problems = append(problems, r["problem"].(string))
	}
	wantProblems := []string{conf + `:2: unknown key "bogus" (the keys are the flags of seclisten serve --help)`,
		conf + `:3: max-conns-per-ip: "lots" is not a whole number`}
	if strings.Join(problems, "\n") != strings.Join(wantProblems, "\n") {
		t.Errorf("problems logged:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(wantProblems, "\n"))
	}
	waitFor(t, "the failure counted", func() bool {
		_, body = curl(t, "http://"+maddr+"/metrics")
		return metric(t, body, "seclisten_reload_failures_total") == 1
	})
	if _, reply, err := mtlsExchange(t, dir, "carol", "127.0.0.1", p.addr, "hi"); err != nil || reply != "new" {
		t.Errorf("after a broken reload: %q, %v; want the policy kept", reply, err)
	}
}

// A setting wired at start is kept, and the log says it needs a restart;
// a reload that changes nothing says so.
func TestReloadRestartOnly(t *testing.T) {
	conf := writeFile(t, "seclisten.toml", "plain = true\nmax-conns = 100\n")
	p := startServe(t, "--config", conf)
	if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog("reload: no change", 1)
	if err := os.WriteFile(conf, []byte("plain = true\nmax-conns = 200\nreply = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog("reload: max-conns changed but needs a restart; keeping 100", 1)
	p.waitLog(`reload: reply "Message received! Thank you for connecting." -> "x"`, 1)
	c := newClient(t, p.addr)
	c.send("hi\n")
	c.expectLine("x")
}

// With --reload-closes-denied, a reload closes the connections in flight
// whose client the new policy refuses: an address now denied, a
// certificate no longer allowed. The others are served on.
func TestReloadClosesDenied(t *testing.T) {
	t.Run("denied address", func(t *testing.T) {
		conf := writeFile(t, "seclisten.toml", "plain = true\nreload-closes-denied = true\n")
		p := startServe(t, "--config", conf)
		denied, kept := newClientFrom(t, "127.0.0.2", p.addr), newClientFrom(t, "127.0.0.3", p.addr)
		for _, c := range []*client{denied, kept} {
			c.send("hello\n")
			c.expectLine(defaultReply)
		}
		if err := os.WriteFile(conf, []byte("plain = true\nreload-closes-denied = true\ndeny-cidr = \"127.0.0.2/32\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		rec := p.waitLog("closed: the reloaded policy refuses this client", 1)
		if rec["code"] != "reload-denied" || rec["refused_by"] != "deny-list" || !strings.HasPrefix(rec["remote_addr"].(string), "127.0.0.2:") {
			t.Errorf("log record %v", rec)
		}
		denied.expectEOF()
		kept.send("still here\n")
		kept.expectLine(defaultReply)
	})
	t.Run("certificate no longer allowed", func(t *testing.T) {
		dir := pkiDir(t)
		policy := func(cn string) string {
			return fmt.Sprintf("cert = %q\nkey = %q\nclient-ca = [%q]\nallow-cn = [%q]\nreload-closes-denied = true\n",
				filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"), cn)
		}
		conf := writeFile(t, "seclisten.toml", policy("client"))
		p := startServe(t, "--config", conf)
		c, reply, err := mtlsExchange(t, dir, "client", "127.0.0.1", p.addr, "hello")
		if err != nil || reply != defaultReply {
			t.Fatalf("before the reload: %q, %v", reply, err)
		}
		if err := os.WriteFile(conf, []byte(policy("carol")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		rec := p.waitLog("closed: the reloaded policy refuses this client", 1)
		if rec["code"] != "reload-denied" || !strings.Contains(fmt.Sprint(rec["err"]), "CN=client") {
			t.Errorf("log record %v", rec)
		}
		if line, err := c.readLine(); err == nil {
			t.Errorf("still served after the reload: %q", line)
		}
	})
}
