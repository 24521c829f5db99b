package main

import (
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
)

// handshakeGo runs a crypto/tls client handshake against addr and returns
// its error.
func handshakeGo(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg.InsecureSkipVerify = true
	tc := tls.Client(c, cfg)
	err = tc.Handshake()
	if err == nil {
		// Wait for the server's side of the handshake: TLS 1.3 clients
		// finish first.
		_, _ = tc.Write([]byte("x\n"))
		_, _ = tc.Read(make([]byte, 1))
	}
	return err
}

var ja4Format = regexp.MustCompile(`^t1[23]d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$`)

// Every handshake records what the client offered, the successful ones
// in the handshake log and event, the failed ones in the refusal's log
// line and reject event; a mismatch is told in plain words. The reject
// event is the seventh: connect, handshake, message, reply and close of
// the first connection, connect of the second.
func TestClientHelloRecorded(t *testing.T) {
	p := startServe(t, "--json", "--alpn", "seclisten")
	if err := handshakeGo(t, p.addr, &tls.Config{ServerName: "localhost", NextProtos: []string{"h2", "seclisten"}}); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	hs := p.waitLog("handshake", 1)
	if ja4, _ := hs["ja4"].(string); !ja4Format.MatchString(ja4) || hs["hello_sni"] != "localhost" {
		t.Errorf("handshake log: ja4 %v, hello_sni %v", hs["ja4"], hs["hello_sni"])
	}
	if alpn, _ := hs["hello_alpn"].([]any); len(alpn) != 2 || alpn[0] != "h2" {
		t.Errorf("handshake log: hello_alpn %v", hs["hello_alpn"])
	}
	if ev := p.stdoutLines(2)[1]; !strings.Contains(ev, `"event":"handshake"`) || !strings.Contains(ev, `"ja4":"t13d`) ||
		!strings.Contains(ev, `"hello_versions":["TLS 1.3","TLS 1.2"]`) {
		t.Errorf("handshake event %s", ev)
	}

	if err := handshakeGo(t, p.addr, &tls.Config{NextProtos: []string{"h2"}}); err == nil {
		t.Fatal("a client without a protocol in common was served")
	}
	rec := p.waitLog("handshake failed", 1)
	want := "no common ALPN protocol: the client offers [h2], the server [seclisten]"
	if rec["verdict"] != "no-alpn" || rec["reason"] != want || rec["ja4"] == nil {
		t.Errorf("log = %v, want verdict no-alpn, reason %q and the ClientHello", rec, want)
	}
	// The first connection's close event may come before or after the
	// second connection's events: find the reject among the 7.
	var ev string
	for _, l := range p.stdoutLines(7) {
		if strings.Contains(l, `"event":"reject"`) {
			ev = l
		}
	}
	if !strings.Contains(ev, `"hello_alpn":["h2"]`) {
		t.Errorf("reject event %q", ev)
	}
	p.stop()
}

// A server name of 60,000 escape bytes is refused with its own verdict,
// and the log line that says so is bounded.
func TestLongServerNameRefused(t *testing.T) {
	p := startServe(t)
	long := strings.Repeat("\x1b", 60000)
	if err := handshakeGo(t, p.addr, &tls.Config{ServerName: long}); err == nil {
		t.Fatal("a 60,000-byte server name was served")
	}
	rec := p.waitLog("handshake failed", 1)
	reason, _ := rec["reason"].(string)
	if rec["verdict"] != "bad-sni" || !strings.HasPrefix(reason,
		"client sent a server name (SNI) that is not a valid host name (60000 bytes, the most is 253)") ||
		!strings.Contains(reason, "(+59744 bytes)") {
		t.Errorf("log = %v", rec)
	}
	if sni, _ := rec["hello_sni"].(string); !strings.HasSuffix(sni, "(+59744 bytes)") {
		t.Errorf("hello_sni %q", sni)
	}
	p.stop()
	for _, line := range splitLines(p.stderr.String()) {
		if len(line) > 8<<10 {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
}
