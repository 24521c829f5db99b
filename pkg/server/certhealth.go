package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/internal/throttle"
)

// servedCert is a server certificate in service.
type servedCert struct {
	leaf *x509.Certificate
	// source is where it comes from: file, acme, or ephemeral (made at
	// start for a week: no warning of its expiry, which a restart cures).
	source string
}

// The log messages of certHealth.
const (
	msgCertExpired    = "server certificate expired: clients refuse it"
	msgCertNotYet     = "server certificate not valid yet: clients refuse it"
	msgCertExpiring   = "server certificate expires soon"
	msgCertValidAgain = "server certificates valid again: ready"
)

// certHealth watches the server certificates in service. While one is
// expired or not yet valid, clients refuse it: it logs an error (once a
// minute) and makes /readyz say why, until a valid one is in service. A
// certificate within warn of its expiry gets a warning when it is put in
// service and then once a day. It wakes at the next NotBefore or NotAfter
// in service, so readiness flips on time with no traffic, and when told of
// a change (reload, renewal).
type certHealth struct {
	log   *slog.Logger
	warn  time.Duration
	certs func() []servedCert

	changes chan struct{}
	problem atomic.Pointer[string] // why not ready; nil when healthy

	errors   throttle.Throttle[string] // by fingerprint
	warnings throttle.Throttle[string] // by fingerprint
}

func newCertHealth(log *slog.Logger, warn time.Duration, certs func() []servedCert) *certHealth {
	return &certHealth{log: log, warn: warn, certs: certs, changes: make(chan struct{}, 1),
		errors: throttle.Throttle[string]{Window: time.Minute}, warnings: throttle.Throttle[string]{Window: 24 * time.Hour}}
}

// reloaded says that the certificates were loaded again (SIGHUP, a file
// change): they are checked now, and what is wrong with them is logged
// again, even if they did not change.
func (h *certHealth) reloaded() {
	h.errors.Flush(func(string, int) {})
	h.warnings.Flush(func(string, int) {})
	h.changed()
}

// changed says that the certificates in service may have changed (an ACME
// renewal): they are checked now. A new certificate is warned of at once;
// one already warned of, at most once a day.
func (h *certHealth) changed() {
	select {
	case h.changes <- struct{}{}:
	default:
	}
}

// warnWithin is how close to its expiry c is warned of: the warn window,
// or for a certificate that ACME renews, a sixth of its lifetime if that is
// shorter. Renewal starts with a third left and is checked every tenth of
// the lifetime, so a warning means that renewals are failing, not that the
// certificate is short-lived (a 6-day certificate is always within a 7-day
// window).
func (h *certHealth) warnWithin(c servedCert) time.Duration {
	if c.source == "acme" {
		return min(h.warn, c.leaf.NotAfter.Sub(c.leaf.NotBefore)/6)
	}
	return h.warn
}

// unhealthy is why a certificate in service is unusable, or "".
func (h *certHealth) unhealthy() string {
	if p := h.problem.Load(); p != nil {
		return *p
	}
	return ""
}

// start checks the certificates now (so that what is wrong is logged before
// the first client is served), then in the background until ctx ends; done
// is closed then.
func (h *certHealth) start(ctx context.Context) (done <-chan struct{}) {
	wait := h.check(time.Now())
	c := make(chan struct{})
	go func() {
		defer close(c)
		h.run(ctx, wait)
	}()
	return c
}

func (h *certHealth) run(ctx context.Context, wait time.Duration) {
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-h.changes:
			t.Stop()
		case <-t.C:
		}
		wait = h.check(time.Now())
	}
}

// check logs what is wrong with the certificates in service at now, sets
// the readiness, and returns when to check again: at the next validity
// bound or warning in service, within a minute (certificates obtained by ACME change
// without telling), or every second while one is unusable (so a renewal
// is seen at once).
func (h *certHealth) check(now time.Time) time.Duration {
	wait := time.Minute
	var problems []string
	for _, c := range h.certs() {
		leaf := c.leaf
		id := identity.FromCertificate(leaf)
		switch {
		case now.After(leaf.NotAfter):
			ago := now.Sub(leaf.NotAfter).Round(time.Second)
			problems = append(problems, fmt.Sprintf("the certificate of %s expired at %s",
				id.Name, leaf.NotAfter.UTC().Format(time.RFC3339)))
			if _, ok := h.errors.Allow(id.Fingerprint); ok {
				h.log.Error(msgCertExpired, output.CertAttrs([]any{"source", c.source, "expired_for", ago.String()}, "cert_", &id)...)
			}
		case now.Before(leaf.NotBefore):
			in := leaf.NotBefore.Sub(now).Round(time.Second)
			problems = append(problems, fmt.Sprintf("the certificate of %s is not valid until %s",
				id.Name, leaf.NotBefore.UTC().Format(time.RFC3339)))
			if _, ok := h.errors.Allow(id.Fingerprint); ok {
				h.log.Error(msgCertNotYet, output.CertAttrs([]any{"source", c.source, "valid_in", in.String()}, "cert_", &id)...)
			}
			wait = min(wait, leaf.NotBefore.Sub(now))
		default:
			left := leaf.NotAfter.Sub(now)
			// Expired is after NotAfter (RFC 5280 section 4.1.2.5: the
			// bound is inclusive).
			wait = min(wait, left+time.Millisecond)
			switch within := h.warnWithin(c); {
			case h.warn == 0 || c.source == "ephemeral":
			case left > within:
				wait = min(wait, left-within)
			default:
				if _, ok := h.warnings.Allow(id.Fingerprint); ok {
					h.log.Warn(msgCertExpiring, output.CertAttrs([]any{"source", c.source, "days_left", int(left.Hours() / 24),
						"expires_in", left.Round(time.Second).String()}, "cert_", &id)...)
				}
			}
		}
	}
	was := h.unhealthy()
	if len(problems) == 0 {
		h.problem.Store(nil)
		if was != "" {
			h.log.Info(msgCertValidAgain)
		}
		return max(wait, time.Millisecond)
	}
	why := strings.Join(problems, "; ")
	h.problem.Store(&why)
	return max(min(wait, time.Second), time.Millisecond)
}
