package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// syncBuf is a bytes.Buffer safe to read while the server writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEcho(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	tests := []struct {
		name  string
		plain bool
		mtls  bool
	}{
		{"tls", false, false},
		{"plain", true, false},
		{"mtls", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientCA := ""
			ccfg := &tls.Config{InsecureSkipVerify: true}
			if tt.mtls {
				clientCA = filepath.Join(dir, "ca.pem")
				cc, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
				if err != nil {
					t.Fatal(err)
				}
				ccfg.Certificates = []tls.Certificate{cc}
			}
			ln, err := listen("127.0.0.1:0", cert, key, clientCA, tt.plain)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var out syncBuf
			go serve(ln, &out, defaultReply) //nolint:errcheck // ends with ln.Close

			var c net.Conn
			if tt.plain {
				c, err = net.Dial("tcp", ln.Addr().String())
			} else {
				c, err = tls.Dial("tcp", ln.Addr().String(), ccfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			for _, msg := range []string{"hello", strings.Repeat("x", 10000)} {
				if _, err := io.WriteString(c, msg+"\n"); err != nil {
					t.Fatal(err)
				}
				got, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if got != defaultReply+"\n" {
					t.Errorf("reply %q, want %q", got, defaultReply+"\n")
				}
			}
			want := "[" + c.LocalAddr().String() + "] hello\n"
			if s := out.String(); !strings.HasPrefix(s, want) || !strings.Contains(s, strings.Repeat("x", 10000)+"\n") {
				t.Errorf("stdout %.80q..., want it to start with %q and hold the long line", s, want)
			}
		})
	}
}

func TestListenNeedsCert(t *testing.T) {
	if _, err := listen("127.0.0.1:0", "", "", "", false); err == nil {
		t.Error("listen without --cert succeeded")
	}
}

// With --client-ca a client without a certificate gets no reply: the
// handshake fails on the server, which the client sees at its first read
// (TLS 1.3 sends the server's verdict after the client's Finished).
func TestClientCARequired(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ln, err := listen("127.0.0.1:0", filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, io.Discard, defaultReply) //nolint:errcheck // ends with ln.Close
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return // refused during the handshake: what was asked
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello\n")
	if got, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Errorf("a client without a certificate got a reply %q", got)
	}
}

func TestClientCABadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for _, tc := range []struct{ name, ca string }{
		{"missing file", filepath.Join(dir, "nope.pem")},
		{"not PEM", filepath.Join(dir, "FILES.md")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ln, err := listen("127.0.0.1:0", cert, key, tc.ca, false); err == nil {
				ln.Close()
				t.Error("listen succeeded")
			}
		})
	}
	if ln, err := listen("127.0.0.1:0", "", "", filepath.Join(dir, "ca.pem"), true); err == nil {
		ln.Close()
		t.Error("--plain with --client-ca succeeded")
	}
}
