package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/revocation"
	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// setupOCSP makes the OCSP client of a TLS server: for the client
// certificate checks if cfg asks for them (askOCSP, the revocation
// checker's first source), and for the file certificate's staple. It
// registers the OCSP metrics.
func (s *Server) setupOCSP() {
	s.ocsp = ocsp.New(ocsp.Options{})
	s.metrics.OCSP(s.ocsp.Results, s.ocsp.Len, s.stapleAge)
}

// askOCSP is the revocation checker's OCSP source: cert's responder, if it
// names one.
func (s *Server) askOCSP(ctx context.Context, cert, issuer *x509.Certificate) (revocation.Answer, error) {
	a, err := s.ocsp.Check(ctx, cert, issuer)
	switch {
	case errors.Is(err, ocsp.ErrNoResponder):
		return revocation.Answer{}, revocation.ErrNotAsked
	case err != nil:
		return revocation.Answer{}, err
	case a.Status == ocsp.Good:
		return revocation.Answer{Status: revocation.Good}, nil
	case a.Status == ocsp.Revoked:
		return revocation.Answer{Status: revocation.Revoked,
			Source: fmt.Sprintf("OCSP, responder %s, at %s", a.Responder, a.RevokedAt.UTC().Format(time.RFC3339))}, nil
	}
	return revocation.Answer{}, &ocsp.Error{Responder: a.Responder, Err: errors.New("it does not know the certificate (status unknown)")}
}

// stapleAge is the age of the staple in service, if any.
func (s *Server) stapleAge() (time.Duration, bool) {
	if s.tls == nil {
		return 0, false
	}
	m := s.tls.Current()
	if m.Cert == nil || m.Cert.OCSPStaple == nil {
		return 0, false
	}
	return time.Since(m.Staple.ThisUpdate), true
}

// unknownPeriod is how often a responder whose failures fail open is
// warned of.
const unknownPeriod = time.Minute

// unknownWarner warns, once per responder per unknownPeriod, of clients
// served with their revocation status unknown (fail open): one line per
// outage, not one per handshake.
type unknownWarner struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (w *unknownWarner) warn(s *Server, uerr *revocation.UnknownError) {
	var err *ocsp.Error
	if !errors.As(uerr.OCSP, &err) {
		return // a CRL failure, logged by the checker
	}
	now := time.Now()
	w.mu.Lock()
	if now.Sub(w.last[err.Responder]) < unknownPeriod {
		w.mu.Unlock()
		return
	}
	if len(w.last) >= 1000 {
		clear(w.last) // responders come from verified certificates: few
	}
	w.last[err.Responder] = now
	w.mu.Unlock()
	attrs := []any{"code", outcome.RevocationUnknown, "responder", err.Responder, "err", err.Err,
		"note", fmt.Sprintf("logged once per responder every %s", unknownPeriod)}
	if s.Flags != nil {
		attrs = append(attrs, "flags", s.Flags(outcome.RevocationUnknown))
	}
	s.log.Warn("serving clients whose revocation status is unknown (failing open)", attrs...)
}

// Stapling timing: a failed fetch is retried after stapleRetry (sooner if
// the staple in service expires first); a good one is refreshed halfway
// through its validity, at most once per stapleMinRefresh.
const (
	stapleRetry      = time.Minute
	stapleMinRefresh = time.Second
)

// staple keeps an OCSP response stapled to the file certificate, if it
// names a responder (RFC 6066 section 8), until ctx ends: fetched at
// start, in the background (the server serves without a staple
// meanwhile), refreshed before it expires, and again for new material
// after each reload. A failed refresh keeps the last good staple until
// its nextUpdate; only a verified, unexpired "good" answer is stapled.
func (s *Server) staple(ctx context.Context) {
	var noted []byte // the leaf whose lack of stapling was logged
	for {
		changed := s.tls.Changed()
		wait := s.stapleOnce(ctx, &noted)
		var timer *time.Timer
		var tick <-chan time.Time
		if wait >= 0 {
			timer = time.NewTimer(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// stapleOnce fetches and staples once, and returns how long to wait before
// the next attempt (-1: until the material changes).
func (s *Server) stapleOnce(ctx context.Context, noted *[]byte) time.Duration {
	m := s.tls.Current()
	if m.Cert == nil || m.Ephemeral {
		return -1
	}
	leaf, err := tlsconf.Leaf(m.Cert)
	if err != nil || len(leaf.OCSPServer) == 0 {
		return -1
	}
	note := func(msg string, args ...any) {
		if !bytes.Equal(*noted, leaf.Raw) {
			*noted = leaf.Raw
			s.log.Info(msg, args...)
		}
	}
	responder := ocsp.Responder(leaf)
	if responder == "" {
		note("OCSP stapling off: the certificate names no http OCSP responder", "ocsp_servers", leaf.OCSPServer)
		return -1
	}
	issuer := issuerIn(leaf, m.Cert.Certificate[1:])
	if issuer == nil {
		note("OCSP stapling off: the certificate file must hold the issuer's certificate after the leaf (the chain) to ask the responder",
			"responder", responder, "issuer", leaf.Issuer.String())
		return -1
	}
	a, err := s.ocsp.Fetch(ctx, leaf, issuer)
	now := time.Now()
	expires := a.NextUpdate
	if expires.IsZero() {
		expires = a.ThisUpdate.Add(ocsp.DefaultTTL)
	}
	switch {
	case err != nil:
	case a.Status != ocsp.Good:
		err = fmt.Errorf("the responder says the certificate is %s", a.Status)
	case !now.Before(expires):
		err = fmt.Errorf("the response expired at %s", expires.UTC().Format(time.RFC3339))
	}
	if err != nil {
		if ctx.Err() != nil {
			return -1
		}
		return s.stapleFailed(leaf, responder, err, now)
	}
	if !s.tls.SetStaple(leaf.Raw, a.Raw, tlsconf.StapleInfo{ThisUpdate: a.ThisUpdate, NextUpdate: expires}) {
		return 0 // the material changed meanwhile: start again
	}
	s.metrics.StapleRefreshed(true)
	refresh := a.ThisUpdate.Add(expires.Sub(a.ThisUpdate) / 2)
	wait := max(refresh.Sub(now), stapleMinRefresh)
	s.log.Info("OCSP staple refreshed", "responder", responder, "this_update", a.ThisUpdate.UTC().Format(time.RFC3339),
		"next_update", expires.UTC().Format(time.RFC3339), "next_refresh_in", wait.Round(time.Second))
	return wait
}

// stapleFailed keeps the staple in service while it is valid, drops it
// once it is not, says which, and returns when to try again.
func (s *Server) stapleFailed(leaf *x509.Certificate, responder string, err error, now time.Time) time.Duration {
	s.metrics.StapleRefreshed(false)
	cur := s.tls.Current()
	attrs := []any{"responder", responder, "err", err, "retry_in", stapleRetry}
	switch {
	case cur.Cert != nil && cur.Cert.OCSPStaple != nil && now.Before(cur.Staple.NextUpdate):
		s.log.Warn("OCSP staple refresh failed: keeping the last staple until it expires",
			append(attrs, "staple_expires", cur.Staple.NextUpdate.UTC().Format(time.RFC3339))...)
		return min(stapleRetry, cur.Staple.NextUpdate.Sub(now))
	case cur.Cert != nil && cur.Cert.OCSPStaple != nil:
		s.tls.SetStaple(leaf.Raw, nil, tlsconf.StapleInfo{})
		s.log.Warn("OCSP staple refresh failed and the staple expired: serving without one", attrs...)
	default:
		s.log.Warn("OCSP staple fetch failed: serving without a staple", attrs...)
	}
	return stapleRetry
}

// issuerIn is the certificate of chain that signed leaf, or nil.
func issuerIn(leaf *x509.Certificate, chain [][]byte) *x509.Certificate {
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err == nil && leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}
