package handshake_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/handshake"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/tlsconf"
	"github.com/seclisten/seclisten/pkg/verdict"
)

func TestIsTLS(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"empty", nil, false},
		{"handshake record, one byte", []byte{0x16}, true},
		{"TLS 1.0 record", []byte{0x16, 0x03, 0x01, 0x02, 0x00}, true},
		{"TLS 1.2 record", []byte{0x16, 0x03, 0x03}, true},
		{"SSL 3.0 record", []byte{0x16, 0x03, 0x00}, true},
		{"wrong major version", []byte{0x16, 0x02, 0x01}, false},
		{"alert record", []byte{0x15, 0x03, 0x03}, false},
		{"application data", []byte{0x17, 0x03, 0x03}, false},
		{"SSLv2 ClientHello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, false},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), false},
		{"text", []byte("hello\n"), false},
		{"NUL", []byte{0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := handshake.IsTLS(tt.b); got != tt.want {
				t.Errorf("IsTLS(%q) = %v, want %v", tt.b, got, tt.want)
			}
		})
	}
}

func TestIsHTTP(t *testing.T) {
	tests := []struct {
		b    string
		want bool
	}{
		{"GET / HTTP/1.1\r\n", true},
		{"HEAD / HTTP/1.0\r\n", true},
		{"POST /x HTTP/1.1", true},
		{"PUT /x", true},
		{"DELETE /x", true},
		{"OPTIONS * HTTP/1.1", true},
		{"PATCH /", true},
		{"CONNECT example.org:443 HTTP/1.1", true},
		{"TRACE /", true},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true},
		{"GET", false},
		{"GET/", false},
		{"get / HTTP/1.1", false},
		{"PRI * HTTP/1.1", false},
		{" GET /", false},
		{"hello", false},
		{"", false},
		{"\x16\x03\x01", false},
	}
	for _, tt := range tests {
		t.Run(tt.b, func(t *testing.T) {
			if got := handshake.IsHTTP([]byte(tt.b)); got != tt.want {
				t.Errorf("IsHTTP(%q) = %v, want %v", tt.b, got, tt.want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		b    string
		want string
	}{
		{"", `""`},
		{"hello", `"hello"`},
		{"GET / HTTP/1.1\r\nHost: x\r\n", `"GET / HTTP/1.1"`},
		{"first\nsecond", `"first"`},
		{"lone\rcarriage", `"lone"`},
		{"\nleading newline", `""`},
		{"tab\there", `"tab\there"`},
		{"esc \x1b[31mred", `"esc \x1b[31mred"`},
		{"nul\x00", `"nul\x00"`},
		{"back\\slash", `"back\\slash"`},
		{"bad utf-8 \xff\xfe", `"bad utf-8 \xff\xfe"`},
		{"c1 \u009b", `"c1 \u009b"`},
		{"bidi \u202eevil", `"bidi \u202eevil"`},
		{"línea 日本", `"línea 日本"`},
		{"\x16\x03\x01\x00\xa5", `"\x16\x03\x01\x00\xa5"`},
	}
	for _, tt := range tests {
		t.Run(tt.b, func(t *testing.T) {
			if got := handshake.Quote([]byte(tt.b)); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.b, got, tt.want)
			}
		})
	}
}

func TestNotTLSError(t *testing.T) {
	tests := []struct {
		name      string
		first     string
		wantErr   string
		wantReply string // prefix
	}{
		{"HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			`client sent plaintext, not a TLS ClientHello: "GET / HTTP/1.1"`, "HTTP/1.0 400 Bad Request\r\n"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
			`client sent plaintext, not a TLS ClientHello: "PRI * HTTP/2.0"`, "HTTP/1.0 400 Bad Request\r\n"},
		{"text", "hello\n", `client sent plaintext, not a TLS ClientHello: "hello"`,
			"error: this port speaks TLS: connect with TLS (openssl s_client)\n"},
		{"escape sequence", "\x1b]0;pwned\x07\n", `client sent plaintext, not a TLS ClientHello: "\x1b]0;pwned\x07"`,
			"error: this port speaks TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &handshake.NotTLSError{First: []byte(tt.first)}
			if got := e.Error(); got != tt.wantErr {
				t.Errorf("Error() = %q, want %q", got, tt.wantErr)
			}
			if got := string(e.Reply()); !strings.HasPrefix(got, tt.wantReply) {
				t.Errorf("Reply() = %q, want prefix %q", got, tt.wantReply)
			}
		})
	}
	// The HTTP reply is a complete response a browser or curl shows.
	reply := (&handshake.NotTLSError{First: []byte("GET / HTTP/1.1\r\n")}).Reply()
	if !bytes.Contains(reply, []byte("\r\n\r\nClient sent an HTTP request to a TLS server.\n")) ||
		!bytes.Contains(reply, []byte("Connection: close\r\n")) {
		t.Errorf("HTTP reply %q", reply)
	}
}

// shortConn is a net.Conn whose reads return fixed results: n zero bytes
// and err.
type shortConn struct {
	net.Conn
	n   int
	err error
}

func (c shortConn) Read(b []byte) (int, error) {
	clear(b[:c.n])
	return c.n, c.err
}

func TestPeek(t *testing.T) {
	tests := []struct {
		name      string
		send      []byte
		wantFirst int // how many bytes Peek returns
	}{
		{"short", []byte("hi\n"), 3},
		{"exactly 64", bytes.Repeat([]byte("a"), 64), 64},
		{"longer than 64", bytes.Repeat([]byte("0123456789"), 20), 64},
		// A whole ClientHello comes in the first read; more than the
		// first read takes comes from the connection after it.
		{"a ClientHello's size", bytes.Repeat([]byte("0123456789"), 300), 64},
		{"more than one read takes", bytes.Repeat([]byte("0123456789"), 1000), 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer server.Close()
			deadline := time.Now().Add(hangGuard)
			_ = server.SetDeadline(deadline)
			_ = client.SetDeadline(deadline)
			go func() {
				_, _ = client.Write(tt.send)
				_ = client.Close()
			}()
			pc, first, err := handshake.Peek(server)
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			if !bytes.Equal(first, tt.send[:tt.wantFirst]) {
				t.Errorf("first = %q, want %q", first, tt.send[:tt.wantFirst])
			}
			// Small reads replay the peeked bytes piecewise, then go on
			// with the connection.
			var got []byte
			buf := make([]byte, 5)
			for {
				n, err := pc.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
			}
			if !bytes.Equal(got, tt.send) {
				t.Errorf("replayed %q, want %q", got, tt.send)
			}
		})
	}
}

func TestPeekErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		conn net.Conn
		want error
	}{
		{"EOF", shortConn{err: io.EOF}, io.EOF},
		{"error", shortConn{err: boom}, boom},
		{"zero read without error", shortConn{}, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, first, err := handshake.Peek(tt.conn)
			if !errors.Is(err, tt.want) {
				t.Errorf("Peek error %v, want %v", err, tt.want)
			}
			if pc != nil || first != nil {
				t.Errorf("Peek returned %v, %q with an error", pc, first)
			}
		})
	}
	// Bytes that come with an error are kept: the error comes again on
	// the next read.
	pc, first, err := handshake.Peek(shortConn{n: 2, err: boom})
	if err != nil || string(first) != "\x00\x00" || pc == nil {
		t.Errorf("Peek with data and error = %v, %q, %v", pc, first, err)
	}
}

func TestPeekTimeout(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err := handshake.Peek(server)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Peek: %v, want deadline exceeded", err)
	}
	if f := handshake.Explain(err, time.Now()); f.Code != outcome.HandshakeTimeout {
		t.Errorf("Explain: %+v", f)
	}
}

// hangGuard bounds every wait for an event a test expects (and is the
// deadline of handshakes that are to end some other way): far beyond what
// even a loaded machine needs, it only stops a broken test from hanging.
const hangGuard = 30 * time.Second

// testPKI is a CA with a server certificate for localhost and client
// certificates.
type testPKI struct {
	ca, other       *pki.CA
	server          *pki.Cert
	client, strange *pki.Cert
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "Handshake CA"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{CommonName: "Stranger CA"})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, other: other}
	if p.server, err = ca.IssueServer(pki.ServerOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.client, err = ca.IssueClient(pki.ClientOptions{CommonName: "alice"}); err != nil {
		t.Fatal(err)
	}
	if p.strange, err = other.IssueClient(pki.ClientOptions{CommonName: "eve"}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server.TLSCertificate()}, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.ca.CertPool(), ServerName: "localhost"}
}

// session is one loopback connection: the server side runs
// handshake.Server, the client side runs client in a goroutine.
type session struct {
	res     *handshake.Result
	err     error
	conn    net.Conn // server side
	clientC chan error
}

// wait returns the client's error, after closing the server side.
func (s *session) wait(t *testing.T) error {
	t.Helper()
	_ = s.conn.Close()
	select {
	case err := <-s.clientC:
		return err
	case <-time.After(hangGuard):
		t.Fatal("client did not finish")
		return nil
	}
}

// serve accepts one loopback connection from client and runs
// handshake.Server on it with the given deadline and context.
func serve(t *testing.T, ctx context.Context, cfg *tls.Config, deadline time.Duration, client func(c net.Conn) error) *session {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &session{clientC: make(chan error, 1)}
	go func() {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), hangGuard)
		if err != nil {
			s.clientC <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		s.clientC <- client(c)
	}()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(hangGuard))
	s.conn, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.conn.Close() })
	_ = s.conn.SetDeadline(time.Now().Add(deadline))
	s.res, s.err = handshake.Server(ctx, s.conn, cfg)
	return s
}

func TestServer(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name    string
		version uint16
	}{
		{"TLS 1.3", tls.VersionTLS13},
		{"TLS 1.2", tls.VersionTLS12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccfg := p.clientConfig()
			ccfg.MaxVersion = tt.version
			s := serve(t, context.Background(), p.serverConfig(), hangGuard, func(c net.Conn) error {
				tc := tls.Client(c, ccfg)
				if err := tc.Handshake(); err != nil {
					return err
				}
				if _, err := tc.Write([]byte("ping\n")); err != nil {
					return err
				}
				line, err := bufio.NewReader(tc).ReadString('\n')
				if err != nil {
					return err
				}
				if line != "pong\n" {
					return fmt.Errorf("client read %q", line)
				}
				return nil
			})
			if s.err != nil {
				t.Fatalf("Server: %v", s.err)
			}
			if s.res.State.Version != tt.version || !s.res.State.HandshakeComplete {
				t.Errorf("state: version %x, complete %v", s.res.State.Version, s.res.State.HandshakeComplete)
			}
			// The peeked ClientHello bytes were replayed to crypto/tls, and
			// application data flows after them.
			line, err := bufio.NewReader(s.res.Conn).ReadString('\n')
			if err != nil || line != "ping\n" {
				t.Fatalf("server read %q, %v", line, err)
			}
			if _, err := s.res.Conn.Write([]byte("pong\n")); err != nil {
				t.Fatal(err)
			}
			if err := s.wait(t); err != nil {
				t.Errorf("client: %v", err)
			}
		})
	}
}

func TestServerInsecureClient(t *testing.T) {
	p := newPKI(t)
	s := serve(t, context.Background(), p.serverConfig(), hangGuard, func(c net.Conn) error {
		return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
	})
	if s.err != nil {
		t.Fatalf("Server: %v", s.err)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("client: %v", err)
	}
}

func TestServerPlaintext(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name      string
		send      string
		wantFirst string
		wantReply string
	}{
		{"HTTP", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.0 400 Bad Request\r\n"},
		{"text", "hello there\n", "hello there\n", "error: this port speaks TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replyC := make(chan []byte, 1)
			s := serve(t, context.Background(), p.serverConfig(), hangGuard, func(c net.Conn) error {
				if _, err := c.Write([]byte(tt.send)); err != nil {
					return err
				}
				b, err := io.ReadAll(c)
				replyC <- b
				return err
			})
			var nt *handshake.NotTLSError
			if !errors.As(s.err, &nt) {
				t.Fatalf("Server error %v (%T), want *NotTLSError", s.err, s.err)
			}
			if string(nt.First) != tt.wantFirst {
				t.Errorf("First = %q, want %q", nt.First, tt.wantFirst)
			}
			if s.res != nil {
				t.Error("result with an error")
			}
			f := handshake.Explain(s.err, time.Now())
			if f.Code != outcome.NotTLS || f.Text != nt.Error() {
				t.Errorf("Explain = %+v", f)
			}
			// What the server does with it: reply, then close.
			if _, err := s.conn.Write(nt.Reply()); err != nil {
				t.Fatal(err)
			}
			if err := s.wait(t); err != nil {
				t.Fatalf("client: %v", err)
			}
			if got := string(<-replyC); !strings.HasPrefix(got, tt.wantReply) {
				t.Errorf("client got %q, want prefix %q", got, tt.wantReply)
			}
		})
	}
}

// cutConn lets through the first n bytes written, then closes.
type cutConn struct {
	net.Conn
	n int
}

func (c *cutConn) Write(b []byte) (int, error) {
	if len(b) > c.n {
		b = b[:c.n]
	}
	n, err := c.Conn.Write(b)
	c.n -= n
	if err == nil && c.n == 0 {
		_ = c.Conn.Close()
		return n, net.ErrClosed
	}
	return n, err
}

func TestExplainReal(t *testing.T) {
	p := newPKI(t)
	mtls := p.serverConfig()
	mtls.ClientAuth = tls.RequireAndVerifyClientCert
	mtls.ClientCAs = p.ca.CertPool()
	withCert := func(c *pki.Cert) *tls.Config {
		cfg := p.clientConfig()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			tc := c.TLSCertificate()
			return &tc, nil
		}
		return cfg
	}
	handshakeWith := func(cfg *tls.Config) func(c net.Conn) error {
		return func(c net.Conn) error {
			tc := tls.Client(c, cfg)
			err := tc.Handshake()
			if err == nil {
				// TLS 1.3: the server's verdict arrives after the client's
				// handshake; read it.
				_, err = tc.Read(make([]byte, 1))
			}
			return err
		}
	}
	stall := func(prefix []byte) func(c net.Conn) error {
		return func(c net.Conn) error {
			if _, err := c.Write(prefix); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, c)
			return err
		}
	}
	// The context cases have a connection deadline of the hang guard: only
	// the context can end their handshakes in time. canceled is cancelled
	// once its client has sent the start of a record: the server is then
	// in the handshake, reading the rest.
	canceled, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stallThenCancel := func(c net.Conn) error {
		if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
			return err
		}
		cancel()
		_, err := io.Copy(io.Discard, c)
		return err
	}
	timedOut, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	t.Cleanup(cancel2)

	tests := []struct {
		name     string
		cfg      *tls.Config
		ctx      context.Context
		deadline time.Duration
		client   func(c net.Conn) error
		wantCode outcome.Code
		wantText string // substring
		wantLeaf bool
	}{
		{"TLS 1.1 client", p.serverConfig(), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}),
			outcome.ProtocolVersion, "client offered only TLS 1.1, TLS 1.0, below the server's minimum TLS version", false},
		{"TLS 1.2 client, TLS 1.3 server", &tls.Config{Certificates: mtls.Certificates, MinVersion: tls.VersionTLS13}, nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}),
			outcome.ProtocolVersion, "client offered only TLS 1.2, below the server's minimum TLS version", false},
		{"no cipher in common", &tls.Config{Certificates: mtls.Certificates, MinVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}),
			outcome.NoCipher, "no cipher suite in common with the client", false},
		{"no ALPN protocol in common", &tls.Config{Certificates: mtls.Certificates, NextProtos: []string{"seclisten"}}, nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}),
			outcome.NoALPN, "no application protocol (ALPN) in common with the client", false},
		{"TLS 1.1 client, ClientHello recorded", recording(p.serverConfig()), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}),
			outcome.ProtocolVersion, "no common TLS version: the client offers at most TLS 1.1, the server needs TLS 1.2 or later", false},
		{"TLS 1.2 client, TLS 1.3 server, ClientHello recorded", recording(&tls.Config{Certificates: mtls.Certificates, MinVersion: tls.VersionTLS13}), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}),
			outcome.ProtocolVersion, "no common TLS version: the client offers at most TLS 1.2, the server needs TLS 1.3 or later", false},
		{"no cipher in common, ClientHello recorded", recording(&tls.Config{Certificates: mtls.Certificates, MinVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}),
			outcome.NoCipher, "no common cipher suite: the client offers only [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256], " +
				"the server [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]", false},
		{"no ALPN protocol in common, ClientHello recorded", recording(&tls.Config{Certificates: mtls.Certificates, NextProtos: []string{"seclisten"}}), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "\x1b[2J"}}),
			outcome.NoALPN, `no common ALPN protocol: the client offers [h2 \x1b[2J], the server [seclisten]`, false},
		{"server name not a host name", recording(p.serverConfig()), nil, hangGuard,
			handshakeWith(&tls.Config{InsecureSkipVerify: true, ServerName: "bad\x1b[2Jname"}),
			outcome.BadSNI, `client sent a server name (SNI) that is not a valid host name (byte 0x1b is not allowed in a host name): "bad\x1b[2Jname"`, false},
		{"silent client", p.serverConfig(), nil, 100 * time.Millisecond, stall(nil), outcome.HandshakeTimeout, "handshake timed out", false},
		{"stalled ClientHello", p.serverConfig(), nil, 100 * time.Millisecond, stall([]byte{0x16, 0x03, 0x01, 0x00}),
			outcome.HandshakeTimeout, "handshake timed out", false},
		{"context deadline", p.serverConfig(), timedOut, hangGuard, stall([]byte{0x16, 0x03, 0x01}),
			outcome.HandshakeTimeout, "handshake timed out", false},
		{"context canceled", p.serverConfig(), canceled, hangGuard, stallThenCancel,
			outcome.HandshakeClosed, "handshake interrupted by shutdown", false},
		{"client closes at once", p.serverConfig(), nil, hangGuard, func(c net.Conn) error { return c.Close() },
			outcome.HandshakeClosed, "client closed the connection during the handshake", false},
		{"client closes mid-ClientHello", p.serverConfig(), nil, hangGuard, func(c net.Conn) error {
			_ = tls.Client(&cutConn{Conn: c, n: 20}, &tls.Config{InsecureSkipVerify: true}).Handshake()
			return nil
		}, outcome.HandshakeClosed, "client closed the connection during the handshake", false},
		{"client without certificate", mtls, nil, hangGuard, handshakeWith(p.clientConfig()),
			outcome.NoCertificate, "no client certificate sent", false},
		{"client from unknown CA", mtls, nil, hangGuard, handshakeWith(withCert(p.strange)),
			outcome.UnknownAuthority, "signed by an unknown authority: issuer CN=Stranger CA", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			s := serve(t, ctx, tt.cfg, tt.deadline, tt.client)
			_ = s.wait(t)
			if s.err == nil {
				t.Fatal("handshake succeeded")
			}
			f := handshake.Explain(s.err, time.Now())
			if recorded := tt.cfg.GetConfigForClient != nil; recorded != (f.Hello != nil) {
				t.Errorf("Hello = %v with the ClientHello recorded %v", f.Hello, recorded)
			}
			if f.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q (text %q, err %v)", f.Code, tt.wantCode, f.Text, s.err)
			}
			if !strings.Contains(f.Text, tt.wantText) {
				t.Errorf("Text = %q, want it to contain %q", f.Text, tt.wantText)
			}
			if (f.Leaf != nil) != tt.wantLeaf {
				t.Errorf("Leaf = %v, want leaf %v", f.Leaf, tt.wantLeaf)
			}
			if tt.wantLeaf && (f.Verdict == nil || f.Verdict.Code != f.Code) {
				t.Errorf("Verdict = %+v", f.Verdict)
			}
		})
	}
}

// TestExplainRejection runs a real tlsconf Source in require mode: its own
// checks (CRLs, allowlists) fail as *tlsconf.Rejection.
func TestExplainRejection(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := os.WriteFile(caFile, p.ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.server.WriteFiles(certFile, keyFile, false); err != nil {
		t.Fatal(err)
	}
	src, err := tlsconf.New(tlsconf.Options{CertFile: certFile, KeyFile: keyFile, ClientCAFiles: []string{caFile},
		ClientAuth: tlsconf.Require, Allow: identity.Allowlist{CN: []string{"bob"}}})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := p.clientConfig()
	ccfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		tc := p.client.TLSCertificate()
		return &tc, nil
	}
	s := serve(t, context.Background(), src.Config(), hangGuard, func(c net.Conn) error {
		tc := tls.Client(c, ccfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		_, err := tc.Read(make([]byte, 1))
		return err
	})
	if cerr := s.wait(t); cerr == nil {
		t.Error("client: no error")
	}
	var rej *tlsconf.Rejection
	if !errors.As(s.err, &rej) {
		t.Fatalf("Server: %v (%T), want a Rejection", s.err, s.err)
	}
	f := handshake.Explain(s.err, time.Now())
	if f.Code != outcome.NotAllowed || f.Text != "CN=alice is not in the allowed common names" {
		t.Errorf("Explain = %+v", f)
	}
	if f.Leaf == nil || f.Leaf.Subject.CommonName != "alice" || f.Verdict == nil {
		t.Errorf("Leaf %v, Verdict %v", f.Leaf, f.Verdict)
	}
}

func TestExplain(t *testing.T) {
	now := time.Now()
	leaf := &x509.Certificate{SerialNumber: big.NewInt(0x2a)}
	revoked := &crl.RevokedError{Serial: big.NewInt(0x2a), CRLIssuer: "CN=CA"}
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name     string
		err      error
		wantCode outcome.Code
		wantText string
		wantLeaf bool
		verdict  bool
	}{
		{"not TLS", &handshake.NotTLSError{First: []byte("hi\n")}, outcome.NotTLS,
			`client sent plaintext, not a TLS ClientHello: "hi"`, false, false},
		{"deadline", opErr, outcome.HandshakeTimeout, "handshake timed out", false, false},
		{"deadline wrapped", fmt.Errorf("handshake: %w", opErr), outcome.HandshakeTimeout, "handshake timed out", false, false},
		{"context deadline", context.DeadlineExceeded, outcome.HandshakeTimeout, "handshake timed out", false, false},
		{"EOF", io.EOF, outcome.HandshakeClosed, "client closed the connection during the handshake", false, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, outcome.HandshakeClosed, "client closed the connection during the handshake", false, false},
		{"no progress", io.ErrNoProgress, outcome.HandshakeClosed, "client closed the connection during the handshake", false, false},
		{"net closed", fmt.Errorf("read: %w", net.ErrClosed), outcome.HandshakeClosed, "handshake interrupted by shutdown", false, false},
		{"canceled", context.Canceled, outcome.HandshakeClosed, "handshake interrupted by shutdown", false, false},
		{"listener shutdown", fmt.Errorf("read: %w", listener.ErrShutdown), outcome.HandshakeClosed, "handshake interrupted by shutdown", false, false},
		{"rejection revoked", &tlsconf.Rejection{Leaf: leaf, Err: revoked}, outcome.Revoked,
			"revoked (serial 0x2a, CRL of CN=CA)", true, true},
		{"rejection no certificate", &tlsconf.Rejection{Err: verdict.ErrNoCertificate}, outcome.NoCertificate,
			"no client certificate sent", false, true},
		{"verification error", &tls.CertificateVerificationError{UnverifiedCertificates: []*x509.Certificate{leaf},
			Err: x509.UnknownAuthorityError{}}, outcome.UnknownAuthority, "signed by an unknown authority: issuer ", true, true},
		{"crypto/tls no certificate", errors.New("tls: client didn't provide a certificate"), outcome.NoCertificate,
			"no client certificate sent", false, true},
		{"malformed certificate", errors.New("tls: failed to parse client certificate: x509: malformed certificate"),
			outcome.Malformed, "client certificate malformed: failed to parse client certificate: x509: malformed certificate", false, true},
		{"versions", errors.New("tls: client offered only unsupported versions: [302 301]"), outcome.ProtocolVersion,
			"client offered only TLS 1.1, TLS 1.0, below the server's minimum TLS version", false, false},
		{"versions SSL 3", errors.New("tls: client offered only unsupported versions: [300]"), outcome.ProtocolVersion,
			"client offered only SSLv3, below the server's minimum TLS version", false, false},
		{"versions unknown", errors.New("tls: client offered only unsupported versions: [7f17]"), outcome.ProtocolVersion,
			"client offered only 0x7F17, below the server's minimum TLS version", false, false},
		{"versions empty", errors.New("tls: client offered only unsupported versions: []"), outcome.ProtocolVersion,
			"client offered only unsupported versions, below the server's minimum TLS version", false, false},
		{"versions unbracketed", errors.New("tls: client offered only unsupported versions"), outcome.ProtocolVersion,
			"client offered only unsupported versions, below the server's minimum TLS version", false, false},
		{"versions not hex", errors.New("tls: client offered only unsupported versions: [zz]"), outcome.ProtocolVersion,
			"client offered only unsupported versions ([zz]), below the server's minimum TLS version", false, false},
		{"no cipher", errors.New("tls: no cipher suite supported by both client and server; client offered: [c02b]"), outcome.NoCipher,
			"no cipher suite in common with the client", false, false},
		{"alert no application protocol", errors.New("remote error: tls: no application protocol"), outcome.NoALPN,
			"no application protocol (ALPN) in common with the client", false, false},
		{"other", errors.New("tls: first record does not look like a TLS handshake"), outcome.TLSError,
			"TLS handshake failed: first record does not look like a TLS handshake", false, false},
		{"other without prefix", errors.New("connection reset by peer"), outcome.TLSError,
			"TLS handshake failed: connection reset by peer", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := handshake.Explain(tt.err, now)
			if f.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q (text %q)", f.Code, tt.wantCode, f.Text)
			}
			if tt.wantCode == outcome.UnknownAuthority {
				if !strings.HasPrefix(f.Text, tt.wantText) {
					t.Errorf("Text = %q, want prefix %q", f.Text, tt.wantText)
				}
			} else if f.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", f.Text, tt.wantText)
			}
			if (f.Leaf != nil) != tt.wantLeaf {
				t.Errorf("Leaf = %v, want leaf %v", f.Leaf, tt.wantLeaf)
			}
			if (f.Verdict != nil) != tt.verdict {
				t.Errorf("Verdict = %v, want verdict %v", f.Verdict, tt.verdict)
			} else if f.Verdict != nil && (f.Verdict.Code != f.Code || f.Verdict.Text != f.Text) {
				t.Errorf("Verdict %+v disagrees with %q %q", *f.Verdict, f.Code, f.Text)
			}
		})
	}
}

// Text quoting the client is escaped exactly once.
func TestExplainEscapesOnce(t *testing.T) {
	f := handshake.Explain(&handshake.NotTLSError{First: []byte("hi \x1b[31m\\")}, time.Now())
	if want := `client sent plaintext, not a TLS ClientHello: "hi \x1b[31m\\"`; f.Text != want {
		t.Errorf("Text = %q, want %q", f.Text, want)
	}
	f = handshake.Explain(errors.New("tls: odd \u202e error\n"), time.Now())
	if want := `TLS handshake failed: odd \u202e error\n`; f.Text != want {
		t.Errorf("Text = %q, want %q", f.Text, want)
	}
}

// recording is cfg behind a GetConfigForClient that records each
// ClientHello and checks its server name, as tlsconf's does.
func recording(cfg *tls.Config) *tls.Config {
	return &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		clienthello.Record(h, cfg)
		if err := clienthello.CheckServerName(h.ServerName); err != nil {
			return nil, err
		}
		return cfg, nil
	}}
}
