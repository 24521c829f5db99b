package admit

import (
	"log/slog"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/throttle"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// maxKeys bounds the refusal counters: past it, further addresses are
// counted together, so a spray of addresses cannot grow memory or the log.
const maxKeys = 1024

// otherKey collects the counts of addresses past maxKeys.
const otherKey = "other addresses"

type key struct {
	who    string
	reason outcome.Code
}

// Reporter logs refusals, aggregated per period.
type Reporter struct {
	log    *slog.Logger
	period time.Duration
	t      throttle.Throttle[key] // windows end at Flush, once a period
}

// NewReporter returns a Reporter that summarises every period.
func NewReporter(log *slog.Logger, period time.Duration) *Reporter {
	return &Reporter{log: log, period: period, t: throttle.Throttle[key]{
		MaxKeys: maxKeys,
		Other:   func(k key) key { return key{otherKey, k.reason} },
	}}
}

// Note records a refusal of who (an address, or an address prefix) for a
// reason, and reports whether the caller should log it in full: the first
// one per (who, reason) per period. The others are counted for the summary.
func (r *Reporter) Note(who string, reason outcome.Code) bool {
	_, ok := r.t.Allow(key{who, reason})
	return ok
}

// Refused notes a refusal and logs it if it is the first of its kind in
// the period. attrs (key-value pairs, such as the limit that refused and
// how to change it) follow the reason in the log line.
func (r *Reporter) Refused(who string, reason outcome.Code, attrs ...any) {
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
	r.t.Flush(func(k key, n int) {
		r.log.Warn("refused more connections", "from", k.who, "reason", string(k.reason),
			"count", n, "period", r.period.String())
	})
}
