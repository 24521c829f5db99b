package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A developer's own crowd of local clients (a connection pool, a test
// suite) is served with the default limits: loopback is exempt from the
// per-IP limits, as in `make run`.
func TestLoopbackCrowdServed(t *testing.T) {
	const clients = 100
	dir := pkiDir(t)
	for _, tc := range []struct {
		name string
		args []string
		dial func(t *testing.T, addr string) (net.Conn, error)
	}{
		{"plain", []string{"--plain"}, func(t *testing.T, addr string) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, 10*time.Second)
		}},
		{"tls", mtlsArgs(dir, "--client-auth", "verify-if-given"), func(t *testing.T, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: 30 * time.Second}
			return tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: x509Pool(t, filepath.Join(dir, "ca.pem")), ServerName: "localhost"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServe(t, tc.args...)
			if rec := p.logRecord("listening"); rec["loopback_exempt"] != true {
				t.Fatalf("start-up line says loopback_exempt=%v, want true", rec["loopback_exempt"])
			}
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range clients {
				wg.Go(func() {
					c, err := tc.dial(t, p.addr)
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(60 * time.Second))
					if _, err := fmt.Fprintf(c, "client %d\n", i); err != nil {
						errs <- fmt.Errorf("client %d: send: %w", i, err)
						return
					}
					reply, err := bufio.NewReader(c).ReadString('\n')
					if err != nil || reply != defaultReply+"\n" {
						errs <- fmt.Errorf("client %d: reply %q, %v", i, reply, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			lines := p.stdoutLines(clients)
			for i := range clients {
				want := regexp.MustCompile(fmt.Sprintf(`^\[\S+\] client %d$`, i))
				if n := len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !want.MatchString(l) })); n != 1 {
					t.Errorf("client %d printed %d times, want once", i, n)
				}
			}
			if recs := p.logRecords("refused connection"); len(recs) > 0 {
				t.Errorf("refused %d times: %v", len(recs), recs[0])
			}
			p.stop()
		})
	}
}

// With --limit-loopback, a refused client is told so in the way its tool
// can show, and the log names the limit and the flags that govern it.
func TestLimitLoopbackRefusal(t *testing.T) {
	// One connection per 1000 s: the second is refused however slow the
	// machine is.
	limits := []string{"--limit-loopback", "--rate", "0.001", "--burst", "1"}

	t.Run("openssl shows an alert", func(t *testing.T) {
		dir := pkiDir(t)
		p := startServe(t, append(mtlsArgs(dir, "--client-auth", "verify-if-given"), limits...)...)
		exchangeWith(t, p.addr, "first", defaultReply, certArgs(dir, "")...)
		sc := startSClient(t, p.addr, certArgs(dir, "")...)
		if code := sc.wait(); code == 0 {
			t.Errorf("refused s_client exited 0; stderr:\n%s", sc.stderr.String())
		}
		if !strings.Contains(sc.stderr.String(), "alert access denied") {
			t.Errorf("s_client does not show the access_denied alert; stderr:\n%s", sc.stderr.String())
		}
		rec := p.waitLog("refused connection", 1)
		for k, want := range map[string]string{"from": "127.0.0.1", "reason": "rate", "limit": "0.001/s, burst 1", "flags": "--rate,--burst"} {
			if rec[k] != want {
				t.Errorf("refusal log %s=%v, want %q (record %v)", k, rec[k], want, rec)
			}
		}
	})

	t.Run("plain client reads a line", func(t *testing.T) {
		p := startServer(t, limits...)
		served := newClientFrom(t, "127.0.0.2", p.addr)
		served.send("first\n")
		served.expectLine(defaultReply)
		refused := newClientFrom(t, "127.0.0.2", p.addr)
		refused.expectLine("error: refused: too many connections from your address (rate limit); try again later")
		// Another address has its own budget.
		other := newClientFrom(t, "127.0.0.3", p.addr)
		other.send("other\n")
		other.expectLine(defaultReply)
		rec := p.waitLog("refused connection", 1)
		if rec["from"] != "127.0.0.2" || rec["flags"] != "--rate,--burst" {
			t.Errorf("refusal log %v, want from=127.0.0.2 flags=--rate,--burst", rec)
		}
		if rec := p.logRecord("listening"); rec["loopback_exempt"] != false {
			t.Errorf("start-up line says loopback_exempt=%v, want false", rec["loopback_exempt"])
		}
	})

	t.Run("per-IP cap line", func(t *testing.T) {
		p := startServer(t, "--limit-loopback", "--rate", "0", "--max-conns-per-ip", "1")
		held := newClientFrom(t, "127.0.0.4", p.addr)
		held.send("held\n")
		held.expectLine(defaultReply)
		refused := newClientFrom(t, "127.0.0.4", p.addr)
		refused.expectLine("error: refused: too many connections open from your address (per-IP cap); close some and try again")
		rec := p.waitLog("refused connection", 1)
		if rec["limit"] != "1 at once" || rec["flags"] != "--max-conns-per-ip" {
			t.Errorf("refusal log %v, want limit=\"1 at once\" flags=--max-conns-per-ip", rec)
		}
	})

	t.Run("without it loopback is exempt", func(t *testing.T) {
		p := startServer(t, "--rate", "0.001", "--burst", "1", "--max-conns-per-ip", "1")
		for i := range 5 {
			c := newClientFrom(t, "127.0.0.5", p.addr)
			c.send(fmt.Sprintf("line %d\n", i))
			c.expectLine(defaultReply)
		}
	})
}

// Connections cut off or slowed by a limit are logged at the default level,
// with the flag to change.
func TestSilentDropsLogged(t *testing.T) {
	t.Run("line too long", func(t *testing.T) {
		p := startServer(t, "--max-line", "10")
		c := newClient(t, p.addr)
		c.send("short\n" + strings.Repeat("x", 20) + "\n")
		c.expectLine(defaultReply)
		c.expectLine("error: line too long (max 10 bytes)")
		rec := p.waitLog("closed: line too long", 1)
		if rec["level"] != "INFO" || rec["flags"] != "--max-line" || rec["limit"] != float64(10) {
			t.Errorf("log record %v, want level=INFO limit=10 flags=--max-line", rec)
		}
	})

	t.Run("message rate", func(t *testing.T) {
		p := startServer(t, "--msg-rate", "50", "--msg-burst", "1")
		c := newClient(t, p.addr)
		const n = 6
		c.send(strings.Repeat("go\n", n))
		for range n {
			c.expectLine(defaultReply)
		}
		rec := p.waitLog("slowing a client that sends faster than the message rate", 1)
		if rec["level"] != "INFO" || rec["flags"] != "--msg-rate,--msg-burst" || rec["limit"] != "50/s, burst 1" {
			t.Errorf("log record %v, want level=INFO limit=\"50/s, burst 1\" flags=--msg-rate,--msg-burst", rec)
		}
		// Every reply came after the log line: one line per connection,
		// however many messages were slowed.
		if recs := p.logRecords("slowing a client that sends faster than the message rate"); len(recs) != 1 {
			t.Errorf("%d log lines for one slowed connection, want 1", len(recs))
		}
	})
}

// --exit-after N: after N connections the server stops accepting, finishes
// them and exits 0; with --once it is the classic single-shot server.
func TestExitAfter(t *testing.T) {
	t.Run("with --once", func(t *testing.T) {
		p := startServer(t, "--exit-after", "2", "--once")
		for i := range 2 {
			c := newClient(t, p.addr)
			c.send(fmt.Sprintf("hello %d\n", i))
			c.expectLine(defaultReply)
			c.expectEOF()
		}
		p.waitExit(0)
		if p.logRecord("served every connection asked for: exiting") == nil {
			t.Errorf("no exit log record; stderr:\n%s", p.stderr.String())
		}
		if got := p.stdoutLines(2); len(got) != 2 {
			t.Errorf("stdout %q, want 2 lines", got)
		}
	})

	t.Run("finishes the last connection", func(t *testing.T) {
		p := startServer(t, "--exit-after", "1")
		c := newClient(t, p.addr)
		c.send("first\n")
		c.expectLine(defaultReply)
		// The listener is closed once the connection is accepted: a new
		// client is refused by the kernel, while the first is still served.
		waitFor(t, "the listener to close", func() bool {
			nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err == nil {
				nc.Close()
			}
			return err != nil
		})
		c.send("second\n")
		c.expectLine(defaultReply)
		_ = c.conn.CloseWrite()
		c.expectEOF()
		p.waitExit(0)
	})
}

// `seclisten serve | head -1`: stdout closing is a clear log line and a
// graceful shutdown, the client still gets its reply, and the exit status
// is 1, not a silent death by SIGPIPE.
func TestStdoutClosed(t *testing.T) {
	cmd := seclistenCmd(t, "serve", "--plain", "--addr", "127.0.0.1:0", "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stderr: stderr, stdout: &lockedBuffer{}, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	p.addr = p.waitLog("listening", 1)["addr"].(string)

	c := newClient(t, p.addr)
	c.send("one\n")
	c.expectLine(defaultReply)
	// Like head -1: read one line, then close the pipe.
	first, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasSuffix(first, "] one\n") {
		t.Fatalf("first stdout line %q, %v", first, err)
	}
	stdout.Close()
	c.send("two\n")
	c.expectLine(defaultReply)
	c.expectEOF()
	p.waitExit(1)
	// The last line is the command's error, not a log record.
	if !strings.Contains(stderr.String(), `"msg":"stdout closed: shutting down; what clients already sent is answered, not printed"`) {
		t.Errorf("no log record for the closed stdout; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "seclisten: stdout was closed") {
		t.Errorf("no final error line; stderr:\n%s", stderr.String())
	}
}

// Started on loopback with text logs, serve prints the client command lines
// to paste, and they work as printed.
func TestTryItLines(t *testing.T) {
	dir := pkiDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // regular expressions, one per printed command
	}{
		{"plain", []string{"--plain"}, []string{`^nc 127\.0\.0\.1 \d+$`}},
		{"tls", mtlsArgs(dir, "--client-auth", "verify-if-given"), []string{
			`^openssl s_client -connect 127\.0\.0\.1:\d+ -CAfile ` + regexp.QuoteMeta(filepath.Join(dir, "ca.pem")) + ` -quiet$`,
			`^openssl s_client -connect 127\.0\.0\.1:\d+ -CAfile ` + regexp.QuoteMeta(filepath.Join(dir, "ca.pem")) +
				` -cert ` + regexp.QuoteMeta(filepath.Join(dir, "client.pem")) + ` -key ` + regexp.QuoteMeta(filepath.Join(dir, "client-key.pem")) + ` -quiet$`,
		}},
		{"explain", mtlsArgs(dir, "--explain"), []string{
			`^openssl s_client -connect 127\.0\.0\.1:\d+ -CAfile ` + regexp.QuoteMeta(filepath.Join(dir, "ca.pem")) +
				` -cert ` + regexp.QuoteMeta(filepath.Join(dir, "client.pem")) + ` -key ` + regexp.QuoteMeta(filepath.Join(dir, "client-key.pem")) + ` -quiet$`,
			`^echo hi \| openssl s_client -connect 127\.0\.0\.1:\d+ -CAfile ` + regexp.QuoteMeta(filepath.Join(dir, "ca.pem")) +
				` -cert ` + regexp.QuoteMeta(filepath.Join(dir, "client-expired.pem")) + ` -key ` + regexp.QuoteMeta(filepath.Join(dir, "client-expired-key.pem")) + ` -quiet$`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := seclistenCmd(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...)
			stderr := &lockedBuffer{}
			cmd.Stderr, cmd.Stdout = stderr, io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			var lines []string
			waitFor(t, "the try-it lines", func() bool {
				s := stderr.String()
				i := strings.Index(s, "Try it from another terminal:\n")
				if i < 0 {
					return false
				}
				lines = nil
				for _, l := range strings.Split(s[i:], "\n")[1:] {
					if !strings.HasPrefix(l, "  ") {
						break
					}
					lines = append(lines, strings.TrimPrefix(l, "  "))
				}
				return len(lines) == len(tc.want)
			})
			for i, l := range lines {
				if !regexp.MustCompile(tc.want[i]).MatchString(l) {
					t.Errorf("line %d: %q, want %s", i, l, tc.want[i])
				}
			}
			if tc.name == "explain" {
				// The piped line, as a shell runs it: the server tells the
				// refused client why, then closes, and s_client exits.
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				defer cancel()
				out, err := exec.CommandContext(ctx, "sh", "-c", lines[1]).Output()
				if err != nil || !strings.HasPrefix(string(out), "error: refused: client certificate expired 3 days ago") {
					t.Errorf("%s: %q, %v; want the refusal", lines[1], out, err)
				}
			}
			if tc.name != "tls" {
				return
			}
			// Run each openssl line as printed. -quiet keeps s_client open
			// after its input ends, so it is stopped once it has the reply.
			for _, l := range lines {
				args := strings.Fields(l)
				sc := exec.Command(args[0], args[1:]...)
				sc.Stdin = strings.NewReader("pasted\n")
				out, err := sc.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := sc.Start(); err != nil {
					t.Fatal(err)
				}
				got := make(chan string, 1)
				go func() {
					line, _ := bufio.NewReader(out).ReadString('\n')
					got <- line
				}()
				select {
				case line := <-got:
					if line != defaultReply+"\n" {
						t.Errorf("%s: printed %q, want the reply", l, line)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("%s: no reply within 30s", l)
				}
				_ = sc.Process.Kill()
				_ = sc.Wait()
			}
		})
	}
}

// waitExit waits up to 30 s (a hang guard) for the process to exit by
// itself and checks its exit status.
func (p *proc) waitExit(want int) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("seclisten still running; stderr:\n%s", tail(p.stderr.String(), 3000))
	}
	if got := p.cmd.ProcessState.ExitCode(); got != want {
		p.t.Fatalf("exit status %d, want %d; stderr:\n%s", got, want, tail(p.stderr.String(), 3000))
	}
}
