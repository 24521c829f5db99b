package throttle

import (
	"sync"
	"time"
)

// Sampler thins out one kind of event that is worth a line each at a
// human's pace but would flood the log at a machine's: in each Window it
// lets through the first First events, then one in Every, and holds back
// the rest, counted for a summary (Take). It is safe for concurrent use.
type Sampler struct {
	Window time.Duration
	First  int
	Every  int // zero: none after the first First

	mu    sync.Mutex
	start time.Time // when the window began
	n     int       // events in the window
	held  int       // held back since the last Take
}

// Allow records an event at now and reports whether to let it through.
// first is true for the first event held back since the last Take: the
// caller's cue to arrange one, for the summary.
func (s *Sampler) Allow(now time.Time) (ok, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 || now.Sub(s.start) >= s.Window {
		s.start, s.n = now, 0
	}
	s.n++
	if s.n <= s.First || s.Every > 0 && (s.n-s.First)%s.Every == 0 {
		return true, false
	}
	s.held++
	return false, s.held == 1
}

// Take returns the number of events held back since the last Take, and
// starts counting again.
func (s *Sampler) Take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.held
	s.held = 0
	return n
}
