package listener_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/lockedbuf"
	"github.com/seclisten/seclisten/pkg/listener"
)

// wait bounds every wait for an event the test expects to happen: far
// beyond what even a loaded machine needs, it only stops a broken test from
// hanging.
const wait = 30 * time.Second

// checkGoroutines fails the test if goroutines it started are still running
// shortly after it ends. Call it first, so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines still running, %d before the test:\n%s", n, base, buf)
				return
			}
			time.Sleep(10 * time.Millisecond) // between polls of the count: nothing reports a goroutine's exit
		}
	})
}

type fixture struct {
	srv      *listener.Server
	ln       net.Listener
	addr     string
	log      *lockedbuf.Buffer
	serveErr chan error
}

// start serves h on a loopback port until the test ends.
func start(t *testing.T, opts listener.Options, h listener.Handler) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, ln, opts, h)
}

// startOn serves h on ln until the test ends.
func startOn(t *testing.T, ln net.Listener, opts listener.Options, h listener.Handler) *fixture {
	t.Helper()
	f := &fixture{ln: ln, addr: ln.Addr().String(), log: &lockedbuf.Buffer{}, serveErr: make(chan error, 1)}
	if opts.MaxConns == 0 {
		opts.MaxConns = 10
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 10 * time.Second
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	opts.Logger = slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv = listener.New(opts, h)
	go func() { f.serveErr <- f.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown at the end of the test: %v", err)
		}
		select {
		case err := <-f.serveErr:
			if !errors.Is(err, listener.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
			f.serveErr <- err // for a test that reads it after
		case <-time.After(wait):
			t.Errorf("Serve did not return after Shutdown")
		}
		_ = ln.Close()
	})
	return f
}

func (f *fixture) shutdown(t *testing.T, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return f.srv.Shutdown(ctx)
}

// serveResult waits for Serve to return and puts the result back for the
// cleanup.
func (f *fixture) serveResult(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.serveErr:
		f.serveErr <- err
		return err
	case <-time.After(wait):
		t.Fatal("Serve did not return")
		return nil
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// readAll reads from c until EOF or an error, within the bound.
func readAll(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c)
	return string(b), err
}

// closeOnEOF reads c in the background until EOF or an error, then closes
// it, as a client does when the server closes: the server's lingering close
// waits for that. The result is what was read.
func closeOnEOF(t *testing.T, c net.Conn) <-chan readResult {
	t.Helper()
	ch := make(chan readResult, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(2 * wait))
		b, err := io.ReadAll(c)
		_ = c.Close()
		ch <- readResult{string(b), err}
	}()
	return ch
}

type readResult struct {
	data string
	err  error
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // between polls of cond, not to synchronise
	}
}

func TestServeIDs(t *testing.T) {
	checkGoroutines(t)
	type info struct {
		id     uint64
		remote string
		start  time.Time
		ctxErr error
	}
	conns := make(chan info, 10)
	f := start(t, listener.Options{}, func(ctx context.Context, c *listener.Conn) {
		conns <- info{c.ID(), c.RemoteAddr().String(), c.Start(), ctx.Err()}
		_, _ = io.Copy(io.Discard, c) // until the client closes
	})
	before := time.Now()
	for want := uint64(1); want <= 3; want++ {
		c := dial(t, f.addr)
		got := recv(t, conns, "handler")
		if got.id != want {
			t.Errorf("connection %d: ID() = %d", want, got.id)
		}
		if got.remote != c.LocalAddr().String() {
			t.Errorf("RemoteAddr() = %s, client is %s", got.remote, c.LocalAddr())
		}
		if got.start.Before(before) || got.start.After(time.Now()) {
			t.Errorf("Start() = %v, not during the test", got.start)
		}
		if got.ctxErr != nil {
			t.Errorf("handler ctx already done: %v", got.ctxErr)
		}
		_ = c.Close()
	}
	waitFor(t, "Active() == 0", func() bool { return f.srv.Active() == 0 })
}

func TestServeConcurrent(t *testing.T) {
	checkGoroutines(t)
	f := start(t, listener.Options{MaxConns: 8}, func(_ context.Context, c *listener.Conn) {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		_, _ = fmt.Fprintf(c, "%d:%s", c.ID(), buf[:n])
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", f.addr, wait)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("client %d", i)
			if _, err := c.Write([]byte(msg)); err != nil {
				errs <- err
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(wait))
			b, err := io.ReadAll(c)
			if err != nil || !strings.HasSuffix(string(b), ":"+msg) {
				errs <- fmt.Errorf("client %d got %q, %v", i, b, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMaxConns(t *testing.T) {
	checkGoroutines(t)
	started := make(chan uint64, 10)
	done := make(chan uint64, 10)
	f := start(t, listener.Options{MaxConns: 2}, func(_ context.Context, c *listener.Conn) {
		started <- c.ID()
		_, _ = io.Copy(io.Discard, c) // until the client closes or shutdown
		done <- c.ID()
	})
	c1 := dial(t, f.addr)
	recv(t, started, "handler 1")
	c2 := dial(t, f.addr)
	recv(t, started, "handler 2")
	if n := f.srv.Active(); n != 2 {
		t.Errorf("Active() = %d, want 2", n)
	}

	// The third connection completes in the kernel's backlog, but is not
	// accepted while both slots are taken: once the accept loop has said
	// it waits for a slot, no third handler has started.
	c3 := dial(t, f.addr)
	if _, err := c3.Write([]byte("waiting\n")); err != nil {
		t.Fatalf("write on the backlogged connection: %v", err)
	}
	waitFor(t, "the cap warning", func() bool { return strings.Contains(f.log.String(), "connection cap reached") })
	select {
	case id := <-started:
		t.Fatalf("handler %d started while 2 connections were being served", id)
	default:
	}

	_ = c1.Close()
	if id := recv(t, done, "handler 1 to end"); id != 1 {
		t.Errorf("handler %d ended, want 1", id)
	}
	if id := recv(t, started, "handler 3"); id != 3 {
		t.Errorf("handler %d started, want 3", id)
	}

	// Shutdown while the accept loop waits for a slot: both handlers get
	// ErrShutdown from Read and Serve returns.
	r2, r3 := closeOnEOF(t, c2), closeOnEOF(t, c3)
	if err := f.shutdown(t, wait); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := f.serveResult(t); !errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	for range 2 {
		recv(t, done, "handlers 2 and 3 to end")
	}
	for _, r := range []<-chan readResult{r2, r3} {
		if res := recv(t, r, "client EOF"); res.data != "" || res.err != nil {
			t.Errorf("client read %q, %v, want EOF", res.data, res.err)
		}
	}
}

// watchedListener's connections tell, on reading, that a Read of the
// socket itself has begun (past listener.Conn's own checks), and on
// writing that a Write has; a nil channel is not told.
type watchedListener struct {
	net.Listener
	reading, writing chan struct{}
}

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return watchedConn{c.(*net.TCPConn), l.reading, l.writing}, nil
}

type watchedConn struct {
	*net.TCPConn
	reading, writing chan struct{}
}

func (c watchedConn) Read(b []byte) (int, error) {
	tell(c.reading)
	return c.TCPConn.Read(b)
}

func (c watchedConn) Write(b []byte) (int, error) {
	tell(c.writing)
	return c.TCPConn.Write(b)
}

// tell signals on ch, if it is set and has room.
func tell(ch chan struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func TestShutdownInterruptsRead(t *testing.T) {
	checkGoroutines(t)
	type result struct {
		n      int
		err    error
		ctxErr error
	}
	results := make(chan result, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reading := make(chan struct{}, 1)
	// An idle timeout longer than the wait: only the shutdown can end the
	// Read in time.
	f := startOn(t, watchedListener{Listener: ln, reading: reading}, listener.Options{IdleTimeout: time.Hour}, func(ctx context.Context, c *listener.Conn) {
		n, err := c.Read(make([]byte, 16))
		var ctxErr error
		select {
		case <-ctx.Done():
			ctxErr = ctx.Err()
		case <-time.After(wait):
		}
		results <- result{n, err, ctxErr}
	})
	c := dial(t, f.addr)
	recv(t, reading, "the handler's Read of the socket")
	client := closeOnEOF(t, c)

	// nil, not the wait's DeadlineExceeded: the handler returned.
	if err := f.shutdown(t, wait); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	res := recv(t, results, "handler result")
	if res.n != 0 || !errors.Is(res.err, listener.ErrShutdown) {
		t.Errorf("Read = %d, %v, want ErrShutdown", res.n, res.err)
	}
	if got := listener.Reason(res.err); got != "shutdown" {
		t.Errorf("Reason = %q, want shutdown", got)
	}
	if !errors.Is(res.ctxErr, context.Canceled) {
		t.Errorf("handler ctx error = %v, want Canceled after Shutdown", res.ctxErr)
	}
	if err := f.serveResult(t); !errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	// The client sees an orderly close.
	if res := recv(t, client, "client EOF"); res.data != "" || res.err != nil {
		t.Errorf("client read %q, %v, want EOF", res.data, res.err)
	}
	// The listener is closed: no new connection.
	if c, err := net.DialTimeout("tcp", f.addr, wait); err == nil {
		_ = c.Close()
		t.Errorf("dial after Shutdown succeeded")
	}
	// Shutdown again is harmless.
	if err := f.shutdown(t, wait); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

// TestShutdownInterruptsHandshakeWrite checks that a Write during a phase
// (the TLS handshake's flight, to a client that does not read) ends with
// ErrShutdown when the server shuts down, as the phase's reads do, and
// does not hold the shutdown until the phase's deadline.
func TestShutdownInterruptsHandshakeWrite(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writing := make(chan struct{}, 1)
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	// Deadlines longer than the wait: only the shutdown can end the Write
	// in time.
	f := startOn(t, watchedListener{Listener: ln, writing: writing}, listener.Options{IdleTimeout: time.Hour, WriteTimeout: time.Hour},
		func(ctx context.Context, c *listener.Conn) {
			c.SetPhaseDeadline(time.Now().Add(time.Hour))
			// More than the socket buffers hold: the client reads nothing.
			n, err := c.Write(make([]byte, 64<<20))
			results <- result{n, err}
		})
	c := dial(t, f.addr)
	defer func() { _ = c.Close() }()
	recv(t, writing, "the handler's Write to the socket")
	if err := f.shutdown(t, wait); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	res := recv(t, results, "handler result")
	if res.n >= 64<<20 || !errors.Is(res.err, listener.ErrShutdown) {
		t.Errorf("Write = %d, %v, want fewer bytes and ErrShutdown", res.n, res.err)
	}
	if err := f.serveResult(t); !errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

// TestShutdownKeepsReadData checks that a handler can still answer what it
// read before the shutdown, and the client gets the answer.
func TestShutdownKeepsReadData(t *testing.T) {
	checkGoroutines(t)
	got := make(chan string, 1)
	readErr := make(chan error, 1)
	f := start(t, listener.Options{}, func(ctx context.Context, c *listener.Conn) {
		buf := make([]byte, 0, 64)
		for !bytes.HasSuffix(buf, []byte("\n")) {
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
		}
		got <- string(buf)
		<-ctx.Done() // shutdown has begun
		_, err := c.Read(make([]byte, 16))
		readErr <- err
		_, _ = c.Write(append([]byte("bye: "), buf...))
	})
	c := dial(t, f.addr)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got, "handler read"); s != "hello\n" {
		t.Fatalf("handler read %q", s)
	}
	shut := make(chan error, 1)
	go func() { shut <- f.shutdown(t, wait) }()

	if err := recv(t, readErr, "read after shutdown"); !errors.Is(err, listener.ErrShutdown) {
		t.Errorf("Read after Shutdown = %v, want ErrShutdown", err)
	}
	reply, err := readAll(t, c)
	if reply != "bye: hello\n" || err != nil {
		t.Errorf("client got %q, %v, want the reply to what it sent before shutdown", reply, err)
	}
	_ = c.Close()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
}

// TestShutdownTimeout checks a handler that ignores the shutdown: Shutdown
// closes its connection when ctx ends and returns ctx's error.
func TestShutdownTimeout(t *testing.T) {
	checkGoroutines(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	writeErr := make(chan error, 1)
	f := start(t, listener.Options{}, func(_ context.Context, c *listener.Conn) {
		started <- struct{}{}
		<-release
		_, err := c.Write([]byte("too late\n"))
		writeErr <- err
	})
	c := dial(t, f.addr)
	recv(t, started, "handler")

	const timeout = 100 * time.Millisecond
	shut := make(chan error, 1)
	begin := time.Now()
	go func() { shut <- f.shutdown(t, timeout) }()

	// The server closes the connection when the timeout ends.
	if got, err := readAll(t, c); got != "" || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("client read %q, %v, want EOF when the server closes", got, err)
	}
	if d := time.Since(begin); d < timeout-10*time.Millisecond {
		t.Errorf("connection closed after %v, before the %v timeout", d, timeout)
	}
	err := recv(t, shut, "Shutdown")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	// Shutdown returned (within the wait) although the handler is still
	// blocked: it gives up on handlers that ignore it.
	if d := time.Since(begin); d < timeout {
		t.Errorf("Shutdown took %v, less than its %v timeout", d, timeout)
	}
	if !strings.Contains(f.log.String(), "shutdown timeout") {
		t.Errorf("log has no shutdown timeout warning:\n%s", f.log.String())
	}
	if err := f.serveResult(t); !errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}

	close(release)
	if err := recv(t, writeErr, "handler write"); err == nil {
		t.Errorf("Write on a connection closed by Shutdown succeeded")
	} else if got := listener.Reason(err); got != "closed" {
		t.Errorf("Reason(%v) = %q, want closed", err, got)
	}
	waitFor(t, "Active() == 0", func() bool { return f.srv.Active() == 0 })
}

func TestIdleTimeout(t *testing.T) {
	checkGoroutines(t)
	const idle = time.Second
	type result struct {
		got     string
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 1)
	reads := make(chan struct{}, 16)
	f := start(t, listener.Options{IdleTimeout: idle}, func(_ context.Context, c *listener.Conn) {
		var got []byte
		buf := make([]byte, 16)
		last := time.Now()
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				results <- result{string(got), err, time.Since(last)}
				return
			}
			last = time.Now()
			reads <- struct{}{}
		}
	})
	c := dial(t, f.addr)
	// Each read extends the deadline: a client pausing a quarter of the
	// idle timeout after each byte the handler has read (the pauses are
	// the behaviour under test) sends six over more than the timeout in
	// all, and is not timed out.
	for i, b := range []string{"a", "b", "c", "d", "e", "f"} {
		if i > 0 {
			time.Sleep(idle / 4)
		}
		if _, err := c.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
		recv(t, reads, "the handler's read of "+b)
	}
	res := recv(t, results, "idle timeout")
	if res.got != "abcdef" {
		t.Errorf("handler read %q before the timeout, want abcdef", res.got)
	}
	if !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Errorf("Read error = %v, want a deadline error", res.err)
	}
	if got := listener.Reason(res.err); got != "timeout" {
		t.Errorf("Reason(%v) = %q, want timeout", res.err, got)
	}
	// The deadline was set after last was taken: the timeout cannot come
	// sooner than idle after it.
	if res.elapsed < idle {
		t.Errorf("timed out %v after the last byte, before the %v idle timeout", res.elapsed, idle)
	}
}

func TestWriteTimeout(t *testing.T) {
	checkGoroutines(t)
	writeErr := make(chan error, 1)
	f := start(t, listener.Options{WriteTimeout: 100 * time.Millisecond}, func(_ context.Context, c *listener.Conn) {
		chunk := make([]byte, 256<<10)
		for range 1024 { // 256 MiB at most: far more than socket buffers
			if _, err := c.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})
	c := dial(t, f.addr) // never reads
	err := recv(t, writeErr, "write timeout")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write to a client that does not read = %v, want a deadline error", err)
	}
	if got := listener.Reason(err); got != "timeout" {
		t.Errorf("Reason(%v) = %q, want timeout", err, got)
	}
	_ = c.Close()
}

func TestPanicRecovered(t *testing.T) {
	checkGoroutines(t)
	// One slot: the second connection is served only if the panicking
	// one gave its slot back.
	f := start(t, listener.Options{MaxConns: 1}, func(_ context.Context, c *listener.Conn) {
		if c.ID() == 1 {
			panic("boom in handler")
		}
		_, _ = c.Write([]byte("ok\n"))
	})
	c1 := dial(t, f.addr)
	if got, err := readAll(t, c1); got != "" || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("client of the panicking handler read %q, %v, want the connection closed", got, err)
	}
	_ = c1.Close()
	c2 := dial(t, f.addr)
	if got, err := readAll(t, c2); got != "ok\n" || err != nil {
		t.Errorf("next client read %q, %v, want ok", got, err)
	}
	_ = c2.Close()
	log := f.log.String()
	for _, want := range []string{"panic serving connection", "boom in handler", "conn_id=1", "level=ERROR", "stack="} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	waitFor(t, "Active() == 0", func() bool { return f.srv.Active() == 0 })
}

func TestServeAfterShutdown(t *testing.T) {
	checkGoroutines(t)
	srv := listener.New(listener.Options{MaxConns: 1, IdleTimeout: time.Second, WriteTimeout: time.Second,
		Logger: slog.New(slog.DiscardHandler)}, func(context.Context, *listener.Conn) {})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of an idle server = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(ln); !errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestServeListenerClosed(t *testing.T) {
	checkGoroutines(t)
	f := start(t, listener.Options{}, func(context.Context, *listener.Conn) {})
	_ = f.ln.Close()
	err := f.serveResult(t)
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve on a listener closed under it = %v, want net.ErrClosed", err)
	}
	if errors.Is(err, listener.ErrServerClosed) {
		t.Errorf("Serve = %v: ErrServerClosed without Shutdown", err)
	}
}

// flakyListener fails its first Accept calls with a transient error.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	calls []time.Time
}

var errTransient = errors.New("accept: too many open files")

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	fail := l.fails > 0
	if fail {
		l.fails--
	}
	l.mu.Unlock()
	if fail {
		return nil, errTransient
	}
	return l.Listener.Accept()
}

func TestAcceptBackoff(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, fails: 4}
	log := &lockedbuf.Buffer{}
	served := make(chan uint64, 1)
	srv := listener.New(listener.Options{MaxConns: 1, IdleTimeout: time.Second, WriteTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(log, nil))}, func(_ context.Context, c *listener.Conn) {
		served <- c.ID()
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(fl) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if err := recv(t, serveErr, "Serve"); !errors.Is(err, listener.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	}()

	c := dial(t, ln.Addr().String())
	if id := recv(t, served, "handler after accept errors"); id != 1 {
		t.Errorf("ID() = %d, want 1: failed accepts must not use IDs", id)
	}
	_ = c.Close()

	fl.mu.Lock()
	calls := append([]time.Time(nil), fl.calls...)
	fl.mu.Unlock()
	if len(calls) < 5 {
		t.Fatalf("%d Accept calls, want at least 5", len(calls))
	}
	// 5, 10, 20 and 40 ms between the failures.
	if d := calls[4].Sub(calls[0]); d < 70*time.Millisecond {
		t.Errorf("4 retries in %v: no backoff", d)
	}
	if got := strings.Count(log.String(), "accept failed"); got != 1 {
		t.Errorf("%d accept-failure log lines for 4 failures in a burst, want 1 (rate-limited):\n%s", got, log.String())
	}
}

// nothingListener has no connections behind it: under flakyListener's
// failures, its Accept is never reached.
type nothingListener struct{}

func (nothingListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (nothingListener) Close() error              { return nil }
func (nothingListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestShutdownDuringBackoff checks Serve returns at once when Shutdown comes
// while it backs off after accept errors. It runs in a synctest bubble,
// where the clock moves only when every goroutine in it is blocked: Serve
// returning without the clock moving means it did not sleep through its
// backoff, however slow the machine.
func TestShutdownDuringBackoff(t *testing.T) {
	checkGoroutines(t)
	synctest.Test(t, func(t *testing.T) {
		fl := &flakyListener{Listener: nothingListener{}, fails: 1 << 30}
		srv := listener.New(listener.Options{MaxConns: 1, IdleTimeout: time.Second, WriteTimeout: time.Second,
			Logger: slog.New(slog.DiscardHandler)}, func(context.Context, *listener.Conn) {})
		serveErr := make(chan error, 1)
		go func() { serveErr <- srv.Serve(fl) }()
		// Backoffs of 5, 10, ... 320 ms: the 8th accept comes at 635 ms
		// (of the bubble's clock, so at once), and its backoff of 640 ms
		// is under way at 1 s.
		time.Sleep(time.Second) // the bubble's clock: no real time passes
		synctest.Wait()
		fl.mu.Lock()
		calls := len(fl.calls)
		fl.mu.Unlock()
		if calls != 8 {
			t.Fatalf("%d accept calls after 1s, want 8", calls)
		}
		begin := time.Now()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		synctest.Wait()
		select {
		case err := <-serveErr:
			if !errors.Is(err, listener.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		default:
			t.Fatal("Serve still running after Shutdown: it sleeps through its backoff")
		}
		if d := time.Since(begin); d != 0 {
			t.Errorf("Serve returned %v after Shutdown: it slept through the backoff", d)
		}
	})
}

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"shutdown", listener.ErrShutdown, "shutdown"},
		{"wrapped shutdown", fmt.Errorf("read: %w", listener.ErrShutdown), "shutdown"},
		{"deadline", os.ErrDeadlineExceeded, "timeout"},
		{"net deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout"},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)},
			"connection reset"},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)},
			"broken pipe"},
		{"closed", &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, "closed"},
		{"bare closed", net.ErrClosed, "closed"},
		{"EOF", io.EOF, "EOF"},
		{"other", errors.New("something odd"), "something odd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := listener.Reason(tt.err); got != tt.want {
				t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// A handler that read the client's EOF, or was told the client is done
// (PeerDone: a TLS close_notify), ends with a plain close: the listener
// does not linger for input that cannot come. Data the client sends anyway
// meets a closed socket (a reset), where a lingering close would have
// discarded it. The reply written before the close still arrives whole.
func TestPeerDoneClosesAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		done func(c *listener.Conn)
	}{
		{"EOF read", func(c *listener.Conn) {
			for {
				if _, err := c.Read(make([]byte, 16)); err != nil {
					return
				}
			}
		}},
		{"PeerDone", func(c *listener.Conn) { c.PeerDone() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			f := start(t, listener.Options{}, func(ctx context.Context, c *listener.Conn) {
				tc.done(c)
				_, _ = c.Write([]byte("bye\n"))
			})
			c := dial(t, f.addr).(*net.TCPConn)
			if tc.name == "EOF read" {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(wait))
			b, err := io.ReadAll(c)
			if string(b) != "bye\n" || err != nil {
				t.Fatalf("client read %q, %v, want the reply and EOF", b, err)
			}
			if tc.name == "PeerDone" {
				// The server's socket is gone: what the client sends now
				// is answered with a reset.
				// (Bounded by the read deadline set above.)
				for err == nil || err == io.EOF {
					if _, err = c.Write([]byte("more\n")); err == nil {
						_, err = c.Read(make([]byte, 1))
					}
				}
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("after the close the client got %v, want a reset", err)
				}
			}
		})
	}
}
