package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Latencies are of successful operations:
// dial to completed handshake (handshake, resume, flood accepted), one round
// trip (echo), or dial to first reply (idle).
type Result struct {
	Mode    Mode
	Addr    string
	TLS     string        // version, cipher suite and group of the first connection; empty with Plain
	Elapsed time.Duration // measuring time
	Ops     int64         // successful operations (flood: accepted + refused)
	Errors  int64         // failed operations, not counting those cut off by the end of the run
	// Failures counts the failed operations by what went wrong; the
	// counts add up to Errors.
	Failures map[Failure]int64
	Samples  int // latency samples behind P50 and P99
	P50, P99 time.Duration

	Resumed int64 // resume: handshakes that resumed a session

	Conns        int   // echo, idle: connections open
	RSSBeforeKiB int64 // idle with PID: server VmRSS before opening
	RSSAfterKiB  int64 // idle with PID: server VmRSS with the connections open

	Accepted, Refused int64 // flood

	// Notes are caveats worth printing with the figures.
	Notes []string
	// Advice is the caller's wording of Diagnose for its users (a command
	// can name its own flags), printed last as the likely cause. Empty
	// means none is printed.
	Advice string
}

// Attempted is the number of operations that ended within the run,
// successful or failed.
func (r Result) Attempted() int64 { return r.Ops + r.Errors }

// ErrorRate is the share of attempted operations that failed, from 0 to 1.
func (r Result) ErrorRate() float64 {
	if r.Attempted() == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Attempted())
}

// Cause is the likely reason behind most of a run's failures.
type Cause uint8

// The causes Diagnose finds.
const (
	// NoCause: nothing failed, or no single reason stands out.
	NoCause Cause = iota
	// CauseServerRefused: most failures are connections the server ended
	// (Class.ByServer), and some of them it said it refused: its admission
	// limits, such as connections per second or at once per client
	// address.
	CauseServerRefused
	// CauseServerClosed: most failures are connections the server closed
	// or reset without saying why, as a server's per-client limits do when
	// they refuse without a word.
	CauseServerClosed
)

// Diagnosis is the likely cause of a run's failures, for the caller to
// word.
type Diagnosis struct {
	Cause Cause
	// N is the number of failures that point to Cause.
	N int64
}

// Diagnose finds the likely cause of the run's failures: when more than
// half of them are connections the server refused, closed or reset, the
// server's limits on a client are the likely cause (a load generator is
// one client with many connections).
func (r Result) Diagnose() Diagnosis {
	var refused, byServer int64
	for f, n := range r.Failures {
		if f.Class.ByServer() {
			byServer += n
		}
		if f.Class == ClassRefused {
			refused += n
		}
	}
	switch {
	case byServer == 0 || 2*byServer <= r.Errors:
		return Diagnosis{}
	case refused > 0:
		// The closures are most likely refusals too, seen as a reset
		// when the server closed before reading what was sent.
		return Diagnosis{Cause: CauseServerRefused, N: byServer}
	}
	return Diagnosis{Cause: CauseServerClosed, N: byServer}
}

// failureList is r.Failures, most frequent first.
func (r Result) failureList() []Failure {
	fs := slices.Collect(maps.Keys(r.Failures))
	slices.SortFunc(fs, func(a, b Failure) int {
		if c := cmp.Compare(r.Failures[b], r.Failures[a]); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
	})
	return fs
}

// OpsPerSec is Ops over Elapsed.
func (r Result) OpsPerSec() float64 { return perSec(r.Ops, r.Elapsed) }

// ResumedFraction is the share of resume's handshakes that resumed.
func (r Result) ResumedFraction() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Resumed) / float64(r.Ops)
}

// KiBPerConn is the growth of the server's RSS per idle connection, or zero
// without memory figures.
func (r Result) KiBPerConn() float64 {
	if r.Conns == 0 || r.RSSBeforeKiB == 0 {
		return 0
	}
	return float64(r.RSSAfterKiB-r.RSSBeforeKiB) / float64(r.Conns)
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fields are the figures in print order; mode-specific ones only for their
// mode. Values are JSON numbers or strings.
func (r Result) fields() []field {
	f := []field{
		{"mode", string(r.Mode), string(r.Mode)},
		{"addr", r.Addr, r.Addr},
	}
	if r.TLS != "" {
		f = append(f, field{"tls", r.TLS, r.TLS})
	}
	f = append(f,
		field{"duration_s", round(r.Elapsed.Seconds(), 3), r.Elapsed.Round(time.Millisecond).String()},
		field{"ops", r.Ops, fmt.Sprint(r.Ops)},
		field{"ops_per_s", round(r.OpsPerSec(), 1), fmt.Sprintf("%.1f", r.OpsPerSec())},
		field{"p50_ms", ms(r.P50), r.P50.Round(time.Microsecond).String()},
		field{"p99_ms", ms(r.P99), r.P99.Round(time.Microsecond).String()},
		field{"errors", r.Errors, fmt.Sprint(r.Errors)},
		field{"error_rate", round(r.ErrorRate(), 4), fmt.Sprintf("%s of %d attempted", Percent(r.ErrorRate()), r.Attempted())},
	)
	switch r.Mode {
	case Resume:
		f = append(f,
			field{"resumed", r.Resumed, fmt.Sprint(r.Resumed)},
			field{"resumed_fraction", round(r.ResumedFraction(), 4), fmt.Sprintf("%.1f%%", 100*r.ResumedFraction())})
	case Echo:
		f = append(f, field{"conns", r.Conns, fmt.Sprint(r.Conns)})
	case Idle:
		f = append(f, field{"conns", r.Conns, fmt.Sprint(r.Conns)})
		if r.RSSBeforeKiB != 0 {
			f = append(f,
				field{"rss_before_kib", r.RSSBeforeKiB, fmt.Sprintf("%d KiB", r.RSSBeforeKiB)},
				field{"rss_after_kib", r.RSSAfterKiB, fmt.Sprintf("%d KiB", r.RSSAfterKiB)},
				field{"kib_per_conn", round(r.KiBPerConn(), 2), fmt.Sprintf("%.2f KiB", r.KiBPerConn())})
		}
	case Flood:
		a, rf := perSec(r.Accepted, r.Elapsed), perSec(r.Refused, r.Elapsed)
		f = append(f,
			field{"accepted", r.Accepted, fmt.Sprint(r.Accepted)},
			field{"refused", r.Refused, fmt.Sprint(r.Refused)},
			field{"accepted_per_s", round(a, 1), fmt.Sprintf("%.1f", a)},
			field{"refused_per_s", round(rf, 1), fmt.Sprintf("%.1f", rf)})
	}
	return f
}

type field struct {
	key  string
	json any
	text string
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// MarshalJSON writes the figures as one flat object with the keys of
// WriteTable in snake case (latencies in milliseconds, duration in seconds).
func (r Result) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for _, f := range r.fields() {
		m[f.key] = f.json
	}
	if len(r.Failures) > 0 {
		fm := map[string]int64{}
		for f, n := range r.Failures {
			fm[f.Key()] = n
		}
		m["failures"] = fm
	}
	if len(r.Notes) > 0 {
		m["notes"] = r.Notes
	}
	if r.Advice != "" {
		m["likely_cause"] = r.Advice
	}
	return json.Marshal(m)
}

// WriteTable writes the figures as an aligned two-column table (the
// failures of each kind under the error rate), then the notes and the
// advice.
func (r Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range r.fields() {
		fmt.Fprintf(tw, "%s\t%s\n", label(f.key), f.text)
		if f.key == "error_rate" {
			for _, fl := range r.failureList() {
				fmt.Fprintf(tw, "  %s\t%d (%s)\n", fl.Key(), r.Failures[fl], fl)
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	if r.Advice != "" {
		fmt.Fprintf(tw, "likely cause\t%s\n", r.Advice)
	}
	return tw.Flush()
}

// Percent writes a fraction as a percentage with up to three significant
// digits: 0.01 is 1%, 0.98234 is 98.2%, 0.000123 is 0.0123%.
func Percent(f float64) string {
	s := strconv.FormatFloat(100*f, 'g', 3, 64)
	if strings.ContainsRune(s, 'e') { // below 0.0001%
		p, _ := strconv.ParseFloat(s, 64)
		s = strconv.FormatFloat(p, 'f', -1, 64)
	}
	return s + "%"
}

// label is the table's name for a JSON key: ops_per_s is ops/s, p50_ms p50.
func label(key string) string {
	key = strings.ReplaceAll(key, "_per_s", "/s")
	for _, unit := range []string{"_ms", "_kib", "_s"} {
		key = strings.TrimSuffix(key, unit)
	}
	return strings.ReplaceAll(key, "_", " ")
}
