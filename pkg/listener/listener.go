package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/park"
	"github.com/seclisten/seclisten/pkg/internal/throttle"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("listener: server closed")

// ErrAcceptLimit is returned by Serve once Options.MaxAccepts connections
// were accepted and all of them have been served.
var ErrAcceptLimit = errors.New("listener: accept limit reached")

// Accept-error backoff, as in net/http: 5 ms doubling to 1 s. The usual cause
// is running out of file descriptors (EMFILE); retrying at once would spin.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Handler serves one connection. ctx ends when Shutdown is called, just
// after c.Read starts returning ErrShutdown. When the handler returns, the
// listener closes c gracefully: it sends FIN and discards input until the
// peer closes too or a second passes, and c holds its slot of MaxConns
// until then. A handler that refuses c closes it at once with CloseNow or
// Refuse instead.
type Handler func(ctx context.Context, c *Conn)

// Options configure a Server. Every field must be set, except MaxLifetime
// and MaxAccepts.
type Options struct {
	// MaxConns is how many connections are served at once. The accept loop
	// takes a slot before it accepts, so past the cap new connections wait
	// in the kernel's backlog instead of costing the process anything.
	MaxConns int
	// IdleTimeout bounds each Read.
	IdleTimeout time.Duration
	// WriteTimeout bounds each Write.
	WriteTimeout time.Duration
	// MaxLifetime bounds a connection's whole life, from accept; zero means
	// unbounded.
	MaxLifetime time.Duration
	// Timeouts, if set, gives each new connection its idle and write
	// timeouts and its lifetime instead of the three fields above, read
	// once at accept: a connection keeps the timeouts it was accepted
	// under when they change later (a reload, say).
	Timeouts func() (idle, write, lifetime time.Duration)
	// MaxAccepts, when above 0, makes Serve stop accepting after that many
	// connections (counting those the handler refuses), close the
	// listener, wait for their handlers to return, and return
	// ErrAcceptLimit: openssl s_server's -naccept.
	MaxAccepts int
	// Logger gets lifecycle events and errors.
	Logger *slog.Logger
	// Poller, if set, parks connections whose handler calls Conn.Suspend:
	// they hold no goroutine until their client sends or hangs up.
	Poller *park.Poller
	// ParkAfter is how long a read with nothing buffered waits before
	// the connection may park (Conn.Idle); zero or no Poller: never.
	ParkAfter time.Duration
}

// Server accepts connections and runs a Handler for each, in its own
// goroutine (one a previous connection's handler may have used).
type Server struct {
	opts    Options
	handler Handler
	slots   chan struct{}
	nextID  atomic.Uint64

	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	wg        sync.WaitGroup // one per connection goroutine

	// busySince is when an accept loop left Accept (UnixNano), or 0
	// while it waits in Accept or for a connection slot: see Stalled.
	busySince atomic.Int64

	// pool runs the handlers (workers.go).
	pool workers

	// logs lets one line through per key ("cap", "accept") every 10 s,
	// so a condition that repeats thousands of times a second cannot
	// flood the log.
	logs throttle.Throttle[string]
}

// New returns a Server that runs h for every connection.
func New(opts Options, h Handler) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:       opts,
		handler:    h,
		slots:      make(chan struct{}, opts.MaxConns),
		baseCtx:    ctx,
		cancelBase: cancel,
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*Conn]struct{}),
		logs:       throttle.Throttle[string]{Window: 10 * time.Second},
		pool:       workers{maxIdle: defaultMaxIdleWorkers, idleFor: defaultWorkerIdle},
	}
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. Any other error of Accept is retried with backoff: on
// Linux they are all transient (EMFILE, ENFILE, ENOBUFS, ECONNABORTED, ...).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	// A loop that returned is not stuck.
	defer s.busySince.Store(0)

	var backoff time.Duration
	for {
		// Waiting for a slot or a client is the loop's healthy rest;
		// everything else it does between two Accepts takes microseconds
		// (or the bounded backoff below).
		s.busySince.Store(0)
		if !s.takeSlot() {
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		s.busySince.Store(time.Now().UnixNano())
		if err != nil {
			<-s.slots
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			if n, ok := s.logs.Allow("accept"); ok {
				s.opts.Logger.Warn("accept failed; backing off", "err", err, "backoff", backoff, "suppressed", n)
			}
			select {
			case <-time.After(backoff):
			case <-s.baseCtx.Done():
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.start(nc)
		if s.opts.MaxAccepts > 0 && s.nextID.Load() >= uint64(s.opts.MaxAccepts) {
			_ = ln.Close()
			s.busySince.Store(0)
			s.wg.Wait()
			s.pool.stop()
			return ErrAcceptLimit
		}
	}
}

// takeSlot waits for a free connection slot, and reports false if the
// server shut down meanwhile.
func (s *Server) takeSlot() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if n, ok := s.logs.Allow("cap"); ok {
		s.opts.Logger.Warn("connection cap reached: new connections wait in the kernel backlog",
			"max_conns", s.opts.MaxConns, "times_since_last_log", n+1)
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-s.baseCtx.Done():
		return false
	}
}

func (s *Server) start(nc net.Conn) {
	idle, write, lifetime := s.opts.IdleTimeout, s.opts.WriteTimeout, s.opts.MaxLifetime
	if s.opts.Timeouts != nil {
		idle, write, lifetime = s.opts.Timeouts()
	}
	c := &Conn{
		Conn:        nc,
		id:          s.nextID.Add(1),
		start:       time.Now(),
		idleTimeout: idle,
		write:       write,
	}
	if lifetime > 0 {
		c.end = c.start.Add(lifetime)
	}
	if _, ok := nc.(syscall.Conn); ok && s.opts.Poller != nil {
		c.parkAfter = s.opts.ParkAfter
	}
	s.mu.Lock()
	if s.closing {
		// Accept raced with Shutdown, which may already be waiting on wg:
		// adding to it now would be too late, so this one is not served.
		s.mu.Unlock()
		_ = nc.Close()
		<-s.slots
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.pool.do(func() { s.serve(c) })
}

func (s *Server) serve(c *Conn) {
	s.run(c, func() { s.handler(s.baseCtx, c) })
}

// run runs f, the handler or the rest of it after a wake-up, then ends the
// connection, or parks it if f called Suspend.
func (s *Server) run(c *Conn, f func()) {
	defer func() {
		if v := recover(); v != nil {
			c.resume = nil
			s.opts.Logger.Error("panic serving connection", "conn_id", c.id,
				"remote_addr", c.RemoteAddr().String(), "err", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		if r := c.resume; r != nil {
			// Parked only now that f has returned: the goroutine a
			// wake-up starts never overlaps this one.
			c.resume = nil
			s.park(c, r)
			return
		}
		c.closeGracefully()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}()
	f()
}

// park hands c to the Poller until its client sends, hangs up, its read
// deadline passes or the server drains it; then resume runs on a worker,
// with timedOut true if the deadline passed.
func (s *Server) park(c *Conn, resume func(timedOut bool)) {
	wake := func(timedOut bool) {
		c.waiter.Store(nil)
		s.pool.do(func() { s.run(c, func() { resume(timedOut) }) })
	}
	var w *park.Waiter
	rc, err := c.Conn.(syscall.Conn).SyscallConn()
	if err == nil {
		w, err = s.opts.Poller.Park(rc, c.parkAt, wake)
	}
	if err != nil {
		// Closed meanwhile, say: the resumed read finds out.
		wake(false)
		return
	}
	c.waiter.Store(w)
	// drain and CloseNow set their flag, then wake the Waiter they see:
	// one of the two sides always sees the other.
	if c.draining.Load() || c.closed.Load() {
		w.Wake()
	}
}

// Stalled reports whether the accept loop has been away from Accept (and
// from waiting for a connection slot) for longer than d, and for how long.
// A loop blocked in Accept is healthy however long no client comes, and so
// is one waiting for a slot at the connection cap (connections end by
// their own timeouts); a loop stuck anywhere else (a lock, a handler start
// that never returns) is not. It reads one atomic: asking never wakes the
// loop. With several Serve calls at once, it watches the one that left
// Accept last.
func (s *Server) Stalled(d time.Duration) (bool, time.Duration) {
	since := s.busySince.Load()
	if since == 0 {
		return false, 0
	}
	away := time.Since(time.Unix(0, since))
	return away > d, away
}

// Accepted is the number of connections accepted so far.
func (s *Server) Accepted() uint64 {
	return s.nextID.Load()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// IdleWorkers is the number of goroutines waiting for a connection to
// serve: the workers a connection that ended or parked gave back.
func (s *Server) IdleWorkers() int { return s.pool.idleCount() }

// Active is the number of connections being served.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, tells every connection to finish what it has
// already read (Conn.Read returns ErrShutdown, and so does Conn.Write
// during a phase such as the handshake), and waits for the handlers
// to return. When ctx ends first, it closes the remaining connections and
// returns ctx's error once their handlers have returned (or a second later).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	s.cancelBase()

	// Workers that finish their connection from now on end.
	defer s.pool.stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		_ = c.Conn.Close()
	}
	s.mu.Unlock()
	s.opts.Logger.Warn("shutdown timeout: closed connections still open", "conns", n)
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return ctx.Err()
}
