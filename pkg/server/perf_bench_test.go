package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/pki"
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
	ca                *pki.CA
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
	p := &costPKI{ca: ca, cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key"),
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
func devNull(b *testing.B) *os.File {
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
func startCostSeclisten(b *testing.B, p *costPKI, mtls bool) string {
	b.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = p.cert, p.key
	if mtls {
		cfg.TLS.ClientCAFiles = []string{p.caFile}
	}
	out := devNull(b)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel})), out)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
func startCostBare(b *testing.B, p *costPKI, mtls bool) string {
	b.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}}
	if mtls {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.ca.CertPool()
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
	curves []tls.CurveID // the client's key shares (nil: Go's defaults, ML-KEM first)
}

var costKinds = []costKind{
	{name: "Full", curves: []tls.CurveID{tls.X25519}},
	{name: "Resumed", resume: true},
	{name: "MTLS", mtls: true, curves: []tls.CurveID{tls.X25519}},
	{name: "MLKEM", curves: []tls.CurveID{tls.X25519MLKEM768}},
	{name: "Line", line: true},
}

func BenchmarkCost(b *testing.B) {
	p := newCostPKI(b)
	for _, k := range costKinds {
		for _, srv := range []string{"Seclisten", "Bare"} {
			b.Run(k.name+"/"+srv, func(b *testing.B) {
				var addr string
				if srv == "Bare" {
					addr = startCostBare(b, p, k.mtls)
				} else {
					addr = startCostSeclisten(b, p, k.mtls)
				}
				benchCostKind(b, p, k, addr)
			})
		}
	}
}

func benchCostKind(b *testing.B, p *costPKI, k costKind, addr string) {
	cfg := &tls.Config{RootCAs: p.ca.CertPool(), ServerName: "localhost", CurvePreferences: k.curves}
	if k.mtls {
		cfg.Certificates = []tls.Certificate{p.client}
	}
	if k.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		// The ticket comes after the TLS 1.3 handshake: read it with one
		// exchange.
		costConn(b, cfg, addr, true)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st := costConn(b, cfg, addr, k.line)
		if st.DidResume != k.resume {
			b.Fatalf("resumed %v, want %v", st.DidResume, k.resume)
		}
	}
}

var costLine = []byte("hello from the benchmark\n")

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
