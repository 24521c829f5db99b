package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/admit"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/handshake"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/metrics"
	"github.com/seclisten/seclisten/pkg/output"
	"github.com/seclisten/seclisten/pkg/proxy"
	"github.com/seclisten/seclisten/pkg/sanitize"
	"github.com/seclisten/seclisten/pkg/tlsconf"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// handler runs the pipeline of one connection: PROXY header (if on),
// admission, handshake (TLS mode), identity, exchange, close.
type handler struct {
	log      *slog.Logger
	printer  *output.Printer
	metrics  *metrics.Metrics
	tls      *tlsconf.Source
	admit    *admit.Admitter
	reporter *admit.Reporter
	limits   config.Limits
	refusals map[admit.Reason]refusal
	maxLine  int
	report   bool
	hsTime   time.Duration
	opts     exchange.Options
}

// conn is the state of one connection as it goes through the pipeline.
type conn struct {
	c      *listener.Conn // deadlines, lifetime, close
	rw     net.Conn       // the client's byte stream (after any PROXY header)
	remote string         // the real client address
	key    string         // the client as the limits see it (IPv6 by prefix)
	p      *output.Conn
	log    connLog
}

// connLog logs for one connection, with its conn_id and remote_addr. It
// holds no Logger.With of its own: that would keep preformatted attributes
// alive for every idle connection, and cost allocations for connections
// that are never logged at an enabled level (Debug, by default). The two
// attributes are added to each enabled record instead; the output is the
// same.
type connLog struct {
	l      *slog.Logger
	id     uint64
	remote string
}

func (c connLog) Debug(msg string, args ...any) { c.log(slog.LevelDebug, msg, args) }
func (c connLog) Info(msg string, args ...any)  { c.log(slog.LevelInfo, msg, args) }
func (c connLog) Warn(msg string, args ...any)  { c.log(slog.LevelWarn, msg, args) }

func (c connLog) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, level) {
		return
	}
	c.l.Log(ctx, level, msg, append([]any{"conn_id", c.id, "remote_addr", c.remote}, args...)...)
}

func (h *handler) serve(ctx context.Context, lc *listener.Conn) {
	// The handshake budget counts from accept and covers the PROXY header
	// and the TLS handshake together.
	h.metrics.Accepted()
	lc.SetPhaseDeadline(lc.Start().Add(h.hsTime))
	rw, client, ok := h.proxyHeader(lc)
	if !ok {
		return
	}
	release, why, ok := h.admit.Admit(client.Addr())
	if !ok {
		// Refused before any TLS work and before reading a byte.
		h.refuseEarly(lc, h.admit.Key(client.Addr()), why)
		h.metrics.Rejected(rejectLabel(why))
		return
	}
	defer release()
	h.metrics.Open()

	remote := client.String()
	c := &conn{c: lc, rw: rw, remote: remote, key: h.admit.Key(client.Addr()), p: h.printer.Conn(lc.ID(), remote),
		log: connLog{l: h.log, id: lc.ID(), remote: remote}}
	c.p.Connect(remote, lc.LocalAddr().String())
	c.log.Debug("connection opened")

	opts := h.opts
	if h.limits.MsgRate > 0 {
		opts.Pace = h.pacer(ctx, c)
	}

	var res exchange.Result
	var reason string
	if h.tls != nil {
		res, reason = h.serveTLS(ctx, c, opts)
	} else {
		lc.SetPhaseDeadline(time.Time{})
		res, reason = h.servePlain(c, opts)
	}
	if reason == "idle timeout" && lc.LifetimeOver() {
		reason = "max lifetime"
	}
	if res.End == exchange.EndLineTooLong && h.reporter.Note(c.key, "line too long") {
		// Info, not debug: the client was cut off, and whoever runs the
		// server should learn why without turning on debug logging.
		c.log.Info("closed: line too long", "limit", h.maxLine, "flags", "--max-line",
			"messages", res.Messages)
	}
	h.metrics.Closed(res.BytesIn, res.BytesOut)
	d := time.Since(lc.Start())
	c.p.Close(output.Summary{Reason: reason, Messages: res.Messages,
		BytesIn: res.BytesIn, BytesOut: res.BytesOut, Duration: d})
	c.log.Debug("connection closed", "reason", reason, "messages", res.Messages,
		"bytes_in", res.BytesIn, "bytes_out", res.BytesOut, "duration", d)
}

// refuseEarly refuses a connection before anything was read from it. The
// log names the limit and the flags that govern it; the client gets the
// cheapest signal its tool shows, a TLS alert on a TLS port or one line
// on a plain one, in a single non-blocking write.
func (h *handler) refuseEarly(lc *listener.Conn, who string, why admit.Reason) {
	r := h.refusals[why]
	h.reporter.Refused(who, why, "limit", r.limit, "flags", r.flags)
	if h.tls != nil {
		lc.Refuse(alertAccessDenied)
		return
	}
	lc.Refuse(r.line)
}

// pacer returns the exchange's Pace for --msg-rate: it slows a client that
// sends faster than the rate, and says so in the log the first time.
func (h *handler) pacer(ctx context.Context, c *conn) func() error {
	lim := rate.NewLimiter(rate.Limit(h.limits.MsgRate), h.limits.MsgBurst)
	slowed := false
	return func() error {
		if lim.Allow() {
			return nil
		}
		if !slowed {
			slowed = true
			c.log.Info("slowing a client that sends faster than the message rate",
				"limit", fmt.Sprintf("%g/s, burst %d", h.limits.MsgRate, h.limits.MsgBurst),
				"flags", "--msg-rate,--msg-burst")
		}
		// Once the server shuts down, pacing stops: the messages the client
		// already sent are answered at once, and the next Read returns
		// ErrShutdown when none is left.
		_ = lim.Wait(ctx)
		return nil
	}
}

// proxyHeader reads the PROXY header when --proxy-protocol is on, and
// returns the client's stream and real address. It reports false when the
// connection was refused (and closed).
func (h *handler) proxyHeader(lc *listener.Conn) (net.Conn, netip.AddrPort, bool) {
	peer, err := netip.ParseAddrPort(lc.RemoteAddr().String())
	if err != nil {
		h.log.Warn("refused: unparsable peer address", "remote_addr", lc.RemoteAddr().String())
		lc.CloseNow()
		return nil, peer, false
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if !h.limits.ProxyProtocol {
		return lc, peer, true
	}
	res, err := proxy.Read(lc, h.limits.TrustedProxies)
	if err != nil {
		var why admit.Reason
		var herr *proxy.HeaderError
		switch {
		case errors.Is(err, proxy.ErrUntrusted):
			h.refuseEarly(lc, peer.Addr().String(), untrustedProxy)
			h.metrics.Rejected("proxy_untrusted")
			return nil, peer, false
		case errors.As(err, &herr):
			why = admit.Reason("bad PROXY header: " + sanitize.String([]byte(herr.Err.Error())))
			h.metrics.Rejected("proxy_bad_header")
		case errors.Is(err, os.ErrDeadlineExceeded):
			why = "no PROXY header in time"
			h.metrics.Rejected("proxy_timeout")
		default:
			h.log.Debug("closed before a PROXY header", "remote_addr", peer.String(), "err", err)
			lc.CloseNow()
			return nil, peer, false
		}
		h.reporter.Refused(peer.Addr().String(), why)
		lc.CloseNow()
		return nil, peer, false
	}
	if res.Local {
		// The proxy speaking for itself (a health check, say): served as
		// the proxy's own connection, as the spec says.
		h.log.Debug("PROXY LOCAL connection: served as the proxy's own", "remote_addr", peer.String())
	}
	return res.Conn, res.Client, true
}

func (h *handler) servePlain(c *conn, opts exchange.Options) (exchange.Result, string) {
	var rw io.ReadWriter = c.rw
	pc, first, err := handshake.Peek(c.rw)
	if err == nil {
		if handshake.IsTLS(first) {
			text := "client sent a TLS ClientHello to the plain port: connect without TLS, or run seclisten without --plain"
			c.log.Warn("refused: TLS on the plain port", "reason", text)
			c.p.Reject("tls-on-plain", text, nil)
			h.metrics.HandshakeFailed("tls-on-plain")
			return exchange.Result{BytesIn: int64(len(first))}, "refused: tls on plain port"
		}
		rw = pc
	}
	if h.report {
		opts.Reply = []byte(reportLine(h.printer.JSON(), "", c.remote, nil, nil, verdict.Verdict{}))
	}
	// On a Peek error the exchange reads again, meets the same error
	// (EOF, deadline, reset and shutdown all repeat) and reports it.
	res := exchange.Run(rw, opts, counted{c.p, h.metrics})
	return res, closeReason(res)
}

func (h *handler) serveTLS(ctx context.Context, c *conn, opts exchange.Options) (exchange.Result, string) {
	// The handshake deadline (set at accept) is absolute: a client
	// dripping its ClientHello a byte at a time cannot extend it.
	hs, err := handshakeApart(ctx, c.rw, h.tls.Config())
	c.c.SetPhaseDeadline(time.Time{})
	if err != nil {
		return h.refuse(c, err), "handshake failed"
	}
	st := hs.State
	h.metrics.HandshakeDone(time.Since(c.c.Start()))
	if tlsconf.IsACMEChallenge(st) {
		// A CA validating TLS-ALPN-01: the handshake was the whole answer.
		c.log.Debug("ACME TLS-ALPN-01 validation answered", "sni", sanitize.String([]byte(st.ServerName)))
		_ = hs.Conn.Close()
		return exchange.Result{}, "acme tls-alpn-01 validation"
	}
	name, peerID, v := h.identify(st)
	if name != "" {
		c.p.SetPeer(name + " " + c.remote)
	}
	h.logHandshake(c, st, peerID, v)

	if h.report {
		opts.Reply = []byte(reportLine(h.printer.JSON(), name, c.remote, &st, peerID, v))
	}
	res := exchange.Run(hs.Conn, opts, counted{c.p, h.metrics})
	// close_notify before the listener's TCP close.
	_ = hs.Conn.CloseWrite()
	return res, closeReason(res)
}

// handshakeApart runs the TLS handshake on a goroutine of its own and waits
// for it. A handshake (ML-KEM, ECDSA, certificate parsing) grows a stack to
// 16 KiB or more, and a stack only shrinks at garbage collections, by half
// at a time: on the connection's goroutine that stack would stay with every
// idle connection. A short-lived goroutine's stack goes back to the runtime
// when it exits, so the connection's goroutine keeps only what the
// exchange needs. A panic is raised again on the connection's goroutine,
// where the listener recovers it.
func handshakeApart(ctx context.Context, rw net.Conn, cfg *tls.Config) (*handshake.Result, error) {
	type result struct {
		hs       *handshake.Result
		err      error
		panicked any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r.panicked = fmt.Sprintf("%v\n(in the TLS handshake goroutine)\n%s", v, debug.Stack())
			}
			done <- r
		}()
		r.hs, r.err = handshake.Server(ctx, rw, cfg)
	}()
	r := <-done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.hs, r.err
}

// refuse logs and prints a failed handshake, and returns what the client
// was sent.
func (h *handler) refuse(c *conn, err error) exchange.Result {
	f := handshake.Explain(err, time.Now())
	h.metrics.HandshakeFailed(f.Code)
	var res exchange.Result
	if nt, ok := err.(*handshake.NotTLSError); ok {
		n, _ := c.rw.Write(nt.Reply())
		res.BytesOut = int64(n)
	}
	attrs := []any{"verdict", f.Code, "reason", f.Text}
	var cert *identity.Identity
	if f.Leaf != nil {
		id := identity.FromCertificate(f.Leaf)
		cert = &id
		attrs = append(attrs, certAttrs("client_", cert)...)
	}
	// Every refusal is logged in full the first time per client and
	// verdict in each period, then summarised with a count, so an attack
	// from many connections cannot flood the log; a developer trying each
	// broken certificate in turn still sees every verdict.
	full := f.Code == "closed" || h.reporter.Note(c.key, admit.Reason("handshake: "+f.Code))
	switch {
	case f.Code == "closed":
		// Port probes and TCP health checks connect and leave: not news.
		c.log.Debug("handshake not completed", attrs...)
	case !full:
	case f.Verdict != nil:
		c.log.Warn("client certificate refused", attrs...)
	case f.Code == "timeout":
		c.log.Info("handshake not completed", attrs...)
	default:
		c.log.Warn("handshake failed", attrs...)
	}
	c.p.Reject(f.Code, f.Text, cert)
	return res
}

// identify names the client and judges its certificate according to the
// client-auth mode. name is empty when the client is known by address only.
func (h *handler) identify(st tls.ConnectionState) (name string, peer *identity.Identity, v verdict.Verdict) {
	mode := h.tls.Options().ClientAuth
	if mode == tlsconf.NoClientCert {
		return "", nil, verdict.Verdict{}
	}
	if len(st.PeerCertificates) == 0 {
		if mode == tlsconf.Audit {
			return "", nil, verdict.Explain(verdict.ErrNoCertificate, nil, time.Now())
		}
		return "", nil, verdict.Verdict{Code: verdict.NoCertificate, Text: "no client certificate sent (allowed by --client-auth " + mode.String() + ")"}
	}
	leaf := st.PeerCertificates[0]
	id := identity.FromCertificate(leaf)
	switch mode {
	case tlsconf.Request:
		return "unverified " + id.Name, &id, verdict.Verdict{Code: "unverified", Text: "not verified (--client-auth request)"}
	case tlsconf.Audit:
		v := verdict.Explain(h.tls.Verify(st.PeerCertificates), leaf, time.Now())
		if v.Code != verdict.OK {
			return "unverified " + id.Name, &id, v
		}
		return id.Name, &id, v
	}
	return id.Name, &id, verdict.OKVerdict
}

func (h *handler) logHandshake(c *conn, st tls.ConnectionState, peer *identity.Identity, v verdict.Verdict) {
	mode := h.tls.Options().ClientAuth
	hs := output.Handshake{
		Version:     tls.VersionName(st.Version),
		Cipher:      tls.CipherSuiteName(st.CipherSuite),
		Group:       groupName(st.CurveID),
		ALPN:        st.NegotiatedProtocol,
		SNI:         st.ServerName,
		Resumed:     st.DidResume,
		ClientAuth:  mode.String(),
		Verdict:     v.Code,
		VerdictText: v.Text,
		ClientCert:  peer,
	}
	c.p.Handshake(hs)
	attrs := []any{"tls_version", hs.Version, "cipher", hs.Cipher, "group", hs.Group,
		"alpn", sanitize.String([]byte(hs.ALPN)), "sni", sanitize.String([]byte(hs.SNI)), "resumed", hs.Resumed,
		"client_auth", hs.ClientAuth}
	if v.Code != "" {
		attrs = append(attrs, "verdict", v.Code)
	}
	if peer != nil {
		attrs = append(attrs, certAttrs("client_", peer)...)
	}
	c.log.Info("handshake", attrs...)
	if mode == tlsconf.Audit {
		if v.Code == verdict.OK {
			c.log.Info("audit: client certificate verified; a require server would accept it")
		} else {
			c.log.Warn("audit: a require server would refuse this client; serving it anyway",
				"verdict", v.Code, "reason", v.Text)
		}
	}
}

// certAttrs are log attributes describing a certificate. Every string from
// a certificate is sanitized: in request and audit modes anyone can send one.
func certAttrs(prefix string, id *identity.Identity) []any {
	sans := id.SANs()
	for i := range sans {
		sans[i] = sanitize.String([]byte(sans[i]))
	}
	return []any{
		prefix + "subject", sanitize.String([]byte(id.Subject)),
		prefix + "sans", sans,
		prefix + "issuer", sanitize.String([]byte(id.Issuer)),
		prefix + "serial", id.Serial,
		prefix + "sha256", id.Fingerprint,
		prefix + "not_before", id.NotBefore.UTC().Format(time.RFC3339),
		prefix + "not_after", id.NotAfter.UTC().Format(time.RFC3339),
	}
}

// groupName names a key-exchange group, or "-" for none (resumption
// without a new key exchange).
func groupName(id tls.CurveID) string {
	if id == 0 {
		return "-"
	}
	return id.String()
}

func closeReason(res exchange.Result) string {
	switch res.End {
	case exchange.EndReadError:
		r := listener.Reason(res.Err)
		if r == "timeout" {
			return "idle timeout"
		}
		return r
	case exchange.EndWriteError:
		return "write failed: " + listener.Reason(res.Err)
	}
	return res.End.String()
}

// reportLine is the --report reply: what the server saw of this connection,
// on one line, as key=value pairs or (with --json) a JSON object. st is nil
// for plain TCP.
func reportLine(asJSON bool, name, remote string, st *tls.ConnectionState, peer *identity.Identity, v verdict.Verdict) string {
	if name == "" {
		name = remote
	}
	kv := [][2]string{{"identity", name}, {"remote_addr", remote}}
	if st == nil {
		kv = append(kv, [2]string{"tls_version", "none"})
	} else {
		fp := ""
		if peer != nil {
			fp = peer.Fingerprint
		}
		kv = append(kv,
			[2]string{"verdict", v.Code},
			[2]string{"tls_version", tls.VersionName(st.Version)},
			[2]string{"cipher", tls.CipherSuiteName(st.CipherSuite)},
			[2]string{"group", groupName(st.CurveID)},
			[2]string{"alpn", st.NegotiatedProtocol},
			[2]string{"sni", st.ServerName},
			[2]string{"resumed", strconv.FormatBool(st.DidResume)},
			[2]string{"client_cert_sha256", fp})
	}
	var b strings.Builder
	if asJSON {
		b.WriteByte('{')
		for i, p := range kv {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(p[0]))
			b.WriteByte(':')
			if p[0] == "resumed" {
				b.WriteString(p[1])
			} else {
				b.WriteString(jsonString(sanitize.String([]byte(p[1]))))
			}
		}
		b.WriteByte('}')
		return b.String()
	}
	for i, p := range kv {
		if i > 0 {
			b.WriteByte(' ')
		}
		val := sanitize.String([]byte(p[1]))
		if val == "" {
			val = "-"
		}
		if strings.ContainsAny(val, " \"") {
			val = strconv.Quote(val)
		}
		b.WriteString(p[0] + "=" + val)
	}
	return b.String()
}

// jsonString quotes a sanitized string for JSON: only quote and backslash
// need escaping, as sanitized text holds no control characters.
func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// counted prints what the exchange observes and counts it.
type counted struct {
	p *output.Conn
	m *metrics.Metrics
}

func (c counted) Message(msg []byte) {
	c.p.Message(msg)
	c.m.Message()
}

func (c counted) Reply(reply []byte) {
	c.p.Reply(reply)
	c.m.Reply()
}

// rejectLabel maps an admission refusal to its metric label.
func rejectLabel(why admit.Reason) string {
	switch why {
	case admit.RefusedRate:
		return "rate"
	case admit.RefusedConcurrency:
		return "per_ip_cap"
	case admit.RefusedTableFull:
		return "limiter_full"
	case admit.Denied:
		return "deny"
	case admit.NotAllowed:
		return "not_allowed"
	}
	return "other"
}
