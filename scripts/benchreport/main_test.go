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

// The park and loop groups' `go test -bench` outputs give the two targets
// no bench run measures: the first line's extra p99 after parking (the
// median of the runs, each listed) and the exchange loop's allocations
// (none in any run). A failed benchmark says so; a group not run is not
// measured.
func TestGoBenchTargets(t *testing.T) {
	const park = `goos: linux
goarch: amd64
pkg: github.com/seclisten/seclisten/cmd/seclisten
BenchmarkParkFirstLine-2   	     500	  23311145 ns/op	        79.72 extra-p99-µs	       310.6 parked-p50-µs	       817.1 parked-p99-µs	       275.7 unparked-p50-µs	       737.3 unparked-p99-µs
BenchmarkParkFirstLine-2   	     500	  23311145 ns/op	      1204 extra-p99-µs	       310.6 parked-p50-µs	      2000 parked-p99-µs	       275.7 unparked-p50-µs	       796 unparked-p99-µs
BenchmarkParkFirstLine-2   	     500	  23311145 ns/op	      -20.5 extra-p99-µs	       310.6 parked-p50-µs	       700 parked-p99-µs	       275.7 unparked-p50-µs	       720.5 unparked-p99-µs
PASS
ok  	github.com/seclisten/seclisten/cmd/seclisten	35.1s
`
	const loop = `BenchmarkRun-2   	87264165	        11.98 ns/op	1001.82 MB/s	       0 B/op	       0 allocs/op
BenchmarkRun-2   	87264165	        12.50 ns/op	1001.82 MB/s	       0 B/op	       0 allocs/op
BenchmarkRun-2   	87264165	        12.10 ns/op	1001.82 MB/s	       0 B/op	       0 allocs/op
PASS
`
	for _, tc := range []struct {
		name, park, loop string // "" = the file is absent
		want             []string
	}{
		{"measured", park, loop, []string{
			"| extra latency for the first line after parking | p99 ≤ 1 ms over the unparked case | 80 µs, median of 3 runs (80, 1204, -20 µs; p99 parked 817 µs, never parked 737 µs) | **met** (1 of 3 runs over 1 ms) |",
			"| allocations per message in the exchange loop | 0 | 0 allocs/op at most in 3 runs, 12.1 ns/op (median) | **met** |",
			"-benchtime 500x -count 3",
		}},
		{"allocating", park, strings.ReplaceAll(loop, "  0 allocs/op", "  1 allocs/op"), []string{
			"| allocations per message in the exchange loop | 0 | 1 allocs/op at most in 3 runs, 12.1 ns/op (median) | **missed** |",
		}},
		{"failed", "--- FAIL: BenchmarkParkFirstLine\nFAIL\n", "# build failed\n", []string{
			"| extra latency for the first line after parking | p99 ≤ 1 ms over the unparked case | no result: BenchmarkParkFirstLine failed (park.txt) | not measured |",
			"| allocations per message in the exchange loop | 0 | no result: BenchmarkRun failed (loop.txt) | not measured |",
		}},
		{"not run", "", "", []string{
			"| extra latency for the first line after parking | p99 ≤ 1 ms over the unparked case | — | not measured |",
			"| allocations per message in the exchange loop | 0 | — | not measured |",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "meta.txt"), []byte("park_samples=500\npark_count=3\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"park.txt": tc.park, "loop.txt": tc.loop} {
				if body == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := load(dir)
			if tc.park == "" && tc.loop == "" {
				if err == nil {
					t.Fatal("load of a directory with no results: no error")
				}
				rep = &report{runs: map[key][]result{}, idle: map[string][]idleRun{}, meta: map[string]string{}}
			} else if err != nil {
				t.Fatal(err)
			}
			md := rep.markdown("x.svg", "")
			for _, want := range tc.want {
				if !strings.Contains(md, want) {
					t.Errorf("report lacks %q:\n%s", want, md)
				}
			}
		})
	}
}

// The control (a second tlsref) is paired with tlsref's runs round by
// round as seclisten is, and gets its own row in the Medians and Ratios
// tables; seclisten's ratio is not mixed with it.
func TestControlRatio(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, ops float64) {
		t.Helper()
		body := fmt.Sprintf(`{"tls":"TLS 1.3","ops":%g,"ops_per_s":%g,"server_cpu_s":1}`, ops, ops)
		if err := os.WriteFile(filepath.Join(dir, "results", name+".json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for r := 1; r <= 6; r++ {
		write(fmt.Sprintf("tlsref-resume-%d", r), float64(100*r))
		write(fmt.Sprintf("seclisten-resume-%d", r), float64(90*r))
		write(fmt.Sprintf("control-resume-%d", r), float64(101*r))
	}
	rep, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rep.ratio("resume", perCPU); !ok || math.Abs(v-0.9) > 1e-9 {
		t.Errorf("seclisten's ratio = %v (%v), want 0.9", v, ok)
	}
	if m := rep.controlMode(); m != "resume" {
		t.Errorf("control mode %q, want resume", m)
	}
	md := rep.markdown("x.svg", "")
	for _, want := range []string{
		"| tlsref (control) | resume | 6 |",
		"| **control:** resumed handshakes, a second tlsref against tlsref | 1.010 | 1.010 | 1.010–1.010 | 96.9% |",
		"The control is a second tlsref process, its resume runs",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Without control runs, no control row.
	delete(rep.runs, key{"control", "resume"})
	if md := rep.markdown("x.svg", ""); strings.Contains(md, "control") {
		t.Errorf("a control row without control runs:\n%s", md)
	}
}

// A ratio just under 1.00 never reads as 1.000 beside its miss.
func TestFmtRatio(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0.99961, "0.9996"},
		{0.9994, "0.999"},
		{1.0004, "1.000"},
		{1.0125, "1.012"},
	} {
		if got := fmtRatio(tc.v, true); got != tc.want {
			t.Errorf("fmtRatio(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := fmtRatio(0.5, false); got != "—" {
		t.Errorf("fmtRatio without a figure = %q, want a dash", got)
	}
}
