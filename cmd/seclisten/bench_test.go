package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runBench runs `seclisten bench` with args plus --json and returns the
// summary.
func runBench(t *testing.T, args ...string) map[string]any {
	t.Helper()
	cmd := seclistenCmd(t, append(append([]string{"bench"}, args...), "--json")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("seclisten bench %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("summary is not one JSON object: %q: %v", out, err)
	}
	t.Logf("%s", out)
	return res
}

func num(t *testing.T, res map[string]any, key string) float64 {
	t.Helper()
	v, ok := res[key].(float64)
	if !ok {
		t.Fatalf("no number %q in %v", key, res)
	}
	return v
}

// Every mode of bench, briefly, against the real server: this is how the
// test suite proves each one works.
func TestBenchModes(t *testing.T) {
	tests := []struct {
		name  string
		serve []string
		args  []string
		check func(t *testing.T, res map[string]any)
	}{
		{"handshake", nil, []string{"--mode", "handshake"}, nil},
		{"handshake tls1.2 P256", nil, []string{"--mode", "handshake", "--tls-version", "1.2", "--group", "P256"},
			func(t *testing.T, res map[string]any) {
				if tls, _ := res["tls"].(string); !strings.HasPrefix(tls, "TLS 1.2") || !strings.Contains(tls, "CurveP256") {
					t.Errorf("tls = %q, want TLS 1.2 with CurveP256", tls)
				}
			}},
		{"resume", nil, []string{"--mode", "resume"}, func(t *testing.T, res map[string]any) {
			if f := num(t, res, "resumed_fraction"); f < 0.9 {
				t.Errorf("resumed fraction %v, want >= 0.9", f)
			}
		}},
		{"resume tls1.2", nil, []string{"--mode", "resume", "--tls-version", "1.2"}, func(t *testing.T, res map[string]any) {
			if f := num(t, res, "resumed_fraction"); f < 0.9 {
				t.Errorf("resumed fraction %v, want >= 0.9", f)
			}
		}},
		{"echo", nil, []string{"--mode", "echo", "--conns", "20"}, func(t *testing.T, res map[string]any) {
			if n := num(t, res, "conns"); n != 20 {
				t.Errorf("conns = %v, want 20", n)
			}
		}},
		{"line", nil, []string{"--mode", "line"}, nil},
		{"line plain", []string{"--plain"}, []string{"--mode", "line", "--plain"}, nil},
		{"echo plain", []string{"--plain"}, []string{"--mode", "echo", "--plain", "--conns", "10", "--message", "hello"}, nil},
		{"idle", nil, []string{"--mode", "idle", "--conns", "200"}, func(t *testing.T, res map[string]any) {
			if n := num(t, res, "conns"); n != 200 {
				t.Errorf("conns = %v, want 200", n)
			}
			if k := num(t, res, "kib_per_conn"); k <= 0 {
				t.Errorf("kib_per_conn = %v, want > 0", k)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startServe(t, append(append([]string{}, noLimits...), tt.serve...)...)
			dur := "1s"
			if tt.name == "idle" {
				// Idle opens its connections within the duration too: 200
				// TLS handshakes take 0.4 s on an idle machine, so 4 s
				// leaves room for a loaded one.
				dur = "4s"
			}
			args := append([]string{"--addr", p.addr, "--duration", dur}, tt.args...)
			if strings.Contains(tt.name, "idle") {
				args = append(args, "--pid", strconv.Itoa(p.pid()))
			}
			res := runBench(t, args...)
			if num(t, res, "ops") <= 0 || num(t, res, "ops_per_s") <= 0 {
				t.Errorf("no operations: %v", res)
			}
			if p50, p99 := num(t, res, "p50_ms"), num(t, res, "p99_ms"); p50 <= 0 || p50 > p99 {
				t.Errorf("p50 %v ms, p99 %v ms", p50, p99)
			}
			if e := num(t, res, "errors"); e != 0 {
				t.Errorf("errors = %v: %v", e, res["error_kinds"])
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

// A flood from one address against the default per-IP limits (--rate 10
// --burst 20, applied to loopback): the server refuses far more than it
// accepts.
func TestBenchFlood(t *testing.T) {
	p := startServe(t, "--limit-loopback")
	res := runBench(t, "--mode", "flood", "--addr", p.addr, "--duration", "1s", "--source", "127.0.0.2")
	acc, ref := num(t, res, "accepted"), num(t, res, "refused")
	if acc <= 0 || ref <= acc {
		t.Errorf("accepted %v, refused %v: want some accepted and more refused", acc, ref)
	}
	// Burst 20 plus 10/s for as long as the run lasted (on a loaded
	// machine, longer than the second asked for), plus a second's slack.
	if limit := 20 + 10*(num(t, res, "duration_s")+1); acc > limit {
		t.Errorf("accepted %v connections from one address, want at most %v", acc, limit)
	}
}

// A run in which nothing succeeds is one sentence and exit status 1.
func TestBenchNoServer(t *testing.T) {
	p := startServer(t)
	addr := p.addr
	p.stop()
	cmd := seclistenCmd(t, "bench", "--addr", addr, "--duration", "200ms", "--max-ops", "100")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", code, out)
	}
	if !strings.Contains(string(out), "seclisten: no connection succeeded: dial tcp "+addr+": connect: connection refused\n") {
		t.Errorf("output:\n%s", out)
	}
}

// refusingServer is a listener on loopback that ends each connection with
// handle (the connection is closed after it), as a server refusing clients
// does.
func refusingServer(t *testing.T, handle func(n int64, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		var n int64
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n++
			k := n
			wg.Go(func() {
				defer c.Close()
				defer context.AfterFunc(ctx, func() { c.Close() })()
				handle(k, c)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// sayThenClose writes b, half-closes and waits for the client to close.
func sayThenClose(b []byte) func(int64, net.Conn) {
	return func(_ int64, c net.Conn) {
		_, _ = c.Write(b)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	}
}

// everyOther closes every second connection at once and answers each line
// of the others with "ok".
func everyOther(n int64, c net.Conn) {
	if n%2 == 0 {
		return
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for {
		if _, err := br.ReadString('\n'); err != nil {
			return
		}
		if _, err := c.Write([]byte("ok\n")); err != nil {
			return
		}
	}
}

// The seclisten server's refusals, as it will send them: a cleartext TLS
// alert access_denied on a TLS port, a line on a plain port.
var (
	accessDenied = []byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x31}
	refusedLine  = []byte("error: refused: too many connections from 127.0.0.1\n")
)

// bench fails loudly: when the server refuses or closes the connections,
// the summary names the likely cause and the exit status is 1, unless
// --max-error-rate allows that many failures.
func TestBenchFailsLoudly(t *testing.T) {
	limits := "most likely its per-IP limits (--rate, --burst, --max-conns-per-ip); start it with --rate 0 --max-conns-per-ip 0, or bench from several addresses (--source)"
	tests := []struct {
		name     string
		handle   func(int64, net.Conn)
		args     []string
		code     int
		stderr   string // a regexp for the last line of stderr; empty: none
		failures map[string]float64
		cause    string // the likely cause; empty: none
	}{
		{"closes at once", func(int64, net.Conn) {}, []string{"--mode", "handshake"},
			1, `^seclisten: no connection succeeded: tls handshake: .*$`,
			map[string]float64{"closed_early": 40}, "the server refused or closed 40 connections: " + limits},
		{"closes at once, any error rate", func(int64, net.Conn) {}, []string{"--mode", "handshake", "--max-error-rate", "100%"},
			0, "", map[string]float64{"closed_early": 40}, "the server refused or closed 40 connections: " + limits},
		{"access_denied alert", sayThenClose(accessDenied), []string{"--mode", "handshake"},
			1, `^seclisten: no connection succeeded: tls handshake: remote error: tls: access denied$`,
			map[string]float64{"refused": 40}, "the server refused 40 connections: " + limits},
		{"refusal line", sayThenClose(refusedLine), []string{"--mode", "echo", "--plain", "--conns", "40"},
			1, `^seclisten: no connection succeeded: read: the server replied error: refused: too many connections from 127.0.0.1$`,
			map[string]float64{"refused": 40}, "the server refused 40 connections: " + limits},
		{"half closed", everyOther, []string{"--mode", "idle", "--plain", "--conns", "40", "--duration", "1s"},
			1, `^seclisten: 50% of the operations failed \(20 of 40\), more than --max-error-rate 1% allows$`,
			map[string]float64{"closed_early": 20}, "the server refused or closed 20 connections: " + limits},
		{"half closed, 60% allowed", everyOther, []string{"--mode", "idle", "--plain", "--conns", "40", "--duration", "1s", "--max-error-rate", "0.6"},
			0, "", map[string]float64{"closed_early": 20}, "the server refused or closed 20 connections: " + limits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := refusingServer(t, tt.handle)
			args := append([]string{"bench", "--addr", addr, "--max-ops", "40", "--concurrency", "2", "--duration", "10s", "--json"}, tt.args...)
			cmd := seclistenCmd(t, args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			last := strings.TrimSpace(stderr.String())
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			if tt.stderr == "" && strings.HasPrefix(last, "seclisten:") || tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(last) {
				t.Errorf("last line of stderr %q, want %q", last, tt.stderr)
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
				t.Fatalf("summary is not one JSON object: %q: %v", stdout.String(), err)
			}
			if f, _ := res["failures"].(map[string]any); !maps.EqualFunc(f, tt.failures, func(a any, b float64) bool { return a == b }) {
				t.Errorf("failures %v, want %v", res["failures"], tt.failures)
			}
			if c, _ := res["likely_cause"].(string); c != tt.cause {
				t.Errorf("likely cause %q, want %q", c, tt.cause)
			}
			if t.Failed() {
				t.Logf("stdout: %s\nstderr:\n%s", stdout.String(), stderr.String())
			}
		})
	}
}

// The table names the cause too, on its own line.
func TestBenchTableNamesCause(t *testing.T) {
	addr := refusingServer(t, sayThenClose(accessDenied))
	cmd := seclistenCmd(t, "bench", "--addr", addr, "--max-ops", "10", "--concurrency", "1", "--duration", "10s")
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, want := range []string{
		"\nerrors 10\n",
		"\nerror rate 100% of 10 attempted\n",
		"\nrefused 10 (the server said it refused the connection)\n",
		"\nlikely cause the server refused 10 connections: most likely its per-IP limits (--rate, --burst, --max-conns-per-ip);",
	} {
		if !strings.Contains(squeezeSpaces(string(out)), want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// squeezeSpaces collapses the runs of spaces of each line, so a test need
// not know the table's column widths.
func squeezeSpaces(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
