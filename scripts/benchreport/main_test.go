package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new report keeps the sections of the old one that it does not write
// itself, from the first of them to the end, and drops its own old ones.
func TestHandWrittenSectionsKept(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := `{"tls":"TLS 1.3","ops_per_s":1000,"p50_ms":1,"p99_ms":2}`
	for _, name := range []string{"seclisten-handshake-1", "tlsref-handshake-1"} {
		if err := os.WriteFile(filepath.Join(dir, "results", name+".json"), []byte(run), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hand := "## A fleet on Redis (issue [7/8])\n\nmeasured by hand\n\n## Notes of an issue\n\ntext\n"
	old := "# Benchmarks\n\n## Medians\n\nold medians\n\n## Notes\n\n- an old note\n\n" + hand
	for _, tc := range []struct{ name, old, want string }{
		{"earlier report", old, "\n" + hand},
		{"no file", "", ""},
		{"only generated sections", "# Benchmarks\n\n## Medians\n\nold\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := handWritten(tc.old)
			if got != tc.want {
				t.Errorf("handWritten = %q, want %q", got, tc.want)
			}
			md := rep.markdown("x.svg", "") + got
			if strings.Contains(md, "old medians") || strings.Contains(md, "an old note") {
				t.Errorf("the old report's generated sections were kept:\n%s", md)
			}
		})
	}
}

// The idle runs at scale give KiB per connection, the slope between two
// sizes and its projections, and the two memory targets compare seclisten
// with HAProxy; the CPU figures give operations per server-CPU-second.
func TestIdleAndCPUFigures(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"results", "idle"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(sub, name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, sub, name+".json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// seclisten: 10 KiB per connection over a 10,000 KiB base; HAProxy:
	// 20 KiB over 20,000.
	write("idle", "seclisten-5000", `{"server":"seclisten","n":5000,"held":5000,"rss_before_kib":10000,"rss_after_kib":60000,"open_s":2}`)
	write("idle", "seclisten-9000", `{"server":"seclisten","n":9000,"held":9000,"rss_before_kib":10000,"rss_after_kib":100000,"open_s":4}`)
	write("idle", "seclisten-19000", `{"server":"seclisten","n":19000,"held":19000,"rss_before_kib":10000,"rss_after_kib":200000,"open_s":8}`)
	write("idle", "haproxy-1000", `{"server":"haproxy","n":1000,"held":1000,"rss_before_kib":20000,"rss_after_kib":40000,"open_s":1}`)
	write("idle", "haproxy-9000", `{"server":"haproxy","n":9000,"held":8000,"rss_before_kib":20000,"rss_after_kib":180000,"open_s":4}`)
	// 1000 handshakes for 1 s of server CPU against 1000 for 2 s.
	write("results", "seclisten-handshake-1", `{"ops":1000,"ops_per_s":100,"server_cpu_s":1}`)
	write("results", "tlsref-handshake-1", `{"ops":1000,"ops_per_s":100,"server_cpu_s":2}`)
	rep, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s, to, ok := rep.slope("seclisten", 5000); !ok || s != 10 || to != 19000 {
		t.Errorf("seclisten slope = %v to %d (%v), want 10 KiB to 19000", s, to, ok)
	}
	if s, _, ok := rep.slope("haproxy", 1000); !ok || s != 20 {
		t.Errorf("haproxy slope = %v (%v), want 20 KiB over the held connections", s, ok)
	}
	if kib, ok := rep.project("seclisten", 100_000); !ok || kib != 200000+10*81000 {
		t.Errorf("100,000 would need %v KiB, want %v", kib, 200000+10*81000)
	}
	if v, ok := rep.ratio("handshake", perCPU); !ok || v != 2 {
		t.Errorf("handshakes per CPU-second ratio = %v (%v), want 2", v, ok)
	}
	md := rep.markdown("x.svg", "")
	for _, want := range []string{
		"| KiB per idle TLS connection at 9,000 | below HAProxy's in the same run (aim ≤ 15 KiB) | seclisten 10.00 KiB, HAProxy 20.00 KiB | **met** (aim met) |",
		"| seclisten | 5000 → 19000 | 10.00 |",
		"| full handshakes per server-CPU-second vs bare crypto/tls, default defences on | ≥ 1.00 | 2.000 | **met** |",
		"| resumed handshakes per server-CPU-second vs bare crypto/tls, default defences on | ≥ 1.00 | — | not measured |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// A ratio pairs each round's runs: drift between rounds (here the machine
// twice as fast in round 2 for both) cancels, where the ratio of medians
// would mix rounds. Rounds count past 9 (file names sort 1, 10, 2).
func TestRatioPairsRounds(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, ops float64) {
		t.Helper()
		body := fmt.Sprintf(`{"ops":%g,"ops_per_s":%g,"server_cpu_s":1}`, ops, ops)
		if err := os.WriteFile(filepath.Join(dir, "results", name+".json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Round r: tlsref does 100·r per CPU-second, seclisten 0.9 of that.
	for _, r := range []int{1, 2, 10} {
		write(fmt.Sprintf("tlsref-echo-%d", r), float64(100*r))
		write(fmt.Sprintf("seclisten-echo-%d", r), float64(90*r))
	}
	// A round without its pair is left out.
	write("seclisten-echo-3", 1000)
	rep, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rep.ratio("echo", perCPU); !ok || math.Abs(v-0.9) > 1e-9 {
		t.Errorf("paired ratio = %v (%v), want 0.9", v, ok)
	}
}

// The interval of a median ratio is the sign test's: of 16 rounds the
// 4th smallest and the 4th largest ratio, 97.9%; none under 6 rounds.
func TestRatioInterval(t *testing.T) {
	rep := &report{runs: map[key][]result{}}
	add := func(n int) {
		rep.runs = map[key][]result{}
		for i := 1; i <= n; i++ {
			// seclisten's ratio in round i is i/100 (rounds shuffled).
			r := (i*7)%n + 1
			rep.runs[key{"seclisten", "handshake"}] = append(rep.runs[key{"seclisten", "handshake"}], result{round: r, OpsPerS: float64(r)})
			rep.runs[key{"tlsref", "handshake"}] = append(rep.runs[key{"tlsref", "handshake"}], result{round: r, OpsPerS: 100})
		}
	}
	add(16)
	lo, hi, conf, ok := rep.interval("handshake", opsPerS)
	if !ok || lo != 0.04 || hi != 0.13 || math.Abs(conf-0.9787) > 0.0001 {
		t.Errorf("16 rounds: interval %v–%v, confidence %v, ok %v; want 0.04–0.13, 0.9787", lo, hi, conf, ok)
	}
	add(6)
	if lo, hi, _, ok = rep.interval("handshake", opsPerS); !ok || lo != 0.01 || hi != 0.06 {
		t.Errorf("6 rounds: interval %v–%v, ok %v; want 0.01–0.06", lo, hi, ok)
	}
	add(5)
	if _, _, _, ok = rep.interval("handshake", opsPerS); ok {
		t.Error("5 rounds: an interval, want none")
	}
	// A miss whose interval holds 1.00 says so.
	rep.runs = map[key][]result{}
	for i, v := range []float64{97, 98, 98, 99, 99, 99, 99, 99, 100, 100, 100, 101, 101, 102, 103, 104} {
		rep.runs[key{"seclisten", "resume"}] = append(rep.runs[key{"seclisten", "resume"}], result{round: i + 1, OpsPerS: v})
		rep.runs[key{"tlsref", "resume"}] = append(rep.runs[key{"tlsref", "resume"}], result{round: i + 1, OpsPerS: 100})
	}
	tg := rep.ratioTarget("resumed: ≥ 1.00", "resume", opsPerS)
	if tg.measured != "0.995 (interval 0.990–1.010)" || !strings.Contains(tg.state, "missed") || !strings.Contains(tg.state, "1.00 inside the interval") {
		t.Errorf("target %+v", tg)
	}
}
