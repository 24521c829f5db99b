package handshake

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/internal/replay"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/sanitize"
	"github.com/seclisten/seclisten/pkg/tlsconf"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// peekSize is how much of the first bytes is kept to classify them and,
// for plaintext, to quote in the log.
const peekSize = 64

// peekRead is how much the first read may take: a whole ClientHello in
// most cases (ML-KEM's key share makes one about 1.5 KiB), which the
// handshake then reads from memory instead of making a second system call
// for what a 64-byte read left behind.
const peekRead = 4 << 10

var peekBufs = sync.Pool{New: func() any { return new([peekRead]byte) }}

// Peek reads the first bytes the client sends (one read) and returns the
// first 64 of them (a copy) with a connection that replays all it read
// before reading from c.
func Peek(c net.Conn) (*replay.Conn, []byte, error) {
	buf, n, err := peek(c)
	if err != nil {
		return nil, nil, err
	}
	first := firstBytes(buf[:n])
	return replay.NewReleased(c, buf[:n], func() { peekBufs.Put(buf) }), first, nil
}

// peek is Peek's read: a pooled buffer and how much of it was read.
func peek(c net.Conn) (*[peekRead]byte, int, error) {
	buf := peekBufs.Get().(*[peekRead]byte)
	n, err := c.Read(buf[:])
	if n == 0 {
		peekBufs.Put(buf)
		if err == nil {
			err = io.ErrNoProgress
		}
		return nil, 0, err
	}
	// The buffer goes back once the stream has been read past it; a
	// connection refused before that leaves it to the collector.
	return buf, n, nil
}

// firstBytes is a copy of the first peekSize bytes of b.
func firstBytes(b []byte) []byte {
	return append([]byte(nil), b[:min(len(b), peekSize)]...)
}

// IsTLS reports whether b starts like a TLS handshake record (RFC 8446
// section 5.1: content type 22, legacy version 3.x).
func IsTLS(b []byte) bool {
	return len(b) > 0 && b[0] == 0x16 && (len(b) < 2 || b[1] == 0x03)
}

// IsHTTP reports whether b starts like an HTTP/1 request line.
func IsHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PRI * HTTP/2"} {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// Quote is the first line of b, sanitized and quoted, for a log line.
func Quote(b []byte) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	return `"` + sanitize.String(b) + `"`
}

// NotTLSError is a client that sent plaintext to the TLS port.
type NotTLSError struct {
	First []byte
}

func (e *NotTLSError) Error() string {
	return "client sent plaintext, not a TLS ClientHello: " + Quote(e.First)
}

// Reply is what a plaintext client is told before the close, in its own
// protocol where possible. It speaks to the client, who is often not the
// one running the server: how to run the server differently is for the
// server's log, not for the peer.
func (e *NotTLSError) Reply() []byte {
	if IsHTTP(e.First) {
		return []byte("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
			"Client sent an HTTP request to a TLS server.\n")
	}
	return []byte("error: this port speaks TLS: connect with TLS (openssl s_client)\n")
}

// Result is a successful handshake.
type Result struct {
	Conn  *tls.Conn
	State tls.ConnectionState
	// Hello is what the client offered.
	Hello *clienthello.Hello
	// OtherReplica is set on a resumption with a session ticket another
	// replica issued (tlsconf.Options.ReplicaID).
	OtherReplica bool
}

// Error is a handshake that failed after the client's ClientHello was
// read: the error, what the client offered, and the configuration that
// answered it.
type Error struct {
	Err    error
	Hello  *clienthello.Hello
	Server *tls.Config
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// helloConn is the connection a handshake runs on: it replays what the
// sniffing read, and keeps the ClientHello the server's GetConfigForClient
// records (clienthello.Record). It stays under the tls.Conn for the
// connection's life, so the replaying Conn is embedded by value: every
// Read and Write of the exchange goes through it.
type helloConn struct {
	replay.Conn
	hello  *clienthello.Hello
	server *tls.Config
	other  bool // the ticket opened was another replica's
}

func (c *helloConn) RecordTicket(otherReplica bool) { c.other = otherReplica }

func (c *helloConn) RecordHello(h *clienthello.Hello, server *tls.Config) {
	c.hello, c.server = h, server
}

// Server sniffs the first bytes of c and runs the TLS handshake. c should
// carry the handshake deadline; ctx ending aborts the handshake too.
func Server(ctx context.Context, c net.Conn, cfg *tls.Config) (*Result, error) {
	buf, n, err := peek(c)
	if err != nil {
		return nil, err
	}
	if !IsTLS(buf[:n]) {
		first := firstBytes(buf[:n])
		peekBufs.Put(buf)
		return nil, &NotTLSError{First: first}
	}
	hc := &helloConn{Conn: replay.Released(c, buf[:n], func() { peekBufs.Put(buf) })}
	tc := tls.Server(hc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if hc.hello != nil {
			err = &Error{Err: err, Hello: hc.hello, Server: hc.server}
		}
		return nil, err
	}
	st := tc.ConnectionState()
	return &Result{Conn: tc, State: st, Hello: hc.hello, OtherReplica: st.DidResume && hc.other}, nil
}

// offeredVersions turns crypto/tls's "client offered only unsupported
// versions: [302 301]" (hexadecimal) into "TLS 1.1, TLS 1.0".
func offeredVersions(s string) string {
	i, j := strings.LastIndexByte(s, '['), strings.LastIndexByte(s, ']')
	if i < 0 || j < i {
		return "unsupported versions"
	}
	var names []string
	for _, f := range strings.Fields(s[i+1 : j]) {
		v, err := strconv.ParseUint(f, 16, 16)
		if err != nil {
			return "unsupported versions (" + s[i:j+1] + ")"
		}
		names = append(names, tls.VersionName(uint16(v)))
	}
	if len(names) == 0 {
		return "unsupported versions"
	}
	return strings.Join(names, ", ")
}

// Failure describes a failed handshake.
type Failure struct {
	// Verdict is set when the client certificate was refused.
	Verdict *verdict.Verdict
	// Leaf is the refused client certificate, when one was sent.
	Leaf *x509.Certificate
	// Text is the failure in plain words.
	Text string
	// Code is a verdict, or a handshake failure (outcome.Handshake).
	Code outcome.Code
	// Hello is what the client offered, when its ClientHello was read.
	Hello *clienthello.Hello
}

// Explain describes a handshake error. now is the time of the attempt. The
// text is safe to print: what it quotes from the client (plaintext, names in
// certificates, protocol lists in TLS errors) is sanitized.
func Explain(err error, now time.Time) Failure {
	var herr *Error
	if !errors.As(err, &herr) {
		return explain(err, now)
	}
	f := explain(herr.Err, now)
	f.Hello = herr.Hello
	if t := mismatch(f.Code, herr.Hello, herr.Server); t != "" {
		f.Text = t
	}
	return f
}

func explain(err error, now time.Time) Failure {
	var (
		sni    *clienthello.ServerNameError
		notTLS *NotTLSError
		verr   *tls.CertificateVerificationError
		rej    *tlsconf.Rejection
	)
	switch {
	case errors.As(err, &sni):
		return Failure{Code: outcome.BadSNI, Text: outcome.BadSNI.Text() + " (" + sni.Why + "): " + Quote([]byte(sni.Name))}
	case errors.As(err, &notTLS):
		return Failure{Code: outcome.NotTLS, Text: notTLS.Error()}
	case errors.As(err, &verr):
		v := verdict.Explain(err, nil, now)
		var leaf *x509.Certificate
		if len(verr.UnverifiedCertificates) > 0 {
			leaf = verr.UnverifiedCertificates[0]
		}
		return Failure{Code: v.Code, Text: v.Text, Verdict: &v, Leaf: leaf}
	case errors.As(err, &rej):
		v := verdict.Explain(rej.Err, rej.Leaf, now)
		return Failure{Code: v.Code, Text: v.Text, Verdict: &v, Leaf: rej.Leaf}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return Failure{Code: outcome.HandshakeTimeout, Text: outcome.HandshakeTimeout.Text()}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrNoProgress),
		errors.Is(err, syscall.ECONNRESET):
		return Failure{Code: outcome.HandshakeClosed, Text: outcome.HandshakeClosed.Text()}
	case errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, listener.ErrShutdown):
		return Failure{Code: outcome.HandshakeClosed, Text: "handshake interrupted by shutdown"}
	}
	v := verdict.Explain(err, nil, now)
	if v.Code != outcome.VerifyFailed {
		return Failure{Code: v.Code, Text: v.Text, Verdict: &v}
	}
	s := strings.TrimPrefix(err.Error(), "tls: ")
	switch {
	case strings.Contains(s, "client offered only unsupported versions"):
		return Failure{Code: outcome.ProtocolVersion, Text: "client offered only " + offeredVersions(s) + ", below the server's minimum TLS version"}
	case strings.Contains(s, "no cipher suite supported"):
		return Failure{Code: outcome.NoCipher, Text: outcome.NoCipher.Text()}
	case strings.Contains(s, "no application protocol"),
		strings.Contains(s, "client requested unsupported application protocols"):
		return Failure{Code: outcome.NoALPN, Text: outcome.NoALPN.Text()}
	}
	return Failure{Code: outcome.TLSError, Text: "TLS handshake failed: " + sanitize.String([]byte(s))}
}

// mismatch says, for a handshake that found nothing in common with the
// client, what the client offers and what the server has; "" when the
// failure is no such mismatch or the ClientHello is unknown.
func mismatch(code outcome.Code, h *clienthello.Hello, server *tls.Config) string {
	if h == nil || server == nil {
		return ""
	}
	switch code {
	case outcome.ProtocolVersion:
		minV := server.MinVersion
		if minV == 0 {
			minV = tls.VersionTLS12 // crypto/tls's default for servers
		}
		if h.MaxVersion == 0 || h.MaxVersion >= minV {
			return ""
		}
		return "no common TLS version: the client offers at most " + tls.VersionName(h.MaxVersion) +
			", the server needs " + tls.VersionName(minV) + " or later"
	case outcome.NoCipher:
		var ours []string
		for _, id := range server.CipherSuites {
			ours = append(ours, tls.CipherSuiteName(id))
		}
		if server.CipherSuites == nil {
			for _, c := range tls.CipherSuites() {
				ours = append(ours, c.Name)
			}
		}
		return "no common cipher suite: the client offers only " + listText(h.Suites) +
			", the server " + listText(ours)
	case outcome.NoALPN:
		return "no common ALPN protocol: the client offers " + listText(h.ALPN) + ", the server " + listText(server.NextProtos)
	}
	return ""
}

// listText is a bounded list of names in brackets, escaped.
func listText(l []string) string {
	l = clienthello.Strings(l)
	for i, s := range l {
		l[i] = sanitize.String([]byte(s))
	}
	return "[" + strings.Join(l, " ") + "]"
}
