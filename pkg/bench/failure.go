package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/seclisten/seclisten/pkg/internal/alert"
)

// Class is what went wrong with a failed operation. Each class has one key
// (JSON, tests) and one text (the table), both in classInfo.
type Class uint8

// The classes of failures, in the order the summary lists them.
const (
	// ClassRefused: the server said that it refused the connection: a TLS
	// alert access_denied (RFC 8446 section 6.2), or on a plain port a
	// line starting with RefusedLinePrefix.
	ClassRefused Class = iota + 1
	// ClassClosedEarly: the server closed or reset the connection before
	// sending a byte, as a server does when it refuses a connection
	// without a word.
	ClassClosedEarly
	// ClassClosed: the server closed or reset the connection after
	// sending something: during or right after the handshake, or between
	// replies.
	ClassClosed
	// ClassAlert: the server sent a TLS alert other than access_denied;
	// Failure.Alert names it.
	ClassAlert
	// ClassTimeout: a dial, handshake or exchange outlasted
	// Options.Timeout.
	ClassTimeout
	// ClassConnRefused: the TCP connection was refused: nothing listens at
	// the address.
	ClassConnRefused
	// ClassCertificate: the server's certificate did not verify against
	// Options.CAFile and Options.ServerName.
	ClassCertificate
	// ClassLocal: this machine ran out of ephemeral ports or file
	// descriptors.
	ClassLocal
	// ClassOther: anything else.
	ClassOther
)

// Classes lists every Class in order.
var Classes = []Class{ClassRefused, ClassClosedEarly, ClassClosed, ClassAlert, ClassTimeout,
	ClassConnRefused, ClassCertificate, ClassLocal, ClassOther}

var classInfo = map[Class]struct{ key, text string }{
	ClassRefused:     {"refused", "the server said it refused the connection"},
	ClassClosedEarly: {"closed_early", "closed or reset by the server before it sent a byte"},
	ClassClosed:      {"closed", "closed or reset by the server during or after the handshake"},
	ClassAlert:       {"alert", "TLS alert from the server"},
	ClassTimeout:     {"timeout", "timed out"},
	ClassConnRefused: {"conn_refused", "connection refused: nothing listening"},
	ClassCertificate: {"certificate", "the server's certificate did not verify"},
	ClassLocal:       {"local", "out of local ports or file descriptors"},
	ClassOther:       {"other", "other errors"},
}

// Key is the class's name in JSON: refused, closed_early, ...
func (c Class) Key() string {
	if i, ok := classInfo[c]; ok {
		return i.key
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// String is the class in plain words.
func (c Class) String() string {
	if i, ok := classInfo[c]; ok {
		return i.text
	}
	return c.Key()
}

// ByServer reports whether the class means that the server ended the
// connection: refused it, or closed or reset it.
func (c Class) ByServer() bool {
	return c == ClassRefused || c == ClassClosedEarly || c == ClassClosed
}

// Failure is what went wrong with one operation.
type Failure struct {
	Class Class
	// Alert is the name of the TLS alert (RFC 8446 section 6, such as
	// bad_certificate) with ClassAlert, else empty.
	Alert string
}

// Key is the failure's name in JSON: the class's key, with the alert's
// name for alerts (alert:bad_certificate).
func (f Failure) Key() string {
	if f.Alert != "" {
		return f.Class.Key() + ":" + f.Alert
	}
	return f.Class.Key()
}

// String is the failure in plain words.
func (f Failure) String() string {
	if f.Alert != "" {
		return f.Class.String() + ": " + f.Alert
	}
	return f.Class.String()
}

// RefusedLinePrefix starts the line a server writes on a plain port to
// say that it refused the connection (seclisten: "error: refused: ...").
const RefusedLinePrefix = "error: refused:"

// refusedLine is a reply that said the connection was refused.
type refusedLine string

func (l refusedLine) Error() string { return "the server replied " + strings.TrimSpace(string(l)) }

// maxLineShown bounds how much of a refusal line is kept for the message.
const maxLineShown = 200

// readReply consumes one reply line, however long, without allocating
// unless it is a refusal (a refusedLine error).
func readReply(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if bytes.HasPrefix(line, []byte(RefusedLinePrefix)) {
		return refusedLine(line[:min(len(line), maxLineShown)])
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = br.ReadSlice('\n')
	}
	return err
}

// countConn counts the bytes read, to tell a server that closed before
// sending anything (a refusal) from one that closed later.
type countConn struct {
	net.Conn
	n int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// received reports whether the server sent any byte on c.
func received(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, ok := c.(*countConn)
	return ok && cc.n > 0
}

// opError is a failed operation: the phase that failed (dial, tls
// handshake, write, read), the error, and its class.
type opError struct {
	phase string
	err   error
	f     Failure
}

// newOpError classifies err, from phase, on c (nil before a connection).
func newOpError(phase string, err error, c net.Conn) *opError {
	return &opError{phase: phase, err: err, f: classify(err, c != nil && received(c))}
}

func (e *opError) Error() string {
	if e.phase == "dial" { // net's dial errors already say "dial tcp"
		return e.err.Error()
	}
	return e.phase + ": " + e.err.Error()
}

func (e *opError) Unwrap() error { return e.err }

// classify says what err means; got is whether the server had sent any
// byte on the connection.
func classify(err error, got bool) Failure {
	var line refusedLine
	var ne net.Error
	var verr *tls.CertificateVerificationError
	if code, ok := alert.Received(err); ok {
		if code == alertAccessDenied {
			return Failure{Class: ClassRefused}
		}
		return Failure{Class: ClassAlert, Alert: alert.Name(code)}
	}
	switch {
	case errors.As(err, &line):
		return Failure{Class: ClassRefused}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Failure{Class: ClassConnRefused}
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return Failure{Class: ClassLocal}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		if got {
			return Failure{Class: ClassClosed}
		}
		return Failure{Class: ClassClosedEarly}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Failure{Class: ClassTimeout}
	case errors.As(err, &verr):
		return Failure{Class: ClassCertificate}
	}
	return Failure{Class: ClassOther}
}

// alertAccessDenied is the alert a server sends to say that it refuses a
// client (RFC 8446 section 6.2); seclisten sends it, in clear, to a client
// over its per-IP limits.
const alertAccessDenied = 49
