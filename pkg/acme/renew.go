package acme

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/caddyserver/certmagic"
)

// minCheck is the shortest renewal check interval: a 30-second test
// certificate is checked every 3 seconds, nothing more often than this.
const minCheck = time.Second

// maxRenewRetry bounds the wait between failed renewal attempts of a
// long-lived certificate: a failure hours before expiry is retried within
// the hour, and Let's Encrypt's limit of 5 failed validations per hour per
// name is never reached by the retries alone.
const maxRenewRetry = time.Hour

// renewFailure is a domain's run of failed renewal attempts.
type renewFailure struct {
	attempts int
	next     time.Time // the next attempt
}

// renewLoop renews the configured domains' certificates until ctx ends.
// certmagic's own maintenance loop checks every RenewCheckInterval, fixed
// when its cache is made, before any lifetime is known, and it retries a
// failed renewal after 1 minute at the soonest: a 30-second certificate
// was served expired for most of a check interval, and a failure logged
// once. This loop checks at a tenth of the shortest lifetime in service
// (at most the RenewCheckInterval), makes each attempt itself, so every
// failure, whatever its cause (the CA, the storage), is logged with the
// time of the next attempt. certmagic's loop still runs (ARI, OCSP); the
// two agree through certmagic's storage lock.
func (m *Manager) renewLoop(ctx context.Context) {
	fails := map[string]*renewFailure{}
	for {
		wait := m.renewDue(ctx, fails)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.wake:
			// A certificate was put in service: its lifetime may
			// shorten the interval.
			t.Stop()
		case <-t.C:
		}
	}
}

// CheckInterval is how often the certificates are checked for renewal: the
// RenewCheckInterval (certmagic's default, 10 minutes, if zero), or a tenth
// of the shortest lifetime among the certificates in service if that is
// shorter, but never under a second.
func (m *Manager) CheckInterval() time.Duration {
	interval := m.opts.RenewCheckInterval
	if interval <= 0 {
		interval = certmagic.DefaultRenewCheckInterval
	}
	for _, d := range m.opts.Domains {
		if c, ok := m.served(d); ok {
			interval = min(interval, max(c.Lifetime()/10, minCheck))
		}
	}
	return interval
}

// served is the certificate in service for a configured domain.
func (m *Manager) served(domain string) (certmagic.Certificate, bool) {
	for _, c := range m.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil {
			return c, true
		}
	}
	return certmagic.Certificate{}, false
}

// InService are the certificates in service for the configured domains
// (on-demand ones are obtained and renewed at handshakes).
func (m *Manager) InService() []*x509.Certificate {
	var out []*x509.Certificate
	for _, d := range m.opts.Domains {
		if c, ok := m.served(d); ok {
			out = append(out, c.Leaf)
		}
	}
	return out
}

// renewDue renews the certificates within their renewal window (the last
// third of their lifetime, certmagic's RenewalWindowRatio) whose retry
// time has come, and returns how long to wait before the next check.
func (m *Manager) renewDue(ctx context.Context, fails map[string]*renewFailure) time.Duration {
	interval := m.CheckInterval()
	wait := interval
	for _, d := range m.opts.Domains {
		cert, ok := m.served(d)
		if !ok {
			continue // manage is still obtaining it
		}
		now := time.Now()
		if !m.renewalDue(cert.Leaf, now) {
			delete(fails, d)
			continue
		}
		f := fails[d]
		if f != nil && now.Before(f.next) {
			wait = min(wait, f.next.Sub(now))
			continue
		}
		cfg := m.cfg
		if f != nil && f.attempts%2 == 1 {
			// Every other retry names no certificate replaced (ARI's
			// "replaces"), in case the CA refuses the name: an account
			// other than the one that ordered it (a changed contact
			// address makes a new account, and Let's Encrypt refuses
			// it), a CA that lost the old order, or one that reads the
			// serial differently (Pebble, whenever its first byte is
			// 0x80 or more). certmagic's issuer leaves the name out at
			// its own retry loop's third attempt, but on a retry it
			// orders from Let's Encrypt's staging CA first and then
			// from production as a first attempt, with the name.
			cfg = m.noARI
		}
		err := cfg.RenewCertSync(ctx, d, false)
		if ctx.Err() != nil {
			return wait
		}
		if err == nil {
			delete(fails, d)
			m.swap(ctx, d, cert)
			continue
		}
		if f == nil {
			f = &renewFailure{}
			fails[d] = f
		}
		f.attempts++
		retry := max(interval, min(maxRenewRetry, cert.Lifetime()/10))
		retry = min(interval<<min(f.attempts-1, 20), retry)
		f.next = time.Now().Add(retry)
		wait = min(wait, retry)
		leaf := cert.Leaf
		attrs := []any{"domain", d, "attempt", f.attempts, "err", err,
			"next_retry", f.next.UTC().Format(time.RFC3339), "retry_in", retry.Round(time.Millisecond).String(),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
		if left := time.Until(leaf.NotAfter); left > 0 {
			attrs = append(attrs, "expires_in", left.Round(time.Second).String())
		} else {
			attrs = append(attrs, "expired_for", (-left).Round(time.Second).String())
		}
		m.log.Warn("ACME renewal failed; the certificate in service stays until a renewal succeeds", attrs...)
	}
	return max(wait, 10*time.Millisecond)
}

// renewalDue reports whether leaf is within its renewal window: at most
// RenewalWindowRatio of its lifetime left, or expired.
func (m *Manager) renewalDue(leaf *x509.Certificate, now time.Time) bool {
	ratio := m.cfg.RenewalWindowRatio
	if ratio <= 0 {
		ratio = certmagic.DefaultRenewalWindowRatio
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(now) <= time.Duration(float64(lifetime)*ratio)
}

// swap puts the renewed certificate, now in storage, in service in place
// of old (RenewCertSync writes storage only).
func (m *Manager) swap(ctx context.Context, domain string, old certmagic.Certificate) {
	c, err := m.cfg.CacheManagedCertificate(ctx, domain)
	if err != nil || c.Leaf == nil {
		m.log.Warn("ACME: the renewed certificate could not be loaded; the old one stays in service", "domain", domain, "err", err)
		return
	}
	if c.Hash() != old.Hash() {
		m.cache.Remove([]string{old.Hash()})
	}
	m.tell(domain, c.Leaf.NotAfter)
}
