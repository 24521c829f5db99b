package server

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/throttle"
)

// The handshake line at info is sampled: every one up to hsLogFirst a
// second, a line a developer reads; past that, a load no one reads line
// by line, one in hsLogEvery, and a summary of the others a second after
// the first held back. At debug every handshake is logged. The metrics
// count every handshake either way.
//
// Logging every handshake at a machine's pace cost about 1% of the CPU
// of a full handshake (BENCHMARKS.md), and a service manager's journal
// drops lines past a rate of its own, printed lines among them; this
// leaves out only handshake lines, and counts them.
const (
	hsLogFirst = 100
	hsLogEvery = 100
	hsLogEach  = time.Second
)

// hsNote explains a summary.
var hsNote = "over " + strconv.Itoa(hsLogFirst) + " handshakes a second, one line in " + strconv.Itoa(hsLogEvery) +
	" is logged at info, every one at debug"

// handshakeLog samples the handshake lines of one server, across its
// policies.
type handshakeLog struct {
	log *slog.Logger
	s   throttle.Sampler
}

func newHandshakeLog(log *slog.Logger) *handshakeLog {
	return &handshakeLog{log: log, s: throttle.Sampler{Window: hsLogEach, First: hsLogFirst, Every: hsLogEvery}}
}

// allow reports whether to log the handshake line of a handshake at now.
// The first one held back arranges the summary.
func (l *handshakeLog) allow(now time.Time) bool {
	ok, first := l.s.Allow(now)
	if first {
		time.AfterFunc(hsLogEach, l.summarise)
	}
	return ok
}

// summarise logs how many handshake lines were held back since the last
// summary, if any: a second after the first of them, and once more when
// the server stops.
func (l *handshakeLog) summarise() {
	if n := l.s.Take(); n > 0 {
		l.log.Info("handshakes not logged", "count", n, "note", hsNote)
	}
}
