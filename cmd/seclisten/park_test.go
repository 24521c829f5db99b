//go:build linux

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/quick"
	"time"
)

// Parked idle connections (--park-after): they wait for their client
// without a goroutine, and everything else means what it meant.

// scrape reads one series of the server's /metrics (with net/http: the
// tests below poll it many times).
func scrape(t testing.TB, maddr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// waitMetric waits until a series of /metrics satisfies ok.
func waitMetric(t testing.TB, maddr, series string, ok func(float64) bool) float64 {
	t.Helper()
	var v float64
	waitFor(t, series, func() bool {
		v = scrape(t, maddr, series)
		return ok(v)
	})
	return v
}

func equals(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

// parkServe starts a server that parks idle connections after 20ms, with
// metrics, and returns it with its metrics address.
func parkServe(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return startServe(t, append([]string{"--park-after", "20ms", "--metrics-addr", maddr}, args...)...), maddr
}

// lineConn is a client connection, TLS or plain, safe to use from any
// goroutine (errors are returned, not fatal).
type lineConn struct {
	raw *net.TCPConn
	w   io.Writer
	r   *bufio.Reader
	tc  *tls.Conn // nil on a plain port
}

func dialLine(addr string, cfg *tls.Config) (*lineConn, error) {
	c, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		return nil, err
	}
	raw := c.(*net.TCPConn)
	_ = raw.SetDeadline(time.Now().Add(hangGuard))
	lc := &lineConn{raw: raw, w: raw, r: bufio.NewReader(raw)}
	if cfg != nil {
		lc.tc = tls.Client(raw, cfg)
		if err := lc.tc.Handshake(); err != nil {
			raw.Close()
			return nil, err
		}
		lc.w, lc.r = lc.tc, bufio.NewReader(lc.tc)
	}
	return lc, nil
}

// exchange sends a line and reads the reply.
func (c *lineConn) exchange(line string) error {
	_ = c.raw.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(c.w, line+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reply to %q: %q, %w", line, got, err)
	}
	if got != defaultReply+"\n" {
		return fmt.Errorf("reply to %q: %q", line, got)
	}
	return nil
}

// closeWrite half-closes: close_notify on TLS, FIN on plain.
func (c *lineConn) closeWrite() error {
	if c.tc != nil {
		return c.tc.CloseWrite()
	}
	return c.raw.CloseWrite()
}

func (c *lineConn) close() { _ = c.raw.Close() }

// expectEOF reads until the server closes.
func (c *lineConn) expectEOF(t *testing.T) {
	t.Helper()
	_ = c.raw.SetDeadline(time.Now().Add(hangGuard))
	rest, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read to EOF: %q, %v", rest, err)
	}
	if len(rest) > 0 {
		t.Fatalf("read %q before EOF", rest)
	}
}

func clientTLS(t testing.TB, dir string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
}

// countLines counts the stdout lines ending in " "+msg.
func countLines(out, msg string) int {
	n := 0
	for _, l := range splitLines(out) {
		if strings.HasSuffix(l, " "+msg) {
			n++
		}
	}
	return n
}

// Two thousand TLS clients say hello, fall silent until every one of them
// is parked, then all send at once: each line is answered and printed
// exactly once, the parked connections held far fewer goroutines than
// connections, and once they leave, descriptors and goroutines come back
// to where they were.
func TestParkThousands(t *testing.T) {
	const n = 2000
	dir := pkiDir(t)
	p, maddr := parkServe(t, mtlsArgs(dir, "--max-conns", "3000")...)
	cfg := clientTLS(t, dir)

	first, err := dialLine(p.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.exchange("warm-up"); err != nil {
		t.Fatal(err)
	}
	first.close()
	waitMetric(t, maddr, "seclisten_connections_active", equals(0))
	baseFDs := p.fdsBelow(1 << 20)
	// Goroutines besides the workers kept for the next connections
	// (seclisten_workers_idle, at most 64).
	goroutines := func() float64 {
		return scrape(t, maddr, "go_goroutines") - scrape(t, maddr, "seclisten_workers_idle")
	}
	baseG := goroutines()

	conns := make([]*lineConn, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	})
	run := func(what string, f func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 64) // bounded: 64 clients at work at once
		for i := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := f(i); err != nil {
					errs <- fmt.Errorf("%s %d: %w", what, i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run("hello", func(i int) error {
		c, err := dialLine(p.addr, cfg)
		if err != nil {
			return err
		}
		conns[i] = c
		return c.exchange(fmt.Sprintf("hello-%d", i))
	})
	waitMetric(t, maddr, "seclisten_connections_parked", equals(n))
	if a := scrape(t, maddr, "seclisten_connections_active"); a != n {
		t.Fatalf("connections_active = %v with %d parked, want %d: a parked connection is open", a, n, n)
	}
	if g := goroutines(); g > baseG+n/10 {
		t.Fatalf("%v goroutines with %d connections parked (%v at rest)", g, n, baseG)
	}

	// All at once: no limit on how many send together.
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			<-start
			if err := c.exchange(fmt.Sprintf("line-%d", i)); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := strings.Join(p.stdoutLines(1), "\n")
	for i := range n {
		if k := countLines(out, fmt.Sprintf("line-%d", i)); k != 1 {
			t.Fatalf("line-%d printed %d times", i, k)
		}
	}
	run("close", func(i int) error {
		conns[i].close()
		return nil
	})
	waitMetric(t, maddr, "seclisten_connections_active", equals(0))
	waitMetric(t, maddr, "seclisten_connections_parked", equals(0))
	waitFDs(t, p, baseFDs)
	waitFor(t, "goroutines back to their number at rest", func() bool { return goroutines() <= baseG })
	p.stop()
}

// A parked connection ends as an idle one would: at the idle timeout, at
// its lifetime, at shutdown, when its client hangs up or half-closes; and
// its client loses nothing it sent.
func TestParkEnds(t *testing.T) {
	dir := pkiDir(t)
	for _, mode := range []string{"tls", "plain"} {
		args := func(extra ...string) []string {
			if mode == "plain" {
				return append([]string{"--plain"}, extra...)
			}
			return mtlsArgs(dir, extra...)
		}
		var cfg *tls.Config
		if mode == "tls" {
			cfg = clientTLS(t, dir)
		}
		// parked connects, says hello, and waits until it is parked.
		parked := func(t *testing.T, p *proc, maddr string) *lineConn {
			t.Helper()
			c, err := dialLine(p.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.close)
			if err := c.exchange("hello"); err != nil {
				t.Fatal(err)
			}
			waitMetric(t, maddr, "seclisten_connections_parked", equals(1))
			return c
		}
		closed := func(t *testing.T, maddr, reason string) {
			t.Helper()
			waitMetric(t, maddr, fmt.Sprintf(`seclisten_connections_closed_total{reason=%q}`, reason), equals(1))
			if v := scrape(t, maddr, "seclisten_connections_parked"); v != 0 {
				t.Fatalf("connections_parked = %v after the close", v)
			}
			if v := scrape(t, maddr, "seclisten_connections_active"); v != 0 {
				t.Fatalf("connections_active = %v after the close", v)
			}
		}
		t.Run(mode+"/idle timeout", func(t *testing.T) {
			p, maddr := parkServe(t, args("--idle-timeout", "1s")...)
			c := parked(t, p, maddr)
			c.expectEOF(t)
			closed(t, maddr, "idle-timeout")
		})
		t.Run(mode+"/max lifetime", func(t *testing.T) {
			p, maddr := parkServe(t, args("--max-lifetime", "1s")...)
			c := parked(t, p, maddr)
			c.expectEOF(t)
			closed(t, maddr, "max-lifetime")
		})
		t.Run(mode+"/hang-up", func(t *testing.T) {
			p, maddr := parkServe(t, args()...)
			c := parked(t, p, maddr)
			c.close()
			closed(t, maddr, "client-closed")
		})
		t.Run(mode+"/half-close after a last line without newline", func(t *testing.T) {
			p, maddr := parkServe(t, args()...)
			c := parked(t, p, maddr)
			if _, err := io.WriteString(c.w, "tail"); err != nil {
				t.Fatal(err)
			}
			if err := c.closeWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := c.r.ReadString('\n')
			if err != nil || got != defaultReply+"\n" {
				t.Fatalf("reply to the last line: %q, %v", got, err)
			}
			c.expectEOF(t)
			closed(t, maddr, "client-closed")
			// The line reaches stdout a moment after its reply may.
			p.await("the last line printed", func() bool { return countLines(p.stdout.String(), "tail") >= 1 })
			if k := countLines(p.stdout.String(), "tail"); k != 1 {
				t.Fatalf("last line printed %d times", k)
			}
		})
		t.Run(mode+"/shutdown", func(t *testing.T) {
			p, maddr := parkServe(t, args("--json")...)
			c := parked(t, p, maddr)
			if code, _ := p.signal(syscall.SIGTERM, hangGuard); code != 0 {
				t.Fatalf("exit status %d", code)
			}
			c.expectEOF(t)
			var reasons []any
			for _, e := range parseJSONLines(t, p.stdout.String()) {
				if e["event"] == "close" {
					reasons = append(reasons, e["reason"])
				}
			}
			if len(reasons) != 1 || reasons[0] != "shutdown" {
				t.Fatalf("close reasons %v, want [shutdown]", reasons)
			}
		})
	}
}

// Parking races with each way a connection ends: many clients park and, at
// once, some send, some hang up, some half-close, while the server shuts
// down. Every line a client got an answer for was printed once, and the
// server exits cleanly.
func TestParkRacesShutdown(t *testing.T) {
	const n = 200
	p, maddr := parkServe(t, "--plain")
	conns := make([]*lineConn, n)
	for i := range conns {
		c, err := dialLine(p.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		if err := c.exchange(fmt.Sprintf("hello-%d", i)); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	waitMetric(t, maddr, "seclisten_connections_parked", equals(n))
	var wg sync.WaitGroup
	answered := make([]bool, n)
	for i, c := range conns {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				answered[i] = c.exchange(fmt.Sprintf("race-%d", i)) == nil
			case 1:
				c.close()
			case 2:
				_ = c.closeWrite()
			}
		})
	}
	code, _ := p.signal(syscall.SIGTERM, hangGuard)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	out := p.stdout.String()
	for i := range n {
		k := countLines(out, fmt.Sprintf("race-%d", i))
		if k > 1 || answered[i] && k != 1 {
			t.Fatalf("race-%d (answered %v) printed %d times", i, answered[i], k)
		}
	}
}

// A property over random schedules: a client sends its lines in random
// pieces (split anywhere, CRLF or LF), and between lines sometimes waits
// until it is parked. Every line comes back answered once, printed once,
// in order.
func TestParkSchedules(t *testing.T) {
	p, maddr := parkServe(t, "--plain")
	var round int
	prop := func(seed uint64) bool {
		round++
		rng := rand.New(rand.NewPCG(seed, 7))
		c, err := dialLine(p.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		lines := 1 + rng.IntN(6)
		var sent []string
		for i := range lines {
			msg := fmt.Sprintf("sched-%d-%d-%s", round, i, strings.Repeat("x", rng.IntN(300)))
			sent = append(sent, msg)
			data := msg + "\n"
			if rng.IntN(2) == 0 {
				data = msg + "\r\n"
			}
			for data != "" {
				k := 1 + rng.IntN(len(data))
				if _, err := io.WriteString(c.w, data[:k]); err != nil {
					t.Fatal(err)
				}
				data = data[k:]
			}
			got, err := c.r.ReadString('\n')
			if err != nil || got != defaultReply+"\n" {
				t.Fatalf("reply %q, %v", got, err)
			}
			if rng.IntN(2) == 0 {
				// At a line boundary with nothing buffered: it parks.
				waitMetric(t, maddr, "seclisten_connections_parked", equals(1))
			}
		}
		c.close()
		waitMetric(t, maddr, "seclisten_connections_active", equals(0))
		// A printed line reaches stdout a moment after its reply may
		// (pkg/batch): wait for the round's lines, then compare.
		var printed []string
		p.await(fmt.Sprintf("round %d's %d lines printed", round, len(sent)), func() bool {
			printed = printed[:0]
			for _, l := range splitLines(p.stdout.String()) {
				if _, m, ok := strings.Cut(l, "] "); ok && strings.HasPrefix(m, fmt.Sprintf("sched-%d-", round)) {
					printed = append(printed, m)
				}
			}
			return len(printed) >= len(sent)
		})
		return strings.Join(printed, "|") == strings.Join(sent, "|")
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 25}); err != nil {
		t.Fatal(err)
	}
}

// A reload that denies a parked client closes it at once (not at its idle
// timeout), with the outcome an unparked one gets; the other parked client
// is served on.
func TestParkReloadClosesDenied(t *testing.T) {
	conf := writeFile(t, "seclisten.toml", "plain = true\nreload-closes-denied = true\n")
	p, maddr := parkServe(t, "--config", conf)
	denied, kept := newClientFrom(t, "127.0.0.2", p.addr), newClientFrom(t, "127.0.0.3", p.addr)
	for _, c := range []*client{denied, kept} {
		c.send("hello\n")
		c.expectLine(defaultReply)
	}
	waitMetric(t, maddr, "seclisten_connections_parked", equals(2))
	if err := os.WriteFile(conf, []byte("plain = true\nreload-closes-denied = true\ndeny-cidr = \"127.0.0.2/32\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	denied.expectEOF()
	waitMetric(t, maddr, `seclisten_connections_closed_total{reason="reload-denied"}`, equals(1))
	kept.send("still here\n")
	kept.expectLine(defaultReply)
}
