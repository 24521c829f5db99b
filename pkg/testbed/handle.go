package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/internal/alert"
	"github.com/seclisten/seclisten/pkg/internal/handshake"
	"github.com/seclisten/seclisten/pkg/internal/replay"
	"github.com/seclisten/seclisten/pkg/sanitize"
)

// handle grades one connection to case c, then, if its handshake
// completed, tells the client its grade.
func (t *Testbed) handle(c Case, conn net.Conn) {
	start := time.Now()
	g := Grade{Case: c.Name, Client: conn.RemoteAddr().String(), Time: start}
	// Before anything else: a client that sends nothing, or plaintext,
	// says nothing about its checks.
	_ = conn.SetDeadline(start.Add(t.opts.HandshakeTimeout))
	pc, first, err := handshake.Peek(conn)
	if err != nil {
		g.Result, g.Evidence = NotGraded, "closed without sending a ClientHello"
		if isTimeout(err) {
			g.Evidence = "sent nothing for " + t.opts.HandshakeTimeout.String()
		}
		t.record(g)
		return
	}
	if !handshake.IsTLS(first) {
		nt := &handshake.NotTLSError{First: first}
		_, _ = conn.Write(nt.Reply())
		g.Result, g.Evidence = NotGraded, "sent plaintext, not a TLS ClientHello: "+handshake.Quote(first)
		t.record(g)
		return
	}
	var (
		tc      *tls.Conn
		pending []byte
	)
	switch c.Name {
	case "slow-handshake":
		tc, pending = t.slow(c, conn, pc, start, &g)
	case "abort-mid-handshake":
		t.abort(c, conn, pc, start, &g)
	default:
		tc, pending = t.handshake(c, pc, start, &g)
	}
	t.record(g)
	if tc != nil && g.Result != NotGraded {
		tellClient(tc, g, pending)
	}
}

// hc is a connection that keeps the ClientHello (clienthello.Record).
// It also follows the client's records for a plaintext alert.
type hc struct {
	net.Conn
	hello *clienthello.Hello
	sniff *recordSniffer
}

func newHC(c net.Conn) *hc { return &hc{Conn: c, sniff: newRecordSniffer()} }

func (c *hc) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.sniff.feed(b[:n])
	return n, err
}

func (c *hc) RecordHello(h *clienthello.Hello, _ *tls.Config) { c.hello = h }

// handshake runs case c's handshake and grades it; it returns the
// connection when the handshake completed, with what the client sent
// first when that was read to grade it.
func (t *Testbed) handshake(c Case, conn net.Conn, start time.Time, g *Grade) (*tls.Conn, []byte) {
	h := newHC(conn)
	tc := tls.Server(h, t.serverConfig(c))
	err := tc.HandshakeContext(context.Background())
	ip, _, _ := net.SplitHostPort(g.Client)
	fetchedCRL := t.fetches.since(ip, IntermediateCRLPath, start)
	fetchedInter := t.fetches.since(ip, IntermediatePath, start)
	if err == nil {
		g.Result, g.Evidence = t.completed(c, tc.ConnectionState(), fetchedCRL, fetchedInter)
		if g.Result == Pass || c.Expect == TimesOut {
			return tc, nil // slow grades a completed handshake itself
		}
		return tc, t.confirm(c, tc, g, fetchedCRL)
	}
	g.Result, g.Evidence = t.failed(c, err, h)
	switch {
	case c.Name == "revoked" && fetchedCRL && g.Result == Pass:
		g.Evidence += ", after fetching the CRL"
	case c.Name == "missing-intermediate" && fetchedInter && g.Result == Pass:
		g.Evidence += ", though it fetched the intermediate"
	}
	return nil, nil
}

// confirm waits for what a client that completed the handshake with a
// bad server does next. Sending data, or holding the connection in
// silence, is accepting the server; closing without a word is how clients
// that check the certificate after the handshake refuse it (curl checks
// the host name so). It returns the data read.
func (t *Testbed) confirm(c Case, tc *tls.Conn, g *Grade, fetchedCRL bool) []byte {
	_ = tc.SetReadDeadline(time.Now().Add(t.opts.SlowFor))
	buf := make([]byte, 4096)
	n, err := tc.Read(buf)
	switch {
	case n > 0:
		g.Evidence += "; then it sent data"
		return buf[:n]
	case isTimeout(err):
		g.Evidence += fmt.Sprintf("; then it held the connection %s without a word", t.opts.SlowFor)
		return nil
	case c.Name == "revoked" && !fetchedCRL:
		g.Evidence = "client connected without fetching the CRL, then closed without sending anything"
		return nil
	}
	g.Result = Pass
	g.Evidence = "client completed the handshake, then closed without sending anything (it checks after the handshake)"
	if a, ok := alertOf(err); ok {
		g.Evidence += ": alert " + a
	}
	if c.Name == "revoked" {
		g.Evidence += ", having fetched the CRL"
	}
	return nil
}

// completed grades a completed handshake.
func (t *Testbed) completed(c Case, cs tls.ConnectionState, fetchedCRL, fetchedInter bool) (Result, string) {
	leaf := t.opts.Material.Leaf(c.Name)
	accepted := "client completed the handshake with "
	switch c.Name {
	case "good":
		return Pass, "handshake completed: " + negotiated(cs)
	case "require-client-cert":
		peer := cs.PeerCertificates[0]
		return Pass, fmt.Sprintf("client presented %s, issued by %s", peer.Subject, peer.Issuer)
	case "expired":
		return Fail, accepted + "a certificate that expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case "not-yet-valid":
		return Fail, accepted + "a certificate valid only from " + leaf.NotBefore.UTC().Format(time.RFC3339)
	case "wrong-host":
		return Fail, accepted + "a certificate for " + OtherHost + sni(cs.ServerName)
	case "self-signed":
		return Fail, accepted + "a self-signed certificate"
	case "unknown-ca":
		return Fail, accepted + "a chain to CN=" + UnknownCACommonName + ", a root it was not given"
	case "wrong-eku":
		return Fail, accepted + "a certificate for TLS clients only (extended key usage clientAuth)"
	case "weak-key":
		return Fail, accepted + "a 1024-bit RSA key"
	case "tls10", "tls11":
		return Fail, "client completed a " + tls.VersionName(cs.Version) + " handshake"
	case "missing-intermediate":
		if fetchedInter {
			return Pass, "client fetched the missing intermediate (issuer certificate URL) and connected"
		}
		return Fail, accepted + "a leaf whose intermediate it was not sent and did not fetch"
	case "revoked":
		if fetchedCRL {
			return Fail, "client fetched the CRL, which lists the certificate, and connected anyway"
		}
		return NotChecked, "client connected without fetching the CRL: it does not check revocation"
	}
	return Fail, accepted + "the server of case " + c.Name
}

// sni is ", asking for NAME" when the client sent a server name.
func sni(name string) string {
	if name == "" {
		return " (it sent no server name)"
	}
	return " (it asked for " + sanitize.String([]byte(name)) + ")"
}

// negotiated is what a handshake agreed.
func negotiated(cs tls.ConnectionState) string {
	s := tls.VersionName(cs.Version) + ", " + tls.CipherSuiteName(cs.CipherSuite)
	if cs.CurveID != 0 {
		s += ", " + cs.CurveID.String()
	}
	return s
}

// goodServer is whether a correct client connects to case c.
func goodServer(c Case) bool { return c.Expect == Connects || c.Expect == PresentsCert }

// failed grades a handshake that did not complete.
func (t *Testbed) failed(c Case, err error, h *hc) (Result, string) {
	hello := h.hello
	if h.sniff.Alert >= 0 {
		// The alert crypto/tls could not read (see recordSniffer).
		err = tls.AlertError(h.sniff.Alert)
	}
	var cerr *clientCertError
	switch {
	case errors.As(err, &cerr):
		return Fail, cerr.Error()
	case strings.Contains(err.Error(), "client didn't provide a certificate"):
		return Fail, "client sent no certificate when asked for one from CN=" + CACommonName +
			" (clients send none when theirs is not from a CA the server names)"
	case isTimeout(err):
		return Fail, "client neither completed nor ended the handshake in " + t.opts.HandshakeTimeout.String() + ": it hangs"
	case strings.Contains(err.Error(), "client offered only unsupported versions"):
		offered := "nothing the server speaks"
		if hello != nil {
			offered = strings.Join(hello.Versions, ", ")
		}
		if c.Name == "tls10" || c.Name == "tls11" {
			return Pass, "client does not offer " + tls.VersionName(t.serverConfig(c).MaxVersion) + " (it offers " + offered + ")"
		}
		if goodServer(c) {
			return Fail, "client offers only " + offered + ", too old for a good server"
		}
		return NotGraded, "client offers only " + offered + ", so the case's certificate was not shown"
	}
	if a, ok := alertOf(err); ok {
		if goodServer(c) {
			return Fail, "client refused a good server: alert " + a + hintFor(a)
		}
		if v := t.serverConfig(c).MaxVersion; v != 0 {
			return Pass, "client refused the " + tls.VersionName(v) + " handshake: alert " + a
		}
		return Pass, "client refused: alert " + a
	}
	if isClosed(err) {
		if goodServer(c) {
			return Fail, "client closed the connection during the handshake with a good server"
		}
		return Pass, "client closed the connection during the handshake (no alert)"
	}
	text := "handshake failed on the server's side: " + sanitize.String([]byte(strings.TrimPrefix(err.Error(), "tls: ")))
	if goodServer(c) {
		return Fail, text
	}
	return NotGraded, text
}

// hintFor is advice for a client that refused a good server.
func hintFor(alert string) string {
	if strings.HasPrefix(alert, "unknown_ca") || strings.HasPrefix(alert, "bad_certificate") {
		return " (is it given the testbed's ca.pem as its trust anchor?)"
	}
	return ""
}

// alertOf is the alert a peer sent, named with its number:
// "certificate_expired (45)".
func alertOf(err error) (string, bool) {
	code, ok := alert.Received(err)
	if !ok {
		return "", false
	}
	return alert.Text(code), true
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// clientCertError is a client certificate require-client-cert refuses.
type clientCertError struct {
	subject string
	err     error
}

func (e *clientCertError) Error() string {
	return "client presented " + e.subject + ", which does not verify against the testbed CA: " +
		sanitize.String([]byte(e.err.Error()))
}

// verifyClient verifies a client certificate against the testbed CA (and
// the issuers given), for clients only.
func verifyClient(m *Material) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // RequireAnyClientCert has refused already
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: m.ClientCAs(), Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return &clientCertError{subject: sanitize.String([]byte(leaf.Subject.String())), err: err}
		}
		return nil
	}
}

// slow waits SlowFor before it answers the ClientHello. A client that
// gives up first passes; one that waits and connects fails.
func (t *Testbed) slow(c Case, conn net.Conn, pc *replay.Conn, start time.Time, g *Grade) (*tls.Conn, []byte) {
	// Keep what the client sends while the server stalls (the rest of its
	// ClientHello), up to 64 KiB, and watch for its close.
	var held bytes.Buffer
	_ = conn.SetDeadline(start.Add(t.opts.SlowFor))
	_, err := io.Copy(&held, io.LimitReader(pc, 64<<10))
	if err == nil || !isTimeout(err) {
		g.Result = Pass
		g.Evidence = fmt.Sprintf("client gave up after %s, before the server answered", since(start))
		if err == nil && held.Len() >= 64<<10 {
			g.Result, g.Evidence = NotGraded, "client sent 64 KiB without waiting for an answer"
		}
		return nil, nil
	}
	_ = conn.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	tc, pending := t.handshake(c, replay.New(conn, held.Bytes()), start, g)
	if tc != nil {
		g.Result = Fail
		g.Evidence = fmt.Sprintf("client waited %s for the server's answer and connected: it has no handshake timeout of %s or less",
			t.opts.SlowFor, t.opts.SlowFor)
		return tc, pending
	}
	if g.Result == Pass {
		g.Evidence = fmt.Sprintf("client waited %s, then ended the handshake: %s", t.opts.SlowFor, g.Evidence)
	}
	return nil, nil
}

// errAborted is what abortConn's writes return once the ServerHello is out.
var errAborted = errors.New("testbed: handshake stopped after the ServerHello")

// abortConn lets the first TLS record the server writes (its ServerHello)
// through, and nothing after it.
type abortConn struct {
	net.Conn
	done bool
}

func (c *abortConn) Write(b []byte) (int, error) {
	if c.done {
		return 0, errAborted
	}
	c.done = true
	n := len(b)
	if len(b) >= 5 {
		n = min(len(b), 5+(int(b[3])<<8|int(b[4])))
	}
	if _, err := c.Conn.Write(b[:n]); err != nil {
		return 0, err
	}
	return 0, errAborted
}

// abort sends the ServerHello, closes its side, and grades what the
// client does then: closing (with an alert or without) passes, holding
// the connection for SlowFor fails.
func (t *Testbed) abort(c Case, conn net.Conn, pc *replay.Conn, start time.Time, g *Grade) {
	h := newHC(&abortConn{Conn: pc})
	err := tls.Server(h, t.serverConfig(c)).HandshakeContext(context.Background())
	if !errors.Is(err, errAborted) {
		g.Result, g.Evidence = t.failed(c, err, h)
		if g.Result == Fail {
			g.Result = NotGraded // the client ended it before the server could misbehave
		}
		return
	}
	stopped := time.Now()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	_ = conn.SetDeadline(stopped.Add(t.opts.SlowFor))
	sent := ""
	r := bufio.NewReader(io.LimitReader(conn, 64<<10))
	for {
		hdr, err := r.Peek(5)
		if err != nil {
			if isTimeout(err) {
				g.Result = Fail
				g.Evidence = fmt.Sprintf("client still held the connection %s after the server stopped mid-handshake: it hangs", t.opts.SlowFor)
				return
			}
			break
		}
		n := 5 + (int(hdr[3])<<8 | int(hdr[4]))
		rec := make([]byte, n)
		if _, err := io.ReadFull(r, rec); err != nil {
			break
		}
		switch {
		case rec[0] == 21 && n >= 7:
			sent = "alert " + alert.Text(rec[6])
		case rec[0] == 23 && sent == "":
			sent = "an encrypted record (an alert, under TLS 1.3)"
		}
	}
	g.Result = Pass
	g.Evidence = fmt.Sprintf("client closed the connection %s after the server stopped mid-handshake", since(stopped))
	if sent != "" {
		g.Evidence += ", having sent " + sent
	}
}

// since is the time since t, rounded for a person.
func since(t time.Time) time.Duration {
	d := time.Since(t)
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// tellClient answers a client whose handshake completed with its grade:
// an HTTP response to an HTTP request, else one line per line received.
func tellClient(tc *tls.Conn, g Grade, pending []byte) {
	line := fmt.Sprintf("seclisten testbed, case %s: %s: %s\n", g.Case, strings.ToUpper(string(g.Result)), g.Evidence)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), tc), 4096)
	for i := 0; ; i++ {
		_ = tc.SetDeadline(time.Now().Add(idleTimeout))
		b, err := r.ReadSlice('\n')
		if len(b) == 0 && err != nil {
			return
		}
		if i == 0 && handshake.IsHTTP(b) {
			// Read the request's header (bounded by the buffer), answer it, close.
			for {
				h, err := r.ReadSlice('\n')
				if err != nil || len(bytes.TrimSpace(h)) == 0 {
					break
				}
			}
			fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				len(line), line)
			return
		}
		if _, err := io.WriteString(tc, line); err != nil {
			return
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
