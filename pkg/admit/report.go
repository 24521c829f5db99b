package admit

import (
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the refusal counters: past it, further addresses are
// counted together, so a spray of addresses cannot grow memory or the log.
const maxKeys = 1024

// otherKey collects the counts of addresses past maxKeys.
const otherKey = "other addresses"

type key struct {
	who    string
	reason Reason
}

// Reporter logs refusals, aggregated per period.
type Reporter struct {
	log    *slog.Logger
	period time.Duration

	mu     sync.Mutex
	counts map[key]int // refusals after the first, this period
	seen   map[key]bool
}

// NewReporter returns a Reporter that summarises every period.
func NewReporter(log *slog.Logger, period time.Duration) *Reporter {
	return &Reporter{log: log, period: period, counts: map[key]int{}, seen: map[key]bool{}}
}

// Note records a refusal of who (an address, or an address prefix) for a
// reason, and reports whether the caller should log it in full: the first
// one per (who, reason) per period. The others are counted for the summary.
func (r *Reporter) Note(who string, reason Reason) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key{who, reason}
	if r.seen[k] {
		r.counts[k]++
		return false
	}
	if len(r.seen) >= maxKeys {
		r.counts[key{otherKey, reason}]++
		return false
	}
	r.seen[k] = true
	return true
}

// Refused notes a refusal and logs it if it is the first of its kind in
// the period. attrs (key-value pairs, such as the limit that refused and
// how to change it) follow the reason in the log line.
func (r *Reporter) Refused(who string, reason Reason, attrs ...any) {
	if r.Note(who, reason) {
		args := append([]any{"from", who, "reason", string(reason)}, attrs...)
		r.log.Warn("refused connection", append(args, "note", "further refusals summarised every "+r.period.String())...)
	}
}

// Run summarises every period until done is closed, then once more.
func (r *Reporter) Run(done <-chan struct{}) {
	t := time.NewTicker(r.period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.Flush()
		case <-done:
			r.Flush()
			return
		}
	}
}

// Flush logs the counts of the period and starts a new one.
func (r *Reporter) Flush() {
	r.mu.Lock()
	counts := r.counts
	r.counts, r.seen = map[key]int{}, map[key]bool{}
	r.mu.Unlock()
	for k, n := range counts {
		if n > 0 {
			r.log.Warn("refused more connections", "from", k.who, "reason", string(k.reason),
				"count", n, "period", r.period.String())
		}
	}
}
