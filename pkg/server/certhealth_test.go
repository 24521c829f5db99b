package server

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

func leafValid(t *testing.T, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	c, err := pki.NewSelfSignedServer(pki.ServerOptions{Hosts: []string{"svc.example.test"},
		Validity: pki.Validity{NotBefore: notBefore, NotAfter: notAfter}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate
}

// healthLog counts the records of each message.
func healthLog(buf *bytes.Buffer) map[string]int {
	n := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			n[rec["msg"].(string)]++
		}
	}
	return n
}

// The health of the certificates in service, on a clock of its own: the
// error is logged once a minute and the warning once a day; readiness
// follows the validity window at once; the next check is at the next
// validity bound.
func TestCertHealth(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	now := start
	clock := func() time.Time { return now }
	var buf bytes.Buffer
	served := []servedCert{{leaf: leafValid(t, start.Add(-24*time.Hour), start.Add(3*24*time.Hour)), source: "file"}}
	h := newCertHealth(slog.New(slog.NewJSONHandler(&buf, nil)), 7*24*time.Hour, func() []servedCert { return served })
	h.errors.Now, h.warnings.Now = clock, clock
	expect := func(msg string, want int, what string) {
		t.Helper()
		if got := healthLog(&buf)[msg]; got != want {
			t.Errorf("%d %s, want %d", got, what, want)
		}
	}

	if wait := h.check(now); wait != time.Minute || h.unhealthy() != "" {
		t.Fatalf("a valid certificate: wait %s, unhealthy %q", wait, h.unhealthy())
	}
	for now = start; now.Before(start.Add(23 * time.Hour)); now = now.Add(time.Hour) {
		h.check(now)
	}
	expect(msgCertExpiring, 1, "warnings in the first day")
	now = start.Add(25 * time.Hour)
	h.check(now)
	expect(msgCertExpiring, 2, "warnings after a day")
	h.reloaded()
	h.check(now)
	expect(msgCertExpiring, 3, "warnings after a reload")

	// The next check is at NotAfter; then it is expired.
	notAfter := served[0].leaf.NotAfter
	now = notAfter.Add(-10 * time.Second)
	if wait := h.check(now); wait != 10*time.Second+time.Millisecond {
		t.Errorf("wait %s before expiry, want 10.001s", wait)
	}
	now = notAfter.Add(time.Millisecond)
	if wait := h.check(now); wait != time.Second {
		t.Errorf("wait %s while expired, want 1s", wait)
	}
	if why := h.unhealthy(); !strings.Contains(why, "the certificate of CN=svc.example.test expired at ") {
		t.Errorf("unhealthy = %q", why)
	}
	for range 59 {
		now = now.Add(time.Second)
		h.check(now)
	}
	expect(msgCertExpired, 1, "errors in a minute")
	now = now.Add(2 * time.Second)
	h.check(now)
	expect(msgCertExpired, 2, "errors after a minute")

	// A valid certificate: ready again, said once.
	served = []servedCert{{leaf: leafValid(t, now.Add(-time.Hour), now.Add(90*24*time.Hour)), source: "file"}}
	h.check(now)
	h.check(now.Add(time.Second))
	if h.unhealthy() != "" || healthLog(&buf)[msgCertValidAgain] != 1 {
		t.Errorf("unhealthy %q, %d valid-again records", h.unhealthy(), healthLog(&buf)[msgCertValidAgain])
	}

	// Not yet valid: not ready until NotBefore, checked then.
	notBefore := now.Add(time.Hour).Truncate(time.Second)
	served = []servedCert{{leaf: leafValid(t, notBefore, notBefore.Add(90*24*time.Hour)), source: "acme"}}
	if wait := h.check(now); wait != time.Second || !strings.Contains(h.unhealthy(), "is not valid until") {
		t.Errorf("not yet valid: wait %s, unhealthy %q", wait, h.unhealthy())
	}
	if healthLog(&buf)[msgCertNotYet] != 1 {
		t.Error("no error for a certificate not valid yet")
	}
	if h.check(notBefore); h.unhealthy() != "" {
		t.Errorf("at NotBefore: unhealthy %q", h.unhealthy())
	}

	// An ephemeral certificate is never warned of; a window of 0 warns of
	// nothing.
	buf.Reset()
	served = []servedCert{{leaf: leafValid(t, now.Add(-time.Hour), now.Add(24*time.Hour)), source: "ephemeral"}}
	h.check(now)
	h.warn = 0
	served[0].source = "file"
	h.reloaded()
	h.check(now)
	if got := healthLog(&buf)[msgCertExpiring]; got != 0 {
		t.Errorf("%d warnings for an ephemeral certificate or with warnings off", got)
	}
}

// A certificate that ACME renews is warned of only when its renewal is
// overdue (a sixth of its lifetime left), not for being short-lived, and a
// renewal that leaves it in service does not warn of it again.
func TestCertHealthACMEWarning(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	var buf bytes.Buffer
	served := []servedCert{{leaf: leafValid(t, start, start.Add(30*time.Second)), source: "acme"}}
	h := newCertHealth(slog.New(slog.NewJSONHandler(&buf, nil)), 7*24*time.Hour, func() []servedCert { return served })
	if wait := h.check(start.Add(10 * time.Second)); wait != 15*time.Second {
		t.Errorf("wait %s with 20s left, want 15s (until 5s are left)", wait)
	}
	h.check(start.Add(20 * time.Second))
	if n := healthLog(&buf)[msgCertExpiring]; n != 0 {
		t.Errorf("%d warnings with 10 of 30 seconds left, want 0", n)
	}
	h.check(start.Add(26 * time.Second))
	h.changed()
	h.check(start.Add(26 * time.Second))
	if n := healthLog(&buf)[msgCertExpiring]; n != 1 {
		t.Errorf("%d warnings with 4 of 30 seconds left, want 1", n)
	}
}
