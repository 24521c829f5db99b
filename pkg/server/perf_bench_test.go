package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/batch"
	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/gcfloor"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/pki"
	"github.com/seclisten/seclisten/pkg/slogtext"
)

// The Cost benchmarks drive the real server pipeline (Server.Serve with
// every default defence on: limits with loopback exempt, timeouts,
// sanitising, logging at info, metrics served) and, beside it, a bare
// crypto/tls line server as plain as cmd/tlsref, over loopback, for each
// kind of connection. Client and server run in one process, so ns/op and
// allocs/op count both; the client is the same for both servers, so the
// difference between the Seclisten and Bare rows of a kind is what
// seclisten adds per connection. Compare them with -count 6 and the
// medians (benchstat), and profile one row with -cpuprofile/-memprofile.
//
//	go test ./pkg/server -run '^$' -bench Cost -benchmem -count 6

// costPKI is a CA, a server and a client certificate in PEM files.
type costPKI struct {
	pool              *x509.CertPool // the CA
	cert, key, caFile string
	server, client    tls.Certificate
}

func newCostPKI(b *testing.B) *costPKI {
	b.Helper()
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := ca.IssueServer(pki.ServerOptions{Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		b.Fatal(err)
	}
	cli, err := ca.IssueClient(pki.ClientOptions{CommonName: "bench-client"})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	p := &costPKI{pool: ca.CertPool(), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key"),
		caFile: filepath.Join(dir, "ca.pem"), server: srv.TLSCertificate(), client: cli.TLSCertificate()}
	key, err := srv.KeyPEM()
	if err != nil {
		b.Fatal(err)
	}
	for f, data := range map[string][]byte{p.cert: srv.CertPEM(), p.key: key, p.caFile: ca.CertPEM()} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// devNull is where both servers print and log: a real file, so each
// write costs its system call as it does under scripts/bench.sh.
func devNull(b testing.TB) *os.File {
	b.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// startCostSeclisten serves with the defaults, the PKI's certificate,
// and with mtls the client CA (require).
func startCostSeclisten(b testing.TB, p *costPKI, mtls bool) string {
	b.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = p.cert, p.key
	if mtls {
		cfg.TLS.ClientCAFiles = []string{p.caFile}
	}
	out := devNull(b)
	// The log as cmd/seclisten's serve makes it: slog's text format
	// (pkg/slogtext), through a batching writer.
	logw := batch.New(out)
	b.Cleanup(logw.Flush)
	srv, err := New(cfg, slog.New(slogtext.New(logw, &slog.HandlerOptions{Level: cfg.LogLevel})), out)
	if err != nil {
		b.Fatal(err)
	}
	// Listened on as Server.Run listens.
	ln, err := listener.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// startCostBare is cmd/tlsref's server: Go's defaults, one goroutine per
// connection, each line printed and answered; with mtls it requires and
// verifies a client certificate from the CA.
func startCostBare(b testing.TB, p *costPKI, mtls bool) string {
	b.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}}
	if mtls {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := devNull(b)
	var mu sync.Mutex
	resp := []byte(config.Default().Reply + "\n")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				prefix := "[" + c.RemoteAddr().String() + "] "
				r := bufio.NewReader(c)
				var line []byte
				for {
					l, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					line = append(append(line[:0], prefix...), l...)
					mu.Lock()
					_, _ = out.Write(line)
					mu.Unlock()
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// costKind is one kind of connection the benchmarks repeat.
type costKind struct {
	name   string
	mtls   bool
	resume bool
	line   bool          // send one line and read the answer before closing
	echo   int           // this many connections, one round trip on each per op
	curves []tls.CurveID // the client's key shares (nil: Go's defaults, ML-KEM first)
}

var costKinds = []costKind{
	{name: "Full", curves: []tls.CurveID{tls.X25519}},
	{name: "Resumed", resume: true},
	{name: "MTLS", mtls: true, curves: []tls.CurveID{tls.X25519}},
	{name: "MLKEM", curves: []tls.CurveID{tls.X25519MLKEM768}},
	{name: "Line", line: true},
	{name: "Echo", echo: 100},
}

func BenchmarkCost(b *testing.B) {
	p := newCostPKI(b)
	for _, k := range costKinds {
		for _, srv := range []string{"Seclisten", "Bare"} {
			b.Run("kind="+k.name+"/server="+srv, func(b *testing.B) {
				var addr string
				if srv == "Bare" {
					addr = startCostBare(b, p, k.mtls)
				} else {
					addr = startCostSeclisten(b, p, k.mtls)
				}
				benchCostKind(b, p, k, addr, nil)
			})
		}
	}
}

// BenchmarkServerCPU is BenchmarkCost with each server in a process of
// its own (this test binary, TestCostServerProcess), as scripts/bench.sh
// runs them: server-ns/op is the server's CPU time (user and system, from
// its getrusage) per connection, the figure the issue's ratios compare;
// server-reads/op and server-writes/op are its system calls that read and
// write (/proc/self/io), exact where the CPU time is noisy, and
// server-switches/op its context switches (a thread that slept and woke:
// the scheduler's cost, from getrusage).
func BenchmarkServerCPU(b *testing.B) {
	p := newCostPKI(b)
	for _, k := range costKinds {
		for _, srv := range []string{"Seclisten", "Bare"} {
			b.Run("kind="+k.name+"/server="+srv, func(b *testing.B) {
				addr, cpu := startCostProcess(b, p, srv, k.mtls)
				benchCostKind(b, p, k, addr, cpu)
			})
		}
	}
}

// serverUse is what a cost server used so far: CPU time, and read and
// write system calls.
type serverUse struct {
	cpu           time.Duration
	reads, writes int64
	switches      int64 // context switches, voluntary and not
}

// startCostProcess starts this binary as a cost server (kind "Seclisten"
// or "Bare"), and returns its address and a function that asks what it
// used so far.
func startCostProcess(b *testing.B, p *costPKI, kind string, mtls bool) (string, func() serverUse) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCostServerProcess$")
	cmd.Env = append(os.Environ(), "SECLISTEN_COST_SERVER="+kind, "SECLISTEN_COST_MTLS="+strconv.FormatBool(mtls),
		"SECLISTEN_COST_DIR="+filepath.Dir(p.cert))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	r := bufio.NewReader(stdout)
	addr, err := r.ReadString('\n')
	if err != nil {
		b.Fatalf("cost server: %v", err)
	}
	return strings.TrimSpace(addr), func() serverUse {
		if _, err := io.WriteString(stdin, "cpu\n"); err != nil {
			b.Fatal(err)
		}
		l, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		var u serverUse
		if _, err := fmt.Sscan(l, &u.cpu, &u.reads, &u.writes, &u.switches); err != nil {
			b.Fatalf("cost server: %q: %v", l, err)
		}
		return u
	}
}

// TestCostServerProcess is the server process of BenchmarkServerCPU; run
// as a test on its own, it does nothing. It prints its address, then its
// CPU time (ns) for each line read on stdin, until stdin closes. With
// SECLISTEN_COST_CPUPROFILE=FILE set for the benchmark, the server writes
// its CPU profile there (the last server started wins).
func TestCostServerProcess(t *testing.T) {
	kind := os.Getenv("SECLISTEN_COST_SERVER")
	if kind == "" {
		return
	}
	dir := os.Getenv("SECLISTEN_COST_DIR")
	p := &costPKI{cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key"), caFile: filepath.Join(dir, "ca.pem")}
	var err error
	if p.server, err = tls.LoadX509KeyPair(p.cert, p.key); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AppendCertsFromPEM(caPEM)
	mtls := os.Getenv("SECLISTEN_COST_MTLS") == "true"
	var addr string
	if kind == "Bare" {
		addr = startCostBare(t, p, mtls)
	} else {
		addr = startCostSeclisten(t, p, mtls)
		gcfloor.Keep(16 << 20) // as cmd/seclisten does when GOGC is unset
	}
	if f := os.Getenv("SECLISTEN_COST_CPUPROFILE"); f != "" {
		// The server's own profile, without the client's work.
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); out.Close() }()
	}
	fmt.Println(addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		// And the read and write system calls so far (/proc/self/io).
		io, err := os.ReadFile("/proc/self/io")
		if err != nil {
			t.Fatal(err)
		}
		var rc, wc int64
		for _, l := range strings.Split(string(io), "\n") {
			if v, ok := strings.CutPrefix(l, "syscr: "); ok {
				rc, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(l, "syscw: "); ok {
				wc, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		fmt.Println(ru.Utime.Nano()+ru.Stime.Nano(), rc, wc, ru.Nvcsw+ru.Nivcsw)
	}
}

func benchCostKind(b *testing.B, p *costPKI, k costKind, addr string, use func() serverUse) {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "localhost", CurvePreferences: k.curves}
	if k.mtls {
		cfg.Certificates = []tls.Certificate{p.client}
	}
	if k.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		// The ticket comes after the TLS 1.3 handshake: read it with one
		// exchange.
		costConn(b, cfg, addr, true)
	}
	var echo []*tls.Conn
	for range k.echo {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		echo = append(echo, c)
	}
	b.ReportAllocs()
	var before serverUse
	if use != nil {
		before = use()
	}
	b.ResetTimer()
	if k.echo > 0 {
		// One op: a round trip on each connection, all at once.
		costEcho(b, echo)
	}
	for k.echo == 0 && b.Loop() {
		st := costConn(b, cfg, addr, k.line)
		if st.DidResume != k.resume {
			b.Fatalf("resumed %v, want %v", st.DidResume, k.resume)
		}
	}
	if use != nil {
		after := use()
		b.ReportMetric(float64(after.cpu-before.cpu)/float64(b.N), "server-ns/op")
		b.ReportMetric(float64(after.reads-before.reads)/float64(b.N), "server-reads/op")
		b.ReportMetric(float64(after.writes-before.writes)/float64(b.N), "server-writes/op")
		b.ReportMetric(float64(after.switches-before.switches)/float64(b.N), "server-switches/op")
	}
}

var costLine = []byte("hello from the benchmark\n")

// costEcho makes b.N round trips on each connection, the connections side
// by side.
func costEcho(b *testing.B, conns []*tls.Conn) {
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for _, c := range conns {
		wg.Go(func() {
			var buf [128]byte
			for range b.N {
				if _, err := c.Write(costLine); err != nil {
					errs <- err
					return
				}
				for n := 0; n == 0 || buf[n-1] != '\n'; {
					m, err := c.Read(buf[n:])
					if err != nil {
						errs <- err
						return
					}
					n += m
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// costConn connects, handshakes, exchanges one line if asked, and closes.
func costConn(b *testing.B, cfg *tls.Config, addr string, line bool) tls.ConnectionState {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if line {
		if _, err := c.Write(costLine); err != nil {
			b.Fatal(err)
		}
		var buf [128]byte
		n := 0
		for n == 0 || buf[n-1] != '\n' {
			m, err := c.Read(buf[n:])
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			n += m
			if err == io.EOF {
				break
			}
		}
	}
	return c.ConnectionState()
}
