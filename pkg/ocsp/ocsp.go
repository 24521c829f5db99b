package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	"golang.org/x/sync/singleflight"
)

// Status is what a responder says of a certificate.
type Status int

// The statuses (RFC 6960 section 2.2).
const (
	Good Status = iota + 1
	Revoked
	Unknown
)

func (s Status) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	case Unknown:
		return "unknown"
	}
	return "invalid"
}

// Answer is a verified OCSP response for one certificate.
type Answer struct {
	Status Status
	// RevokedAt and Reason (RFC 5280 section 5.3.1) are set when Revoked.
	RevokedAt time.Time
	Reason    int
	// Responder is the URL asked.
	Responder string
	// ProducedAt, ThisUpdate and NextUpdate are the response's times;
	// NextUpdate is zero when the responder gave none.
	ProducedAt, ThisUpdate, NextUpdate time.Time
	// Raw is the DER response, as a server staples it.
	Raw []byte
}

// Options configure a Client. Zero values take the defaults named.
type Options struct {
	// Timeout bounds one fetch, connection included (default 5s).
	Timeout time.Duration
	// MaxResponse bounds a response body, in bytes (default 64 KiB; RFC
	// 5019 responses are a few hundred bytes to a few KiB).
	MaxResponse int64
	// MaxEntries bounds the cache (default 10,000 answers).
	MaxEntries int
	// DefaultTTL is how long an answer without nextUpdate is cached, and
	// the oldest thisUpdate such an answer may have (default 1h).
	DefaultTTL time.Duration
	// Skew is the clock difference tolerated on thisUpdate and nextUpdate
	// (default 5m).
	Skew time.Duration
	// RetryAfter is how long a responder that failed is not asked again:
	// checks fail at once with its last error meanwhile (default 10s). It
	// bounds the fetches, and the handshakes waiting on a dead responder.
	RetryAfter time.Duration
	// MaxInflight bounds concurrent fetches over all responders (default
	// 32); a check beyond it fails at once.
	MaxInflight int
	// Now is the clock (time.Now if nil), for tests.
	Now func() time.Time
	// Transport, if set, replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Defaults of Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxResponse = 64 << 10
	DefaultMaxEntries  = 10_000
	DefaultTTL         = time.Hour
	DefaultSkew        = 5 * time.Minute
	DefaultRetryAfter  = 10 * time.Second
	DefaultMaxInflight = 32
)

// Client checks certificates with their OCSP responders. It is safe for
// concurrent use.
type Client struct {
	opts   Options
	http   *http.Client
	flight singleflight.Group
	slots  chan struct{}

	mu      sync.Mutex
	cache   map[key]Answer
	down    map[string]downState // responder URL: last failure
	results [4]atomic.Uint64     // by resultIndex
}

type key struct {
	issuer [32]byte // SHA-256 of the issuer's certificate
	serial string
}

type downState struct {
	at  time.Time
	err error
}

// New makes a Client.
func New(opts Options) *Client {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Timeout, DefaultTimeout)
	def(&opts.DefaultTTL, DefaultTTL)
	def(&opts.Skew, DefaultSkew)
	def(&opts.RetryAfter, DefaultRetryAfter)
	if opts.MaxResponse <= 0 {
		opts.MaxResponse = DefaultMaxResponse
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tr := opts.Transport
	if tr == nil {
		// No proxy from the environment: the responder is asked directly.
		tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
			ResponseHeaderTimeout: opts.Timeout, MaxResponseHeaderBytes: 16 << 10}
	}
	return &Client{
		opts: opts,
		http: &http.Client{Transport: tr, Timeout: opts.Timeout,
			// A responder answers; it does not send us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		slots: make(chan struct{}, opts.MaxInflight),
		cache: map[key]Answer{},
		down:  map[string]downState{},
	}
}

// Responder is the OCSP responder a certificate names that this package
// asks: the first http URL of its AIA, or "" if it names none.
// https responders are skipped: fetching one would need a TLS handshake
// whose own certificate may need checking.
func Responder(cert *x509.Certificate) string {
	for _, u := range cert.OCSPServer {
		if p, err := url.Parse(u); err == nil && p.Scheme == "http" && p.Host != "" {
			return u
		}
	}
	return ""
}

// ErrNoResponder is returned for a certificate that names no http OCSP
// responder.
var ErrNoResponder = errors.New("the certificate names no http OCSP responder")

// Error is a failure to get a verified answer from a responder.
type Error struct {
	Responder string
	Err       error
}

func (e *Error) Error() string {
	if e.Responder == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("responder %s: %v", e.Responder, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Check returns the status of cert, issued by issuer: from the cache when
// a verified answer is still fresh, else from the responder. Good and
// Revoked answers are cached until their nextUpdate (DefaultTTL without
// one); Unknown ones are not. The error is an *Error (or ErrNoResponder).
func (c *Client) Check(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error) {
	a, err := c.check(ctx, cert, issuer)
	switch {
	case err != nil:
		c.results[3].Add(1)
	default:
		c.results[a.Status-1].Add(1)
	}
	return a, err
}

func (c *Client) check(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error) {
	k := key{issuer: sha256Sum(issuer.Raw), serial: string(cert.SerialNumber.Bytes())}
	now := c.opts.Now()
	c.mu.Lock()
	a, ok := c.cache[k]
	if ok && !c.fresh(a, now) {
		delete(c.cache, k)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	// One fetch per (issuer, serial), however many handshakes wait on it.
	v, err, _ := c.flight.Do(string(k.issuer[:])+k.serial, func() (any, error) {
		a, err := c.Fetch(ctx, cert, issuer)
		if err == nil && a.Status != Unknown {
			c.store(k, a)
		}
		return a, err
	})
	if err != nil {
		return Answer{}, err
	}
	return v.(Answer), nil
}

// fresh reports whether a cached answer may still be used at now.
func (c *Client) fresh(a Answer, now time.Time) bool {
	if !a.NextUpdate.IsZero() {
		return now.Before(a.NextUpdate)
	}
	return now.Before(a.ThisUpdate.Add(c.opts.DefaultTTL))
}

// store caches a, evicting the answers that expire first when full.
func (c *Client) store(k key, a Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cache[k]; !ok && len(c.cache) >= c.opts.MaxEntries {
		now := c.opts.Now()
		for ck, ca := range c.cache {
			if !c.fresh(ca, now) {
				delete(c.cache, ck)
			}
		}
		for len(c.cache) >= c.opts.MaxEntries {
			var first key
			var at time.Time
			for ck, ca := range c.cache {
				if e := c.expiry(ca); at.IsZero() || e.Before(at) {
					first, at = ck, e
				}
			}
			delete(c.cache, first)
		}
	}
	a.Raw = nil // the cache keeps the verdict, not the response
	c.cache[k] = a
}

func (c *Client) expiry(a Answer) time.Time {
	if !a.NextUpdate.IsZero() {
		return a.NextUpdate
	}
	return a.ThisUpdate.Add(c.opts.DefaultTTL)
}

// Len is the number of cached answers.
func (c *Client) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cache)
}

// Results are the counts of Check's results since New: good, revoked,
// unknown, and error (no verified answer).
func (c *Client) Results() (good, revoked, unknown, failed uint64) {
	return c.results[0].Load(), c.results[1].Load(), c.results[2].Load(), c.results[3].Load()
}

// Fetch asks cert's responder, bypassing the cache, and verifies the
// answer; a server fetches its own staple this way. The error is an
// *Error (or ErrNoResponder).
func (c *Client) Fetch(ctx context.Context, cert, issuer *x509.Certificate) (Answer, error) {
	responder := Responder(cert)
	if responder == "" {
		return Answer{}, ErrNoResponder
	}
	fail := func(err error) (Answer, error) {
		c.mu.Lock()
		c.down[responder] = downState{at: c.opts.Now(), err: err}
		if len(c.down) > c.opts.MaxEntries {
			clear(c.down)
		}
		c.mu.Unlock()
		return Answer{}, &Error{Responder: responder, Err: err}
	}
	c.mu.Lock()
	d, isDown := c.down[responder]
	c.mu.Unlock()
	if isDown {
		if ago := c.opts.Now().Sub(d.at); ago < c.opts.RetryAfter {
			return Answer{}, &Error{Responder: responder,
				Err: fmt.Errorf("%w (%s ago; not asked again for %s)", d.err, ago.Round(time.Millisecond), c.opts.RetryAfter)}
		}
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	default:
		return Answer{}, &Error{Responder: responder, Err: fmt.Errorf("too many OCSP fetches in flight (%d)", c.opts.MaxInflight)}
	}
	der, err := c.get(ctx, responder, cert, issuer)
	if err != nil {
		return fail(err)
	}
	a, err := Verify(der, cert, issuer, c.opts.Now(), c.opts.Skew, c.opts.DefaultTTL)
	if err != nil {
		return fail(err)
	}
	a.Responder = responder
	c.mu.Lock()
	delete(c.down, responder)
	c.mu.Unlock()
	return a, nil
}

// get sends the request and reads the response, bounded in time and size.
// It POSTs (RFC 6960 appendix A.1); every responder accepts POST, while
// GET (RFC 5019 section 5) needs URL-escaping that some get wrong.
func (c *Client) get(ctx context.Context, responder string, cert, issuer *x509.Certificate) ([]byte, error) {
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, fmt.Errorf("make request: %w", err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.http.Do(hreq)
	if err != nil {
		// Three clocks bound the wait (the context, the client's timeout
		// and the transport's header timeout): whichever fires, it is
		// the same failure, said the same way.
		var ne net.Error
		switch {
		case parent.Err() != nil:
			return nil, errors.New("no answer before the handshake's deadline")
		case ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
			return nil, fmt.Errorf("no answer within %s", c.opts.Timeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponse+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no complete answer within %s", c.opts.Timeout)
		}
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(body)) > c.opts.MaxResponse {
		return nil, fmt.Errorf("response larger than %d bytes", c.opts.MaxResponse)
	}
	return body, nil
}

// Verify parses an OCSP response for cert and checks what RFC 6960
// section 3.2 asks of a client: it is about cert's serial; it is signed by
// issuer, or by a responder certificate issuer signed for that purpose
// (id-kp-OCSPSigning, valid now: section 4.2.2.2); thisUpdate is not in
// the future, nextUpdate not past (skew allowed each way). An answer
// without nextUpdate may be at most maxAge old.
func Verify(der []byte, cert, issuer *x509.Certificate, now time.Time, skew, maxAge time.Duration) (Answer, error) {
	// Without an issuer, x/crypto/ocsp checks the signature against the
	// embedded certificate only (if any); who may sign is checked below.
	r, err := xocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		var re xocsp.ResponseError
		if errors.As(err, &re) {
			return Answer{}, fmt.Errorf("responder refused: %s", re.Status)
		}
		var se asn1.StructuralError
		var sy asn1.SyntaxError
		if errors.As(err, &se) || errors.As(err, &sy) {
			// asn1's own words ("tags don't match (16 vs {class:1 ...")
			// tell an operator nothing; a responder that answers HTML or
			// text is the usual cause.
			return Answer{}, fmt.Errorf("bad response: not a DER-encoded OCSP response (%d bytes)", len(der))
		}
		return Answer{}, fmt.Errorf("bad response: %w", err)
	}
	if err := authorized(r, issuer, now); err != nil {
		return Answer{}, err
	}
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(r.ThisUpdate) {
		return Answer{}, errors.New("bad response: nextUpdate before thisUpdate")
	}
	if r.ThisUpdate.After(now.Add(skew)) {
		return Answer{}, fmt.Errorf("response from the future (thisUpdate %s)", r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !r.NextUpdate.IsZero() && now.After(r.NextUpdate.Add(skew)) {
		return Answer{}, fmt.Errorf("old response: its nextUpdate %s is past", r.NextUpdate.UTC().Format(time.RFC3339))
	}
	if r.NextUpdate.IsZero() && now.After(r.ThisUpdate.Add(maxAge)) {
		return Answer{}, fmt.Errorf("old response: thisUpdate %s, no nextUpdate", r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	a := Answer{ProducedAt: r.ProducedAt, ThisUpdate: r.ThisUpdate, NextUpdate: r.NextUpdate, Raw: der}
	switch r.Status {
	case xocsp.Good:
		a.Status = Good
	case xocsp.Revoked:
		a.Status, a.RevokedAt, a.Reason = Revoked, r.RevokedAt, r.RevocationReason
	default:
		a.Status = Unknown
	}
	return a, nil
}

// authorized checks who signed r: the issuer, or a delegated responder.
func authorized(r *xocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := r.Certificate
	if signer == nil || signer.Equal(issuer) {
		if err := r.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("response not signed by the issuer %s: %w", issuer.Subject, err)
		}
		return nil
	}
	// A delegated responder (RFC 6960 section 4.2.2.2): issued by the CA
	// that issued the certificate, for OCSP signing. Its signature on the
	// response was checked by ParseResponseForCert.
	if err := signer.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("response signed by %s, which the issuer %s did not issue: %w", signer.Subject, issuer.Subject, err)
	}
	if !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fmt.Errorf("response signed by %s, which is not an OCSP responder (no id-kp-OCSPSigning)", signer.Subject)
	}
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return fmt.Errorf("response signed by %s, whose certificate is not valid now", signer.Subject)
	}
	return nil
}
