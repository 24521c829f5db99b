package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/fleet"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/admit"
	"github.com/seclisten/seclisten/pkg/internal/ban"
	"github.com/seclisten/seclisten/pkg/internal/handshake"
	"github.com/seclisten/seclisten/pkg/internal/metrics"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/outcome"
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
	certWarn *certWarner
	keyLog   bool // sessions' secrets go to a key log
	tls      *tlsconf.Source
	admit    *admit.Admitter
	reporter *admit.Reporter
	bans     *ban.Table // nil when bans are off
	// banned, if set, shares each new ban with the fleet, and failed
	// each failure that counts towards one.
	banned   func(fleet.BanRecord)
	failed   func(key, reason string)
	limits   config.Limits
	refusals map[outcome.Code]refusal
	flags    func(outcome.Code) string
	maxLine  int
	report   bool
	hsTime   time.Duration
	idle     time.Duration // the listener reads these two at accept
	write    time.Duration
	opts     exchange.Options
	// inFlight are the admitted connections, shared by every policy.
	inFlight *inFlight
	// hsLog samples the handshake lines, shared by every policy.
	hsLog *handshakeLog
}

// conn is the state of one connection as it goes through the pipeline.
type conn struct {
	lc     *listener.Conn // deadlines, lifetime, close
	stream net.Conn       // the client's byte stream (after any PROXY header)
	remote string         // the real client address
	out    *output.Conn   // prints the connection's events
	log    connLog
	addr   netip.Addr // the real client IP address (limits, bans, a reload's lists)
	// certs is the client's certificate chain once the handshake verified
	// it, for a reload's revocation and allowlist checks.
	certs atomic.Pointer[[]*x509.Certificate]
	// denied is set when a reload closed the connection.
	denied atomic.Bool
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
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(slog.Uint64("conn_id", c.id), slog.String("remote_addr", c.remote))
	r.Add(args...)
	c.emit(ctx, r)
}

// emit hands r to the handler. Logger.Log would first walk the stack for
// the caller's program counter (runtime.Callers), once per record, for
// the source location no seclisten handler writes: records built here
// leave it zero (log/slog's documented way for wrappers).
func (c connLog) emit(ctx context.Context, r slog.Record) {
	_ = c.l.Handler().Handle(ctx, r)
}

// handshake logs the handshake line at info: the facts as one slog
// attribute (Facts.LogAttr), made only when info is enabled and, unless
// debug is too, sample lets it through.
func (c connLog) handshake(f *output.Facts, sample *handshakeLog) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	now := time.Now()
	if !c.l.Enabled(ctx, slog.LevelDebug) && !sample.allow(now) {
		return
	}
	r := slog.NewRecord(now, slog.LevelInfo, "handshake", 0)
	// The connection's attributes name remote_addr already.
	r.AddAttrs(slog.Uint64("conn_id", c.id), slog.String("remote_addr", c.remote), f.LogAttr("remote_addr"))
	c.emit(ctx, r)
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
	if h.bans != nil && h.bans.Banned(client.Addr()) {
		// The cheapest refusal of all: before the lists and the limiter.
		// It does not count towards the ban, which would extend itself.
		h.refuseEarly(lc, client.String(), h.bans.Key(client.Addr()), outcome.Banned)
		return
	}
	release, why, ok := h.admit.Admit(client.Addr())
	if !ok {
		// Refused before any TLS work and before reading a byte.
		// Counted before the refusal is sent: a client told it was refused
		// has been counted.
		h.strike(client.Addr(), why)
		h.refuseEarly(lc, client.String(), h.admit.Key(client.Addr()), why)
		return
	}
	// A parked connection's session releases these when it ends.
	var parked bool
	defer func() {
		if !parked {
			release()
		}
	}()
	h.metrics.Open()

	remote := client.String()
	c := &conn{lc: lc, stream: rw, remote: remote, out: h.printer.Conn(lc.ID(), remote),
		log: connLog{l: h.log, id: lc.ID(), remote: remote}, addr: client.Addr()}
	h.inFlight.add(c)
	defer func() {
		if !parked {
			h.inFlight.remove(c)
		}
	}()
	c.out.Connect(remote, lc.LocalAddr())
	c.log.Debug("connection opened")

	opts := h.opts
	if h.limits.MsgRate > 0 {
		opts.Pace = h.pacer(ctx, c)
	}

	if lc.CanPark() {
		opts.Parker = lc
	}
	var s *session
	if h.tls != nil {
		s = h.serveTLS(ctx, c, opts)
	} else {
		lc.SetPhaseDeadline(time.Time{})
		s = h.servePlain(c, opts)
	}
	if s.rw != nil {
		parked = s.exchange(false)
		if parked {
			s.release = release
			return
		}
	}
	h.finish(c, s.res, s.reason)
}

// session is an exchange in progress: what a parked connection keeps of
// its goroutine to go on where it stopped, or an exchange that never
// started (rw nil) and how it ended.
type session struct {
	h       *handler
	c       *conn
	rw      io.ReadWriter // nil: no exchange (refused, an ACME validation)
	opts    exchange.Options
	res     exchange.Result
	reason  outcome.Code
	release func() // the admission slot, once parked
}

// exchange runs the exchange, or the rest of it after parking (timedOut:
// the idle deadline passed while parked), and reports whether it parked
// again, in which case the listener resumes it with resume.
func (s *session) exchange(timedOut bool) bool {
	if timedOut {
		// What the read that parked would have returned.
		s.res.End, s.res.Err = exchange.EndReadError, os.ErrDeadlineExceeded
	} else {
		s.res = exchange.Resume(s.rw, s.opts, &counted{s.c.out, s.h.metrics}, s.res)
	}
	if s.res.End == exchange.EndParked {
		s.c.lc.Suspend(s.resume)
		return true
	}
	if tc, ok := s.rw.(*tls.Conn); ok {
		// close_notify before the listener's TCP close.
		_ = tc.CloseWrite()
		if s.res.End == exchange.EndEOF {
			// The client's close_notify: it sends nothing more.
			s.c.lc.PeerDone()
		}
	}
	s.reason = closeCode(s.res)
	return false
}

// resume is the rest of the handler after a wake-up.
func (s *session) resume(timedOut bool) {
	parked := false
	defer func() {
		if !parked {
			s.release()
			s.h.inFlight.remove(s.c)
		}
	}()
	if parked = s.exchange(timedOut); !parked {
		s.h.finish(s.c, s.res, s.reason)
	}
}

// finish logs, counts and prints the end of a connection.
func (h *handler) finish(c *conn, res exchange.Result, reason outcome.Code) {
	lc := c.lc
	if reason == outcome.IdleTimeout && lc.LifetimeOver() {
		reason = outcome.MaxLifetime
	}
	if c.denied.Load() {
		reason = outcome.ReloadDenied
	}
	if reason == outcome.LineTooLong && h.reporter.Note(h.admit.Key(c.addr), reason) {
		// Info, not debug: the client was cut off, and whoever runs the
		// server should learn why without turning on debug logging.
		c.log.Info("closed: line too long", h.withFlags(reason, "code", reason, "limit", h.maxLine,
			"messages", res.Messages)...)
	}
	h.metrics.Closed(reason, res.BytesIn, res.BytesOut)
	d := time.Since(lc.Start())
	c.out.Close(output.Summary{Reason: reason, Messages: res.Messages,
		BytesIn: res.BytesIn, BytesOut: res.BytesOut, Duration: d})
	if !c.log.l.Enabled(context.Background(), slog.LevelDebug) {
		// Not even the attributes: boxing them costs allocations on
		// every connection.
		return
	}
	attrs := []any{"reason", reason, "messages", res.Messages,
		"bytes_in", res.BytesIn, "bytes_out", res.BytesOut, "duration", d}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err)
	}
	c.log.Debug("connection closed", attrs...)
}

// withFlags appends, to a log line about an outcome, what governs it (the
// flags, as the program that configured the server names them), if
// anything does.
func (h *handler) withFlags(c outcome.Code, attrs ...any) []any {
	if f := flagsOf(h.flags, c); f != "" {
		attrs = append(attrs, "flags", f)
	}
	return attrs
}

// flagsOf is flags(c), or "" when flags is nil.
func flagsOf(flags func(outcome.Code) string, c outcome.Code) string {
	if flags == nil {
		return ""
	}
	return flags(c)
}

// refuseEarly refuses a connection before anything was read from it. The
// log names the limit and the flags that govern it; the client gets the
// cheapest signal its tool shows, a TLS alert on a TLS port or one line
// on a plain one, in a single non-blocking write.
func (h *handler) refuseEarly(lc *listener.Conn, remote, who string, why outcome.Code) {
	r := h.refusals[why]
	h.metrics.Rejected(why)
	h.reporter.Refused(who, why, r.attrs...)
	if h.printer.JSON() {
		h.printer.Conn(lc.ID(), remote).Reject(why, why.Text(), nil, nil)
	}
	if h.tls != nil {
		lc.Refuse(alertAccessDenied)
		return
	}
	lc.Refuse(r.line)
}

// strike counts an outcome of addr towards a ban (only the outcomes that
// mean abuse count; ban.Counts) and logs a ban it starts, in a fixed form
// that log watchers can match:
//
//	ban 203.0.113.7 for 10m0s after 10 failures in 1m0s (last: unknown-authority)
//
// In audit mode certificate verdicts never count: that mode promises to
// serve every client while the operator watches what require would do.
func (h *handler) strike(addr netip.Addr, why outcome.Code) {
	if h.bans == nil {
		return
	}
	if why.Kind() == outcome.Verdict && h.tls != nil && h.tls.Options().ClientAuth == tlsconf.Audit {
		return
	}
	b, ok := h.bans.Record(addr, why)
	if !ok {
		if h.failed != nil && h.bans.Counted(addr, why) {
			h.failed(h.bans.Key(addr), string(why))
		}
		return
	}
	h.metrics.Banned(why)
	if h.banned != nil {
		h.banned(banRecord(b))
	}
	logBan(h.log, b.Message(), b)
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
			h.metrics.Notice(outcome.Slowed)
			c.log.Info("slowing a client that sends faster than the message rate", h.withFlags(outcome.Slowed,
				"code", outcome.Slowed, "limit", fmt.Sprintf("%g/s, burst %d", h.limits.MsgRate, h.limits.MsgBurst))...)
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
	var peer netip.AddrPort
	var err error
	if ta, ok := lc.RemoteAddr().(*net.TCPAddr); ok {
		// Without formatting the address and parsing it back.
		peer = ta.AddrPort()
	}
	if !peer.Addr().IsValid() {
		peer, err = netip.ParseAddrPort(lc.RemoteAddr().String())
	}
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
		var why outcome.Code
		var detail []any
		var herr *proxy.HeaderError
		switch {
		case errors.Is(err, proxy.ErrUntrusted):
			h.refuseEarly(lc, peer.String(), peer.Addr().String(), outcome.ProxyUntrusted)
			return nil, peer, false
		case errors.As(err, &herr):
			why, detail = outcome.ProxyBadHeader, []any{"err", sanitize.String([]byte(herr.Err.Error()))}
		case errors.Is(err, os.ErrDeadlineExceeded):
			why = outcome.ProxyTimeout
		default:
			h.log.Debug("closed before a PROXY header", "remote_addr", peer.String(), "err", err)
			lc.CloseNow()
			return nil, peer, false
		}
		// Bytes were read from the proxy: it gets no refusal signal, which
		// would land in the middle of its client's stream.
		h.metrics.Rejected(why)
		h.reporter.Refused(peer.Addr().String(), why, h.withFlags(why, detail...)...)
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

func (h *handler) servePlain(c *conn, opts exchange.Options) *session {
	var rw io.ReadWriter = c.stream
	pc, first, err := handshake.Peek(c.stream)
	if err == nil {
		if handshake.IsTLS(first) {
			why := outcome.TLSOnPlain
			text := why.Text() + ": connect without TLS, or serve TLS on this port"
			c.log.Warn("refused: TLS on the plain port", h.withFlags(why, "verdict", why, "reason", text)...)
			c.out.Reject(why, text, nil, nil)
			h.metrics.HandshakeFailed(why)
			return &session{res: exchange.Result{BytesIn: int64(len(first))}, reason: why}
		}
		rw = pc
	}
	if h.report {
		f := output.Facts{Identity: c.remote, Remote: c.remote}
		opts.Reply = []byte(f.Report(h.printer.JSON()))
	}
	// On a Peek error the exchange reads again, meets the same error
	// (EOF, deadline, reset and shutdown all repeat) and reports it.
	return &session{h: h, c: c, rw: rw, opts: opts}
}

func (h *handler) serveTLS(ctx context.Context, c *conn, opts exchange.Options) *session {
	// The handshake deadline (set at accept) is absolute: a client
	// dripping its ClientHello a byte at a time cannot extend it.
	// It runs on the connection's goroutine, a listener worker whose stack
	// grew for the handshakes before it; an idle connection parks and
	// gives the worker back.
	//
	// A shutdown ends the handshake through the listener, which fails its
	// reads and writes (listener.ErrShutdown). It runs on the server's
	// context only when that also reaches a revocation fetch or an ACME
	// issuance: crypto/tls ties a handshake to a context that can end with
	// two children registered under the context's one lock, a cost every
	// handshake would pay and every core would share.
	hctx := context.Background()
	if h.tls.Options().ContextUsed() {
		hctx = ctx
	}
	hs, err := handshake.Server(hctx, c.stream, h.tls.Config())
	c.lc.SetPhaseDeadline(time.Time{})
	if err != nil {
		return &session{res: h.refuse(c, err), reason: outcome.HandshakeEnded}
	}
	st := hs.State
	h.metrics.HandshakeDone(time.Since(c.lc.Start()))
	if tlsconf.IsACMEChallenge(st) {
		// A CA validating TLS-ALPN-01: the handshake was the whole answer.
		c.log.Debug("ACME TLS-ALPN-01 validation answered", "sni", sanitize.String([]byte(st.ServerName)))
		_ = hs.Conn.Close()
		return &session{reason: outcome.ACMEChallenge}
	}
	if h.tls.Options().Explain {
		// The handshake accepted any certificate (tlsconf.Options.Explain):
		// judge it here, on resumed handshakes too, before anything is read.
		// A revocation fetch it waits for is bounded like the handshake.
		jctx, cancel := context.WithTimeout(ctx, h.hsTime)
		err := h.tls.JudgeContext(jctx, st.PeerCertificates)
		cancel()
		if err != nil {
			return &session{res: h.explain(c, hs.Conn, err), reason: outcome.HandshakeEnded}
		}
	}
	if mode := h.tls.Options().ClientAuth; len(st.PeerCertificates) > 0 && (mode == tlsconf.Require || mode == tlsconf.VerifyIfGiven) {
		certs := st.PeerCertificates
		c.certs.Store(&certs)
	}
	f := h.facts(c, st)
	f.Hello = hs.Hello
	if st.DidResume {
		f.TLS.ResumedTicket = metrics.TicketOwn
		if hs.OtherReplica {
			f.TLS.ResumedTicket = metrics.TicketOtherReplica
		}
		h.metrics.Resumed(f.TLS.ResumedTicket)
	}
	if f.Identity != c.remote {
		c.out.SetPeer(f.Identity + " " + c.remote)
	}
	h.logHandshake(c, f)
	if f.Cert != nil && h.certWarn.check(f.Cert, time.Now()) {
		h.metrics.Notice(outcome.ClientCertExpiring)
		left := time.Until(f.Cert.NotAfter)
		c.log.Warn("client certificate expires soon", h.withFlags(outcome.ClientCertExpiring,
			"code", outcome.ClientCertExpiring, "client", sanitize.String([]byte(f.Cert.Name)), "client_serial", f.Cert.Serial,
			"days_left", int(left.Hours()/24), "not_after", f.Cert.NotAfter.UTC().Format(time.RFC3339))...)
	}

	if h.report {
		opts.Reply = []byte(f.Report(h.printer.JSON()))
	}
	return &session{h: h, c: c, rw: hs.Conn, opts: opts}
}

// refuse logs and prints a failed handshake, and returns what the client
// was sent.
func (h *handler) refuse(c *conn, err error) exchange.Result {
	f := handshake.Explain(err, time.Now())
	var res exchange.Result
	if nt, ok := err.(*handshake.NotTLSError); ok {
		n, _ := c.stream.Write(nt.Reply())
		res.BytesOut = int64(n)
	}
	h.refused(c, f)
	return res
}

// explain refuses a client that completed its handshake only because of
// --explain (tlsconf.Options.Explain): logged, counted and printed as a
// refused handshake, then told why in one line over TLS, then close_notify
// and the listener's lingering close. Nothing the client sent is read, so
// nothing of it is printed or answered; the write is bounded by the write
// timeout, and the lingering close by its own.
func (h *handler) explain(c *conn, tc *tls.Conn, err error) exchange.Result {
	f := h.refused(c, handshake.Explain(err, time.Now()))
	line := "error: refused: " + f.Text
	// A client without a certificate was told the CAs asked for already.
	if names := h.tls.ClientCANames(); len(names) > 0 && f.Code != outcome.NoCertificate && !h.tls.Options().HideCANames {
		line += "; the server trusts " + sanitize.String([]byte(strings.Join(names, ", ")))
	}
	n, werr := tc.Write([]byte(line + "\n"))
	if werr == nil {
		_ = tc.CloseWrite()
	}
	return exchange.Result{BytesOut: int64(n), Err: werr}
}

// refused logs, counts and prints a refused handshake, and returns it as
// told. A client that sent no certificate is told which CAs the server
// asked for: the usual cause is a certificate that matches none of them.
func (h *handler) refused(c *conn, f handshake.Failure) handshake.Failure {
	if f.Code == outcome.NoCertificate {
		f.Text += h.askedFor()
	}
	h.strike(c.addr, f.Code)
	h.metrics.HandshakeFailed(f.Code)
	attrs := []any{"verdict", f.Code, "reason", f.Text}
	var cert *identity.Identity
	if f.Leaf != nil {
		id := identity.FromCertificate(f.Leaf)
		cert = &id
		attrs = output.CertAttrs(attrs, "client_", cert)
	}
	attrs = output.HelloAttrs(attrs, f.Hello)
	attrs = h.withFlags(f.Code, attrs...)
	// Every refusal is logged in full the first time per client and
	// verdict in each period, then summarised with a count, so an attack
	// from many connections cannot flood the log; a developer trying each
	// broken certificate in turn still sees every verdict.
	closed := f.Code == outcome.HandshakeClosed
	full := closed || h.reporter.Note(h.admit.Key(c.addr), f.Code)
	switch {
	case closed:
		// Port probes and TCP health checks connect and leave: not news.
		c.log.Debug("handshake not completed", attrs...)
	case !full:
	case f.Verdict != nil:
		c.log.Warn("client certificate refused", attrs...)
	case f.Code == outcome.HandshakeTimeout:
		c.log.Info("handshake not completed", attrs...)
	default:
		c.log.Warn("handshake failed", attrs...)
	}
	c.out.Reject(f.Code, f.Text, f.Hello, cert)
	return f
}

// askedFor says which CAs the CertificateRequest named, or that it named
// none (hidden).
func (h *handler) askedFor() string {
	if h.tls.Options().HideCANames {
		return "; the server asked for one without naming the CAs it trusts (their names are hidden)"
	}
	names := h.tls.ClientCANames()
	if len(names) == 0 {
		return ""
	}
	return "; the server asked for one issued by " + sanitize.String([]byte(strings.Join(names, ", ")))
}

// facts describes the connection after its handshake: the TLS
// parameters, the client's name, and the verdict on its certificate
// according to the client-auth mode.
func (h *handler) facts(c *conn, st tls.ConnectionState) *output.Facts {
	mode := h.tls.Options().ClientAuth
	f := &output.Facts{Identity: c.remote, Remote: c.remote, TLS: &output.TLS{
		Version:    tls.VersionName(st.Version),
		Cipher:     clienthello.SuiteName(st.CipherSuite),
		Group:      groupName(st.CurveID),
		ALPN:       st.NegotiatedProtocol,
		SNI:        st.ServerName,
		Resumed:    st.DidResume,
		ClientAuth: mode.String(),
		KeyLog:     h.keyLog,
	}}
	v := h.judge(st, mode)
	f.Verdict, f.VerdictText = v.Code, v.Text
	if len(st.PeerCertificates) > 0 && mode != tlsconf.NoClientCert {
		id := identity.FromCertificate(st.PeerCertificates[0])
		f.Cert = &id
		f.Identity = id.Name
		if v.Code != outcome.OK {
			f.Identity = "unverified " + id.Name
		}
	}
	return f
}

// judge is the verdict on the client's certificate in the client-auth mode
// (the handshake itself refused the certificates a mode refuses).
func (h *handler) judge(st tls.ConnectionState, mode tlsconf.ClientAuth) verdict.Verdict {
	switch {
	case mode == tlsconf.NoClientCert:
		return verdict.Verdict{}
	case len(st.PeerCertificates) == 0 && mode == tlsconf.Audit:
		return verdict.Explain(verdict.ErrNoCertificate, nil, time.Now())
	case len(st.PeerCertificates) == 0:
		return verdict.Verdict{Code: outcome.NoCertificate, Text: "no client certificate sent (allowed in " + mode.String() + " mode)"}
	case mode == tlsconf.Request:
		return verdict.Verdict{Code: outcome.Unverified, Text: outcome.Unverified.Text()}
	case mode == tlsconf.Audit:
		return verdict.Explain(h.tls.Verify(st.PeerCertificates), st.PeerCertificates[0], time.Now())
	}
	return verdict.OKVerdict
}

func (h *handler) logHandshake(c *conn, f *output.Facts) {
	c.out.Handshake(f)
	c.log.handshake(f, h.hsLog)
	if f.TLS.ClientAuth == tlsconf.Audit.String() {
		if f.Verdict == outcome.OK {
			c.log.Info("audit: client certificate verified; a require server would accept it")
		} else {
			c.log.Warn("audit: a require server would refuse this client; serving it anyway",
				"verdict", f.Verdict, "reason", f.VerdictText)
		}
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

// closeCode says why an exchange ended.
func closeCode(res exchange.Result) outcome.Code {
	switch res.End {
	case exchange.EndEOF:
		return outcome.ClientClosed
	case exchange.EndOnce:
		return outcome.Once
	case exchange.EndLineTooLong:
		return outcome.LineTooLong
	case exchange.EndWriteError:
		if errors.Is(res.Err, os.ErrDeadlineExceeded) {
			return outcome.WriteTimeout
		}
		return outcome.WriteFailed
	}
	switch {
	case errors.Is(res.Err, listener.ErrShutdown):
		return outcome.Shutdown
	case errors.Is(res.Err, os.ErrDeadlineExceeded):
		return outcome.IdleTimeout
	case errors.Is(res.Err, syscall.ECONNRESET):
		return outcome.Reset
	}
	return outcome.ReadFailed
}

// counted prints what the exchange observes and counts it.
type counted struct {
	out *output.Conn
	m   *metrics.Metrics
}

func (c *counted) Message(msg []byte) {
	c.out.Message(msg)
	c.m.Message()
}

func (c *counted) Reply(reply []byte) {
	c.out.Reply(reply)
	c.m.Reply()
}
