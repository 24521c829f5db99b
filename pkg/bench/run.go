package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runner is one run: the options and the state its workers share.
type runner struct {
	o       Options
	tls     *tls.Config // nil with Plain
	dialers []*net.Dialer
	next    atomic.Uint64 // round robin over dialers
	started atomic.Int64  // operations claimed, against MaxOps
	ops     atomic.Int64  // for the progress line
	errs    atomic.Int64
	msg     []byte // Message and its newline
	// shortLived: connections live for one operation (handshake, resume,
	// flood), so they are closed with a reset.
	shortLived bool
	// end is when the measuring phase ends; errors after it are the run's
	// own doing (a socket deadline can fire before ctx's timer does).
	end atomic.Int64
}

// ErrNoSuccess is wrapped by Run's error when operations were attempted but
// none succeeded; the Result then holds the failures.
var ErrNoSuccess = errors.New("no connection succeeded")

// Run measures the server at o.Addr as o.Mode says, writing progress to
// progress (nil: none), until o.Duration has passed, o.MaxOps operations
// were started, or ctx ends. The error is non-nil if o is invalid, the TLS
// material or the server's memory cannot be read, or no operation
// succeeded (ErrNoSuccess); the Result is filled in as far as the run went.
func Run(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	o = o.withDefaults()
	r := &runner{o: o, msg: []byte(o.Message + "\n")}
	res := Result{Mode: o.Mode, Addr: o.Addr}
	if !o.Plain {
		cfg, note, err := clientTLS(o)
		if err != nil {
			return res, err
		}
		r.tls = cfg
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
	}
	for _, src := range o.Sources {
		r.dialers = append(r.dialers, &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}})
	}
	if len(r.dialers) == 0 {
		r.dialers = []*net.Dialer{{}}
	}

	var err error
	switch o.Mode {
	case Handshake, Resume, Flood, Line:
		err = r.loopMode(ctx, &res, progress)
	case Echo:
		err = r.echo(ctx, &res, progress)
	case Idle:
		err = r.idle(ctx, &res, progress)
	}
	return res, err
}

// clientTLS builds the client's TLS configuration from o.
func clientTLS(o Options) (*tls.Config, string, error) {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		MaxVersion:       o.TLSVersion,
		CurvePreferences: o.Groups,
		ServerName:       o.ServerName,
	}
	if o.TLSVersion != 0 {
		cfg.MinVersion = o.TLSVersion
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("load client certificate %q: %w", o.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.CAFile == "" {
		// A load generator needs no trust in what it reads; say so in the
		// summary so nobody mistakes the run for a verified one.
		cfg.InsecureSkipVerify = true
		return cfg, "the server's certificate was not verified (no CA given)", nil
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, "", fmt.Errorf("load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("load CA %q: no PEM certificate in it", o.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, "", nil
}

func (r *runner) dialer() *net.Dialer {
	if len(r.dialers) == 1 {
		return r.dialers[0]
	}
	return r.dialers[r.next.Add(1)%uint64(len(r.dialers))]
}

// claim takes one operation from the MaxOps budget.
func (r *runner) claim() bool { return r.started.Add(1) <= r.o.MaxOps }

// connect dials and, unless Plain, completes a handshake with cfg, all
// within Timeout.
func (r *runner) connect(ctx context.Context, cfg *tls.Config) (net.Conn, *opError) {
	cctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	raw, err := r.dialer().DialContext(cctx, "tcp", r.o.Addr)
	if err != nil {
		return nil, newOpError("dial", err, nil)
	}
	if r.shortLived {
		// Close with a reset rather than a FIN: the side that closes first
		// keeps the port in TIME_WAIT for a minute (RFC 9293 section
		// 3.6.1), and thousands of connections a second would exhaust
		// the ephemeral ports of a source address within seconds.
		_ = raw.(*net.TCPConn).SetLinger(0)
	}
	// Counting what the server sends tells a refusal (closed before a
	// byte) from a connection that ended later.
	c := &countConn{Conn: raw}
	if cfg == nil {
		return c, nil
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(cctx); err != nil {
		c.Close()
		return nil, newOpError("tls handshake", err, c)
	}
	return tc, nil
}

// exchange sends the message and reads one reply line within Timeout.
func (r *runner) exchange(c net.Conn, br *bufio.Reader) *opError {
	_ = c.SetDeadline(time.Now().Add(r.o.Timeout))
	if _, err := c.Write(r.msg); err != nil {
		return newOpError("write", err, c)
	}
	if err := readReply(br); err != nil {
		return newOpError("read", err, c)
	}
	return nil
}

// seed makes each worker's sampling differ.
func seed(i int) uint64 { return uint64(time.Now().UnixNano()) + uint64(i)*0x9e3779b97f4a7c15 }

// loopMode runs handshake, resume, flood or line: Concurrency workers each
// repeating one connection-sized operation.
func (r *runner) loopMode(ctx context.Context, res *Result, progress io.Writer) error {
	op := r.handshakeOp
	cfg := r.tls
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.SessionTicketsDisabled = true // every handshake is a full one
	}
	switch r.o.Mode {
	case Resume:
		cfg = r.tls.Clone()
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		if e := r.prime(ctx, cfg); e != nil {
			// Nothing to resume from: the run ends with this one failure.
			st := newStats(1, 0)
			st.fail(e)
			return merge(res, []*stats{st})
		}
		op = r.resumeOp
	case Flood:
		op = r.floodOp
	case Line:
		op = r.lineOp
	}

	r.shortLived = true
	ctx, cancel := r.measure(ctx)
	defer cancel()
	start := time.Now()
	stop := r.startProgress(progress, start)
	workers := r.o.Concurrency
	all := make([]*stats, workers)
	var wg sync.WaitGroup
	for i := range workers {
		st := newStats(max(1, MaxSamples/workers), seed(i))
		all[i] = st
		wg.Go(func() {
			br := bufio.NewReaderSize(nil, 4096)
			for ctx.Err() == nil && r.claim() {
				op(ctx, cfg, st, br)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	stop()
	err := merge(res, all)
	if r.o.Mode == Resume && res.Ops > 0 && res.ResumedFraction() < 0.9 {
		res.Notes = append(res.Notes, fmt.Sprintf("only %.0f%% of the handshakes resumed: the server may not issue or accept session tickets", 100*res.ResumedFraction()))
	}
	if r.o.Mode == Flood && res.Accepted+res.Refused == 0 && err == nil {
		err = errors.New("no connection was accepted or refused")
	}
	return err
}

// ok counts a success.
func (r *runner) ok(st *stats, lat time.Duration) {
	st.ops++
	st.lat.add(lat)
	r.ops.Add(1)
}

// measure starts the measuring phase: ctx bounded by Duration.
func (r *runner) measure(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(r.o.Duration)
	r.end.Store(end.UnixNano())
	return context.WithDeadline(ctx, end)
}

// failed counts a failed operation, unless the run's end caused it.
func (r *runner) failed(ctx context.Context, st *stats, e *opError) {
	if ctx.Err() != nil {
		return
	}
	if end := r.end.Load(); end != 0 && time.Now().UnixNano() >= end {
		return
	}
	st.fail(e)
	r.errs.Add(1)
}

// handshakeOp is one full handshake (or TCP connect with Plain).
func (r *runner) handshakeOp(ctx context.Context, cfg *tls.Config, st *stats, _ *bufio.Reader) {
	r.shortOp(ctx, cfg, st, nil)
}

// lineOp is one short-lived connection carrying one message: connect (a
// full handshake unless Plain), send a line, read the reply, close. Its
// latency runs from the dial to the reply.
func (r *runner) lineOp(ctx context.Context, cfg *tls.Config, st *stats, br *bufio.Reader) {
	r.shortOp(ctx, cfg, st, br)
}

// shortOp connects, makes one exchange through br unless br is nil, and
// closes.
func (r *runner) shortOp(ctx context.Context, cfg *tls.Config, st *stats, br *bufio.Reader) {
	start := time.Now()
	c, e := r.connect(ctx, cfg)
	if e != nil {
		r.failed(ctx, st, e)
		return
	}
	if br != nil {
		br.Reset(c)
		e = r.exchange(c, br)
		br.Reset(nil)
		if e != nil {
			c.Close()
			r.failed(ctx, st, e)
			return
		}
	}
	lat := time.Since(start)
	st.noteTLS(c)
	c.Close()
	r.ok(st, lat)
}

// prime makes the full handshake whose ticket the resume workers use. In
// TLS 1.3 the ticket comes after the handshake (RFC 8446 section 4.6.1), so
// it reads one reply before closing.
func (r *runner) prime(ctx context.Context, cfg *tls.Config) *opError {
	c, e := r.connect(ctx, cfg)
	if e != nil {
		return e
	}
	defer c.Close()
	return r.exchange(c, bufio.NewReader(c))
}

// resumeOp is one handshake resumed from the shared session cache. A
// handshake that did not resume (a ticket expired or was dropped) fetches
// a fresh ticket, as prime does, so one miss does not turn the rest of the
// run into full handshakes.
func (r *runner) resumeOp(ctx context.Context, cfg *tls.Config, st *stats, br *bufio.Reader) {
	start := time.Now()
	c, e := r.connect(ctx, cfg)
	if e != nil {
		r.failed(ctx, st, e)
		return
	}
	lat := time.Since(start)
	st.noteTLS(c)
	tc := c.(*tls.Conn)
	cs := tc.ConnectionState()
	if cs.DidResume {
		st.resumed++
	} else if cs.Version == tls.VersionTLS13 {
		br.Reset(c)
		_ = r.exchange(c, br)
		br.Reset(nil)
	}
	c.Close()
	r.ok(st, lat)
}

// floodOp is one connection attempt: a handshake (or with Plain, one
// exchange) that the server either completes (accepted) or refuses: says
// so, or cuts it short by closing or resetting the connection.
func (r *runner) floodOp(ctx context.Context, cfg *tls.Config, st *stats, br *bufio.Reader) {
	start := time.Now()
	c, e := r.connect(ctx, cfg)
	if e == nil && r.o.Plain {
		br.Reset(c)
		e = r.exchange(c, br)
		br.Reset(nil)
		if e != nil {
			c.Close()
		}
	}
	switch {
	case e == nil:
		lat := time.Since(start)
		st.noteTLS(c)
		c.Close()
		st.accepted++
		r.ok(st, lat)
	case e.phase != "dial" && e.f.Class.ByServer():
		st.refused++
		st.ops++
		r.ops.Add(1)
	default:
		r.failed(ctx, st, e)
	}
}

// conn is one persistent connection of echo and idle.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

// open opens up to n connections, Concurrency at a time, each with a
// completed handshake and one exchange, within Duration. It records the
// latency of each (dial to reply) in st.
func (r *runner) open(ctx context.Context, n int, st *stats) []conn {
	ctx, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	conns := make([]conn, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.o.Concurrency)
	for range n {
		if ctx.Err() != nil || !r.claim() {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			c, e := r.connect(ctx, r.tls)
			var br *bufio.Reader
			if e == nil {
				br = bufio.NewReaderSize(c, 4096)
				if e = r.exchange(c, br); e != nil {
					c.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				r.failed(ctx, st, e)
				return
			}
			st.noteTLS(c)
			st.lat.add(time.Since(start))
			conns = append(conns, conn{c, br})
			r.ops.Add(1)
		})
	}
	wg.Wait()
	return conns
}

// echo runs Conns closed-loop clients: send a line, wait for the reply,
// repeat.
func (r *runner) echo(ctx context.Context, res *Result, progress io.Writer) error {
	setup := newStats(1, 0)
	conns := r.open(ctx, r.o.Conns, setup)
	defer func() {
		for _, c := range conns {
			c.c.Close()
		}
	}()
	res.Conns = len(conns)
	if len(conns) == 0 {
		return merge(res, []*stats{setup})
	}
	// Setting up connections is not an operation of this mode: give the
	// budget back and restart the count.
	r.started.Store(0)
	r.ops.Store(0)

	ctx, cancel := r.measure(ctx)
	defer cancel()
	// The deadline is a safety net: at the end of the run AfterFunc below
	// wakes every connection.
	deadline, _ := ctx.Deadline()
	for _, c := range conns {
		_ = c.c.SetDeadline(deadline.Add(r.o.Timeout))
	}
	// A net.Conn ignores ctx: on cancellation, wake every reader.
	stopWake := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.c.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stopWake()

	start := time.Now()
	stop := r.startProgress(progress, start)
	all := make([]*stats, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		st := newStats(max(1, MaxSamples/len(conns)), seed(i))
		all[i] = st
		wg.Go(func() {
			for ctx.Err() == nil && r.claim() {
				t := time.Now()
				if _, err := c.c.Write(r.msg); err != nil {
					r.failed(ctx, st, newOpError("write", err, c.c))
					return
				}
				if err := readReply(c.br); err != nil {
					r.failed(ctx, st, newOpError("read", err, c.c))
					return
				}
				r.ok(st, time.Since(t))
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	stop()
	// Setup errors count too, but not the setup latencies.
	setup.lat.s = nil
	return merge(res, append(all, setup))
}

// idle opens Conns connections, holds them for Duration, and with PID
// measures the server's memory before and after opening them.
func (r *runner) idle(ctx context.Context, res *Result, progress io.Writer) error {
	if r.o.PID != 0 {
		kib, err := vmRSS(r.o.PID)
		if err != nil {
			return err
		}
		res.RSSBeforeKiB = kib
	}
	start := time.Now()
	stop := r.startProgress(progress, start)
	st := newStats(MaxSamples, seed(0))
	conns := r.open(ctx, r.o.Conns, st)
	st.ops = int64(len(conns))
	res.Elapsed = time.Since(start)
	res.Conns = len(conns)
	defer func() {
		for _, c := range conns {
			c.c.Close()
		}
	}()
	if r.o.PID != 0 && len(conns) > 0 {
		// Let the server's goroutines settle into their reads first.
		time.Sleep(100 * time.Millisecond)
		kib, err := vmRSS(r.o.PID)
		if err != nil {
			stop()
			return err
		}
		res.RSSAfterKiB = kib
	}
	if len(conns) > 0 {
		hold := time.NewTimer(r.o.Duration)
		select {
		case <-hold.C:
		case <-ctx.Done():
			hold.Stop()
		}
	}
	stop()
	if n := len(conns); n > 0 && n < r.o.Conns {
		res.Notes = append(res.Notes, fmt.Sprintf("opened %d of %d connections", n, r.o.Conns))
	}
	return merge(res, []*stats{st})
}

// vmRSS reads a process's resident set size in KiB from /proc (Linux).
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read the memory of process %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("read the memory of process %d: no VmRSS in /proc/%d/status", pid, pid)
}

// startProgress writes progress until the returned function is called:
// every 200 ms as one line rewritten in place when Interactive, else one
// line a second.
func (r *runner) startProgress(w io.Writer, start time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	every := time.Second
	if r.o.Interactive {
		every = 200 * time.Millisecond
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if r.o.Interactive {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case now := <-t.C:
				el := now.Sub(start)
				ops := r.ops.Load()
				line := fmt.Sprintf("%s %5.1fs  ops %d  %.0f/s  errors %d", r.o.Mode, el.Seconds(), ops, perSec(ops, el), r.errs.Load())
				if r.o.Interactive {
					fmt.Fprintf(w, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
