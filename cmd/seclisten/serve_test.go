package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The first exchange of the classic example, as a user sees it.
func TestServeClassicExchange(t *testing.T) {
	p := startServer(t)
	c := newClient(t, p.addr)
	c.send("Hello Server!\n")
	c.expectLine(defaultReply)
	lines := p.stdoutLines(1)
	want := fmt.Sprintf("[%s] Hello Server!", c.conn.LocalAddr())
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("stdout = %q, want [%q]", lines, want)
	}
	p.stop()
}

// 200 clients at once, 20 lines each: every line answered, and printed
// exactly once: nothing lost, nothing doubled, no two lines mixed.
func TestServeManyConcurrentClients(t *testing.T) {
	const clients, lines = 200, 20
	p := startServer(t, append(noLimits, "--reply", "ok")...)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	peers := make([]string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			peers[i] = c.LocalAddr().String()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 3)
			for j := range lines {
				// Alternate LF and CRLF framing.
				eol := "\n"
				if j%2 == 1 {
					eol = "\r\n"
				}
				if _, err := fmt.Fprintf(c, "client %d line %d%s", i, j, eol); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok\n" {
					errs <- fmt.Errorf("client %d line %d: reply %q, %v", i, j, buf, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p.stop()

	seen := map[string]int{}
	for _, l := range splitLines(p.stdout.String()) {
		seen[l]++
	}
	for i := range clients {
		for j := range lines {
			l := fmt.Sprintf("[%s] client %d line %d", peers[i], i, j)
			if seen[l] != 1 {
				t.Errorf("%q printed %d times, want once", l, seen[l])
			}
			delete(seen, l)
		}
	}
	for l, n := range seen {
		t.Errorf("unexpected stdout line %q (%d times)", l, n)
	}
}

// Terminal escapes, NUL, C1, bidi overrides and invalid UTF-8 never reach
// stdout raw; valid UTF-8 does; one message stays one line.
func TestServeEscapesHostileBytes(t *testing.T) {
	p := startServer(t)
	c := newClient(t, p.addr)
	msgs := []struct{ send, printed string }{
		{"\x1b]50;?\x07 OSC 50", `\x1b]50;?\x07 OSC 50`},
		{"\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"nul\x00byte del\x7f", `nul\x00byte del\x7f`},
		{"c1 csi \xc2\x9b31m", `c1 csi \u009b31m`},
		{"bidi \u202eevil\u2066x\u2069", `bidi \u202eevil\u2066x\u2069`},
		{"bad utf8 \xff\xfe \xed\xa0\x80", `bad utf8 \xff\xfe \xed\xa0\x80`},
		{"fake\rline [127.0.0.1:1] forged", `fake\rline [127.0.0.1:1] forged`},
		{"sep\u2028forged", `sep\u2028forged`},
		{"café 日本 🙂 tab\there back\\slash", `café 日本 🙂 tab\there back\\slash`},
	}
	for _, m := range msgs {
		c.send(m.send + "\n")
		c.expectLine(defaultReply)
	}
	lines := p.stdoutLines(len(msgs))
	if len(lines) != len(msgs) {
		t.Fatalf("stdout has %d lines, want %d: %q", len(lines), len(msgs), lines)
	}
	prefix := fmt.Sprintf("[%s] ", c.conn.LocalAddr())
	for i, m := range msgs {
		if lines[i] != prefix+m.printed {
			t.Errorf("message %q printed as\n%q, want\n%q", m.send, lines[i], prefix+m.printed)
		}
	}
	p.stop()
	for i, b := range []byte(p.stdout.String()) {
		if (b < 0x20 && b != '\n') || b == 0x7f {
			t.Fatalf("raw control byte %#x at offset %d of stdout", b, i)
		}
	}
}

// A 4 MiB line with no newline, from several clients at once, gets the error
// reply and a close, while the server's peak memory stays small.
func TestServeOversizeLineBoundsMemory(t *testing.T) {
	const clients, size = 8, 4 << 20
	p := startServer(t)
	// Warm up, then take the baseline peak RSS.
	c0 := newClient(t, p.addr)
	c0.send("warm up\n")
	c0.expectLine(defaultReply)
	base := p.status("VmHWM")

	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t, p.addr)
			go func() {
				// The server stops reading after the limit: this write may
				// fail with a reset, which is fine.
				chunk := []byte(strings.Repeat("A", 64<<10))
				_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := c.conn.Write(chunk); err != nil {
						return
					}
				}
			}()
			got, err := c.readLine()
			if err != nil || got != "error: line too long (max 65536 bytes)" {
				t.Errorf("reply %q, %v; want the line-too-long error", got, err)
				return
			}
			if _, err := c.readLine(); err == nil {
				t.Errorf("connection not closed after the error reply")
			}
		}()
	}
	wg.Wait()
	peak := p.status("VmHWM")
	// 8 clients x 4 MiB would be 32 MiB if lines were buffered whole.
	if grew := peak - base; grew > 8<<10 {
		t.Errorf("peak RSS grew by %d KiB (from %d to %d KiB), want < 8 MiB", grew, base, peak)
	}
	t.Logf("peak RSS %d KiB, grew %d KiB during %d x 4 MiB lines", peak, peak-base, clients)
	if lines := splitLines(p.stdout.String()); len(lines) != 1 {
		t.Errorf("stdout = %q: the over-long lines must not be printed", lines)
	}
	p.stop()
}

// Data without a final newline is printed and answered when the client
// half-closes.
func TestServeHalfCloseWithoutNewline(t *testing.T) {
	p := startServer(t)
	c := newClient(t, p.addr)
	c.send("first\nno newline at the end")
	if err := c.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.expectLine(defaultReply)
	c.expectLine(defaultReply)
	c.expectEOF()
	prefix := fmt.Sprintf("[%s] ", c.conn.LocalAddr())
	lines := p.stdoutLines(2)
	if len(lines) != 2 || lines[0] != prefix+"first" || lines[1] != prefix+"no newline at the end" {
		t.Fatalf("stdout = %q", lines)
	}
	p.stop()
}

// --once answers the first message and closes, like the classic example.
func TestServeOnce(t *testing.T) {
	p := startServer(t, "--once", "--reply", "bye")
	c := newClient(t, p.addr)
	c.send("one\n")
	c.expectLine("bye")
	c.expectEOF()
	// The server keeps serving other clients.
	c2 := newClient(t, p.addr)
	c2.send("two\nthree\n")
	c2.expectLine("bye")
	c2.expectEOF()
	lines := p.stdoutLines(2)
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "] one") || !strings.HasSuffix(lines[1], "] two") {
		t.Fatalf("stdout = %q, want one and two only", lines)
	}
	p.stop()
}

// --json prints one object per event: connect, message, reply, close.
func TestServeJSONEvents(t *testing.T) {
	p := startServer(t, "--json")
	c := newClient(t, p.addr)
	c.send("hi \x1b[0m\u202e\n")
	c.expectLine(defaultReply)
	c.conn.Close()
	lines := p.stdoutLines(4)
	recs := parseJSONLines(t, strings.Join(lines, "\n"))
	if len(recs) != 4 {
		t.Fatalf("got %d events, want 4: %q", len(recs), lines)
	}
	peer := c.conn.LocalAddr().String()
	for i, want := range []string{"connect", "message", "reply", "close"} {
		r := recs[i]
		if r["event"] != want || r["peer"] != peer || r["conn_id"] != float64(1) {
			t.Errorf("event %d = %v, want %s from %s conn 1", i, r, want, peer)
		}
		if _, err := time.Parse(time.RFC3339Nano, r["time"].(string)); err != nil {
			t.Errorf("event %d time: %v", i, err)
		}
	}
	if got := recs[1]["text"]; got != `hi \x1b[0m\u202e` {
		t.Errorf("message text = %q, want it escaped", got)
	}
	if recs[1]["bytes"] != float64(len("hi \x1b[0m\u202e")) {
		t.Errorf("message bytes = %v", recs[1]["bytes"])
	}
	if recs[2]["text"] != defaultReply {
		t.Errorf("reply text = %v", recs[2]["text"])
	}
	cl := recs[3]
	if cl["reason"] != "client-closed" || cl["messages"] != float64(1) ||
		cl["bytes_in"] != float64(len("hi \x1b[0m\u202e\n")) || cl["bytes_out"] != float64(len(defaultReply)+1) {
		t.Errorf("close event = %v", cl)
	}
	if d, ok := cl["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("close duration_ms = %v", cl["duration_ms"])
	}
	p.stop()
}

// A client that sends nothing is closed at the idle timeout: by the
// server's deadline (the close event says so), and not before it.
func TestServeIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	p := startServer(t, "--idle-timeout", idle.String(), "--json")
	// Before the dial: the server's deadline cannot start earlier.
	start := time.Now()
	c := newClient(t, p.addr)
	c.expectEOF()
	if d := time.Since(start); d < idle {
		t.Errorf("closed after %s, before the %s idle timeout", d, idle)
	}
	recs := parseJSONLines(t, strings.Join(p.stdoutLines(2), "\n"))
	if len(recs) != 2 || recs[1]["event"] != "close" || recs[1]["reason"] != "idle-timeout" {
		t.Errorf("events = %v, want a close with reason idle timeout", recs)
	}
	p.stop()
}

// SIGTERM while 50 clients are busy: every message a client got a reply for
// was printed, exactly once; the server drains and exits 0 without needing
// its shutdown timeout.
func TestServeSIGTERMLosesNoAnsweredMessage(t *testing.T) {
	const clients = 50
	// A shutdown timeout longer than the hang guard: if the drain stalled,
	// the test would fail rather than pass on the timeout's forced close.
	p := startServer(t, append(noLimits, "--reply", "ok", "--shutdown-timeout", "1h")...)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered = map[string]bool{}
		started  sync.WaitGroup
	)
	started.Add(clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				started.Done()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 3)
			for j := 0; j < 100000; j++ {
				msg := fmt.Sprintf("c%d m%d", i, j)
				if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return // closed by the shutdown
				}
				if string(buf) != "ok\n" {
					t.Errorf("reply %q", buf)
					return
				}
				mu.Lock()
				answered[fmt.Sprintf("[%s] %s", c.LocalAddr(), msg)] = true
				mu.Unlock()
				if j == 10 {
					started.Done()
				}
			}
		}()
	}
	// Every client has had 10 answers and is still sending.
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	select {
	case <-allStarted:
	case <-time.After(hangGuard):
		t.Fatal("the clients did not get 10 answers each")
	}
	code, took := p.signal(syscall.SIGTERM, hangGuard)
	wg.Wait()
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if p.logRecord("stopped") == nil || p.logRecord("shutdown timeout: closed connections still open") != nil {
		t.Errorf("the drain did not finish by itself; stderr:\n%s", tail(p.stderr.String(), 3000))
	}
	printed := map[string]int{}
	for _, l := range splitLines(p.stdout.String()) {
		printed[l]++
	}
	mu.Lock()
	defer mu.Unlock()
	if len(answered) < clients*10 {
		t.Fatalf("only %d messages answered before the signal", len(answered))
	}
	for m := range answered {
		if printed[m] != 1 {
			t.Errorf("answered message %q printed %d times, want once", m, printed[m])
		}
	}
	for l, n := range printed {
		if n != 1 {
			t.Errorf("%q printed %d times", l, n)
		}
	}
	t.Logf("%d messages answered, %d printed, exit in %s", len(answered), len(printed), took)
}

// A second signal exits at once, even while the graceful shutdown still
// waits on a client: the server is stuck writing replies the client never
// reads, and its write and shutdown timeouts are far longer than the test
// waits, so only the second signal can explain the exit.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	p := startServer(t, append(stuckArgs, "--write-timeout", "1h", "--shutdown-timeout", "1h", "--idle-timeout", "1h")...)
	stuckClient(t, p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rec := p.waitLog("shutting down: finishing what clients already sent", 1)
	if rec["active_conns"] != float64(1) {
		t.Errorf("shutdown record = %v, want 1 active connection", rec)
	}
	select {
	case <-p.done:
		t.Fatalf("exited on the first signal although a client was still being answered (%v)", p.err)
	default:
	}
	code, took := p.signal(syscall.SIGINT, hangGuard)
	if code != 1 {
		t.Errorf("exit status %d after the second signal, want 1", code)
	}
	if rec := p.logRecord("second signal: exiting now"); rec == nil || rec["signal"] != "interrupt" {
		t.Errorf("second-signal record = %v, want one for SIGINT", rec)
	}
	if p.logRecord("stopped") != nil {
		t.Errorf("the graceful shutdown finished: the exit is not the second signal's")
	}
	t.Logf("second signal: exit in %s", took)
}

// TestServeSIGTERMEndsHandshake checks that a shutdown ends a handshake in
// progress at once, whatever the timeouts say, and that the log says why:
// a client stalled in its ClientHello, and one that got the server's
// flight and sends nothing more. Without revocation or ACME the handshake
// runs on a context that never ends: only the listener's drain, which
// fails the handshake's reads and writes, can end it.
func TestServeSIGTERMEndsHandshake(t *testing.T) {
	for _, tt := range []struct {
		name string
		send func(t *testing.T, c net.Conn)
	}{
		{"stalled ClientHello", func(t *testing.T, c net.Conn) {
			// The start of a ClientHello record, and nothing more.
			if _, err := c.Write([]byte{0x16, 0x03, 0x01, 0x00}); err != nil {
				t.Fatal(err)
			}
		}},
		{"after the server's flight", func(t *testing.T, c net.Conn) {
			if _, err := c.Write(clientHello(t)); err != nil {
				t.Fatal(err)
			}
			// The server answered: its handshake now waits for the
			// client's Finished, inside crypto/tls.
			_ = c.SetReadDeadline(time.Now().Add(hangGuard))
			if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
				t.Fatalf("read the server's flight: %v", err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startServe(t, "--log-level", "debug", "--handshake-timeout", "1h", "--shutdown-timeout", "1h")
			c := dial(t, p.addr)
			defer func() { _ = c.Close() }()
			tt.send(t, c)
			p.waitLog("connection opened", 1)
			p.stop()
			rec := p.logRecord("handshake not completed")
			if rec == nil || rec["reason"] != "handshake interrupted by shutdown" {
				t.Errorf("handshake record = %v, want reason %q", rec, "handshake interrupted by shutdown")
			}
			if rec := p.logRecord("shutdown timeout: closed connections still open"); rec != nil {
				t.Errorf("the shutdown waited out its timeout: %v", rec)
			}
		})
	}
}

// 1,000 connections come and go; open file descriptors and threads return
// to their baseline.
func TestServeNoFDLeakAfter1000Connections(t *testing.T) {
	p := startServer(t, noLimits...)
	c := newClient(t, p.addr)
	c.send("baseline\n")
	c.expectLine(defaultReply)
	with := p.fds()
	c.conn.Close()
	baseFDs := p.fdsBelow(with)

	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			switch i % 4 {
			case 0: // a full exchange
				fmt.Fprintf(conn, "hello %d\n", i)
				buf := make([]byte, len(defaultReply)+1)
				if _, err := io.ReadFull(conn, buf); err != nil {
					t.Errorf("read: %v", err)
				}
			case 1: // connect and leave
			case 2: // half a line, then a reset
				fmt.Fprintf(conn, "half")
				_ = conn.(*net.TCPConn).SetLinger(0)
			case 3: // send and leave without reading
				fmt.Fprintf(conn, "unread %d\nmore\n", i)
			}
		}()
	}
	wg.Wait()
	waitFDs(t, p, baseFDs)
	// The server still works.
	c2 := newClient(t, p.addr)
	c2.send("still here\n")
	c2.expectLine(defaultReply)
	p.stop()
	if strings.Contains(p.stderr.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", p.stderr.String())
	}
}

// The listen address in use is a clear error at start, exit status 1.
func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := seclistenCmd(t, "serve", "--plain", "--addr", ln.Addr().String())
	out, err := cmd.CombinedOutput()
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "address already in use") {
		t.Errorf("output does not say why:\n%s", out)
	}
}
