package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
)

func TestCertWarner(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	soon := &identity.Identity{Fingerprint: "soon", NotAfter: now.Add(5 * 24 * time.Hour)}
	later := &identity.Identity{Fingerprint: "later", NotAfter: now.Add(90 * 24 * time.Hour)}
	w := newCertWarner(14 * 24 * time.Hour)
	if !w.check(soon, now) {
		t.Error("no warning for a certificate expiring in 5 days")
	}
	if w.check(soon, now.Add(time.Hour)) {
		t.Error("a second warning within the day")
	}
	if !w.check(soon, now.Add(25*time.Hour)) {
		t.Error("no warning the next day")
	}
	if w.check(later, now) {
		t.Error("a warning for a certificate expiring in 90 days")
	}
	if e, ok := w.earliest(now.Add(26 * time.Hour)); !ok || !e.Equal(soon.NotAfter) {
		t.Errorf("earliest = %v, %v; want %v", e, ok, soon.NotAfter)
	}
	// A day after it was last seen, a certificate no longer counts.
	if e, ok := w.earliest(now.Add(60 * time.Hour)); ok {
		t.Errorf("earliest = %v after every client left", e)
	}
	if newCertWarner(0).check(soon, now) {
		t.Error("a warning with the warnings off")
	}
}

// The table is bounded: past maxCertsSeen, the certificate seen longest
// ago is forgotten.
func TestCertWarnerBounded(t *testing.T) {
	now := time.Now()
	w := newCertWarner(24 * time.Hour)
	for i := range maxCertsSeen + 100 {
		w.check(&identity.Identity{Fingerprint: fmt.Sprint(i), NotAfter: now.Add(time.Duration(i+1) * time.Hour)}, now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(w.seen); n != maxCertsSeen {
		t.Fatalf("%d certificates remembered, want the bound %d", n, maxCertsSeen)
	}
	if _, ok := w.seen["0"]; ok {
		t.Error("the certificate seen longest ago is still remembered")
	}
}
