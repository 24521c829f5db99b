package server

import (
	"sync"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
)

// maxCertsSeen bounds the client certificates remembered for the expiry
// warnings: past it, the one seen longest ago is forgotten.
const maxCertsSeen = 10_000

// recent is how long a client certificate counts as seen: the window of
// the earliest-expiry gauge, and the period of its warning.
const recent = 24 * time.Hour

// certWarner decides which served clients to warn of (their certificate
// expires within window), once per certificate per day, and knows the
// earliest expiry among the certificates seen in the last day. It is safe
// for concurrent use.
type certWarner struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*certSeen // by SHA-256 fingerprint
}

type certSeen struct {
	notAfter, lastSeen, lastWarned time.Time
}

func newCertWarner(window time.Duration) *certWarner {
	return &certWarner{window: window, seen: map[string]*certSeen{}}
}

// check notes that a client with this certificate was served at now, and
// reports whether to warn of it.
func (w *certWarner) check(id *identity.Identity, now time.Time) bool {
	if w.window <= 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen[id.Fingerprint]
	if s == nil {
		if len(w.seen) >= maxCertsSeen {
			w.forgetOldest()
		}
		s = &certSeen{notAfter: id.NotAfter}
		w.seen[id.Fingerprint] = s
	}
	s.lastSeen = now
	if id.NotAfter.Sub(now) > w.window || now.Sub(s.lastWarned) < recent {
		return false
	}
	s.lastWarned = now
	return true
}

// forgetOldest drops the certificate seen longest ago. It is O(n), and runs
// only when the table is full.
func (w *certWarner) forgetOldest() {
	var oldest string
	var at time.Time
	for k, s := range w.seen {
		if oldest == "" || s.lastSeen.Before(at) {
			oldest, at = k, s.lastSeen
		}
	}
	delete(w.seen, oldest)
}

// earliest is the earliest expiry among the certificates seen in the last
// day, and false when there is none; it forgets the older ones.
func (w *certWarner) earliest(now time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var min time.Time
	for k, s := range w.seen {
		if now.Sub(s.lastSeen) > recent {
			delete(w.seen, k)
			continue
		}
		if min.IsZero() || s.notAfter.Before(min) {
			min = s.notAfter
		}
	}
	return min, !min.IsZero()
}
