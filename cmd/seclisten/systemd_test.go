package main

import (
	"crypto/tls"
	"fmt"
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

// systemd's side of readiness, watchdog and socket activation, played by
// the test: a unix datagram socket as NOTIFY_SOCKET records what seclisten
// tells the service manager; listening sockets handed over as descriptors
// 3, 4, … (with LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) are what a .socket
// unit passes; and systemd-socket-activate, systemd's own tool, does it
// for real.

// notifySocket stands in for systemd's notification socket.
type notifySocket struct {
	t    *testing.T
	name string // NOTIFY_SOCKET's value
	conn *net.UnixConn

	mu    sync.Mutex
	msgs  []notifyMsg
	grown chan struct{} // closed at the next message; nil while nobody waits
}

// notifyMsg is one datagram: its assignments, and when it arrived.
type notifyMsg struct {
	lines []string
	at    time.Time
}

// has reports whether m holds the assignment line (READY=1, say).
func (m notifyMsg) has(line string) bool {
	for _, l := range m.lines {
		if l == line {
			return true
		}
	}
	return false
}

// value is the value of m's assignment key, or "".
func (m notifyMsg) value(key string) string {
	for _, l := range m.lines {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

// newNotifySocket listens on a unix datagram socket: in the abstract
// namespace ("@…", as systemd does for user units) or at a path.
func newNotifySocket(t *testing.T, abstract bool) *notifySocket {
	t.Helper()
	name := fmt.Sprintf("@seclisten-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
	if !abstract {
		dir, err := os.MkdirTemp("", "sdn") // short: a socket path has at most 107 bytes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		name = filepath.Join(dir, "notify")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{t: t, name: name, conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, notifyMsg{lines: strings.Split(string(buf[:k]), "\n"), at: time.Now()})
			if n.grown != nil {
				close(n.grown)
				n.grown = nil
			}
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		if t.Failed() {
			t.Logf("notifications: %v", n.all())
		}
	})
	return n
}

func (n *notifySocket) env() string { return "NOTIFY_SOCKET=" + n.name }

// all are the messages received so far.
func (n *notifySocket) all() []notifyMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.msgs[:len(n.msgs):len(n.msgs)]
}

// await waits (within the hang guard) for the first message from index
// from on that holds line, and returns its index.
func (n *notifySocket) await(line string, from int) int {
	n.t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if n.msgs[i].has(line) {
				n.mu.Unlock()
				return i
			}
		}
		if n.grown == nil {
			n.grown = make(chan struct{})
		}
		grown := n.grown
		n.mu.Unlock()
		select {
		case <-grown:
		case <-guard.C:
			n.t.Fatalf("no %q notification from message %d on within %s; got %v", line, from, hangGuard, n.all())
		}
	}
}

// count is how many messages hold line.
func (n *notifySocket) count(line string) int {
	c := 0
	for _, m := range n.all() {
		if m.has(line) {
			c++
		}
	}
	return c
}

// startActivated runs `seclisten serve` as the service manager does with
// socket activation: files become descriptors 3, 4, …, LISTEN_FDS counts
// them, LISTEN_FDNAMES names them (names: colon-separated, "" for none),
// and LISTEN_PID is seclisten's own process ID (a shell exports its $$,
// then executes seclisten in its place). It does not wait for anything.
func startActivated(t *testing.T, files []*os.File, names string, env []string, args ...string) *proc {
	t.Helper()
	full := append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, binary, "serve", "--log-format", "json"}, args...)
	cmd := osexec.Command("/bin/sh", full...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(files)))
	if names != "" {
		cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+names)
	}
	cmd.ExtraFiles = files
	return startCmd(t, cmd)
}

// listenFile is a listening loopback TCP socket held by the test (as
// systemd holds a .socket unit's) and a duplicate of it to pass on.
func listenFile(t *testing.T) (net.Listener, *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return ln, f
}

// tlsExchange sends line on conn and expects the reply.
func tlsExchange(t *testing.T, conn *tls.Conn, line string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufioReader(conn).ReadString('\n'); err != nil || got != defaultReply+"\n" {
		t.Fatalf("reply %q, %v; want %q", got, err, defaultReply)
	}
}

// The real tool: systemd-socket-activate binds the port, starts seclisten
// at the first connection with the socket as descriptor 3 named
// seclisten-tls, and seclisten serves it, named by --addr; that first
// client, which waited in the backlog, is served.
func TestSystemdSocketActivate(t *testing.T) {
	sa := lookTool(t, "systemd-socket-activate", "systemd")
	ns := newNotifySocket(t, false)
	dir := pkiDir(t)
	var p *proc
	var addr string
	for attempt := 1; ; attempt++ {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		// The tool passes only the variables -E names.
		cmd := osexec.Command(sa, "-l", addr, "--fdname", "seclisten-tls", "-E", ns.env(),
			binary, "serve", "--addr", "seclisten-tls", "--log-format", "json",
			"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"))
		cmd.Env = append(cleanEnv(), "SYSTEMD_LOG_LEVEL=info", "SYSTEMD_LOG_COLOR=0")
		p = startCmd(t, cmd)
		p.foreign = func(line string) bool { return !strings.HasPrefix(line, "{") }
		var busy bool
		p.await("systemd-socket-activate listening", func() bool {
			s := p.stderr.String()
			busy = strings.Contains(s, "Address already in use")
			return busy || strings.Contains(s, "Listening on "+addr)
		})
		if !busy {
			break
		}
		if attempt == 3 {
			t.Fatalf("no free port in 3 attempts:\n%s", p.stderr.String())
		}
		p.waitExit(1)
	}

	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: x509Pool(t, filepath.Join(dir, "ca.pem"))})
	if err != nil {
		t.Fatalf("dial the activated socket: %v", err)
	}
	defer conn.Close()
	tlsExchange(t, conn, "hello over an inherited socket")

	rec := p.waitLog("serving a socket the service manager passed (socket activation)", 1)
	if rec["addr"] != addr || rec["fd"] != 3.0 || rec["fd_name"] != "seclisten-tls" || rec["for"] != "--addr" {
		t.Errorf("socket activation log = %v", rec)
	}
	if l := p.waitLog("listening", 1); l["addr"] != addr {
		t.Errorf("listening on %v, want the inherited %s", l["addr"], addr)
	}
	i := ns.await("READY=1", 0)
	if st := ns.all()[i].value("STATUS"); !strings.HasPrefix(st, "serving "+addr+": ") {
		t.Errorf("STATUS=%q, want serving %s: …", st, addr)
	}
	p.stop()
}

// READY=1 once listening with the certificate in service (then /readyz
// says 200), RELOADING=1 with MONOTONIC_USEC= and READY=1 around a SIGHUP
// reload, STOPPING=1 when SIGTERM starts the drain; the STATUS= lines
// count connections. The notification socket is in the abstract namespace.
func TestSystemdNotify(t *testing.T) {
	ns := newNotifySocket(t, true)
	dir := pkiDir(t)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServeEnv(t, []string{ns.env()}, "--cert", filepath.Join(dir, "server.pem"),
		"--key", filepath.Join(dir, "server-key.pem"), "--metrics-addr", maddr)

	ready := ns.await("READY=1", 0)
	if code, body := curl(t, "http://"+maddr+"/readyz"); code != 200 {
		t.Errorf("/readyz at READY=1: %d %s", code, body)
	}
	if st := ns.all()[ready].value("STATUS"); st != "serving "+p.addr+": 0 open, 0 served" {
		t.Errorf("STATUS=%q at READY=1", st)
	}
	for i := range ready {
		if ns.all()[i].has("READY=1") {
			t.Errorf("READY=1 sent twice before a reload")
		}
	}

	conn, err := tls.Dial("tcp", p.addr, &tls.Config{ServerName: "localhost", RootCAs: x509Pool(t, filepath.Join(dir, "ca.pem"))})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tlsExchange(t, conn, "one")

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := ns.await("RELOADING=1", ready+1)
	usec, err := strconv.ParseInt(ns.all()[reloading].value("MONOTONIC_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		t.Errorf("RELOADING=1 without a valid MONOTONIC_USEC: %q (%v)", ns.all()[reloading].lines, err)
	}
	again := ns.await("READY=1", reloading+1)
	p.waitLog("reloaded TLS material", 1)
	if st := ns.all()[again].value("STATUS"); st != "serving "+p.addr+": 1 open, 1 served" {
		t.Errorf("STATUS=%q after the reload, want the open connection counted", st)
	}

	conn.Close()
	p.stop()
	stopping := ns.await("STOPPING=1", again+1)
	if st := ns.all()[stopping].value("STATUS"); !strings.HasPrefix(st, "shutting down: ") || !strings.HasSuffix(st, "1 served") {
		t.Errorf("STATUS=%q at STOPPING=1", st)
	}
	if n := ns.count("WATCHDOG=1"); n != 0 {
		t.Errorf("%d watchdog pings without WATCHDOG_USEC", n)
	}
}

// With ACME, READY=1 waits for the certificate: until Pebble has issued
// it, the STATUS= line says what is awaited. Both sockets are inherited
// and named: the TLS listener (--addr tls, where TLS-ALPN-01 is answered)
// and HTTP-01's (--acme-http-addr acme-http), as scripts/seclisten.socket
// passes :443 and :80.
func TestSystemdReadyAfterACME(t *testing.T) {
	lnTLS, fTLS := listenFile(t)
	lnHTTP, fHTTP := listenFile(t)
	tlsPort, httpPort := lnTLS.Addr().(*net.TCPAddr).Port, lnHTTP.Addr().(*net.TCPAddr).Port
	peb := startPebble(t, pebbleOptions{tlsPort: tlsPort, httpPort: httpPort})
	ns := newNotifySocket(t, false)
	p := startActivated(t, []*os.File{fTLS, fHTTP}, "tls:acme-http", []string{ns.env()},
		peb.acmeArgs(t, t.TempDir(), "--addr", "tls", "--acme-domain", "ready.seclisten.test",
			"--acme-http-addr", "acme-http")...)

	ready := ns.await("READY=1", 0)
	if p.logRecord("ACME certificate in service") == nil {
		// The log line is written before READY=1 is sent; wait for the
		// pipe to deliver it, then check nothing was ready before it.
		p.waitLogWithin("ACME certificate in service", 1, 30*time.Second)
	}
	msgs := ns.all()
	if ready == 0 || !strings.HasPrefix(msgs[0].value("STATUS"), "waiting for ACME certificates; listening on 127.0.0.1:") {
		t.Errorf("first notification %q, want a STATUS= waiting for ACME certificates", msgs[0].lines)
	}
	for _, r := range p.logRecords("serving a socket the service manager passed (socket activation)") {
		if !(r["for"] == "--addr" && r["fd_name"] == "tls" && r["fd"] == 3.0) &&
			!(r["for"] == "--acme-http-addr" && r["fd_name"] == "acme-http" && r["fd"] == 4.0) {
			t.Errorf("socket activation log = %v", r)
		}
	}
	if n := len(p.logRecords("serving a socket the service manager passed (socket activation)")); n != 2 {
		t.Errorf("%d inherited sockets logged, want 2", n)
	}
	verifyServed(t, lnTLS.Addr().String(), "ready.seclisten.test", peb.issuingRoot())
	p.stop()
}

// WATCHDOG=1 every half of WATCHDOG_USEC, from the process WATCHDOG_PID
// names; none when it names another process.
func TestSystemdWatchdog(t *testing.T) {
	t.Run("pings", func(t *testing.T) {
		ns := newNotifySocket(t, false)
		// 200 ms: a ping every 100 ms. WATCHDOG_PID is set to
		// seclisten's own process ID by the shell that executes it.
		cmd := osexec.Command("/bin/sh", "-c", `export WATCHDOG_PID=$$; exec "$0" "$@"`, binary,
			"serve", "--plain", "--addr", "127.0.0.1:0", "--log-format", "json")
		cmd.Env = append(cleanEnv(), ns.env(), "WATCHDOG_USEC=200000")
		p := startCmd(t, cmd)
		p.waitLog("listening", 1)
		first := ns.await("WATCHDOG=1", 0)
		third := ns.await("WATCHDOG=1", ns.await("WATCHDOG=1", first+1)+1)
		msgs := ns.all()
		// Two periods of 100 ms lie between the first ping and the third;
		// only a lower bound holds on a loaded machine (with half of it
		// as slack for when the datagrams are read).
		if d := msgs[third].at.Sub(msgs[first].at); d < 100*time.Millisecond {
			t.Errorf("3 pings within %s: faster than every 100 ms", d)
		}
		p.stop()
	})
	t.Run("another process", func(t *testing.T) {
		ns := newNotifySocket(t, false)
		// A ping every millisecond, were it ours: between READY=1 and
		// STOPPING=1 (a reload apart) there would be some.
		p := startServeEnv(t, []string{ns.env(), "WATCHDOG_USEC=2000", "WATCHDOG_PID=1"}, "--plain")
		ready := ns.await("READY=1", 0)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		ns.await("READY=1", ns.await("RELOADING=1", ready+1)+1)
		p.stop()
		ns.await("STOPPING=1", 0)
		if n := ns.count("WATCHDOG=1"); n != 0 {
			t.Errorf("%d watchdog pings for another process's watchdog", n)
		}
	})
}

// The property socket activation exists for: a restart keeps the socket
// open, so clients that connect while no seclisten runs wait in its
// backlog and are served by the next one, not reset. systemd-socket-
// activate cannot show it (it executes one child in its own place, once),
// so the test holds the listening socket as systemd does for a .socket
// unit, and hands it to two seclisten processes in turn.
func TestSystemdRestartKeepsSocket(t *testing.T) {
	ln, f := listenFile(t)
	addr := ln.Addr().String()
	first := startActivated(t, []*os.File{f}, "seclisten", nil, "--plain", "--addr", "seclisten")
	first.waitLog("listening", 1)
	c := newClient(t, addr)
	c.send("before\n")
	c.expectLine(defaultReply)
	c.conn.Close()
	first.stop()

	// Nothing serves now: the kernel completes these handshakes and
	// queues what they send.
	const n = 8
	var during []*client
	for i := range n {
		c := newClient(t, addr)
		c.send(fmt.Sprintf("during the restart %d\n", i))
		during = append(during, c)
	}

	second := startActivated(t, []*os.File{f}, "seclisten", nil, "--plain", "--addr", "seclisten")
	for _, c := range during {
		c.expectLine(defaultReply)
	}
	lines := second.stdoutLines(n)
	for i := range n {
		want := fmt.Sprintf("during the restart %d", i)
		found := false
		for _, l := range lines {
			found = found || strings.HasSuffix(l, "] "+want)
		}
		if !found {
			t.Errorf("the second seclisten did not print %q: %q", want, lines)
		}
	}
	second.stop()
}

// Bad inputs from the service manager: a clear sentence and exit status,
// or a warning and serving as usual.
func TestSystemdBadInputs(t *testing.T) {
	t.Run("not a socket", func(t *testing.T) {
		f, err := os.CreateTemp(t.TempDir(), "file")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := startActivated(t, []*os.File{f}, "", nil, "--plain")
		p.waitExit(exitError)
		if want := `seclisten: inherited fd 3: not a listening stream socket: `; !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q, want %q", p.stderr.String(), want)
		}
	})
	t.Run("a UDP socket", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		f, err := pc.(*net.UDPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := startActivated(t, []*os.File{f}, "dns", nil, "--plain")
		p.waitExit(exitError)
		if want := `seclisten: inherited fd 3 "dns": not a listening stream socket: `; !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q, want %q", p.stderr.String(), want)
		}
	})
	t.Run("LISTEN_PID another process", func(t *testing.T) {
		ln, f := listenFile(t)
		cmd := osexec.Command(binary, "serve", "--plain", "--addr", "127.0.0.1:0", "--log-format", "json")
		cmd.Env = append(cleanEnv(), "LISTEN_FDS=1", "LISTEN_PID=1")
		cmd.ExtraFiles = []*os.File{f}
		p := startCmd(t, cmd)
		rec := p.waitLog("listening", 1)
		if rec["addr"] == ln.Addr().String() {
			t.Errorf("served the descriptors of LISTEN_PID=1")
		}
		w := p.waitLog(`systemd: LISTEN_FDS ignored: LISTEN_PID is "1", not this process (`+strconv.Itoa(p.pid())+`); binding --addr`, 1)
		if w["level"] != "WARN" {
			t.Errorf("ignored LISTEN_FDS logged as %v", w["level"])
		}
		c := newClient(t, rec["addr"].(string))
		c.send("bound\n")
		c.expectLine(defaultReply)
		p.stop()
	})
	t.Run("unknown name", func(t *testing.T) {
		ln, f := listenFile(t)
		p := startActivated(t, []*os.File{f}, "https", nil, "--plain", "--addr", "seclisten-tls")
		p.waitExit(exitUsage)
		if want := fmt.Sprintf(`seclisten: --addr "seclisten-tls": no socket the service manager passed is named so (it passed fd 3 "https" (%s))`, ln.Addr()); !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q, want %q", p.stderr.String(), want)
		}
	})
	t.Run("address of no socket", func(t *testing.T) {
		ln, f := listenFile(t)
		p := startActivated(t, []*os.File{f}, "", nil, "--plain", "--addr", "127.0.0.1:1")
		p.waitExit(exitUsage)
		if want := fmt.Sprintf(`seclisten: --addr 127.0.0.1:1: no socket the service manager passed has that name or address (it passed fd 3 (%s))`, ln.Addr()); !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q, want %q", p.stderr.String(), want)
		}
	})
	t.Run("a socket left over", func(t *testing.T) {
		_, f1 := listenFile(t)
		ln2, f2 := listenFile(t)
		p := startActivated(t, []*os.File{f1, f2}, "main:extra", nil, "--plain", "--addr", "main")
		p.waitExit(exitUsage)
		if want := fmt.Sprintf(`seclisten: the service manager passed fd 4 "extra" (%s), which would serve nothing: name it (FileDescriptorName=) in --addr or --acme-http-addr`, ln2.Addr()); !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr %q, want %q", p.stderr.String(), want)
		}
	})
	t.Run("the only socket, --addr unset", func(t *testing.T) {
		ln, f := listenFile(t)
		p := startActivated(t, []*os.File{f}, "", nil, "--plain")
		if rec := p.waitLog("listening", 1); rec["addr"] != ln.Addr().String() {
			t.Errorf("listening on %v, want the inherited %s", rec["addr"], ln.Addr())
		}
		c := newClient(t, ln.Addr().String())
		c.send("hi\n")
		c.expectLine(defaultReply)
		p.stop()
	})
	for _, tc := range []struct{ name, env, warning string }{
		{"NOTIFY_SOCKET nowhere", "NOTIFY_SOCKET=/nonexistent/notify",
			"cannot notify the service manager (NOTIFY_SOCKET); serving continues"},
		{"NOTIFY_SOCKET relative", "NOTIFY_SOCKET=notify",
			`systemd: NOTIFY_SOCKET: notify socket "notify": not an absolute path or an abstract socket (@name); not notifying the service manager`},
		{"WATCHDOG_USEC not a number", "WATCHDOG_USEC=30s",
			`systemd: WATCHDOG_USEC "30s": not a positive number of microseconds; not pinging the watchdog`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServeEnv(t, []string{tc.env}, "--plain")
			if rec := p.waitLog(tc.warning, 1); rec["level"] != "WARN" {
				t.Errorf("logged as %v, want WARN", rec["level"])
			}
			c := newClient(t, p.addr)
			c.send("still serving\n")
			c.expectLine(defaultReply)
			p.stop()
		})
	}
}
