package handshake_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seclisten/seclisten/pkg/internal/handshake"
)

// readerConn is a net.Conn that reads from a reader, in chunks of at most
// chunk bytes.
type readerConn struct {
	net.Conn
	r     io.Reader
	chunk int
}

func (c *readerConn) Read(b []byte) (int, error) {
	if len(b) > c.chunk {
		b = b[:c.chunk]
	}
	return c.r.Read(b)
}

// checkPrintable fails if s is not one line of valid UTF-8 free of control
// characters, C1 controls and bidirectional overrides.
func checkPrintable(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			t.Fatalf("%s %q holds control character %U", what, s, r)
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
			r == 0x2028, r == 0x2029, r == 0xfeff:
			t.Fatalf("%s %q holds invisible or bidirectional character %U", what, s, r)
		}
	}
}

// FuzzSniff feeds a client's first bytes through the classification, the
// quoting for the log, and Peek's replay. The seed corpus is in
// testdata/fuzz/FuzzSniff.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xf8, 0x01})
	f.Add([]byte("\x1b[2J\u202e\xff\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		isTLS, isHTTP := handshake.IsTLS(b), handshake.IsHTTP(b)
		if isTLS && (len(b) == 0 || b[0] != 0x16) {
			t.Errorf("IsTLS(%q) without a handshake record type", b)
		}
		if isTLS && isHTTP {
			t.Errorf("%q is both TLS and HTTP", b)
		}
		q := handshake.Quote(b)
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("Quote(%q) = %q is not quoted", b, q)
		}
		checkPrintable(t, "Quote", q)
		// Quote keeps the first line only, and all of it.
		first := b
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			first = b[:i]
		}
		if len(q)-2 < len(first) {
			t.Errorf("Quote(%q) = %q lost bytes of the first line", b, q)
		}

		e := &handshake.NotTLSError{First: b}
		checkPrintable(t, "Error", e.Error())
		reply := e.Reply()
		if len(reply) == 0 || reply[len(reply)-1] != '\n' {
			t.Errorf("Reply %q", reply)
		}
		if isHTTP != bytes.HasPrefix(reply, []byte("HTTP/1.0 400 ")) {
			t.Errorf("Reply %q for HTTP %v", reply, isHTTP)
		}

		// Peek reads one chunk, and the Conn replays it before the rest.
		for _, chunk := range []int{1, 7, 64, 1 << 16} {
			pc, peeked, err := handshake.Peek(&readerConn{r: bytes.NewReader(b), chunk: chunk})
			if len(b) == 0 {
				if err == nil {
					t.Fatal("Peek of nothing succeeded")
				}
				continue
			}
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			if want := min(len(b), chunk, 64); !bytes.Equal(peeked, b[:want]) {
				t.Fatalf("Peek = %q, want %q", peeked, b[:want])
			}
			all, err := io.ReadAll(pc)
			if err != nil || !bytes.Equal(all, b) {
				t.Fatalf("replayed %q, %v; want %q", all, err, b)
			}
		}
		if strings.Contains(q, "\n") {
			t.Fatalf("Quote %q holds a newline", q)
		}
	})
}
