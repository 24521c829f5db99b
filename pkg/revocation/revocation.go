// Package revocation checks verified client certificate chains against the
// revocation information their certificates point to: the CRLs at their
// http(s) CRL distribution points (RFC 5280 section 4.2.1.13), fetched,
// verified against the issuer in the chain and cached until their
// nextUpdate; and, through a hook, OCSP (asked first, CRLs on failure).
//
// Every fetch is bounded: in size (Options.MaxSize), in time
// (Options.Timeout, and the caller's context), in number (at most
// Options.MaxURLsPerCert URLs per certificate, single-flight per URL,
// Options.MaxInFlight fetches at once) and in what is kept
// (Options.MaxEntries URLs, Options.MaxBytes of CRLs). A failure is
// remembered for Options.RetryAfter, so a crowd of clients neither
// refetches a dead URL nor floods the log.
package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seclisten/seclisten/pkg/crl"
)

// Status is a revocation answer about one certificate.
type Status int

// The statuses.
const (
	// Unknown: no answer (the source failed or knows nothing).
	Unknown Status = iota
	// Good: not revoked.
	Good
	// Revoked: revoked.
	Revoked
)

// Answer is what a revocation source says about one certificate.
type Answer struct {
	Status Status
	// Source names the source for a revoked verdict, as the part after
	// the serial: "OCSP, responder http://ocsp.test, at 2026-01-02T03:04:05Z".
	Source string
}

// OCSPFunc asks about cert, issued by issuer. An error or an Unknown
// answer is no answer: the Checker then tries the certificate's CRLs.
// ErrNotAsked (a certificate that names no responder) is not a failure.
type OCSPFunc func(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error)

// ErrNotAsked is what an OCSPFunc returns for a certificate it has no one
// to ask about: the Checker goes on to the CRLs as if OCSP were off.
var ErrNotAsked = errors.New("no OCSP responder to ask")

// Defaults of Options' zero fields.
const (
	DefaultMaxSize        = 16 << 20
	DefaultTimeout        = 10 * time.Second
	DefaultMaxURLsPerCert = 3
	DefaultMaxEntries     = 1000
	DefaultMaxBytes       = 256 << 20
	DefaultMaxInFlight    = 16
	DefaultRetryAfter     = 30 * time.Second
	// DefaultMaxAge is how long a CRL without a nextUpdate is kept.
	DefaultMaxAge = time.Hour
	// bigCRL is the size of a fetched CRL past which the memory of its
	// parse is returned to the OS at once.
	bigCRL = 1 << 20
	// maxIgnoredLogged bounds the URLs remembered as already logged.
	maxIgnoredLogged = 1024
)

// Options configure a Checker. Zero fields take the defaults above.
type Options struct {
	// MaxSize bounds a CRL's body, in bytes: reading stops past it.
	MaxSize int64
	// Timeout bounds each fetch, whoever waits for it.
	Timeout time.Duration
	// FailOpen serves a client whose revocation status is unknown (and
	// logs why, once per URL per failure), instead of refusing it.
	FailOpen bool
	// MaxURLsPerCert is how many http(s) distribution points of one
	// certificate are tried, in order.
	MaxURLsPerCert int
	// MaxEntries and MaxBytes bound the cache: URLs (fetched, failed or
	// in flight) and the retained size of their CRLs.
	MaxEntries int
	MaxBytes   int64
	// MaxInFlight bounds the fetches running at once.
	MaxInFlight int
	// RetryAfter is how long a failed fetch is remembered before the URL
	// is tried again; also how early a failed refresh is retried.
	RetryAfter time.Duration
	// OCSP, if set, is asked first about each certificate.
	OCSP OCSPFunc
	// NoCRLs asks OCSP only: distribution points are not fetched.
	NoCRLs bool
	// Unknown, if set, is told of each certificate served with its status
	// unknown under FailOpen (the CRL failures are logged already; an OCSP
	// failure is for the caller to report).
	Unknown func(*UnknownError)
	// Client fetches the CRLs; nil: a client of its own.
	Client *http.Client
	// Log receives fetches, failures and ignored URLs; nil: none.
	Log *slog.Logger
	// Now is the clock (time.Now if nil), for tests.
	Now func() time.Time
}

// Checker checks chains. It is safe for concurrent use.
type Checker struct {
	opts   Options
	client *http.Client
	log    *slog.Logger
	base   context.Context
	stop   context.CancelFunc

	mu       sync.Mutex
	cache    map[cacheKey]*entry
	bytes    int64
	inFlight int
	ignored  map[string]bool

	fetches  atomic.Uint64
	failures atomic.Uint64
	// testHookFetched, if set, is called after each fetch ends.
	testHookFetched func(url string, err error)
}

type cacheKey struct {
	url    string
	issuer [sha256.Size]byte
}

type entry struct {
	url       string
	list      *crl.List // nil until a fetch succeeds
	fetched   time.Time
	expires   time.Time
	refreshAt time.Time
	size      int64
	err       error     // the last fetch's failure, nil after a success
	retryAt   time.Time // when err may be retried
	flight    chan struct{}
	used      time.Time
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// New makes a Checker. Close ends its fetches.
func New(opts Options) *Checker {
	orDefault(&opts.MaxSize, DefaultMaxSize)
	orDefault(&opts.Timeout, DefaultTimeout)
	orDefault(&opts.MaxURLsPerCert, DefaultMaxURLsPerCert)
	orDefault(&opts.MaxEntries, DefaultMaxEntries)
	orDefault(&opts.MaxBytes, DefaultMaxBytes)
	orDefault(&opts.MaxInFlight, DefaultMaxInFlight)
	orDefault(&opts.RetryAfter, DefaultRetryAfter)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Checker{opts: opts, client: opts.Client, log: opts.Log,
		cache: map[cacheKey]*entry{}, ignored: map[string]bool{}}
	if c.client == nil {
		c.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                  http.ProxyFromEnvironment,
				MaxResponseHeaderBytes: 64 << 10,
				// CRLs are fetched rarely: no idle connections kept.
				DisableKeepAlives: true,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("more than 3 redirects")
				}
				return nil
			},
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.base, c.stop = context.WithCancel(context.Background())
	return c
}

// Close cancels the fetches in flight; the Checker still answers from its
// cache.
func (c *Checker) Close() { c.stop() }

// UnknownError is a certificate whose revocation status could not be had.
type UnknownError struct {
	Subject string
	OCSP    error // the OCSP failure, nil when OCSP was not asked
	CRL     error // the CRL failure, nil when the certificate names no CRL
}

func (e *UnknownError) Error() string {
	var parts []string
	if e.OCSP != nil {
		parts = append(parts, "OCSP failed: "+e.OCSP.Error())
	}
	if e.CRL != nil {
		parts = append(parts, "CRL fetch failed: "+e.CRL.Error())
	}
	return "revocation status unknown: " + strings.Join(parts, "; ")
}

// Check checks each certificate of a verified chain (leaf first) but the
// root against its issuer's OCSP responder (if Options.OCSP) and then its
// CRLs. It returns nil, a *crl.RevokedError or, failing closed, an
// *UnknownError. ctx bounds the wait (a fetch goes on for the next
// client, within Options.Timeout).
func (c *Checker) Check(ctx context.Context, chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := c.checkOne(ctx, chain[i], chain[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Checker) checkOne(ctx context.Context, cert, issuer *x509.Certificate) error {
	var ocspErr error
	if c.opts.OCSP != nil {
		a, err := c.opts.OCSP(ctx, cert, issuer)
		switch {
		case errors.Is(err, ErrNotAsked):
		case err != nil:
			ocspErr = err
		case a.Status == Good:
			return nil
		case a.Status == Revoked:
			return &crl.RevokedError{Serial: cert.SerialNumber, Subject: cert.Subject.String(), Source: a.Source}
		default:
			ocspErr = errors.New("the responder does not know the certificate")
		}
	}
	var urls []string
	if !c.opts.NoCRLs {
		urls = c.urls(cert)
	}
	if len(urls) == 0 {
		if ocspErr != nil {
			return c.unknown(cert, ocspErr, nil)
		}
		return nil
	}
	var crlErr error
	for _, u := range urls {
		l, fetched, err := c.get(ctx, u, issuer)
		if err != nil {
			crlErr = err
			continue
		}
		if l.Revoked(cert.SerialNumber) {
			return &crl.RevokedError{Serial: cert.SerialNumber, Subject: cert.Subject.String(), CRLIssuer: l.IssuerName,
				Source: fmt.Sprintf("CRL from %s fetched %s ago", u, Age(c.opts.Now().Sub(fetched)))}
		}
		return nil
	}
	return c.unknown(cert, ocspErr, crlErr)
}

func (c *Checker) unknown(cert *x509.Certificate, ocspErr, crlErr error) error {
	err := &UnknownError{Subject: cert.Subject.String(), OCSP: ocspErr, CRL: crlErr}
	if c.opts.FailOpen {
		// A CRL failure is logged where the fetch failed, once per failure.
		if c.opts.Unknown != nil {
			c.opts.Unknown(err)
		}
		return nil
	}
	return err
}

// Age is d for a verdict, in one unit: 42s, 2m, 5h, 3d.
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(max(d, 0)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// urls are the first MaxURLsPerCert http(s) distribution points of cert.
// Others (file:, ldap:, ...) are logged once each and ignored.
func (c *Checker) urls(cert *x509.Certificate) []string {
	var out []string
	for _, u := range cert.CRLDistributionPoints {
		lower := strings.ToLower(u)
		if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
			if len(out) < c.opts.MaxURLsPerCert {
				out = append(out, u)
			}
			continue
		}
		c.ignore(u, cert)
	}
	return out
}

func (c *Checker) ignore(u string, cert *x509.Certificate) {
	c.mu.Lock()
	seen := c.ignored[u]
	if !seen && len(c.ignored) < maxIgnoredLogged {
		c.ignored[u] = true
	}
	c.mu.Unlock()
	if !seen {
		c.log.Warn("ignoring a CRL distribution point: only http and https are fetched",
			"url", bound(u), "subject", bound(cert.Subject.String()))
	}
}

// bound shortens a string from a certificate for the log.
func bound(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// get returns the CRL of issuer at url, from the cache or fetched, and when
// it was fetched.
func (c *Checker) get(ctx context.Context, url string, issuer *x509.Certificate) (*crl.List, time.Time, error) {
	key := cacheKey{url: url, issuer: sha256.Sum256(issuer.Raw)}
	for round := 0; ; round++ {
		c.mu.Lock()
		now := c.opts.Now()
		e := c.cache[key]
		if e != nil {
			e.used = now
			if e.list != nil && now.Before(e.expires) {
				l, fetched := e.list, e.fetched
				c.mu.Unlock()
				return l, fetched, nil
			}
			if e.flight == nil && e.err != nil && now.Before(e.retryAt) {
				err := e.err
				c.mu.Unlock()
				return nil, time.Time{}, err
			}
		}
		if e == nil || e.flight == nil {
			var err error
			e, err = c.start(key, e, issuer, now)
			if err != nil {
				c.mu.Unlock()
				return nil, time.Time{}, err
			}
		}
		flight := e.flight
		c.mu.Unlock()
		select {
		case <-flight:
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("%s: no answer before the handshake's deadline", url)
		}
		// The fetch is done: read its result. A failed refresh may leave
		// an expired CRL behind: that one is no answer.
		c.mu.Lock()
		if e.list != nil && c.opts.Now().Before(e.expires) {
			l, fetched := e.list, e.fetched
			c.mu.Unlock()
			return l, fetched, nil
		}
		err := e.err
		c.mu.Unlock()
		if err != nil {
			return nil, time.Time{}, err
		}
		if round > 0 {
			return nil, time.Time{}, fmt.Errorf("%s: the CRL expired as soon as it was fetched", url)
		}
	}
}

// start begins a fetch for key, making its entry if e is nil. c.mu is held.
func (c *Checker) start(key cacheKey, e *entry, issuer *x509.Certificate, now time.Time) (*entry, error) {
	if c.inFlight >= c.opts.MaxInFlight {
		return nil, fmt.Errorf("%s: %d CRL fetches already in flight", key.url, c.inFlight)
	}
	if e == nil {
		if len(c.cache) >= c.opts.MaxEntries && !c.evict(nil) {
			return nil, fmt.Errorf("%s: the CRL cache is full (%d URLs)", key.url, len(c.cache))
		}
		e = &entry{url: key.url, used: now}
		c.cache[key] = e
	}
	e.flight = make(chan struct{})
	c.inFlight++
	go c.fetchInto(key, e, issuer)
	return e, nil
}

// evict drops the least recently used entry that is not in flight and is
// not keep. c.mu is held.
func (c *Checker) evict(keep *entry) bool {
	var oldest cacheKey
	var victim *entry
	for k, e := range c.cache {
		if e.flight != nil || e == keep {
			continue
		}
		if victim == nil || e.used.Before(victim.used) {
			oldest, victim = k, e
		}
	}
	if victim == nil {
		return false
	}
	c.bytes -= victim.size
	delete(c.cache, oldest)
	return true
}

func (c *Checker) fetchInto(key cacheKey, e *entry, issuer *x509.Certificate) {
	l, size, err := c.fetch(key.url, issuer)
	now := c.opts.Now()
	c.fetches.Add(1)
	c.mu.Lock()
	c.inFlight--
	if err != nil {
		c.failures.Add(1)
		e.err, e.retryAt = err, now.Add(c.opts.RetryAfter)
		if e.list != nil {
			// A failed refresh keeps the CRL in service until it expires,
			// and is retried before then.
			e.refreshAt = now.Add(c.opts.RetryAfter)
			if e.expires.Before(e.refreshAt) {
				e.refreshAt = e.expires
			}
		}
	} else {
		c.bytes += size - e.size
		e.list, e.size, e.err, e.fetched = l, size, nil, now
		e.expires = l.NextUpdate
		if e.expires.IsZero() {
			e.expires = now.Add(DefaultMaxAge)
		}
		// Refreshed in the background a tenth of its life before it
		// expires (at most ten minutes early).
		e.refreshAt = e.expires.Add(-min(e.expires.Sub(now)/10, 10*time.Minute))
		for c.bytes > c.opts.MaxBytes && c.evict(e) {
		}
	}
	close(e.flight)
	e.flight = nil
	c.mu.Unlock()
	if err != nil {
		if c.opts.FailOpen {
			c.log.Warn("revocation status unknown: CRL fetch failed; serving the clients it covers anyway (fail open)",
				"url", bound(key.url), "err", err, "retry_in", c.opts.RetryAfter)
		} else {
			c.log.Warn("revocation status unknown: CRL fetch failed; refusing the clients it covers (fail closed)",
				"url", bound(key.url), "err", err, "retry_in", c.opts.RetryAfter)
		}
	} else {
		c.log.Info("fetched CRL", "url", bound(key.url), "issuer", l.IssuerName, "entries", l.Len(),
			"next_update", e.expires.UTC().Format(time.RFC3339), "bytes", size)
	}
	if c.testHookFetched != nil {
		c.testHookFetched(key.url, err)
	}
}

// fetch gets and verifies the CRL at url, and returns it with its
// retained size.
func (c *Checker) fetch(url string, issuer *x509.Certificate) (*crl.List, int64, error) {
	ctx, cancel := context.WithTimeout(c.base, c.opts.Timeout)
	defer cancel()
	l, size, err := c.fetchCtx(ctx, url, issuer)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: no complete answer within %s", url, c.opts.Timeout)
	}
	return l, size, err
}

func (c *Checker) fetchCtx(ctx context.Context, url string, issuer *x509.Certificate) (*crl.List, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", url, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s: HTTP status %s", url, resp.Status)
	}
	tooBig := fmt.Errorf("%s: the CRL is larger than the limit of %d bytes", url, c.opts.MaxSize)
	if resp.ContentLength > c.opts.MaxSize {
		return nil, 0, tooBig
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: reading the CRL: %w", url, err)
	}
	if int64(len(body)) > c.opts.MaxSize {
		return nil, 0, tooBig
	}
	l, err := ParseFetched(body, issuer, c.opts.Now())
	if len(body) >= bigCRL {
		// As tlsconf does for big CRL files: the parse peaks at hundreds
		// of bytes an entry, kept is about 20; give the rest back now
		// (once per fetch of a big CRL, not per connection).
		debug.FreeOSMemory()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", url, err)
	}
	return l, l.Size(), nil
}

// ParseFetched parses a CRL fetched for the certificates issuer signed: one
// CRL (DER or PEM), signed by issuer, current at now.
func ParseFetched(body []byte, issuer *x509.Certificate, now time.Time) (*crl.List, error) {
	lists, err := crl.Parse(body, []*x509.Certificate{issuer})
	var unsigned *crl.UnsignedError
	switch {
	case errors.As(err, &unsigned):
		return nil, fmt.Errorf("the CRL of %s is not signed by the certificate's issuer %s", unsigned.CRLIssuer, issuer.Subject)
	case err != nil:
		return nil, err
	case len(lists) != 1:
		return nil, fmt.Errorf("%d CRLs in one answer, want one", len(lists))
	case lists[0].Stale(now):
		return nil, fmt.Errorf("the CRL is stale (next update was due %s)", lists[0].NextUpdate.UTC().Format(time.RFC3339))
	}
	return lists[0], nil
}

// Run refreshes, until ctx ends, the CRLs due for it (a tenth of their
// life before they expire) that clients used since their last fetch, and
// drops the ones no client used; then Close.
func (c *Checker) Run(ctx context.Context, tick time.Duration) {
	defer c.Close()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.refresh()
	}
}

func (c *Checker) refresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	for k, e := range c.cache {
		if e.flight != nil || e.list == nil || now.Before(e.refreshAt) {
			continue
		}
		if e.used.Before(e.fetched) && !now.Before(e.expires) {
			// Expired and unused since its fetch: no client needs it.
			c.bytes -= e.size
			delete(c.cache, k)
			continue
		}
		if e.err != nil && now.Before(e.retryAt) {
			continue
		}
		issuer := e.list.Issuer
		if _, err := c.start(k, e, issuer, now); err != nil {
			return // too many in flight: next tick
		}
	}
}

// Stats are the cache's figures, for metrics.
type Stats struct {
	Entries  int           // URLs cached (fetched, failed or in flight)
	Bytes    int64         // retained size of the cached CRLs
	Oldest   time.Duration // age of the oldest CRL in the cache; 0 for none
	Fetches  uint64        // fetches ended
	Failures uint64        // fetches failed
}

// Stats reports the cache's figures now.
func (c *Checker) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Entries: len(c.cache), Bytes: c.bytes, Fetches: c.fetches.Load(), Failures: c.failures.Load()}
	now := c.opts.Now()
	for _, e := range c.cache {
		if e.list != nil {
			s.Oldest = max(s.Oldest, now.Sub(e.fetched))
		}
	}
	return s
}
