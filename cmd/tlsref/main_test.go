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
	}{
		{"tls", false},
		{"plain", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := listen("127.0.0.1:0", cert, key, tt.plain)
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
				c, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
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
	if _, err := listen("127.0.0.1:0", "", "", false); err == nil {
		t.Error("listen without --cert succeeded")
	}
}
