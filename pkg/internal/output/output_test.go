package output_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/sanitize"
)

// hostile holds what a client can put in a message, a peer name or a
// certificate to attack a terminal or a log parser.
const hostile = "a\x1b[31mred\x1b]0;title\x07 \u009b2J \u202eevil\u2066 \xff\xfe \"quoted\" back\\slash\r\nnext\x00\x7f\u2028end"

func san(s string) string { return sanitize.String([]byte(s)) }

// lines splits output into lines, failing if it does not end in a newline.
func lines(t *testing.T, out []byte) []string {
	t.Helper()
	if len(out) == 0 {
		return nil
	}
	if out[len(out)-1] != '\n' {
		t.Fatalf("output %q does not end in a newline", out)
	}
	return strings.Split(string(out[:len(out)-1]), "\n")
}

// checkSafe fails if line holds anything a terminal would interpret:
// control bytes, C1 controls, bidirectional or invisible characters,
// invalid UTF-8.
func checkSafe(t *testing.T, line string) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Errorf("line is not valid UTF-8: %q", line)
	}
	for _, r := range line {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			t.Errorf("control character %U in %q", r, line)
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
			r == 0x2028, r == 0x2029, r == 0xfeff:
			t.Errorf("invisible or bidirectional character %U in %q", r, line)
		}
	}
}

// decode parses one JSON line.
func decode(t *testing.T, line string) map[string]any {
	t.Helper()
	checkSafe(t, line)
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after JSON object in %q", line)
	}
	return m
}

func TestJSONEvents(t *testing.T) {
	notBefore := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	id := &identity.Identity{
		Name:        "CN=alice",
		Subject:     "CN=alice,O=Org",
		Issuer:      "CN=CA",
		DNSNames:    []string{"alice.example"},
		IPs:         []string{"192.0.2.1"},
		URIs:        []string{"spiffe://example.org/alice"},
		Emails:      []string{"alice@example.org"},
		Serial:      "0x1f",
		Fingerprint: strings.Repeat("ab", 32),
		NotBefore:   notBefore,
		NotAfter:    notBefore.AddDate(1, 0, 0),
	}
	wantCert := map[string]any{
		"name": "CN=alice", "subject": "CN=alice,O=Org", "issuer": "CN=CA",
		"sans":   []any{"DNS:alice.example", "IP:192.0.2.1", "URI:spiffe://example.org/alice", "email:alice@example.org"},
		"serial": "0x1f", "sha256": strings.Repeat("ab", 32),
		"not_before": "2025-01-02T03:04:05Z", "not_after": "2026-01-02T03:04:05Z",
	}
	hello := clienthello.New(&tls.ClientHelloInfo{CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256},
		SupportedVersions: []uint16{tls.VersionTLS13}, SupportedCurves: []tls.CurveID{tls.X25519},
		SignatureSchemes: []tls.SignatureScheme{tls.Ed25519}, SupportedProtos: []string{"\x1b[2J"}, ServerName: "example.com"})
	tests := []struct {
		name  string
		event func(c *output.Conn)
		want  map[string]any // besides time, conn_id and peer
	}{
		{"connect", func(c *output.Conn) { c.Connect("192.0.2.9:5555", addr("127.0.0.1:8443")) },
			map[string]any{"event": "connect", "remote_addr": "192.0.2.9:5555", "local_addr": "127.0.0.1:8443"}},
		{"message", func(c *output.Conn) { c.Message([]byte("hello")) },
			map[string]any{"event": "message", "text": "hello", "bytes": json.Number("5")}},
		{"empty message", func(c *output.Conn) { c.Message(nil) },
			map[string]any{"event": "message", "text": "", "bytes": json.Number("0")}},
		{"reply", func(c *output.Conn) { c.Reply([]byte("ok\n")) },
			map[string]any{"event": "reply", "text": `ok\n`, "bytes": json.Number("3")}},
		{"close", func(c *output.Conn) {
			c.Close(output.Summary{Reason: outcome.ClientClosed, Messages: 3, BytesIn: 10, BytesOut: 9, Duration: 1500 * time.Microsecond})
		}, map[string]any{"event": "close", "reason": "client-closed", "messages": json.Number("3"), "bytes_in": json.Number("10"),
			"bytes_out": json.Number("9"), "duration_ms": json.Number("1.500")}},
		{"handshake", func(c *output.Conn) {
			c.Handshake(&output.Facts{Identity: "CN=alice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3",
				Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519MLKEM768", ALPN: "seclisten", SNI: "localhost", Resumed: true,
				ClientAuth: "require"}, Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id})
		}, map[string]any{"event": "handshake", "identity": "CN=alice", "remote_addr": "192.0.2.9:5555", "tls_version": "TLS 1.3", "cipher": "TLS_AES_128_GCM_SHA256",
			"group": "X25519MLKEM768", "alpn": "seclisten", "sni": "localhost", "resumed": true, "client_auth": "require",
			"verdict": "ok", "verdict_text": "client certificate verified", "client_cert": wantCert}},
		{"handshake without client auth", func(c *output.Conn) {
			c.Handshake(&output.Facts{Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555",
				TLS: &output.TLS{Version: "TLS 1.2", Cipher: "x", Group: "-", ClientAuth: "none"}})
		}, map[string]any{"event": "handshake", "identity": "192.0.2.9:5555", "remote_addr": "192.0.2.9:5555", "tls_version": "TLS 1.2", "cipher": "x", "group": "-", "alpn": "",
			"sni": "", "resumed": false, "client_auth": "none"}},
		{"handshake with ClientHello", func(c *output.Conn) {
			c.Handshake(&output.Facts{Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555",
				TLS: &output.TLS{Version: "TLS 1.3", Cipher: "x", Group: "-", ClientAuth: "none"}, Hello: hello})
		}, map[string]any{"event": "handshake", "identity": "192.0.2.9:5555", "remote_addr": "192.0.2.9:5555", "tls_version": "TLS 1.3",
			"cipher": "x", "group": "-", "alpn": "", "sni": "", "resumed": false, "client_auth": "none",
			"hello_versions": []any{"TLS 1.3"}, "hello_suites": []any{"TLS_AES_128_GCM_SHA256"}, "hello_groups": []any{"X25519"},
			"hello_sig_schemes": []any{"Ed25519"}, "hello_alpn": []any{`\x1b[2J`}, "hello_sni": "example.com", "ja4": hello.JA4}},
		{"reject with ClientHello", func(c *output.Conn) { c.Reject(outcome.NoALPN, "no common ALPN protocol", hello, nil) },
			map[string]any{"event": "reject", "code": "no-alpn", "reason": "no common ALPN protocol",
				"hello_versions": []any{"TLS 1.3"}, "hello_suites": []any{"TLS_AES_128_GCM_SHA256"}, "hello_groups": []any{"X25519"},
				"hello_sig_schemes": []any{"Ed25519"}, "hello_alpn": []any{`\x1b[2J`}, "hello_sni": "example.com", "ja4": hello.JA4}},
		{"reject", func(c *output.Conn) { c.Reject(outcome.Revoked, "revoked (serial 0x1f, CRL of CN=CA)", nil, id) },
			map[string]any{"event": "reject", "code": "revoked", "reason": "revoked (serial 0x1f, CRL of CN=CA)",
				"client_cert": wantCert}},
		{"reject without certificate", func(c *output.Conn) { c.Reject(outcome.HandshakeTimeout, "handshake timed out", nil, nil) },
			map[string]any{"event": "reject", "code": "handshake-timeout", "reason": "handshake timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := output.New(&buf, output.JSON)
			if !p.JSON() {
				t.Error("JSON() = false")
			}
			before := time.Now().Add(-time.Second)
			tt.event(p.Conn(42, "192.0.2.9:5555"))
			p.Flush()
			ls := lines(t, buf.Bytes())
			if len(ls) != 1 {
				t.Fatalf("%d lines: %q", len(ls), ls)
			}
			m := decode(t, ls[0])
			ts, err := time.Parse(time.RFC3339Nano, m["time"].(string))
			if err != nil || ts.Before(before) || ts.After(time.Now().Add(time.Second)) || ts.Location() != time.UTC {
				t.Errorf("time %v (%v)", m["time"], err)
			}
			if m["conn_id"] != json.Number("42") || m["peer"] != "192.0.2.9:5555" {
				t.Errorf("conn_id %v peer %v", m["conn_id"], m["peer"])
			}
			delete(m, "time")
			delete(m, "conn_id")
			delete(m, "peer")
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("got  %v\nwant %v", m, tt.want)
			}
			// The keys come in a fixed order, time and event first.
			if !strings.HasPrefix(ls[0], `{"time":"`) || !strings.Contains(ls[0], `","event":"`) {
				t.Errorf("line %s", ls[0])
			}
		})
	}
}

// hostileCert is a real certificate whose names carry hostile text.
func hostileCert(t *testing.T) *x509.Certificate {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "CA \u202e\x1b[0m"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse("spiffe://example.org/%1B%5B31m")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(99),
		Subject:        pkix.Name{CommonName: "evil\x1b[2J\u009b\u202e\"\\\nname", OrganizationalUnit: []string{"ou\u2066x"}},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		DNSNames:       []string{"evil\x1b.example", "x\n.example"},
		EmailAddresses: []string{"a\x07@example.org"},
		URIs:           []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJSONHostile(t *testing.T) {
	realID := identity.FromCertificate(hostileCert(t))
	madeID := identity.Identity{
		Name: hostile, Subject: hostile, Issuer: hostile,
		DNSNames: []string{hostile}, IPs: []string{hostile}, URIs: []string{hostile}, Emails: []string{hostile},
		Serial: hostile, Fingerprint: hostile,
	}
	for _, tc := range []struct {
		name string
		id   identity.Identity
	}{{"real certificate", realID}, {"made identity", madeID}} {
		id := tc.id
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := output.New(&buf, output.JSON)
			c := p.Conn(1, hostile)
			c.Connect(hostile, addr(hostile))
			c.Message([]byte(hostile))
			c.Reply([]byte(hostile))
			c.Handshake(&output.Facts{Identity: hostile, Remote: hostile, TLS: &output.TLS{Version: hostile, Cipher: hostile,
				Group: hostile, ALPN: hostile, SNI: hostile, ClientAuth: hostile}, Verdict: outcome.Code(hostile),
				VerdictText: hostile, Cert: &id})
			c.Reject(outcome.Code(hostile), hostile, nil, &id)
			c.SetPeer(id.Name)
			c.Close(output.Summary{Reason: outcome.Code(hostile)})
			p.Flush()
			ls := lines(t, buf.Bytes())
			if len(ls) != 6 {
				t.Fatalf("%d lines, want 6: %q", len(ls), ls)
			}
			want := san(hostile)
			for i, l := range ls {
				m := decode(t, l)
				// Every client-supplied string reads back as its
				// sanitized form: escaped once, never raw.
				var fields []string
				switch m["event"] {
				case "connect":
					fields = []string{"peer", "remote_addr", "local_addr"}
				case "message", "reply":
					fields = []string{"peer", "text"}
				case "handshake":
					fields = []string{"identity", "remote_addr", "tls_version", "cipher", "group", "alpn", "sni", "client_auth", "verdict", "verdict_text"}
				case "reject":
					fields = []string{"code", "reason"}
				case "close":
					fields = []string{"reason"}
					if m["peer"] != san(id.Name) {
						t.Errorf("close peer %q, want %q", m["peer"], san(id.Name))
					}
				default:
					t.Fatalf("line %d: event %v", i, m["event"])
				}
				for _, f := range fields {
					if m[f] != want {
						t.Errorf("%v %s = %q, want %q", m["event"], f, m[f], want)
					}
				}
				if m["event"] == "message" && m["bytes"] != json.Number(fmt.Sprint(len(hostile))) {
					t.Errorf("bytes %v, want the raw length %d", m["bytes"], len(hostile))
				}
				if cc, ok := m["client_cert"].(map[string]any); ok {
					if cc["name"] != san(id.Name) || cc["subject"] != san(id.Subject) || cc["issuer"] != san(id.Issuer) {
						t.Errorf("client_cert %v", cc)
					}
					sans := id.SANs()
					got, _ := cc["sans"].([]any)
					if len(got) != len(sans) {
						t.Fatalf("sans %v, want %d", got, len(sans))
					}
					for j, s := range sans {
						if got[j] != san(s) {
							t.Errorf("san %d = %q, want %q", j, got[j], san(s))
						}
					}
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	p := output.New(&buf, output.Text)
	if p.JSON() {
		t.Error("JSON() = true in text mode")
	}
	c := p.Conn(7, "192.0.2.1:4000")
	id := &identity.Identity{Name: "CN=alice"}
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"connect prints nothing", func() { c.Connect("a", addr("b")) }, ""},
		{"handshake prints nothing", func() { c.Handshake(&output.Facts{TLS: &output.TLS{Version: "TLS 1.3"}, Cert: id}) }, ""},
		{"message", func() { c.Message([]byte("hello world")) }, "[192.0.2.1:4000] hello world\n"},
		{"empty message", func() { c.Message(nil) }, "[192.0.2.1:4000] \n"},
		{"reply prints nothing", func() { c.Reply([]byte("ok")) }, ""},
		{"set peer", func() { c.SetPeer("CN=alice 192.0.2.1:4000"); c.Message([]byte("hi")) }, "[CN=alice 192.0.2.1:4000] hi\n"},
		{"shorter peer", func() { c.SetPeer("x"); c.Message([]byte("hi")) }, "[x] hi\n"},
		{"hostile message", func() { c.Message([]byte(hostile)) }, "[x] " + san(hostile) + "\n"},
		{"hostile peer", func() { c.SetPeer(hostile); c.Message([]byte("m")) }, "[" + san(hostile) + "] m\n"},
		{"reject prints nothing", func() { c.Reject(outcome.Revoked, "x", nil, id) }, ""},
		{"close prints nothing", func() { c.Close(output.Summary{Reason: outcome.ClientClosed}) }, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			buf.Reset()
			s.do()
			p.Flush()
			if got := buf.String(); got != s.want {
				t.Errorf("output %q, want %q", got, s.want)
			}
			for _, l := range lines(t, buf.Bytes()) {
				checkSafe(t, l)
			}
		})
	}
}

// lineWriter records each Write, and fails on overlapping writes.
type lineWriter struct {
	active atomic.Int32
	mu     sync.Mutex
	writes []string
	t      *testing.T
}

func (w *lineWriter) Write(b []byte) (int, error) {
	if w.active.Add(1) != 1 {
		w.t.Error("concurrent Write calls")
	}
	defer w.active.Add(-1)
	w.mu.Lock()
	w.writes = append(w.writes, string(b))
	w.mu.Unlock()
	return len(b), nil
}

func TestConcurrent(t *testing.T) {
	const goroutines, each = 50, 40
	for _, tc := range []struct {
		name   string
		format output.Format
	}{{"text", output.Text}, {"JSON", output.JSON}} {
		format := tc.format
		t.Run(tc.name, func(t *testing.T) {
			w := &lineWriter{t: t}
			p := output.New(w, format)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					c := p.Conn(uint64(g), fmt.Sprintf("peer-%d", g))
					for i := range each {
						// Lengths vary so lines cross the buffers' ends.
						c.Message([]byte(fmt.Sprintf("g%d-m%d-%s", g, i, strings.Repeat("x", (g*i)%300))))
						c.Reply([]byte("ok"))
					}
				})
			}
			wg.Wait()
			p.Flush()
			seen := make(map[string]bool)
			next := make(map[int]int) // each goroutine's next message
			for _, wr := range w.writes {
				// A Write holds whole lines, one or more.
				for _, l := range lines(t, []byte(wr)) {
					var peer, text string
					if format == output.JSON {
						m := decode(t, l)
						if m["event"] == "reply" {
							continue
						}
						peer, text = m["peer"].(string), m["text"].(string)
					} else {
						var ok bool
						peer, text, ok = strings.Cut(strings.TrimPrefix(l, "["), "] ")
						if !ok {
							t.Fatalf("line %q", l)
						}
					}
					var g, i int
					if _, err := fmt.Sscanf(text, "g%d-m%d-", &g, &i); err != nil || peer != fmt.Sprintf("peer-%d", g) {
						t.Fatalf("line %q: peer %q, text %q (%v)", l, peer, text, err)
					}
					if want := fmt.Sprintf("g%d-m%d-%s", g, i, strings.Repeat("x", (g*i)%300)); text != want {
						t.Fatalf("text %q, want %q", text, want)
					}
					if i != next[g] {
						t.Fatalf("goroutine %d: message %d printed after %d", g, i, next[g]-1)
					}
					next[g]++
					seen[text] = true
				}
			}
			if len(seen) != goroutines*each {
				t.Errorf("%d distinct messages, want %d", len(seen), goroutines*each)
			}
		})
	}
}

// formats are the printer's two formats, by name.
var formats = []struct {
	name   string
	format output.Format
}{{"text", output.Text}, {"json", output.JSON}}

func BenchmarkMessage(b *testing.B) {
	msg := []byte("a typical line of text sent by a client, with some\ttabs and é")
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			c := output.New(io.Discard, f.format).Conn(1, "CN=alice 192.0.2.1:4000")
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				c.Message(msg)
			}
		})
	}
}

// TestFactsBounded checks that every string and list the client controls
// is bounded in all three renderings, with what was dropped counted.
func TestFactsBounded(t *testing.T) {
	esc := strings.Repeat("\x1b", 60000)
	names := make([]string, 100)
	for i := range names {
		names[i] = "n.example"
	}
	names[0] = esc
	protos := make([]string, 1000)
	for i := range protos {
		protos[i] = esc[:200]
	}
	f := &output.Facts{Identity: esc, Remote: "192.0.2.9:5555",
		TLS:   &output.TLS{Version: "TLS 1.3", ALPN: esc, SNI: esc, ClientAuth: "request"},
		Cert:  &identity.Identity{Name: esc, Subject: esc, DNSNames: names},
		Hello: clienthello.New(&tls.ClientHelloInfo{ServerName: esc, SupportedProtos: protos, CipherSuites: make([]uint16, 30000)}),
	}
	// 256 bytes escaped to four times as many, a few dozen facts, lists
	// of 33 entries: far below the megabytes the client sent.
	const most = 96 << 10
	var buf bytes.Buffer
	p := output.New(&buf, output.JSON)
	p.Conn(1, "x").Handshake(f)
	p.Flush()
	for _, r := range []struct{ name, s string }{
		{"JSON event", buf.String()},
		{"report", f.Report(false)},
		{"JSON report", f.Report(true)},
		{"attrs", fmt.Sprint(f.Attrs()...)},
	} {
		if len(r.s) > most {
			t.Errorf("%s is %d bytes", r.name, len(r.s))
		}
		for _, want := range []string{"(+59744 bytes)", "(+68 more)", "(+968 more)", "(+29968 more)"} {
			if !strings.Contains(r.s, want) {
				t.Errorf("%s does not say %q", r.name, want)
			}
		}
		if strings.Contains(r.s, "\x1b") {
			t.Errorf("%s holds a raw escape byte", r.name)
		}
	}
}

// TestMessageAllocs checks that printing a message allocates nothing in
// the steady state, in both formats: lines are built where they wait to
// be written, in buffers that are used again. The bound is half an
// allocation a message: one for every message fails it.
func TestMessageAllocs(t *testing.T) {
	msg := []byte(`a line with "quotes", a \backslash and é`)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			c := output.New(io.Discard, f.format).Conn(1, "CN=alice 192.0.2.1:4000")
			if got := testing.AllocsPerRun(1000, func() { c.Message(msg) }); got >= 0.5 {
				t.Errorf("%v allocations a message, want none", got)
			}
		})
	}
}

// addr is a local address as a listener reports it: anything its String
// says.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

var _ net.Addr = addr("")
