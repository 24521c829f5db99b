package throttle

import (
	"sync"
	"time"
)

// Throttle lets through the first event of each key in each window and
// counts the rest. It is safe for concurrent use, and its zero value is
// ready: one event per key until Flush, with no bound on the keys.
type Throttle[K comparable] struct {
	// Window is how long a key stays throttled after one of its events is
	// let through. Zero means until the next Flush.
	Window time.Duration
	// MaxKeys bounds the keys tracked until the next Flush, so a spray of
	// keys cannot grow memory or the log. Zero means no bound. Past it,
	// the events of new keys are not let through but counted under
	// Other(key), which must then be set.
	MaxKeys int
	Other   func(K) K
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[K]*state
}

type state struct {
	since      time.Time // when the window began
	suppressed int       // events held back since the last one let through
}

// Allow records an event of k and reports whether to let it through: the
// first event of k in its window. When it does, suppressed is the number
// of k's events held back since the last one let through (and not yet
// handed to Flush).
func (t *Throttle[K]) Allow(k K) (suppressed int, ok bool) {
	var now time.Time
	if t.Window > 0 {
		now = t.now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.keys[k]
	if s == nil {
		if t.keys == nil {
			t.keys = make(map[K]*state)
		}
		if t.MaxKeys > 0 && len(t.keys) >= t.MaxKeys {
			k = t.Other(k)
			if s = t.keys[k]; s == nil {
				s = &state{since: now}
				t.keys[k] = s
			}
			s.suppressed++
			return 0, false
		}
		t.keys[k] = &state{since: now}
		return 0, true
	}
	if t.Window == 0 || now.Sub(s.since) < t.Window {
		s.suppressed++
		return 0, false
	}
	n := s.suppressed
	s.since, s.suppressed = now, 0
	return n, true
}

// Flush calls f, outside the lock, with every key that has events held
// back and their number, then forgets every key: their next events are let
// through again.
func (t *Throttle[K]) Flush(f func(k K, suppressed int)) {
	t.mu.Lock()
	keys := t.keys
	t.keys = nil
	t.mu.Unlock()
	for k, s := range keys {
		if s.suppressed > 0 {
			f(k, s.suppressed)
		}
	}
}

func (t *Throttle[K]) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}
