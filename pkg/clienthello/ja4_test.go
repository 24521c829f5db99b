package clienthello_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
)

// hex16 parses comma-separated four-digit hex, as JA4_r writes lists.
func hex16(t testing.TB, s string) []uint16 {
	t.Helper()
	var out []uint16
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseUint(f, 16, 16)
		if err != nil {
			t.Fatalf("parse %q: %v", f, err)
		}
		out = append(out, uint16(v))
	}
	return out
}

// TestJA4Vectors checks JA4 against published fingerprints whose raw form
// (JA4_r) is published too, so the ClientHello can be rebuilt from it:
// the lists in JA4_r are sorted, which JA4 does anyway, and leave out
// server_name and ALPN, which the first part counts. GREASE values are
// added to every list to check that they are ignored.
func TestJA4Vectors(t *testing.T) {
	tests := []struct {
		name, raw, ja4 string
		alpn           []string
	}{{
		// FoxIO-LLC/ja4, technical_details/JA4.md: the worked example
		// (Chrome).
		name: "FoxIO JA4.md example",
		raw: "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_" +
			"0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_" +
			"0403,0804,0401,0503,0805,0501,0806,0601",
		ja4:  "t13d1516h2_8daaf6152771_e5627efa2ab1",
		alpn: []string{"h2", "http/1.1"},
	}, {
		// A Chrome with ECH and X25519MLKEM768 (extensions fe0d, 44cd),
		// as fingerprinted by tls.browserleaks.com.
		name: "Chrome with ECH",
		raw: "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_" +
			"0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_" +
			"0403,0804,0401,0503,0805,0501,0806,0601",
		ja4:  "t13d1516h2_8daaf6152771_d8a2da3f94cd",
		alpn: []string{"h2", "http/1.1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := strings.Split(tt.raw, "_")
			suites := append([]uint16{0x2a2a}, hex16(t, parts[1])...)
			exts := append([]uint16{0xdada, 0x0000, 0x0010}, hex16(t, parts[2])...)
			exts = append(exts, 0x1a1a)
			var sigs []tls.SignatureScheme
			for _, v := range hex16(t, parts[3]) {
				sigs = append(sigs, tls.SignatureScheme(v))
			}
			h := &tls.ClientHelloInfo{
				CipherSuites:      suites,
				SupportedVersions: []uint16{0x7a7a, tls.VersionTLS13, tls.VersionTLS12},
				SignatureSchemes:  sigs,
				SupportedProtos:   tt.alpn,
				ServerName:        "example.com",
				Extensions:        exts,
			}
			if got := clienthello.JA4Raw(h); got != tt.raw {
				t.Errorf("JA4Raw = %s\nwant    %s", got, tt.raw)
			}
			if got := clienthello.JA4(h); got != tt.ja4 {
				t.Errorf("JA4 = %s, want %s", got, tt.ja4)
			}
		})
	}
}

// TestJA4Parts checks the first part's rules and the empty lists.
func TestJA4Parts(t *testing.T) {
	tests := []struct {
		name string
		h    tls.ClientHelloInfo
		want string
	}{
		{"nothing", tls.ClientHelloInfo{}, "t00i000000_000000000000_000000000000"},
		{"TLS 1.2 without SNI or ALPN", tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS12, tls.VersionTLS11},
			CipherSuites: []uint16{0xc02f}, Extensions: []uint16{0x000a}}, "t12i010100_"},
		{"SSL 3", tls.ClientHelloInfo{SupportedVersions: []uint16{0x0300}}, "ts3i000000_"},
		{"non-alphanumeric ALPN in hex", tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13},
			SupportedProtos: []string{"\xab\x1b-\xcd"}}, "t13i0000ad_"},
		{"one-character ALPN", tls.ClientHelloInfo{SupportedProtos: []string{"x", "h2"}}, "t00i0000xx_"},
		{"SNI extension without a name", tls.ClientHelloInfo{Extensions: []uint16{0x0000}}, "t00d0001"},
		{"counts stop at 99", tls.ClientHelloInfo{CipherSuites: make([]uint16, 150), Extensions: seq(200)}, "t00i9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clienthello.JA4(&tt.h); !strings.HasPrefix(got, tt.want) {
				t.Errorf("JA4 = %s, want prefix %s", got, tt.want)
			}
		})
	}
}

func seq(n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(0x100 + i)
	}
	return out
}

// clientHelloRecords is the first flight a crypto/tls client with cfg
// sends: the records that carry its ClientHello.
func clientHelloRecords(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(c, cfg).Handshake()
	}()
	// Read records until they hold the whole handshake message, whose
	// length is in its 4-byte header.
	var out, msg []byte
	for len(msg) < 4 || len(msg) < 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(s, hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(s, body); err != nil {
			t.Fatal(err)
		}
		out = append(append(out, hdr...), body...)
		msg = append(msg, body...)
	}
	s.Close()
	<-done
	return out
}

var errStop = errors.New("stop after the ClientHello")

// bytesConn reads from a buffer and discards what is written.
type bytesConn struct {
	net.Conn
	r io.Reader
}

func (c bytesConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c bytesConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c bytesConn) Close() error                     { return nil }
func (c bytesConn) SetDeadline(time.Time) error      { return nil }
func (c bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// parse runs crypto/tls's server on raw bytes and returns the
// ClientHelloInfo it makes of them, nil if it makes none.
func parse(raw []byte) *tls.ClientHelloInfo {
	var hello *tls.ClientHelloInfo
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = h
		return nil, errStop
	}}
	_ = tls.Server(bytesConn{r: bytes.NewReader(raw)}, cfg).HandshakeContext(context.Background())
	return hello
}

// TestJA4GoClient fingerprints a crypto/tls client whose ClientHello is
// known: its suites, groups and versions are configured, and its
// extensions are those crypto/tls sends for them (handshake_client.go,
// makeClientHello). The raw form is checked entry by entry, and the hash
// against it.
func TestJA4GoClient(t *testing.T) {
	raw := clientHelloRecords(t, &tls.Config{
		ServerName:       "example.com",
		NextProtos:       []string{"h2", "http/1.1"},
		MinVersion:       tls.VersionTLS12,
		MaxVersion:       tls.VersionTLS13,
		CipherSuites:     []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		CurvePreferences: []tls.CurveID{tls.X25519},
	})
	h := parse(raw)
	if h == nil {
		t.Fatal("no ClientHello parsed")
	}
	got := clienthello.JA4Raw(h)
	t.Logf("JA4_r %s\nJA4   %s", got, clienthello.JA4(h))
	parts := strings.Split(got, "_")
	if len(parts) != 4 {
		t.Fatalf("JA4_r %s has %d parts", got, len(parts))
	}
	// TLS 1.3 and 1.2, a server name, 5 suites (the 2 configured and the
	// 3 of TLS 1.3), h2 first.
	if want := "t13d05"; !strings.HasPrefix(parts[0], want) || !strings.HasSuffix(parts[0], "h2") {
		t.Errorf("first part %s, want %s..h2", parts[0], want)
	}
	if want := "1301,1302,1303,c02b,c02f"; parts[1] != want {
		t.Errorf("suites %s, want %s", parts[1], want)
	}
	// Extensions every such crypto/tls client sends: supported_groups,
	// signature_algorithms, supported_versions, key_share,
	// extended_master_secret, renegotiation_info.
	exts := strings.Split(parts[2], ",")
	for _, e := range []string{"000a", "000d", "002b", "0033", "0017", "ff01"} {
		if !slices.Contains(exts, e) {
			t.Errorf("extensions %s lack %s", parts[2], e)
		}
	}
	if n, _ := strconv.Atoi(parts[0][6:8]); n != len(exts)+2 {
		t.Errorf("extension count %d, want %d hashed + SNI + ALPN", n, len(exts))
	}
	// The signature schemes in crypto/tls's order (defaults.go,
	// defaultSupportedSignatureAlgorithms, without the SHA-1 ones it no
	// longer offers).
	if want := "0804,0403,0807,0805,0806,0401,0501,0601,0503,0603"; parts[3] != want {
		t.Errorf("signature schemes %s, want %s", parts[3], want)
	}
	// The suite hash, computed apart: sha256("1301,1302,1303,c02b,c02f").
	if b := strings.Split(clienthello.JA4(h), "_")[1]; b != "e133e205ac38" {
		t.Errorf("suite hash %s, want e133e205ac38", b)
	}
}
