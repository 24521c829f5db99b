package testbed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
)

// Defaults.
const (
	// DefaultBasePort is the first case's port.
	DefaultBasePort = 8600
	// DefaultSlowFor is how long slow-handshake waits before it answers,
	// and how long abort-mid-handshake waits for the client to give up:
	// longer than a sane client's handshake timeout (Go's net/http
	// allows 10 s).
	DefaultSlowFor = 15 * time.Second
	// DefaultHandshakeTimeout is how long any other case waits for a
	// client to complete or end its handshake before grading it as hung.
	DefaultHandshakeTimeout = 30 * time.Second
	// maxConns is how many connections the testbed serves at once; more
	// are closed at once, not graded.
	maxConns = 256
	// idleTimeout ends a graded connection whose client has been silent
	// this long.
	idleTimeout = 60 * time.Second
)

// Options configures Listen.
type Options struct {
	// Host is the address the cases listen on ("127.0.0.1", "::1",
	// "0.0.0.0"...).
	Host string
	// BasePort is the first case's port; each case listens on BasePort
	// plus its Offset, the HTTP server on BasePort plus HTTPOffset.
	BasePort int
	// Cases are the cases to open (Select).
	Cases []Case
	// Material is the PKI (NewMaterial).
	Material *Material
	// SlowFor is slow-handshake's wait; zero means DefaultSlowFor.
	SlowFor time.Duration
	// HandshakeTimeout bounds every other handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Graded is called with each connection's grade, one call at a
	// time, after the card has it.
	Graded func(Grade)
	// Fetched is called for each HTTP request, with the client's address
	// and the path.
	Fetched func(client, path string)
}

// Testbed is a set of listening cases.
type Testbed struct {
	opts   Options
	card   *Card
	lns    []caseListener
	httpLn net.Listener
	http   *http.Server

	gradeMu  sync.Mutex // one Graded call at a time
	fetches  fetchLog
	active   atomic.Int64
	stopping atomic.Bool
	connsMu  sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

type caseListener struct {
	c  Case
	ln net.Listener
}

// PortError is a port the testbed could not listen on.
type PortError struct {
	Port int
	Case string // "" for the HTTP server
	Err  error
}

func (e *PortError) Error() string {
	what := "the HTTP server (CRLs, intermediate)"
	if e.Case != "" {
		what = "case " + e.Case
	}
	return fmt.Sprintf("cannot listen on port %d for %s: %v", e.Port, what, errors.Unwrap(e.Err))
}

func (e *PortError) Unwrap() error { return e.Err }

// Listen opens every case's port, and the HTTP server's (always: a client
// checking revocation fetches the CRL on good too). It opens all or none.
func Listen(opts Options) (*Testbed, error) {
	if opts.SlowFor <= 0 {
		opts.SlowFor = DefaultSlowFor
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	t := &Testbed{opts: opts, card: NewCard(opts.Cases, opts.BasePort), conns: map[net.Conn]struct{}{}}
	t.fetches.seen = map[string]map[string]time.Time{}
	fail := func(err error) (*Testbed, error) {
		for _, l := range t.lns {
			l.ln.Close()
		}
		return nil, err
	}
	for _, c := range opts.Cases {
		port := opts.BasePort + c.Offset
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(port)))
		if err != nil {
			return fail(&PortError{Port: port, Case: c.Name, Err: err})
		}
		t.lns = append(t.lns, caseListener{c, ln})
	}
	port := opts.BasePort + HTTPOffset
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(port)))
	if err != nil {
		return fail(&PortError{Port: port, Err: err})
	}
	t.httpLn = ln
	t.http = &http.Server{Handler: http.HandlerFunc(t.publish), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: idleTimeout, MaxHeaderBytes: 16 << 10}
	return t, nil
}

// Card is the testbed's report card.
func (t *Testbed) Card() *Card { return t.card }

// Serve accepts and grades connections until ctx ends, then closes every
// listener and connection and returns once all are done.
func (t *Testbed) Serve(ctx context.Context) {
	for _, l := range t.lns {
		t.wg.Go(func() { t.accept(l) })
	}
	t.wg.Go(func() { _ = t.http.Serve(t.httpLn) })
	<-ctx.Done()
	t.stopping.Store(true)
	for _, l := range t.lns {
		l.ln.Close()
	}
	_ = t.http.Close()
	t.connsMu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.connsMu.Unlock()
	t.wg.Wait()
}

func (t *Testbed) accept(l caseListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) || t.stopping.Load() {
				return
			}
			continue // EMFILE and the like: the next accept may work
		}
		if t.active.Add(1) > maxConns || !t.track(c) {
			t.active.Add(-1)
			c.Close()
			continue
		}
		t.wg.Go(func() {
			defer t.untrack(c)
			defer t.active.Add(-1)
			defer c.Close()
			t.handle(l.c, c)
		})
	}
}

// track adds c to the connections closed at shutdown; false when shutting
// down already.
func (t *Testbed) track(c net.Conn) bool {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	if t.stopping.Load() {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Testbed) untrack(c net.Conn) {
	t.connsMu.Lock()
	delete(t.conns, c)
	t.connsMu.Unlock()
}

// record gives a grade to the card and to Graded; a connection cut by the
// end of the run is not graded.
func (t *Testbed) record(g Grade) {
	if t.stopping.Load() {
		return
	}
	t.card.Add(g)
	if t.opts.Graded != nil {
		t.gradeMu.Lock()
		t.opts.Graded(g)
		t.gradeMu.Unlock()
	}
}

// serverConfig is the TLS configuration of case, which records the
// ClientHello for the grade.
func (t *Testbed) serverConfig(c Case) *tls.Config {
	m := t.opts.Material
	cfg := &tls.Config{Certificates: []tls.Certificate{m.Certificate(c.Name)}}
	switch c.Name {
	case "tls10":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	case "tls11":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	case "slow-handshake", "abort-mid-handshake":
		cfg.Certificates = []tls.Certificate{m.Certificate("good")}
	case "require-client-cert":
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.ClientCAs = m.ClientCAs()
		cfg.VerifyConnection = verifyClient(m)
	}
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		clienthello.Record(h, cfg)
		return nil, nil
	}
	return cfg
}

// fetchLog is when each client address last fetched each path.
type fetchLog struct {
	mu   sync.Mutex
	seen map[string]map[string]time.Time // by IP, then path
}

// maxFetchClients bounds the fetch log; when full it starts again.
const maxFetchClients = 4096

func (f *fetchLog) add(ip, path string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[ip] == nil {
		if len(f.seen) >= maxFetchClients {
			clear(f.seen)
		}
		f.seen[ip] = map[string]time.Time{}
	}
	f.seen[ip][path] = at
}

// since reports whether ip fetched path at or after t.
func (f *fetchLog) since(ip, path string, t time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.seen[ip][path]
	return ok && !at.Before(t)
}

// publish serves the CRLs and the intermediate, and notes who fetched
// what.
func (t *Testbed) publish(w http.ResponseWriter, r *http.Request) {
	body := t.opts.Material.Published(r.URL.Path)
	if body == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	t.fetches.add(ip, r.URL.Path, time.Now())
	if t.opts.Fetched != nil {
		t.opts.Fetched(r.RemoteAddr, r.URL.Path)
	}
	ctype := "application/pkix-crl"
	if r.URL.Path == IntermediatePath {
		ctype = "application/pkix-cert"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
