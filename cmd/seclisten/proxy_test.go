package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from a given loopback source address
// (127.0.0.2, 127.0.0.3, ... act as distinct clients).
func dialFrom(t testing.TB, src, addr string) (*net.TCPConn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), nil
}

// exchangeRaw sends a line on c and returns the reply line, or an error if
// the connection was closed first (or after the hang guard).
func exchangeRaw(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// readRefusal reads the line a refused client is sent, without writing
// first: the server closes a refused connection at once, and a write of the
// client's could meet the reset that close sends for unread input before
// the client reads what it was told.
func readRefusal(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// A trusted proxy's header gives the real client: it is printed, and the
// per-IP limits count it. Untrusted peers and malformed headers are refused
// and logged.
func TestProxyProtocolDirect(t *testing.T) {
	p := startServer(t, "--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--max-conns-per-ip", "1",
		"--reject-log-interval", "200ms")

	// v1 header from the trusted proxy, with the client's bytes in the
	// same segment.
	a, err := dialFrom(t, "127.0.0.1", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(a, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\r\n")
	if got, err := exchangeRaw(a, "hello from behind"); err != nil || got != defaultReply {
		t.Fatalf("reply %q, %v", got, err)
	}
	lines := p.stdoutLines(1)
	if len(lines) != 1 || lines[0] != "[203.0.113.7:5555] hello from behind" {
		t.Errorf("stdout = %q, want the client's address from the header", lines)
	}

	// A second connection of the same real client hits --max-conns-per-ip
	// 1 (a is still open); another client is served.
	b, _ := dialFrom(t, "127.0.0.1", p.addr)
	fmt.Fprint(b, "PROXY TCP4 203.0.113.7 127.0.0.1 5556 443\r\n")
	if got, _ := readRefusal(b); got != refusedCapLine {
		t.Errorf("second connection of 203.0.113.7: reply %q despite --max-conns-per-ip 1, want the refusal line", got)
	}
	rec := p.waitLog("refused connection", 1)
	if rec["from"] != "203.0.113.7" || rec["reason"] != "per-ip-cap" {
		t.Errorf("refusal log = %v", rec)
	}
	c, _ := dialFrom(t, "127.0.0.1", p.addr)
	// v2 binary header for 198.51.100.9:4242.
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + "\xc6\x33\x64\x09" + "\x7f\x00\x00\x01" + "\x10\x92" + "\x01\xbb")
	c.Write(v2)
	if got, err := exchangeRaw(c, "v2 client"); err != nil || got != defaultReply {
		t.Fatalf("v2: reply %q, %v", got, err)
	}
	if lines := p.stdoutLines(2); len(lines) != 2 || lines[1] != "[198.51.100.9:4242] v2 client" {
		t.Errorf("stdout = %q", lines)
	}

	// Malformed header from the trusted proxy.
	d, _ := dialFrom(t, "127.0.0.1", p.addr)
	fmt.Fprint(d, "PROXY GARBAGE\r\n")
	if _, err := exchangeRaw(d, "x"); err == nil {
		t.Errorf("malformed header served")
	}
	// No header at all from the trusted proxy.
	e, _ := dialFrom(t, "127.0.0.1", p.addr)
	if _, err := exchangeRaw(e, "no header"); err == nil {
		t.Errorf("headerless connection from the proxy served")
	}
	// A header from an untrusted peer.
	f, err := dialFrom(t, "127.0.0.2", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "PROXY TCP4 192.0.2.1 127.0.0.1 1 443\r\n")
	if got, _ := readRefusal(f); got != "error: refused: this port takes connections only from trusted proxies" {
		t.Errorf("untrusted peer: reply %q, want the refusal line", got)
	}
	p.await("refusal logs", func() bool {
		var untrusted, bad int
		for _, r := range p.logRecords("refused connection") {
			switch {
			case r["reason"] == "proxy-untrusted" && r["from"] == "127.0.0.2":
				untrusted++
			case r["reason"] == "proxy-bad-header":
				bad++
			}
		}
		return untrusted == 1 && bad >= 1
	})
	if strings.Contains(p.stdout.String(), "spoof") || strings.Contains(p.stdout.String(), "192.0.2.1") {
		t.Errorf("a spoofed header reached stdout")
	}
	p.stop()
}

// HAProxy in front (mode tcp, send-proxy-v2): clients are printed with
// their own addresses, and per-IP limits apply to each client, not to the
// proxy.
func TestHAProxySendProxyV2(t *testing.T) {
	haproxy, err := osexec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not installed (make test installs Debian's haproxy): %v", err)
	}
	p := startServer(t, "--proxy-protocol", "--trusted-proxy", "127.0.0.1/32", "--max-conns-per-ip", "2",
		"--rate", "0", "--reject-log-interval", "200ms", "--limit-loopback")
	fe := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind %s
    default_backend seclisten
backend seclisten
    server s1 %s send-proxy-v2
`, fe, p.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := osexec.Command(haproxy, "-db", "-f", cfg)
	out := &lockedBuffer{}
	hp.Stdout, hp.Stderr = out, out
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hp.Process.Kill(); _ = hp.Wait() })
	waitFor(t, "haproxy listening", func() bool {
		c, err := net.DialTimeout("tcp", fe, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	var open []net.Conn
	for i := range 2 {
		c, err := dialFrom(t, "127.0.0.5", fe)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := exchangeRaw(c, fmt.Sprintf("via haproxy %d", i)); err != nil || got != defaultReply {
			t.Fatalf("client 127.0.0.5 #%d: %q, %v\nhaproxy:\n%s", i, got, err, out.String())
		}
		open = append(open, c)
	}
	// The third concurrent connection of 127.0.0.5 is refused...
	c3, _ := dialFrom(t, "127.0.0.5", fe)
	if got, _ := readRefusal(c3); got != refusedCapLine {
		t.Errorf("third connection of 127.0.0.5: reply %q despite --max-conns-per-ip 2, want the refusal line", got)
	}
	// ...while another client behind the same proxy is served.
	c4, _ := dialFrom(t, "127.0.0.6", fe)
	if got, err := exchangeRaw(c4, "other client"); err != nil || got != defaultReply {
		t.Errorf("127.0.0.6: %q, %v", got, err)
	}
	rec := p.waitLog("refused connection", 1)
	if rec["from"] != "127.0.0.5" || rec["reason"] != "per-ip-cap" {
		t.Errorf("refusal = %v, want 127.0.0.5 per-ip cap", rec)
	}
	// Releasing one slot lets the client in again.
	open[0].Close()
	waitFor(t, "a slot of 127.0.0.5 released", func() bool {
		c, err := dialFrom(t, "127.0.0.5", fe)
		if err != nil {
			return false
		}
		got, err := exchangeRaw(c, "after release")
		return err == nil && got == defaultReply
	})
	lines := strings.Join(p.stdoutLines(4), "\n")
	for _, want := range []string{"] via haproxy 0", "] via haproxy 1", "] other client", "] after release"} {
		if !strings.Contains(lines, want) {
			t.Errorf("stdout lacks %q:\n%s", want, lines)
		}
	}
	for _, l := range splitLines(lines) {
		if !strings.HasPrefix(l, "[127.0.0.5:") && !strings.HasPrefix(l, "[127.0.0.6:") {
			t.Errorf("line not printed with the client's own address: %q", l)
		}
	}
	p.stop()
}
