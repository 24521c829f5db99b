package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// pipeFrom returns the server side of a loopback TCP connection whose peer
// address is src, and the client side.
func pipeFrom(t testing.TB, src string) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	return server, client
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func TestRead(t *testing.T) {
	v2 := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x09\x7f\x00\x00\x01\x10\x92\x01\xbb"
	local := "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
	tests := []struct {
		name, src, send string
		wantClient      string
		wantLocal       bool
		wantErr         string // "untrusted", "header", or "" for success
		rest            string
	}{
		{"v1", "127.0.0.1", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\r\nhello\n", "203.0.113.7:5555", false, "", "hello\n"},
		{"v1 ipv6", "127.0.0.1", "PROXY TCP6 2001:db8::7 ::1 5555 443\r\nx", "[2001:db8::7]:5555", false, "", "x"},
		{"v2", "127.0.0.1", v2 + "after", "198.51.100.9:4242", false, "", "after"},
		{"v2 local", "127.0.0.1", local, "", true, "", ""},
		{"v1 unknown", "127.0.0.1", "PROXY UNKNOWN\r\n", "", true, "", ""},
		{"garbage", "127.0.0.1", "PROXY GARBAGE\r\n", "", false, "header", ""},
		{"no header", "127.0.0.1", "hello\n", "", false, "header", ""},
		{"untrusted", "127.0.0.2", "PROXY TCP4 192.0.2.1 127.0.0.1 1 443\r\n", "", false, "untrusted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := pipeFrom(t, tt.src)
			go func() { _, _ = io.WriteString(client, tt.send) }()
			res, err := Read(server, loopback)
			var herr *HeaderError
			switch tt.wantErr {
			case "untrusted":
				if !errors.Is(err, ErrUntrusted) {
					t.Fatalf("err = %v, want ErrUntrusted", err)
				}
				return
			case "header":
				if !errors.As(err, &herr) {
					t.Fatalf("err = %v, want a *HeaderError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Local != tt.wantLocal {
				t.Errorf("Local = %v", res.Local)
			}
			if tt.wantClient != "" && res.Client.String() != tt.wantClient {
				t.Errorf("Client = %s, want %s", res.Client, tt.wantClient)
			}
			if tt.wantClient == "" && res.Client.Addr() != netip.MustParseAddr(tt.src) {
				t.Errorf("Client = %s, want the proxy itself", res.Client)
			}
			if tt.rest != "" {
				buf := make([]byte, len(tt.rest))
				if _, err := io.ReadFull(res.Conn, buf); err != nil || string(buf) != tt.rest {
					t.Errorf("rest = %q, %v; want %q", buf, err, tt.rest)
				}
			}
		})
	}
}

// A trusted peer that sends nothing runs into the caller's deadline.
func TestReadTimeout(t *testing.T) {
	server, _ := pipeFrom(t, "127.0.0.1")
	_ = server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := Read(server, loopback)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

// A v1 header split across segments is dropped, not waited for: the spec
// lets a receiver do so ("the sender must always ensure that the header is
// sent at once"), and go-proxyproto does, against partial-header slowloris.
func TestReadPartialV1Dropped(t *testing.T) {
	server, client := pipeFrom(t, "127.0.0.1")
	_, _ = io.WriteString(client, "PROXY TCP4 ")
	_, err := Read(server, loopback)
	var herr *HeaderError
	if !errors.As(err, &herr) {
		t.Fatalf("err = %v, want a *HeaderError", err)
	}
}

// FuzzRead feeds arbitrary bytes as a trusted proxy's opening: Read never
// panics, and on success the bytes after the header come through intact.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\r\nhello\n",
		"PROXY TCP6 2001:db8::7 ::1 5555 443\r\n",
		"PROXY UNKNOWN\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x09\x7f\x00\x00\x01\x10\x92\x01\xbb",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"PROXY TCP4 1.1.1.1 2.2.2.2 99999 1\r\n",
		"GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		go func() {
			_, _ = client.Write(data)
			_ = client.(*net.TCPConn).CloseWrite()
		}()
		_ = server.SetDeadline(time.Now().Add(2 * time.Second))
		res, err := Read(server, loopback)
		if err != nil {
			return
		}
		if !res.Client.IsValid() {
			t.Fatalf("valid header but no client address: %q", data)
		}
		rest, _ := io.ReadAll(res.Conn)
		if len(rest) > len(data) || string(rest) != string(data[len(data)-len(rest):]) {
			t.Fatalf("bytes after the header not passed through: got %q from %q", rest, data)
		}
	})
}
