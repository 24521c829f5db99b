package main

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the seclisten binary built once by TestMain, so the integration
// tests run exactly what users run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seclisten-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "seclisten")
	build := osexec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build seclisten:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hangGuard bounds every wait for an event a test expects (a log record, a
// line of output, an exit, a port). The events take milliseconds; the bound
// is far beyond what even a loaded machine needs, and only stops a broken
// test from hanging until go test's own timeout.
const hangGuard = 30 * time.Second

// lockedBuffer collects a process's output while it runs, and wakes those
// waiting for more.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	grown chan struct{} // closed at the next Write; nil while nobody waits
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.grown != nil {
		close(b.grown)
		b.grown = nil
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// next returns the contents so far and a channel closed when more arrive.
func (b *lockedBuffer) next() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.grown == nil {
		b.grown = make(chan struct{})
	}
	return b.buf.String(), b.grown
}

// proc is a running seclisten.
type proc struct {
	t      testing.TB // a test's, or a benchmark's
	cmd    *osexec.Cmd
	addr   string
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error // Wait's result, once done is closed

	recMu  sync.Mutex
	recs   []map[string]any // the JSON log records on stderr, parsed so far
	parsed int              // how much of stderr recs covers
	// foreign, if set, says which stderr lines are another program's (a
	// launcher's, before it executes seclisten): records skips them.
	foreign func(line string) bool
}

// startServer runs `seclisten serve --plain` on a free loopback port with the
// extra args, and waits until it listens.
func startServer(t *testing.T, args ...string) *proc {
	t.Helper()
	return startServe(t, append([]string{"--plain"}, args...)...)
}

// startServe runs `seclisten serve` (TLS unless args say --plain) on a free
// loopback port with JSON logs and the extra args, and waits until it
// listens. The process is killed at the end of the test if still running.
func startServe(t testing.TB, args ...string) *proc {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with extra KEY=VALUE environment variables.
func startServeEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	full := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := osexec.Command(binary, full...)
	cmd.Env = append(cleanEnv(), env...)
	p := startCmd(t, cmd)
	p.addr = p.waitLog("listening", 1)["addr"].(string)
	return p
}

// startCmd starts cmd (seclisten, or a program that executes it) with its
// output collected, and kills it at the end of the test if still running.
func startCmd(t testing.TB, cmd *osexec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start seclisten: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("seclisten stderr:\n%s", tail(p.stderr.String(), 4000))
		}
	})
	return p
}

// records are the JSON log records the process has written so far (whole
// lines only: a record may reach the pipe in pieces).
func (p *proc) records() []map[string]any {
	p.recMu.Lock()
	defer p.recMu.Unlock()
	s := p.stderr.String()
	if end := strings.LastIndexByte(s, '\n') + 1; end > p.parsed {
		chunk := s[p.parsed:end]
		if p.foreign != nil {
			var keep []string
			for _, line := range splitLines(chunk) {
				if !p.foreign(line) {
					keep = append(keep, line)
				}
			}
			chunk = strings.Join(keep, "\n")
		}
		p.recs = append(p.recs, parseJSONLines(p.t, chunk)...)
		p.parsed = end
	}
	return p.recs[:len(p.recs):len(p.recs)]
}

// logRecords are the JSON log records with the given msg.
func (p *proc) logRecords(msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range p.records() {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// logRecord is the first log record with the given msg, or nil.
func (p *proc) logRecord(msg string) map[string]any {
	if recs := p.logRecords(msg); len(recs) > 0 {
		return recs[0]
	}
	return nil
}

// awaitWithin waits until cond holds. cond depends on what the process
// writes: it is checked again whenever its stdout or stderr grows, and once
// more when it exits (then all its output has arrived). It fails the test
// if the process exits first, or after limit.
func (p *proc) awaitWithin(what string, limit time.Duration, cond func() bool) {
	p.t.Helper()
	guard := time.NewTimer(limit)
	defer guard.Stop()
	for {
		_, outGrew := p.stdout.next()
		_, errGrew := p.stderr.next()
		if cond() {
			return
		}
		select {
		case <-outGrew:
		case <-errGrew:
		case <-p.done:
			if cond() {
				return
			}
			p.t.Fatalf("seclisten exited (%v) before %s; stderr:\n%s", p.err, what, tail(p.stderr.String(), 4000))
		case <-guard.C:
			p.t.Fatalf("no %s within %s; stderr:\n%s", what, limit, tail(p.stderr.String(), 4000))
		}
	}
}

// await is awaitWithin the hang guard.
func (p *proc) await(what string, cond func() bool) {
	p.t.Helper()
	p.awaitWithin(what, hangGuard, cond)
}

// waitLog waits for the n-th log record with msg and returns it.
func (p *proc) waitLog(msg string, n int) map[string]any {
	p.t.Helper()
	return p.waitLogWithin(msg, n, hangGuard)
}

// waitLogWithin waits up to limit for the n-th log record with msg and
// returns it: for events slower than the hang guard allows (an ACME CA's
// retries and renewals).
func (p *proc) waitLogWithin(msg string, n int, limit time.Duration) map[string]any {
	p.t.Helper()
	var rec map[string]any
	p.awaitWithin(fmt.Sprintf("log record %d with msg %q", n, msg), limit, func() bool {
		if recs := p.logRecords(msg); len(recs) >= n {
			rec = recs[n-1]
			return true
		}
		return false
	})
	return rec
}

// waitLogMatch waits for the first log record with msg for which match
// holds, and returns it.
func (p *proc) waitLogMatch(msg string, what string, match func(rec map[string]any) bool) map[string]any {
	p.t.Helper()
	var rec map[string]any
	p.await(fmt.Sprintf("log record %q (%s)", msg, what), func() bool {
		for _, r := range p.logRecords(msg) {
			if match(r) {
				rec = r
				return true
			}
		}
		return false
	})
	return rec
}

// cleanEnv is the environment without SECLISTEN_ variables, so a developer's
// own settings cannot change what the tests see.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECLISTEN_") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig and waits up to limit for the process to exit. It returns
// the exit status and how long the exit took (for the test's log: on a
// loaded machine that is no measure of anything).
func (p *proc) signal(sig syscall.Signal, limit time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("seclisten did not exit within %s of %s", limit, sig)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// stop shuts the server down with SIGTERM and expects exit status 0.
func (p *proc) stop() {
	p.t.Helper()
	if code, _ := p.signal(syscall.SIGTERM, hangGuard); code != 0 {
		p.t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// fds counts the process's open file descriptors.
func (p *proc) fds() int {
	p.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	if err != nil {
		p.t.Fatalf("count fds: %v", err)
	}
	return len(ents)
}

// status reads a field of /proc/PID/status in kB (VmRSS, VmHWM) or as a
// count (Threads).
func (p *proc) status(field string) int {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		p.t.Fatalf("read status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				p.t.Fatalf("parse %s: %v", line, err)
			}
			return n
		}
	}
	p.t.Fatalf("no %s in /proc/%d/status", field, p.pid())
	return 0
}

// stdoutLines waits until stdout holds at least n lines (or the hang guard
// passes, or the process exits) and returns them.
func (p *proc) stdoutLines(n int) []string {
	p.t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		out, grew := p.stdout.next()
		lines := splitLines(out)
		if len(lines) >= n {
			return lines
		}
		select {
		case <-grew:
		case <-p.done:
			return splitLines(p.stdout.String())
		case <-guard.C:
			return lines
		}
	}
}

// waitFor polls cond, which depends on something that sends no event (a
// port, a metric, a file), until it holds; it fails the test after the hang
// guard.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // between polls of cond, not to synchronise
	}
}

// fdsBelow waits until the process has fewer than n open descriptors and
// returns the count: the server closes its side of a connection after a
// lingering close, a moment after the client closes, and nothing reports
// it but the count. The count while a first client was connected, then
// fdsBelow once it has left, is the server's baseline at rest (serving
// that client made it open whatever it keeps open).
func (p *proc) fdsBelow(n int) int {
	p.t.Helper()
	var got int
	waitFor(p.t, fmt.Sprintf("fewer than %d open descriptors", n), func() bool {
		got = p.fds()
		return got < n
	})
	return got
}

// waitFDs waits until the process's open descriptors come back to base,
// and fails the test with a leak if they do not within the hang guard.
func waitFDs(t *testing.T, p *proc, base int) {
	t.Helper()
	p.fdsBelow(base + 1)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func parseJSONLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range splitLines(s) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if k := duplicateKey(line); k != "" {
			// JSON parsers disagree on which value wins.
			t.Fatalf("log record names %q twice: %s", k, line)
		}
		recs = append(recs, rec)
	}
	return recs
}

// duplicateKey is a key a JSON object (one valid line) names twice at its
// top level, or "".
func duplicateKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// dial connects to the server.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c.(*net.TCPConn)
}

// client is a line-oriented test client with a deadline on every operation.
type client struct {
	t    testing.TB
	conn *net.TCPConn
	r    *bufio.Reader
	w    io.Writer // conn unless set (a TLS connection over conn)
}

func newClient(t testing.TB, addr string) *client {
	c := dial(t, addr)
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// newClientFrom is newClient from a given loopback source address: a
// distinct client for the per-IP limits and the aggregated refusal log.
func newClientFrom(t testing.TB, src, addr string) *client {
	t.Helper()
	c, err := dialFrom(t, src, addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(hangGuard))
	var w io.Writer = c.conn
	if c.w != nil {
		w = c.w
	}
	if _, err := io.WriteString(w, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// readLine reads one line (without its newline) within the hang guard.
func (c *client) readLine() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(hangGuard))
	s, err := c.r.ReadString('\n')
	if err != nil {
		return s, err
	}
	return strings.TrimSuffix(s, "\n"), nil
}

func (c *client) expectLine(want string) {
	c.t.Helper()
	got, err := c.readLine()
	if err != nil || got != want {
		c.t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

// expectEOF expects the server to close the connection (within the hang
// guard).
func (c *client) expectEOF() {
	c.t.Helper()
	got, err := c.readLine()
	if err != io.EOF {
		c.t.Fatalf("read %q, %v; want EOF", got, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

const defaultReply = "Message received! Thank you for connecting."

// noLimits turns the per-IP limits off, for tests that load the server from
// one address on purpose (all clients here are 127.0.0.1) and are not about
// those limits.
var noLimits = []string{"--rate", "0", "--max-conns-per-ip", "0", "--msg-rate", "0"}

// seclistenCmd returns a command running the seclisten binary with args.
func seclistenCmd(t testing.TB, args ...string) *osexec.Cmd {
	t.Helper()
	cmd := osexec.Command(binary, args...)
	cmd.Env = cleanEnv()
	return cmd
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// x509Pool loads a PEM bundle into a pool.
func x509Pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("no certificate in %s", file)
	}
	return pool
}

// stuckReply is a --reply of 120,000 bytes (under Linux's 128 KiB limit on
// one argument): a client that does not read its replies fills the socket
// buffers between it and the server (4 MiB or so) after a few dozen.
var stuckReply = strings.Repeat("r", 120_000)

// stuckArgs make a server answer every line with stuckReply, unpaced:
// --msg-rate's pacing gives up at shutdown, and stuckClient needs the
// server to answer everything it has read.
var stuckArgs = []string{"--reply", stuckReply, "--msg-rate", "0"}

// stuckClient makes a client the server cannot finish with: the server
// (started with stuckArgs) is stuck writing replies to it until its
// --write-timeout, and a graceful shutdown waits on it.
//
// The client has one exchange (the server's sniffing of the first bytes
// for TLS is then behind it), then sends 2,000 empty lines in one write and
// never reads again. stuckClient returns once the server has printed the
// first of them. By then the server has read at least 256 of them: with
// nothing unread, its framer reads up to 256 bytes, and the lines arrived
// together. What it has read it answers even while it shuts down: 30 MB of
// replies or more, far beyond what the socket buffers hold.
func stuckClient(t *testing.T, p *proc) *client {
	t.Helper()
	c := newClient(t, p.addr)
	c.send("x\n")
	c.expectLine(stuckReply)
	c.send(strings.Repeat("\n", 2000))
	peer := fmt.Sprintf("[%s] ", c.conn.LocalAddr())
	if lines := p.stdoutLines(2); len(lines) < 2 || lines[0] != peer+"x" || lines[1] != peer {
		t.Fatalf("stdout = %q, want %q then %q", lines, peer+"x", peer)
	}
	return c
}

// readLeaf reads the first certificate of a PEM file.
func readLeaf(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return certs[0]
}
