package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Every class has one key and one text of its own, and none of the known
// ones reads as "other".
func TestClassVocabulary(t *testing.T) {
	keys, texts := map[string]bool{}, map[string]bool{}
	for _, c := range Classes {
		k, s := c.Key(), c.String()
		if _, ok := classInfo[c]; !ok || k == "" || s == "" {
			t.Errorf("class %d has no key or text", c)
		}
		if keys[k] || texts[s] {
			t.Errorf("class %d: key %q or text %q used twice", c, k, s)
		}
		keys[k], texts[s] = true, true
		if c != ClassOther && (strings.Contains(k, "other") || strings.Contains(s, "other")) {
			t.Errorf("class %s reads as other", k)
		}
	}
	if len(classInfo) != len(Classes) {
		t.Errorf("classInfo has %d classes, Classes %d", len(classInfo), len(Classes))
	}
}

func TestClassify(t *testing.T) {
	remote := func(code uint8) error {
		// What crypto/tls returns for an alert from the peer on TCP: an
		// OpError around its unexported alert type, which reads like
		// tls.AlertError.
		return &net.OpError{Op: "remote error", Err: errors.New(tls.AlertError(code).Error())}
	}
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	read := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	}
	tests := []struct {
		name string
		err  error
		got  bool // the server had sent bytes
		want Failure
	}{
		{"access_denied alert", remote(49), false, Failure{Class: ClassRefused}},
		{"access_denied after bytes", remote(49), true, Failure{Class: ClassRefused}},
		{"access_denied quic", fmt.Errorf("handshake: %w", tls.AlertError(49)), false, Failure{Class: ClassRefused}},
		{"refusal line", refusedLine("error: refused: too many connections from 127.0.0.1\n"), true, Failure{Class: ClassRefused}},
		{"bad_certificate alert", remote(42), true, Failure{Class: ClassAlert, Alert: "bad_certificate"}},
		{"certificate_required alert", remote(116), true, Failure{Class: ClassAlert, Alert: "certificate_required"}},
		{"unknown alert", remote(200), true, Failure{Class: ClassAlert, Alert: "alert_200"}},
		{"eof before a byte", io.EOF, false, Failure{Class: ClassClosedEarly}},
		{"reset before a byte", read(syscall.ECONNRESET), false, Failure{Class: ClassClosedEarly}},
		{"broken pipe before a byte", fmt.Errorf("write: %w", syscall.EPIPE), false, Failure{Class: ClassClosedEarly}},
		{"eof after bytes", io.EOF, true, Failure{Class: ClassClosed}},
		{"unexpected eof after bytes", io.ErrUnexpectedEOF, true, Failure{Class: ClassClosed}},
		{"reset after bytes", read(syscall.ECONNRESET), true, Failure{Class: ClassClosed}},
		{"dial refused", dial(syscall.ECONNREFUSED), false, Failure{Class: ClassConnRefused}},
		{"out of ports", dial(syscall.EADDRNOTAVAIL), false, Failure{Class: ClassLocal}},
		{"out of fds", dial(syscall.EMFILE), false, Failure{Class: ClassLocal}},
		{"deadline", context.DeadlineExceeded, false, Failure{Class: ClassTimeout}},
		{"i/o timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true, Failure{Class: ClassTimeout}},
		{"certificate", &tls.CertificateVerificationError{Err: errors.New("x509: unknown authority")}, true, Failure{Class: ClassCertificate}},
		{"local alert", &net.OpError{Op: "local error", Err: errors.New("tls: unexpected message")}, true, Failure{Class: ClassOther}},
		{"other", errors.New("something else"), true, Failure{Class: ClassOther}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err, tt.got); got != tt.want {
				t.Errorf("classify(%v, %v) = %s, want %s", tt.err, tt.got, got.Key(), tt.want.Key())
			}
		})
	}
}

// refuser is a listener that ends every connection its own way.
type refuser struct {
	addr string
	wg   sync.WaitGroup
}

// startRefuser serves every connection with handle, then closes it.
func startRefuser(t *testing.T, handle func(net.Conn)) *refuser {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &refuser{addr: ln.Addr().String()}
	// Ending ctx closes the connections still open.
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// sayThenClose writes b, half-closes, and waits (briefly) for the client
// to close: a FIN, not a reset, so what the client reads is certain.
func sayThenClose(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = c.Write(b)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}
}

// alertRecord is a TLS alert record in clear, as a server sends it before
// any handshake message: fatal, with description code (RFC 8446 sections
// 5.1 and 6).
func alertRecord(code byte) []byte { return []byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, code} }

// Servers that refuse in each way a server can: every failure lands in its
// class, and Diagnose names the server's limits when they are to blame.
func TestFailureClasses(t *testing.T) {
	cfg := serverTLS(t)
	handshakeThenClose := func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		_ = tc.Handshake()
	}
	silent := func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}
	tests := []struct {
		name   string
		handle func(net.Conn)
		o      Options
		want   Failure
		cause  Cause
	}{
		{"closes at once", func(net.Conn) {}, Options{Mode: Handshake}, Failure{Class: ClassClosedEarly}, CauseServerClosed},
		{"access_denied alert", sayThenClose(alertRecord(alertAccessDenied)), Options{Mode: Handshake}, Failure{Class: ClassRefused}, CauseServerRefused},
		{"access_denied alert, resume", sayThenClose(alertRecord(alertAccessDenied)), Options{Mode: Resume}, Failure{Class: ClassRefused}, CauseServerRefused},
		{"access_denied alert, echo", sayThenClose(alertRecord(alertAccessDenied)), Options{Mode: Echo, Conns: 4}, Failure{Class: ClassRefused}, CauseServerRefused},
		{"refusal line, echo", sayThenClose([]byte("error: refused: too many connections from 127.0.0.1 (--max-conns-per-ip 32)\n")),
			Options{Mode: Echo, Plain: true, Conns: 4}, Failure{Class: ClassRefused}, CauseServerRefused},
		{"refusal line, idle", sayThenClose([]byte("error: refused: rate\n")), Options{Mode: Idle, Plain: true, Conns: 4}, Failure{Class: ClassRefused}, CauseServerRefused},
		{"handshake_failure alert", sayThenClose(alertRecord(40)), Options{Mode: Handshake}, Failure{Class: ClassAlert, Alert: "handshake_failure"}, NoCause},
		{"closes after the handshake", handshakeThenClose, Options{Mode: Echo, Conns: 4}, Failure{Class: ClassClosed}, CauseServerClosed},
		{"silent", silent, Options{Mode: Handshake, Timeout: 200 * time.Millisecond}, Failure{Class: ClassTimeout}, NoCause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startRefuser(t, tt.handle)
			o := tt.o
			o.Addr, o.Duration, o.MaxOps, o.Concurrency = srv.addr, 2*time.Second, 20, 2
			r, err := Run(context.Background(), o, nil)
			if !errors.Is(err, ErrNoSuccess) {
				t.Fatalf("err = %v, want ErrNoSuccess", err)
			}
			if r.Errors == 0 || r.Failures[tt.want] != r.Errors {
				t.Errorf("failures %v of %d errors, want all %s", r.Failures, r.Errors, tt.want.Key())
			}
			if r.ErrorRate() != 1 {
				t.Errorf("error rate %v, want 1", r.ErrorRate())
			}
			if d := r.Diagnose(); d.Cause != tt.cause || (d.Cause != NoCause && d.N != r.Errors) {
				t.Errorf("diagnosis %+v, want cause %d for all %d errors", d, tt.cause, r.Errors)
			}
			t.Logf("err: %v", err)
		})
	}
}

// A server that refuses every other connection at once: half the
// handshakes fail, the server's doing, and the run still returns figures.
func TestHalfRefused(t *testing.T) {
	srv := startTestServer(t, serverTLS(t), true)
	r, err := Run(context.Background(), Options{Mode: Handshake, Addr: srv.addr, MaxOps: 100, Concurrency: 2, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Attempted() != 100 || r.Errors < 30 || r.Ops < 30 {
		t.Errorf("ops %d, errors %d (%v): want about 50 each", r.Ops, r.Errors, r.Failures)
	}
	if got := r.ErrorRate(); got != float64(r.Errors)/100 {
		t.Errorf("error rate %v with %d of 100 failed", got, r.Errors)
	}
	if d := r.Diagnose(); d.Cause != CauseServerClosed || d.N != r.Errors {
		t.Errorf("diagnosis %+v, want the server's closures (%d)", d, r.Errors)
	}
}

// In a flood, a connection the server says it refused is a refusal, not an
// error.
func TestFloodCountsSaidRefusals(t *testing.T) {
	tests := []struct {
		name   string
		plain  bool
		handle func(net.Conn)
	}{
		{"access_denied alert", false, sayThenClose(alertRecord(alertAccessDenied))},
		{"refusal line", true, sayThenClose([]byte("error: refused: rate\n"))},
		{"closes at once", false, func(net.Conn) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRefuser(t, tt.handle)
			r, err := Run(context.Background(), Options{Mode: Flood, Addr: srv.addr, Plain: tt.plain, MaxOps: 50, Concurrency: 2, Duration: 10 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Refused != 50 || r.Errors != 0 || r.Accepted != 0 {
				t.Errorf("refused %d, accepted %d, errors %d (%v); want 50 refused", r.Refused, r.Accepted, r.Errors, r.Failures)
			}
		})
	}
}

// A reply is read to its end however long, and only a first line that
// starts with the prefix is a refusal.
func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		in      string
		refused bool
		err     error
		rest    string
	}{
		{"ok\nnext", false, nil, "next"},
		{long + "\nnext", false, nil, "next"},
		{"error: refused: rate\n", true, nil, ""},
		{"error: refused: no newline", true, nil, ""},
		{"error: refused: " + long + "\n", true, nil, ""},
		{"error: other\n", false, nil, ""},
		{"x error: refused:\n", false, nil, ""},
		{"partial", false, io.EOF, ""},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.in), 4096)
		err := readReply(br)
		var line refusedLine
		if got := errors.As(err, &line); got != tt.refused {
			t.Errorf("readReply(%.30q) = %v, refusal %v", tt.in, err, tt.refused)
			continue
		}
		if tt.refused {
			if len(line) > maxLineShown || !strings.HasPrefix(err.Error(), "the server replied error: refused:") {
				t.Errorf("refusal %q (%d bytes)", err, len(line))
			}
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("readReply(%.30q) = %v, want %v", tt.in, err, tt.err)
		}
		if rest, _ := io.ReadAll(br); string(rest) != tt.rest {
			t.Errorf("after readReply(%.30q): %q left, want %q", tt.in, rest, tt.rest)
		}
	}
}

func TestParseFraction(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  string
	}{
		{"1%", 0.01, ""},
		{" 0.5 % ", 0.005, ""},
		{"100%", 1, ""},
		{"0%", 0, ""},
		{"0", 0, ""},
		{"0.05", 0.05, ""},
		{"1", 0, `"1" is ambiguous: write 1% or 100%`},
		{"5", 0, `"5" is more than 1: write 5% for a percentage`},
		{"101%", 0, `"101%" is more than 100%`},
		{"-1%", 0, `"-1%" is negative`},
		{"-0.1", 0, `"-0.1" is negative`},
		{"lots", 0, `"lots" is not a percentage (1%) or a fraction (0.01)`},
		{"", 0, `"" is not a percentage (1%) or a fraction (0.01)`},
		{"NaN", 0, `"NaN" is not a percentage (1%) or a fraction (0.01)`},
		{"inf%", 0, `"inf%" is not a percentage (1%) or a fraction (0.01)`},
	}
	for _, tt := range tests {
		got, err := ParseFraction(tt.in)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseFraction(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseFraction(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for f, want := range map[float64]string{0: "0%", 0.01: "1%", 0.07: "7%", 0.98234: "98.2%", 1: "100%", 0.000123: "0.0123%", 1e-7: "0.00001%"} {
		if got := Percent(f); got != want {
			t.Errorf("Percent(%v) = %q, want %q", f, got, want)
		}
	}
}
