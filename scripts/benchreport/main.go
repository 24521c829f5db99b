// Command benchreport turns the results of scripts/bench.sh into
// BENCHMARKS.md and BENCHMARKS-ratios.svg: medians over rounds per server
// and run, operations per server-CPU-second, seclisten's ratios to the bare
// crypto/tls reference (tlsref), memory per idle connection at scale beside
// tlsref and HAProxy, and the targets of issue [8/8] marked met or missed.
// Standard library only.
//
//	go run ./scripts/benchreport -dir OUT_DIR -out BENCHMARKS.md
//
// OUT_DIR holds results/SERVER-MODE-ROUND.json (one `seclisten bench
// --json` object each, with server_cpu_s added by bench.sh),
// idle/SERVER-N.json (one idle run at scale each), meta.txt (key=value
// lines written by bench.sh) and optionally park.txt, loop.txt and
// crypto.txt (`go test -bench` output of BenchmarkParkFirstLine,
// BenchmarkRun and BenchmarkCrypto).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is the part of a `seclisten bench --json` object used here.
type result struct {
	TLS             string   `json:"tls"`
	DurationS       float64  `json:"duration_s"`
	Ops             float64  `json:"ops"`
	OpsPerS         float64  `json:"ops_per_s"`
	P50             float64  `json:"p50_ms"`
	P99             float64  `json:"p99_ms"`
	Errors          float64  `json:"errors"`
	ResumedFraction float64  `json:"resumed_fraction"`
	Conns           float64  `json:"conns"`
	Accepted        float64  `json:"accepted"`
	Refused         float64  `json:"refused"`
	Notes           []string `json:"notes"`
	// ServerCPUS is the server's CPU time (user + system) over the run,
	// added by bench.sh from /proc/PID/stat.
	ServerCPUS float64 `json:"server_cpu_s"`
	// round is the run's round, from its file name.
	round int
}

// idleRun is one idle run at scale, written by bench.sh.
type idleRun struct {
	Server    string  `json:"server"`
	N         int     `json:"n"`
	Held      int     `json:"held"`
	RSSBefore float64 `json:"rss_before_kib"`
	RSSAfter  float64 `json:"rss_after_kib"`
	OpenS     float64 `json:"open_s"`
	Errors    int     `json:"errors"`
	Clients   int     `json:"clients"`
	TLS       string  `json:"tls"`
	Loadavg   string  `json:"loadavg"`
}

// kib is the RSS growth per held connection.
func (r idleRun) kib() (float64, bool) {
	if r.Held <= 0 {
		return 0, false
	}
	return (r.RSSAfter - r.RSSBefore) / float64(r.Held), true
}

// key is a server and a mode ("handshake", "probe", "probeflood", ...).
type key struct{ server, mode string }

// report is everything read from the output directory.
type report struct {
	runs  map[key][]result
	idle  map[string][]idleRun // by server, in increasing N
	meta  map[string]string
	notes []string  // meta notes, then notes of the runs
	park  benchFile // park.txt: BenchmarkParkFirstLine
	loop  benchFile // loop.txt: BenchmarkRun of pkg/exchange
}

// benchFile is one `go test -bench` output of bench.sh.
type benchFile struct {
	present bool      // bench.sh wrote the file
	runs    []goBench // its benchmark lines
}

// goBench is one line of `go test -bench` output: the benchmark's metrics
// by unit ("ns/op", "allocs/op", "extra-p99-µs", ...).
type goBench struct {
	name    string
	metrics map[string]float64
}

// parseGoBench reads the benchmark lines of `go test -bench` output
// ("BenchmarkX-2  300  23311145 ns/op  79.72 extra-p99-µs ..."); other
// lines (goos, PASS, failures) are skipped.
func parseGoBench(text string) []goBench {
	var out []goBench
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		b := goBench{name: f[0], metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				b.metrics = nil
				break
			}
			b.metrics[f[i+1]] = v
		}
		if b.metrics != nil {
			out = append(out, b)
		}
	}
	return out
}

// readBenchFile reads OUT_DIR/name if bench.sh wrote it.
func readBenchFile(dir, name string) (benchFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return benchFile{}, nil
	}
	if err != nil {
		return benchFile{}, err
	}
	return benchFile{present: true, runs: parseGoBench(string(b))}, nil
}

// metric is unit's value in every run that has it, in run order.
func (f benchFile) metric(unit string) []float64 {
	var v []float64
	for _, r := range f.runs {
		if x, ok := r.metrics[unit]; ok {
			v = append(v, x)
		}
	}
	return v
}

var (
	servers     = []string{"seclisten", "tlsref"}
	modes       = []string{"handshake", "resume", "mtls", "mlkem", "line", "echo"}
	idleServers = []string{"seclisten", "tlsref", "haproxy"}
	modeLabels  = map[string]string{
		"handshake": "full handshakes",
		"resume":    "resumed handshakes",
		"mtls":      "mTLS full handshakes",
		"mlkem":     "full handshakes, X25519MLKEM768",
		"line":      "connect + one line + close",
		"echo":      "echo round trips",
	}
)

func main() {
	dir := flag.String("dir", "bin/bench", "`DIR` bench.sh wrote into (results/, idle/, meta.txt, crypto.txt)")
	out := flag.String("out", "BENCHMARKS.md", "markdown `FILE` to write; the SVG chart goes next to it")
	flag.Parse()
	rep, err := load(*dir)
	if err != nil {
		log.Fatalf("benchreport: %v", err)
	}
	crypto, err := os.ReadFile(filepath.Join(*dir, "crypto.txt"))
	if err != nil && !os.IsNotExist(err) {
		log.Fatalf("benchreport: %v", err)
	}
	svgName := strings.TrimSuffix(filepath.Base(*out), ".md") + "-ratios.svg"
	bars := rep.bars()
	if err := os.WriteFile(filepath.Join(filepath.Dir(*out), svgName), []byte(svg(bars)), 0o644); err != nil {
		log.Fatalf("benchreport: %v", err)
	}
	old, err := os.ReadFile(*out)
	if err != nil && !os.IsNotExist(err) {
		log.Fatalf("benchreport: %v", err)
	}
	md := rep.markdown(svgName, string(crypto)) + handWritten(string(old))
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		log.Fatalf("benchreport: %v", err)
	}
	fmt.Fprintf(os.Stderr, "benchreport: wrote %s and %s\n", *out, svgName)
}

// generated are the "## " sections markdown writes (and those earlier
// versions wrote, so that a new report drops them).
var generated = []string{"Machine", "How it was measured", "Medians", "Ratios", "Idle connections at scale", "Targets", "What limits each figure", "Notes"}

// handWritten is what a new report keeps of the old one: everything from
// its first "## " section that markdown does not write (the measurements
// of single issues, written by hand or pasted from scripts/bench-fleet.sh),
// so that a run of bench.sh does not erase them.
func handWritten(old string) string {
	at := 0
	for line := range strings.Lines(old) {
		if title, ok := strings.CutPrefix(line, "## "); ok && !slices.Contains(generated, strings.TrimSpace(title)) {
			return "\n" + old[at:]
		}
		at += len(line)
	}
	return ""
}

// load reads results/*.json, idle/*.json and meta.txt.
func load(dir string) (*report, error) {
	rep := &report{runs: map[key][]result{}, idle: map[string][]idleRun{}, meta: map[string]string{}}
	if b, err := os.ReadFile(filepath.Join(dir, "meta.txt")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, "=")
			switch {
			case !ok:
			case k == "note":
				rep.notes = append(rep.notes, v)
			default:
				rep.meta[k] = v
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "results", "*.json"))
	if err != nil {
		return nil, err
	}
	idles, err := filepath.Glob(filepath.Join(dir, "idle", "*.json"))
	if err != nil {
		return nil, err
	}
	if rep.park, err = readBenchFile(dir, "park.txt"); err != nil {
		return nil, err
	}
	if rep.loop, err = readBenchFile(dir, "loop.txt"); err != nil {
		return nil, err
	}
	if len(files)+len(idles) == 0 && !rep.park.present && !rep.loop.present {
		return nil, fmt.Errorf("no results in %s or %s", filepath.Join(dir, "results"), filepath.Join(dir, "idle"))
	}
	slices.Sort(files)
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "-")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: want SERVER-MODE-ROUND.json", f)
		}
		var r result
		if err := readJSON(f, &r); err != nil {
			return nil, err
		}
		if r.round, err = strconv.Atoi(parts[2]); err != nil {
			return nil, fmt.Errorf("%s: want SERVER-MODE-ROUND.json, ROUND a number", f)
		}
		k := key{parts[0], parts[1]}
		rep.runs[k] = append(rep.runs[k], r)
		for _, n := range r.Notes {
			n = fmt.Sprintf("%s %s: %s", k.server, k.mode, n)
			if !slices.Contains(rep.notes, n) {
				rep.notes = append(rep.notes, n)
			}
		}
	}
	for _, f := range idles {
		var r idleRun
		if err := readJSON(f, &r); err != nil {
			return nil, err
		}
		if r.Server == "" || r.N <= 0 {
			return nil, fmt.Errorf("%s: no server or no n", f)
		}
		rep.idle[r.Server] = append(rep.idle[r.Server], r)
		if r.Held < r.N {
			rep.notes = append(rep.notes, fmt.Sprintf("%s idle %d: held %d of %d connections (%d errors)", r.Server, r.N, r.Held, r.N, r.Errors))
		}
	}
	for _, runs := range rep.idle {
		slices.SortFunc(runs, func(a, b idleRun) int { return a.N - b.N })
	}
	return rep, nil
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// median of f over the runs of k; ok is false without runs.
func (rep *report) median(k key, f func(result) float64) (float64, bool) {
	runs := rep.runs[k]
	if len(runs) == 0 {
		return 0, false
	}
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return medianOf(v)
}

// medianOf is v's median (v is sorted); ok is false when v is empty.
func medianOf(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], true
	}
	return (v[n/2-1] + v[n/2]) / 2, true
}

func opsPerS(r result) float64 { return r.OpsPerS }
func p99(r result) float64     { return r.P99 }

// perCPU is operations per second of the server's CPU time (0 without a
// CPU figure).
func perCPU(r result) float64 {
	if r.ServerCPUS <= 0 {
		return 0
	}
	return r.Ops / r.ServerCPUS
}

// ratio is the median over rounds of seclisten's figure over tlsref's in
// the same round (bench.sh runs the two back to back, in turn first), so
// the drift of a shared machine between rounds cancels out of each
// ratio; ok false if no round has both, non-zero.
func (rep *report) ratio(mode string, f func(result) float64) (float64, bool) {
	return rep.ratioOf("seclisten", mode, f)
}

// ratioOf is ratio for server's runs (seclisten, or the control).
func (rep *report) ratioOf(server, mode string, f func(result) float64) (float64, bool) {
	return medianOf(rep.ratios(server, mode, f))
}

// ratios are the rounds' ratios of ratioOf.
func (rep *report) ratios(server, mode string, f func(result) float64) []float64 {
	ref := map[int]float64{}
	for _, r := range rep.runs[key{"tlsref", mode}] {
		ref[r.round] = f(r)
	}
	var v []float64
	for _, r := range rep.runs[key{server, mode}] {
		if b := ref[r.round]; b != 0 && f(r) != 0 {
			v = append(v, f(r)/b)
		}
	}
	return v
}

// interval is a confidence interval of the median of the rounds' ratios
// of ratio that assumes nothing of their spread: the k-th smallest and
// the k-th largest ratio, with k the largest for which the chance that
// fewer than k rounds fall below the true median is at most 2.5% (the
// sign test; with 16 rounds the 4th of each end, 97.9%). conf is its
// confidence; ok is false with fewer than 6 rounds, too few for 95%.
func (rep *report) interval(mode string, f func(result) float64) (lo, hi, conf float64, ok bool) {
	return rep.intervalOf("seclisten", mode, f)
}

// intervalOf is interval for server's runs (seclisten, or the control).
func (rep *report) intervalOf(server, mode string, f func(result) float64) (lo, hi, conf float64, ok bool) {
	v := rep.ratios(server, mode, f)
	slices.Sort(v)
	n := len(v)
	// below(k) = P(Binomial(n, 1/2) < k).
	below := func(k int) float64 {
		p, c := 0.0, 1.0 // c = C(n, i)
		for i := 0; i < k; i++ {
			p += c
			c = c * float64(n-i) / float64(i+1)
		}
		return p / math.Pow(2, float64(n))
	}
	k := 0
	for k+1 <= n/2 && below(k+1) <= 0.025 {
		k++
	}
	if k == 0 {
		return 0, 0, 0, false
	}
	return v[k-1], v[n-k], 1 - 2*below(k), true
}

// controlMode is the mode the control (a second tlsref) ran, "" if none.
func (rep *report) controlMode() string {
	for _, m := range modes {
		if len(rep.runs[key{"control", m}]) > 0 {
			return m
		}
	}
	return ""
}

// fmtInterval writes an interval of ratios, or a dash.
func fmtInterval(lo, hi float64, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.3f–%.3f", lo, hi)
}

// idleAt is server's idle run of n connections.
func (rep *report) idleAt(server string, n int) (idleRun, bool) {
	for _, r := range rep.idle[server] {
		if r.N == n {
			return r, true
		}
	}
	return idleRun{}, false
}

// slope is server's RSS growth per added idle connection from its run of
// from connections to its largest run; to is that largest N.
func (rep *report) slope(server string, from int) (s float64, to int, ok bool) {
	runs := rep.idle[server]
	a, ok1 := rep.idleAt(server, from)
	if !ok1 || len(runs) == 0 {
		return 0, 0, false
	}
	b := runs[len(runs)-1]
	if b.Held <= a.Held {
		return 0, 0, false
	}
	return (b.RSSAfter - a.RSSAfter) / float64(b.Held-a.Held), b.N, true
}

// slopeFrom is where each server's slope starts: 5,000 for the Go servers,
// 1,000 for HAProxy (whose largest run is smaller, two descriptors a
// connection).
func slopeFrom(server string) int {
	if server == "haproxy" {
		return 1000
	}
	return 5000
}

// project is the RSS (KiB) of server holding n idle connections, by the
// slope from its largest run.
func (rep *report) project(server string, n int) (float64, bool) {
	s, _, ok := rep.slope(server, slopeFrom(server))
	if !ok {
		return 0, false
	}
	last := rep.idle[server][len(rep.idle[server])-1]
	return last.RSSAfter + s*float64(n-last.Held), true
}

// bar is one ratio of the chart, with its target if it has one.
type bar struct {
	label  string
	value  float64
	ok     bool
	target float64 // 0: none
	atMost bool    // target is an upper bound
}

// idleCompareN is the size at which seclisten's memory per idle connection
// is compared with HAProxy's.
const idleCompareN = 9000

// bars are seclisten's ratios to the references, each with its target.
func (rep *report) bars() []bar {
	var bs []bar
	for _, m := range modes[:5] {
		v, ok := rep.ratio(m, perCPU)
		bs = append(bs, bar{modeLabels[m] + " per CPU-s vs tlsref", v, ok, 1.0, false})
	}
	v, ok := rep.ratio("echo", opsPerS)
	bs = append(bs, bar{"echo round trips/s vs tlsref", v, ok, 1.0, false})
	v, ok = rep.ratio("echo", perCPU)
	bs = append(bs, bar{"echo round trips per CPU-s vs tlsref", v, ok, 0, false})
	a, ok1 := rep.idleAt("seclisten", idleCompareN)
	h, ok2 := rep.idleAt("haproxy", idleCompareN)
	ka, okA := a.kib()
	kh, okH := h.kib()
	bs = append(bs, bar{"KiB per idle conn at 9,000 vs HAProxy", ka / kh, ok1 && ok2 && okA && okH && kh > 0, 1.0, true})
	ss, _, ok1 := rep.slope("seclisten", slopeFrom("seclisten"))
	sh, _, ok2 := rep.slope("haproxy", slopeFrom("haproxy"))
	bs = append(bs, bar{"idle memory slope vs HAProxy", ss / sh, ok1 && ok2 && sh > 0, 1.0, true})
	return bs
}

// target is one line of the targets table.
type target struct {
	name, measured string
	state          string // met, missed, not measured
}

func verdict(measured, ok bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "**met**"
	default:
		return "**missed**"
	}
}

// targets are the rows of issue [8/8]'s table, then the flood's.
func (rep *report) targets() []target {
	var ts []target
	a, ok1 := rep.idleAt("seclisten", idleCompareN)
	h, ok2 := rep.idleAt("haproxy", idleCompareN)
	ka, okA := a.kib()
	kh, okH := h.kib()
	t := target{name: "KiB per idle TLS connection at 9,000: below HAProxy's in the same run (aim ≤ 15 KiB)", state: "not measured"}
	if ok1 && ok2 && okA && okH {
		t.measured = fmt.Sprintf("seclisten %.2f KiB, HAProxy %.2f KiB", ka, kh)
		t.state = verdict(true, ka < kh)
		if ka < kh {
			if ka <= 15 {
				t.state += " (aim met)"
			} else {
				t.state += " (aim ≤ 15 missed)"
			}
		}
	}
	ts = append(ts, t)
	ss, sto, ok1 := rep.slope("seclisten", slopeFrom("seclisten"))
	sh, hto, ok2 := rep.slope("haproxy", slopeFrom("haproxy"))
	t = target{name: "slope of memory per added idle connection, 5,000 → 19,000: below HAProxy's, 1,000 → 9,000", state: "not measured"}
	if ok1 && ok2 {
		t.measured = fmt.Sprintf("seclisten %.2f KiB (5,000 → %d), HAProxy %.2f KiB (1,000 → %d)", ss, sto, sh, hto)
		t.state = verdict(true, ss < sh)
	}
	ts = append(ts, t)
	for _, m := range modes[:5] {
		ts = append(ts, rep.ratioTarget(modeLabels[m]+" per server-CPU-second vs bare crypto/tls, default defences on: ≥ 1.00", m, perCPU))
	}
	ts = append(ts, rep.ratioTarget(fmt.Sprintf("echo round trips/s vs bare crypto/tls, %s connections: ≥ 1.00", orDash(rep.meta["echo_conns"])), "echo", opsPerS))
	ts = append(ts, rep.parkTarget(), rep.loopTarget())

	// Flood: accepted handshakes within burst + rate x duration (10% and
	// one connection of slack for the bucket's refill during setup), and
	// something refused.
	rate, _ := strconv.ParseFloat(rep.meta["flood_rate"], 64)
	burst, _ := strconv.ParseFloat(rep.meta["flood_burst"], 64)
	floods := rep.runs[key{"seclisten", "flood"}]
	fl := target{name: fmt.Sprintf("flood refused before TLS: accepted <= burst + rate x duration (%g + %g/s x duration), refused > 0", burst, rate), state: "not measured"}
	if len(floods) > 0 {
		good := true
		var parts []string
		for _, f := range floods {
			want := burst + rate*f.DurationS
			good = good && f.Accepted <= want*1.1+1 && f.Refused > 0
			parts = append(parts, fmt.Sprintf("%.0f accepted (≈%.0f allowed), %.0f refused", f.Accepted, want, f.Refused))
		}
		fl.measured, fl.state = strings.Join(parts, "; "), verdict(true, good)
	}
	ts = append(ts, fl)
	alone, ok1 := rep.median(key{"seclisten", "probe"}, p99)
	under, ok2 := rep.median(key{"seclisten", "probeflood"}, p99)
	pr := target{name: "second client's p99 round trip under flood: < 5x unloaded", state: "not measured"}
	if ok1 && ok2 && alone > 0 {
		pr.measured = fmt.Sprintf("%.3f ms / %.3f ms = %.2fx", under, alone, under/alone)
		pr.state = verdict(true, under/alone < 5)
	}
	return append(ts, pr)
}

// results is unit's value in every run of f for target t; with none, t
// stays not measured, and says so if the benchmark ran and failed.
func (f benchFile) results(t *target, unit, bench, file string) []float64 {
	v := f.metric(unit)
	if len(v) == 0 && f.present {
		t.measured = fmt.Sprintf("no result: %s failed (%s)", bench, file)
	}
	return v
}

// parkTarget is the first line's extra p99 after parking, the median of
// BenchmarkParkFirstLine's runs, each run's figure listed.
func (rep *report) parkTarget() target {
	t := target{name: "extra latency for the first line after parking: p99 ≤ 1 ms over the unparked case", state: "not measured"}
	extra := rep.park.results(&t, "extra-p99-µs", "BenchmarkParkFirstLine", "park.txt")
	if len(extra) == 0 {
		return t
	}
	med, _ := medianOf(slices.Clone(extra))
	parked, _ := medianOf(rep.park.metric("parked-p99-µs"))
	never, _ := medianOf(rep.park.metric("unparked-p99-µs"))
	runs := make([]string, len(extra))
	over := 0
	for i, v := range extra {
		runs[i] = fmt.Sprintf("%.0f", v)
		if v > 1000 {
			over++
		}
	}
	t.measured = fmt.Sprintf("%.0f µs, median of %d runs (%s µs; p99 parked %.0f µs, never parked %.0f µs)", med, len(extra), strings.Join(runs, ", "), parked, never)
	t.state = verdict(true, med <= 1000)
	if over > 0 {
		t.state += fmt.Sprintf(" (%d of %d runs over 1 ms)", over, len(extra))
	}
	return t
}

// loopTarget is BenchmarkRun's allocations per message: none in any run.
func (rep *report) loopTarget() target {
	t := target{name: "allocations per message in the exchange loop: 0", state: "not measured"}
	allocs := rep.loop.results(&t, "allocs/op", "BenchmarkRun", "loop.txt")
	if len(allocs) == 0 {
		return t
	}
	most := slices.Max(allocs)
	ns, _ := medianOf(rep.loop.metric("ns/op"))
	t.measured = fmt.Sprintf("%.0f allocs/op at most in %d runs, %.1f ns/op (median)", most, len(allocs), ns)
	t.state = verdict(true, most == 0)
	return t
}

// ratioTarget is the target that mode's median ratio of f be at least
// 1.00, with its interval; a miss whose interval holds 1.00 says so.
func (rep *report) ratioTarget(name, mode string, f func(result) float64) target {
	v, ok := rep.ratio(mode, f)
	t := target{name, fmtRatio(v, ok), verdict(ok, v >= 1)}
	if lo, hi, _, iok := rep.interval(mode, f); ok && iok {
		t.measured += " (interval " + fmtInterval(lo, hi, true) + ")"
		if v < 1 && hi >= 1 {
			t.state += " (1.00 inside the interval)"
		}
	}
	return t
}

// fmtRatio writes a ratio to three places, or four when three would
// round one under 1.00 up to 1.000, so that a miss never reads as 1.000.
func fmtRatio(v float64, ok bool) string {
	if ok && v < 1 && fmt.Sprintf("%.3f", v) == "1.000" {
		return fmtNum(v, ok, "%.4f")
	}
	return fmtNum(v, ok, "%.3f")
}

func fmtNum(v float64, ok bool, format string) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// machine describes the host from /proc and runtime.
func (rep *report) machine() [][2]string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return [][2]string{
		{"CPU", cpu},
		{"CPUs (nproc)", strconv.Itoa(runtime.NumCPU())},
		{"memory", mem},
		{"kernel", "Linux " + kernel},
		{"Go", orDash(rep.meta["go_version"])},
		{"HAProxy", orDash(rep.meta["haproxy_version"])},
		{"pinning", orDash(rep.meta["pinning"])},
		{"load average (1, 5, 15 min) at start, end", orDash(rep.meta["loadavg_start"]) + "; " + orDash(rep.meta["loadavg_end"])},
		{"ulimit -n", orDash(rep.meta["nofile"])},
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (rep *report) markdown(svgName, crypto string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("# Benchmarks\n\n")
	p("seclisten with its default defences against the baseline of issue [8/8]: a bare crypto/tls line server (`cmd/tlsref`), and for memory per idle connection HAProxy (TLS terminated in HAProxy, `tlsref --plain` behind it). ")
	when := rep.meta["started"]
	if when == "" {
		when = time.Now().UTC().Format("2006-01-02 15:04 MST")
	}
	p("Generated by `scripts/bench.sh` and `scripts/benchreport` (run started %s).\n\n", when)
	p("## Machine\n\n| | |\n|---|---|\n")
	for _, kv := range rep.machine() {
		p("| %s | %s |\n", kv[0], kv[1])
	}
	p("\n## How it was measured\n\n```sh\n%s\n```\n\n", orDash(rep.meta["command"]))
	p("- Everything runs on this one machine over loopback, shared with other work (the load averages above): every figure is noisy, compare ratios from one run, not absolute rates across runs.\n")
	p("- Pinning: %s. Ratios are per **server-CPU-second**: operations over the server process's CPU time (utime + stime from /proc/PID/stat, read before and after each run), because the load generator saturates its core first and the rate then measures the client. The load generator is `seclisten bench` (Go's crypto/tls client), the same for both servers; the server's CPU time covers the whole run, including the few handshakes that set up the echo connections.\n", orDash(rep.meta["pinning"]))
	p("- Rounds are interleaved: in each round every run of seclisten and the same run of tlsref go back to back, the first of the two alternating every other round, so drift hits both alike; figures are medians over %s rounds of %s each, and each ratio is the median of the rounds' ratios (seclisten's figure over tlsref's in the same round).\n", orDash(rep.meta["rounds"]), orDash(rep.meta["duration"]))
	p("- Every round starts fresh server processes, the first started alternating from round to round, and warms each up with a short unmeasured run of every kind it serves: two processes of one binary can differ by 2–3%% for their whole life, and the first of two started together has measured up to 1.5%% slower; fresh processes every round, in many short rounds, average that out with the machine's drift (\"How precise one run is\", below).\n")
	p("- seclisten runs with its **default defences**: per-IP limits (loopback exempt, as by default), timeouts, sanitising, logging at info to a file, metrics served (`--metrics-addr`); mTLS runs add `--client-ca` (`--client-auth require` by default). tlsref has no limits, no timeouts, no logging; with `--client-ca` it requires a client certificate. Both print every line to stdout, which goes to /dev/null.\n")
	p("- Runs: handshake = full handshakes (no tickets), %[1]s; resume = session-ticket resumptions, %[1]s; mtls = full handshakes with a client certificate, %[1]s; mlkem = full handshakes with X25519MLKEM768; line = connect, full handshake, one line, its reply, close, %[1]s; echo = %[2]s persistent connections, closed loop. %[3]s workers for the short-lived runs.\n",
		orDash(rep.meta["group"]), orDash(rep.meta["echo_conns"]), orDash(rep.meta["concurrency"]))
	p("- Idle at scale: one run per size, a fresh server each, the connections opened by one `seclisten bench --mode idle` per %s connections, each from its own source address (127.0.0.2, ...; X25519, which HAProxy's OpenSSL speaks too). Memory is the growth of the server's VmRSS (HAProxy: haproxy's process, not its backend), read %ss after the last connection opened (a settle time: a server may change an idle connection's memory after a delay), then once a second until two readings differ by under 1%%. The time to open them all is from the start of the load generators to the server holding every descriptor (a connection is counted open after its handshake and one exchange). HAProxy holds two descriptors a connection, so its largest size is %s; the Go servers' is %s (ulimit -n %s).\n",
		"5000", orDash(rep.meta["idle_settle"]), orDash(rep.meta["haproxy_max"]), orDash(rep.meta["idle_max"]), orDash(rep.meta["nofile"]))
	p("- Flood: `bench --mode flood --source 127.0.0.2` against the default limits applied to loopback (--limit-loopback, --rate %s --burst %s); the second client is `bench --mode echo --conns 1 --source 127.0.0.3`, first alone, then during the flood; %s rounds of %s.\n",
		orDash(rep.meta["flood_rate"]), orDash(rep.meta["flood_burst"]), orDash(rep.meta["flood_rounds"]), orDash(rep.meta["flood_duration"]))
	if rep.park.present {
		p("- First line after parking: `go test ./cmd/seclisten -run '^$' -bench '^BenchmarkParkFirstLine$' -benchtime %sx -count %s`. Two `seclisten serve` side by side (mTLS, `--park-after 1ms` and `--park-after 0`), one TLS client each; each sample waits, both clients silent, until the first server has parked its connection (`seclisten_connections_parked` = 1), then times one line and its reply on each, the parked one first every other sample. The extra p99 is the parked connection's p99 minus the never parked one's, per run; the target takes the median of the runs. Not pinned.\n",
			orDash(rep.meta["park_samples"]), orDash(rep.meta["park_count"]))
	}
	if rep.loop.present {
		p("- The exchange loop: `go test ./pkg/exchange -run '^$' -bench '^BenchmarkRun$' -benchmem -count 3`: one message and its reply through `exchange.Run` (framing, sanitising, the reply) in the steady state, from memory to `io.Discard`, so that the allocations counted are the loop's own.\n")
	}
	p("\n")

	p("## Medians\n\n| server | run | runs | ops/s | server CPU s | ops per server-CPU-s | p50 ms | p99 ms | errors | TLS |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	row := func(name, m string, k key) {
		if len(rep.runs[k]) == 0 {
			return
		}
		ops, _ := rep.median(k, opsPerS)
		cpu, _ := rep.median(k, func(r result) float64 { return r.ServerCPUS })
		pc, _ := rep.median(k, perCPU)
		p50, _ := rep.median(k, func(r result) float64 { return r.P50 })
		p99v, _ := rep.median(k, p99)
		errs, _ := rep.median(k, func(r result) float64 { return r.Errors })
		p("| %s | %s | %d | %.1f | %.2f | %.1f | %.3f | %.3f | %.0f | %s |\n", name, m, len(rep.runs[k]), ops, cpu, pc, p50, p99v, errs, orDash(rep.runs[k][0].TLS))
	}
	for _, m := range modes {
		for _, s := range servers {
			row(s, m, key{s, m})
		}
		row("tlsref (control)", m, key{"control", m})
	}
	for _, m := range []string{"probe", "flood", "probeflood"} {
		row("seclisten (default limits, --limit-loopback)", m, key{"seclisten", m})
	}

	p("\n## Ratios\n\nThe median over rounds of seclisten's figure over tlsref's in the same round (higher is better). ")
	p("The interval is where the true median of such rounds lies with the confidence given, assuming nothing of their spread (the sign test): ")
	p("the k-th smallest and the k-th largest round's ratio, k as large as 95%% allows (of 16 rounds the 4th, 97.9%%). A target of 1.00 inside it is one this run cannot tell met from missed.\n\n")
	p("| figure | per second | per server-CPU-second | its interval | confidence |\n|---|--:|--:|--:|--:|\n")
	for _, m := range modes {
		a, ok1 := rep.ratio(m, opsPerS)
		c, ok2 := rep.ratio(m, perCPU)
		lo, hi, conf, ok3 := rep.interval(m, perCPU)
		p("| %s | %s | %s | %s | %s |\n", modeLabels[m], fmtRatio(a, ok1), fmtRatio(c, ok2), fmtInterval(lo, hi, ok3), fmtNum(100*conf, ok3, "%.1f%%"))
	}
	if cm := rep.controlMode(); cm != "" {
		a, ok1 := rep.ratioOf("control", cm, opsPerS)
		c, ok2 := rep.ratioOf("control", cm, perCPU)
		lo, hi, conf, ok3 := rep.intervalOf("control", cm, perCPU)
		p("| **control:** %s, a second tlsref against tlsref | %s | %s | %s | %s |\n", modeLabels[cm], fmtRatio(a, ok1), fmtRatio(c, ok2), fmtInterval(lo, hi, ok3), fmtNum(100*conf, ok3, "%.1f%%"))
		p("\nThe control is a second tlsref process, its %s runs measured against tlsref's exactly as seclisten's are (tlsref's run between the two, each first of its pair every other round): two identical servers, so how far its ratio lies from 1.00, and how wide its interval is, show what this run can tell apart.\n", cm)
	}
	p("\n![seclisten's ratios to tlsref and HAProxy, with the targets](%s)\n", svgName)

	rep.idleMarkdown(p)

	p("\n## Targets\n\nThe targets of issue [8/8], for this run.\n\n| figure | target | measured | |\n|---|---|---|---|\n")
	for _, t := range rep.targets() {
		name, tgt, ok := strings.Cut(t.name, ": ")
		if !ok {
			tgt = ""
		}
		p("| %s | %s | %s | %s |\n", name, orDash(tgt), orDash(t.measured), t.state)
	}

	p("\n## What limits each figure\n\n")
	p("%s\n", limitsText)
	p("Crypto benchmarks (`go test -run '^$' -bench 'BenchmarkCrypto|BenchmarkHandshake' -benchtime 1s ./pkg/tlsconf/`):\n\n")
	if strings.TrimSpace(crypto) == "" {
		p("not measured\n")
	} else {
		p("```\n%s\n```\n", strings.TrimRight(crypto, "\n"))
	}

	if len(rep.notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range rep.notes {
			p("- %s\n", n)
		}
	}
	return b.String()
}

// idleMarkdown writes the idle runs at scale: one row per run, then the
// slopes and what 100,000 and 1,000,000 connections would need by them.
func (rep *report) idleMarkdown(p func(string, ...any)) {
	if len(rep.idle) == 0 {
		return
	}
	p("\n## Idle connections at scale\n\n")
	p("| server | connections | held | RSS before MiB | RSS after MiB | KiB per connection | time to open all s | connections/s | errors | TLS |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	var ns []int
	for _, s := range idleServers {
		for _, r := range rep.idle[s] {
			if !slices.Contains(ns, r.N) {
				ns = append(ns, r.N)
			}
		}
	}
	slices.Sort(ns)
	for _, n := range ns {
		for _, s := range idleServers {
			r, ok := rep.idleAt(s, n)
			if !ok {
				continue
			}
			k, kok := r.kib()
			rate := 0.0
			if r.OpenS > 0 {
				rate = float64(r.Held) / r.OpenS
			}
			p("| %s | %d | %d | %.1f | %.1f | %s | %.2f | %.0f | %d | %s |\n", s, r.N, r.Held, r.RSSBefore/1024, r.RSSAfter/1024, fmtNum(k, kok, "%.2f"), r.OpenS, rate, r.Errors, orDash(r.TLS))
		}
	}
	var rows []string
	for _, s := range idleServers {
		sl, to, ok := rep.slope(s, slopeFrom(s))
		if !ok {
			continue
		}
		a, _ := rep.project(s, 100_000)
		c, _ := rep.project(s, 1_000_000)
		rows = append(rows, fmt.Sprintf("| %s | %d → %d | %.2f | %.2f GiB | %.2f GiB |\n", s, slopeFrom(s), to, sl, a/(1<<20), c/(1<<20)))
	}
	if len(rows) == 0 {
		p("\nNo slope: a slope needs a run of 5,000 (HAProxy: 1,000) and a larger one.\n")
		return
	}
	p("\nSlope: the RSS added per added idle connection between two sizes (what a connection costs once the process's fixed memory is paid); the projections extend the largest run by it.\n\n")
	p("| server | from → to | KiB per added connection | 100,000 would need | 1,000,000 would need |\n|---|---|--:|--:|--:|\n")
	for _, r := range rows {
		p("%s", r)
	}
}

// limitsText explains what bounds each figure, from the crypto benchmarks
// (printed after it) and the profiles taken while tuning.
const limitsText = `- **Full handshakes** are bound by public-key work on the server's
  cores, shared here with the load generator. Per handshake the server
  signs once with ECDSA P-256 (about 37 µs), does its half of X25519 (about
  45 µs of the ~90 µs generate-and-agree pair) and of ML-KEM-768 (about
  60 µs of the ~115 µs encapsulate-and-decapsulate pair); the client, on
  the same two cores, verifies the signature (about 85 µs) and does the
  other halves. That is about 320 µs of pure public-key work per handshake
  for both sides together, about half of the ~700 µs an in-process
  handshake costs (BenchmarkHandshake); the rest is the key schedule,
  certificate parsing and about 120 KB of allocation. seclisten adds its
  protocol sniffing, admission check, the description of the ClientHello,
  a log record and metrics per connection, and saves what a goroutine per
  connection costs the reference (its start and stack growth: seclisten
  reuses worker goroutines) and four setsockopt calls per accept: what
  the per-CPU-second ratios above measure.
- **Resumptions** are barely cheaper than full handshakes: crypto/tls
  still does a fresh X25519MLKEM768 key exchange when it resumes, and only
  the certificate, its signature and the verification are saved
  (BenchmarkHandshakeResumed: about 15% less). TLS 1.2 resumption, without
  a new key exchange, runs 4-7 times faster (seclisten bench --tls-version
  1.2).
- **Echo round trips** are bound by syscalls: per message one read and one
  write on the socket (with AES-GCM on each record), and the printed line.
  The reference writes each line to stdout with a write of its own (about
  1.4 µs here); seclisten writes the lines of all the connections served in
  one scheduling round with one write (pkg/batch). Its exchange
  loop allocates nothing per message (BenchmarkRun: 0 allocs/op, ~16 ns/op
  outside the syscalls) and moves a socket deadline only when it must;
  what it pays over the reference (which has no deadlines) is reading the
  clock for the idle, write and --msg-rate checks, and the escaping of
  each line.
- **connect + one line + close** is a full handshake plus one round trip:
  bound like full handshakes, plus seclisten's per-connection work
  (admission, logging, metrics) that a long-lived connection spreads.
- **Memory per idle connection**: the reference keeps a goroutine stack
  (8 KiB or more: the blocking read through tls.Conn) and about 7.5 KiB in
  crypto/tls (its input and handshake buffers keep their grown size, plus
  the AES-GCM states). seclisten parks a connection idle for --park-after
  (1 s): no goroutine, no framing buffer, its worker back in the pool;
  what stays is crypto/tls's state, the socket and under 1 KiB of
  seclisten's own. Once the server is quiet it gives the heap's spare
  pages back (pkg/scavenge): Go keeps free pages up to its heap goal,
  twice the live heap, which the reference holds on to after the
  handshakes. HAProxy (OpenSSL) keeps no stack per connection either:
  its idle cost is OpenSSL's per-connection state.
- **Under a flood**, a refused connection costs an accept, a table lookup
  and a close: no TLS work. The second client's p99 rises because the
  flooder and the load generator take CPU from the same two cores.
`
