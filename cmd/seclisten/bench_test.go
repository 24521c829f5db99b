package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
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
// --burst 20): the server refuses far more than it accepts.
func TestBenchFlood(t *testing.T) {
	p := startServe(t)
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
