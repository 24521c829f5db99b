package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// hangGuard bounds every wait for an event a test expects, and every run
// the test expects to end: far beyond what even a loaded machine needs, it
// only stops a broken test from hanging.
const hangGuard = 30 * time.Second

// testServer is a tiny line-echo server: it answers every line with "ok".
type testServer struct {
	addr     string
	ln       net.Listener
	active   atomic.Int64  // connections being served
	changed  chan struct{} // a token whenever active changes (buffered 1)
	accepted atomic.Int64
	replies  chan struct{} // one per reply, while it has room (the first 1,024)
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	lives    []time.Duration // of the connections served, from accept to close
	wg       sync.WaitGroup
}

// serverTLS is a server configuration with a certificate made in-process.
func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(pki.ServerOptions{Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate()}}
}

// startTestServer serves TLS with cfg (plain if nil). With refuseEveryOther
// it closes every second connection at once, as a rate limiter would.
func startTestServer(t *testing.T, cfg *tls.Config, refuseEveryOther bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}, replies: make(chan struct{}, 1024),
		changed: make(chan struct{}, 1)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n := s.accepted.Add(1); refuseEveryOther && n%2 == 0 {
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			// Counted before its goroutine starts: waitActive(0) cannot
			// return between the accept and the serving.
			s.active.Add(1)
			s.notify()
			s.wg.Go(func() { s.handle(c, cfg) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) handle(c net.Conn, cfg *tls.Config) {
	start := time.Now()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.lives = append(s.lives, time.Since(start))
		s.mu.Unlock()
		// Last: once waitActive sees the count fall, the life is recorded.
		s.active.Add(-1)
		s.notify()
	}()
	rw := c
	if cfg != nil {
		rw = tls.Server(c, cfg)
	}
	br := bufio.NewReader(rw)
	for {
		if _, err := br.ReadSlice('\n'); err != nil {
			return
		}
		if _, err := rw.Write([]byte("ok\n")); err != nil {
			return
		}
		select {
		case s.replies <- struct{}{}:
		default:
		}
	}
}

// notify tells waitActive that the count changed.
func (s *testServer) notify() {
	select {
	case s.changed <- struct{}{}:
	default: // a token is already waiting
	}
}

// waitActive waits until the server serves n connections at once, woken by
// each change of the count.
func (s *testServer) waitActive(t *testing.T, n int64) {
	t.Helper()
	guard := time.After(hangGuard)
	for s.active.Load() != n {
		select {
		case <-s.changed:
		case <-guard:
			t.Fatalf("server serves %d connections, want %d", s.active.Load(), n)
		}
	}
}

// waitReplies waits for the server's next n replies.
func (s *testServer) waitReplies(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.replies:
		case <-time.After(hangGuard):
			t.Fatalf("the server answered fewer than %d lines", n)
		}
	}
}

// runOut is the outcome of a Run.
type runOut struct {
	r   Result
	err error
}

// start runs Run in the background; cancel ends it early.
func start(o Options, progress io.Writer) (done <-chan runOut, cancel context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan runOut, 1)
	go func() {
		r, err := Run(ctx, o, progress)
		ch <- runOut{r, err}
	}()
	return ch, cancel
}

// result waits for a run started with start to end, within the hang guard.
func result(t *testing.T, done <-chan runOut) Result {
	t.Helper()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.r
	case <-time.After(hangGuard):
		t.Fatalf("the run did not end within %s", hangGuard)
		return Result{}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"two p50", ms(1, 2), 50, time.Millisecond},
		{"two p99", ms(1, 2), 99, 2 * time.Millisecond},
		{"four p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p100", hundred, 100, 100 * time.Millisecond},
		{"tiny p", hundred, 0.001, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestReservoirBounded(t *testing.T) {
	v := newReservoir(10, 1)
	for i := range 1000 {
		v.add(time.Duration(i))
	}
	if len(v.s) != 10 || v.seen != 1000 {
		t.Fatalf("kept %d of %d, want 10 of 1000", len(v.s), v.seen)
	}
}

func sane(t *testing.T, r Result) {
	t.Helper()
	if r.Ops <= 0 {
		t.Errorf("ops = %d, want > 0", r.Ops)
	}
	if r.P50 <= 0 || r.P50 > r.P99 {
		t.Errorf("p50 %v, p99 %v: want 0 < p50 <= p99", r.P50, r.P99)
	}
	if r.Errors != 0 {
		t.Errorf("errors = %d (%v), want 0", r.Errors, r.Failures)
	}
	if r.OpsPerSec() <= 0 {
		t.Errorf("ops/s = %v", r.OpsPerSec())
	}
}

func TestModes(t *testing.T) {
	tlsSrv := startTestServer(t, serverTLS(t), false)
	plainSrv := startTestServer(t, nil, false)
	tests := []struct {
		name string
		o    Options
	}{
		{"handshake", Options{Mode: Handshake}},
		{"handshake tls1.2 P256", Options{Mode: Handshake, TLSVersion: tls.VersionTLS12, Groups: []tls.CurveID{tls.CurveP256}}},
		{"handshake mlkem", Options{Mode: Handshake, Groups: []tls.CurveID{tls.X25519MLKEM768}}},
		{"handshake plain", Options{Mode: Handshake, Plain: true}},
		{"resume tls1.3", Options{Mode: Resume, TLSVersion: tls.VersionTLS13}},
		{"resume tls1.2", Options{Mode: Resume, TLSVersion: tls.VersionTLS12}},
		{"echo", Options{Mode: Echo, Conns: 8}},
		{"echo plain", Options{Mode: Echo, Conns: 8, Plain: true}},
		{"idle", Options{Mode: Idle, Conns: 8}},
		{"flood", Options{Mode: Flood}},
		{"flood plain", Options{Mode: Flood, Plain: true}},
		{"line", Options{Mode: Line}},
		{"line plain", Options{Mode: Line, Plain: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Addr = tlsSrv.addr
			if o.Plain {
				o.Addr = plainSrv.addr
			}
			o.Concurrency = 4
			// Bounded by count, not by time, so the run is the same
			// however slow the machine; the duration is beyond the hang
			// guard. Idle holds its connections for the duration: it is
			// ended once its own server holds them all.
			o.MaxOps, o.Duration = 50, time.Hour
			var own *testServer
			if o.Mode == Idle || o.Mode == Line {
				cfg := serverTLS(t)
				if o.Plain {
					cfg = nil
				}
				own = startTestServer(t, cfg, false)
				o.Addr = own.addr
			}
			var progress strings.Builder
			done, cancel := start(o, &progress)
			defer cancel()
			if own != nil && o.Mode == Idle {
				// Each connection is opened with one exchange: once the
				// server has answered them all, they are all opened.
				own.waitReplies(t, o.Conns)
				cancel()
			}
			r := result(t, done)
			sane(t, r)
			if !o.Plain && !strings.HasPrefix(r.TLS, "TLS 1.") {
				t.Errorf("tls = %q", r.TLS)
			}
			switch o.Mode {
			case Resume:
				if f := r.ResumedFraction(); f < 0.9 {
					t.Errorf("resumed %d of %d (%.2f), want >= 0.9", r.Resumed, r.Ops, f)
				}
			case Echo, Idle:
				if r.Conns != o.Conns {
					t.Errorf("conns = %d, want %d", r.Conns, o.Conns)
				}
			case Line:
				// One connection per operation, each with one line
				// answered, and every connection closed by the client.
				own.waitActive(t, 0)
				if got := own.accepted.Load(); got != r.Ops || int64(len(own.replies)) != r.Ops {
					t.Errorf("%d ops, but the server accepted %d connections and answered %d lines", r.Ops, got, len(own.replies))
				}
			case Flood:
				if r.Accepted != r.Ops || r.Refused != 0 {
					t.Errorf("accepted %d, refused %d of %d; want all accepted", r.Accepted, r.Refused, r.Ops)
				}
			}
			if o.Mode == Handshake && len(o.Groups) == 1 && !strings.Contains(r.TLS, o.Groups[0].String()) {
				t.Errorf("tls = %q, want group %s", r.TLS, o.Groups[0])
			}
			var tbl strings.Builder
			if err := r.WriteTable(&tbl); err != nil || !strings.Contains(tbl.String(), "ops/s") {
				t.Errorf("table:\n%s", tbl.String())
			}
			t.Logf("\n%s", tbl.String())
		})
	}
}

// Idle holds exactly K connections on the server until the run ends, then
// closes them.
func TestIdleHoldsK(t *testing.T) {
	srv := startTestServer(t, serverTLS(t), false)
	const k = 25
	// A duration beyond the hang guard: the run holds until cancelled.
	done, cancel := start(Options{Mode: Idle, Addr: srv.addr, Conns: k, Duration: time.Hour, PID: os.Getpid()}, nil)
	defer cancel()
	// Each connection is opened with one exchange: once the server has
	// answered them all, they are all opened, and the hold has begun.
	srv.waitReplies(t, k)
	if n := srv.active.Load(); n != k {
		t.Errorf("server holds %d connections, want %d", n, k)
	}
	select {
	case o := <-done:
		t.Fatalf("the run ended while holding its connections: %+v, %v", o.r, o.err)
	default:
	}
	cancel()
	r := result(t, done)
	if r.Conns != k || r.Ops != k {
		t.Errorf("conns %d, ops %d; want %d", r.Conns, r.Ops, k)
	}
	if r.RSSBeforeKiB <= 0 || r.RSSAfterKiB <= 0 {
		t.Errorf("rss before %d, after %d KiB; want both > 0", r.RSSBeforeKiB, r.RSSAfterKiB)
	}
	srv.waitActive(t, 0)
	if n := srv.accepted.Load(); n != k {
		t.Errorf("server accepted %d connections, want exactly %d", n, k)
	}
}

// Idle holds its connections for the whole duration: the server sees each
// live at least that long (opening them, with one exchange each, ends
// before the hold begins).
func TestIdleHoldsForTheDuration(t *testing.T) {
	srv := startTestServer(t, nil, false)
	const hold = 500 * time.Millisecond
	// Plain, and two connections: opened in far less than the duration
	// even on a loaded machine.
	done, cancel := start(Options{Mode: Idle, Addr: srv.addr, Plain: true, Conns: 2, Duration: hold}, nil)
	defer cancel()
	r := result(t, done)
	if r.Conns == 0 {
		t.Fatalf("no connection opened within %s", hold)
	}
	srv.waitActive(t, 0)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.lives) != r.Conns {
		t.Fatalf("server served %d connections, the run opened %d", len(srv.lives), r.Conns)
	}
	for i, d := range srv.lives {
		if d < hold {
			t.Errorf("connection %d held %s, less than the %s duration", i, d, hold)
		}
	}
}

// A server that closes every other connection at once: flood counts half
// accepted, half refused.
func TestFloodClassifies(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "plain"}[plain], func(t *testing.T) {
			var cfg *tls.Config
			if !plain {
				cfg = serverTLS(t)
			}
			srv := startTestServer(t, cfg, true)
			// A duration beyond the hang guard: the 200 operations all run.
			done, cancel := start(Options{Mode: Flood, Addr: srv.addr, Plain: plain, MaxOps: 200, Concurrency: 4, Duration: time.Hour}, nil)
			defer cancel()
			r := result(t, done)
			if r.Accepted+r.Refused+r.Errors != 200 {
				t.Errorf("accepted %d + refused %d + errors %d, want 200", r.Accepted, r.Refused, r.Errors)
			}
			if r.Accepted < 80 || r.Refused < 80 {
				t.Errorf("accepted %d, refused %d (errors %v); want about 100 each", r.Accepted, r.Refused, r.Failures)
			}
		})
	}
}

func TestBoundedByCount(t *testing.T) {
	srv := startTestServer(t, serverTLS(t), false)
	for _, mode := range []Mode{Handshake, Resume, Echo, Flood} {
		t.Run(string(mode), func(t *testing.T) {
			// A duration beyond the hang guard: only the count can end
			// the run.
			done, cancel := start(Options{Mode: mode, Addr: srv.addr, MaxOps: 50, Conns: 4, Duration: time.Hour}, nil)
			defer cancel()
			if r := result(t, done); r.Ops != 50 {
				t.Errorf("ops = %d, want 50", r.Ops)
			}
		})
	}
}

func TestBoundedByTime(t *testing.T) {
	srv := startTestServer(t, serverTLS(t), false)
	const d = time.Second
	for _, mode := range []Mode{Handshake, Echo, Flood} {
		t.Run(string(mode), func(t *testing.T) {
			// No count and no per-operation timeout can end the run in
			// time: only the duration can. Echo opens its connections
			// within the duration first, which a second leaves ample
			// room for.
			done, cancel := start(Options{Mode: mode, Addr: srv.addr, Conns: 4, Duration: d, Timeout: time.Hour}, nil)
			defer cancel()
			r := result(t, done)
			if r.Elapsed < d {
				t.Errorf("elapsed %v, less than the %v duration", r.Elapsed, d)
			}
			if r.Ops == 0 {
				t.Errorf("no operation in %v", r.Elapsed)
			}
		})
	}
}

// Cancelling ctx ends a run early, with the figures so far.
func TestCancel(t *testing.T) {
	srv := startTestServer(t, nil, false)
	const conns = 4
	// A duration and timeouts beyond the hang guard: only the cancel can
	// end the run.
	done, cancel := start(Options{Mode: Echo, Addr: srv.addr, Plain: true, Conns: conns, Duration: time.Hour, Timeout: time.Hour}, nil)
	defer cancel()
	// One reply per connection opens it; after conns more, some
	// connection has had two replies in the measured phase, so its first
	// operation was counted before it sent its second line.
	srv.waitReplies(t, 2*conns+1)
	cancel()
	if r := result(t, done); r.Ops == 0 {
		t.Errorf("ops = 0 at the cancel, want the operations so far (elapsed %v)", r.Elapsed)
	}
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			r, err := Run(context.Background(), Options{Mode: mode, Addr: addr, Duration: 200 * time.Millisecond, Conns: 2}, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "no connection succeeded: dial tcp") || !strings.HasSuffix(err.Error(), "connection refused") {
				t.Errorf("err = %v", err)
			}
			if !errors.Is(err, ErrNoSuccess) {
				t.Errorf("err = %v, want ErrNoSuccess", err)
			}
			if n := r.Failures[Failure{Class: ClassConnRefused}]; n == 0 || n != r.Errors {
				t.Errorf("failures %v of %d errors, want all %s", r.Failures, r.Errors, ClassConnRefused.Key())
			}
			if d := r.Diagnose(); d.Cause != NoCause {
				t.Errorf("diagnosis %+v: nothing listening is not the server's doing", d)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no addr", Options{}, "`Addr` is required"},
		{"no port", Options{Addr: "127.0.0.1"}, "`Addr`: \"127.0.0.1\" is not host:port"},
		{"bad port", Options{Addr: "h:0"}, "port"},
		{"bad mode", Options{Addr: "h:1", Mode: "x"}, "`Mode`: unknown mode \"x\""},
		{"resume plain", Options{Addr: "h:1", Mode: Resume, Plain: true}, "`Mode` resume needs TLS: drop `Plain`"},
		{"sni plain", Options{Addr: "h:1", ServerName: "x", Plain: true},
			"`TLSVersion`, `Groups`, `CertFile`, `CAFile` and `ServerName` need TLS: drop `Plain`"},
		{"cert no key", Options{Addr: "h:1", CertFile: "c"}, "`CertFile` and `KeyFile` go together"},
		{"two lines", Options{Addr: "h:1", Message: "a\nb"}, "`Message` must be one line"},
		{"negative timeout", Options{Addr: "h:1", Timeout: -1}, "`Timeout` must be positive"},
		{"mlkem 1.2", Options{Addr: "h:1", TLSVersion: tls.VersionTLS12, Groups: []tls.CurveID{tls.X25519MLKEM768}}, "`Groups` X25519MLKEM768 needs TLS 1.3"},
		{"ok", Options{Addr: "h:1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	if _, err := ParseTLSVersion("1.1"); err == nil {
		t.Error("1.1 accepted")
	}
	if g, err := ParseGroups("x25519, X25519MLKEM768,P-256"); err != nil || len(g) != 3 || g[1] != tls.X25519MLKEM768 {
		t.Errorf("groups %v, %v", g, err)
	}
	if _, err := ParseGroups("P999"); err == nil {
		t.Error("P999 accepted")
	}
	if s, err := ParseSources("127.0.0.2,127.0.0.3"); err != nil || len(s) != 2 {
		t.Errorf("sources %v, %v", s, err)
	}
	if _, err := ParseSources("nope"); err == nil {
		t.Error("bad source accepted")
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Mode: Flood, Addr: "a:1", Elapsed: 2 * time.Second, Ops: 10, Errors: 30, Accepted: 4, Refused: 6,
		P50: time.Millisecond, P99: 3 * time.Millisecond,
		Failures: map[Failure]int64{{Class: ClassClosedEarly}: 20, {Class: ClassAlert, Alert: "bad_certificate"}: 10},
		Advice:   "ask the server nicely"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"ops": 10, "ops_per_s": 5, "accepted": 4, "refused_per_s": 3, "p99_ms": 3, "duration_s": 2,
		"errors": 30, "error_rate": 0.75} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, m[k], want, b)
		}
	}
	f, _ := m["failures"].(map[string]any)
	if f["closed_early"] != 20.0 || f["alert:bad_certificate"] != 10.0 || len(f) != 2 {
		t.Errorf("failures = %v", m["failures"])
	}
	if m["likely_cause"] != "ask the server nicely" {
		t.Errorf("likely_cause = %v", m["likely_cause"])
	}

	var tbl strings.Builder
	if err := r.WriteTable(&tbl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nerror rate 75% of 40 attempted\n",
		"\nclosed_early 20 (closed or reset by the server before it sent a byte)\n",
		"\nalert:bad_certificate 10 (TLS alert from the server: bad_certificate)\n",
		"\nlikely cause ask the server nicely\n",
	} {
		if !strings.Contains(squeeze(tbl.String()), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	// Failures are listed most frequent first, under the error rate.
	if i, j, k := strings.Index(tbl.String(), "\nerror rate "), strings.Index(tbl.String(), "closed_early"), strings.Index(tbl.String(), "alert:"); !(i < j && j < k) {
		t.Errorf("failures not under the error rate, most first:\n%s", tbl.String())
	}
}

// squeeze collapses runs of spaces on each line, so tests need not know the
// table's column widths.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
