// Package ocsptest is an OCSP responder for tests, built on
// golang.org/x/crypto/ocsp: it answers for one issuer, and can be told to
// misbehave in the ways a real responder does (garbage, an old answer, an
// answer for another serial or signed by the wrong key, no answer).
package ocsptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// Mode is how the responder answers.
type Mode int

// The modes.
const (
	// Normal answers truthfully, signed by the issuer.
	Normal Mode = iota
	// Garbage answers bytes that are no OCSP response.
	Garbage
	// Old answers with a nextUpdate an hour past.
	Old
	// OtherSerial answers for another serial number.
	OtherSerial
	// WrongKey signs with a key that is not the issuer's.
	WrongKey
	// Hang never answers (until the client gives up).
	Hang
	// UnknownStatus answers "unknown" for every certificate.
	UnknownStatus
)

// Responder is an http.Handler answering OCSP requests for Issuer.
type Responder struct {
	Issuer *x509.Certificate
	Key    crypto.Signer
	// Validity is nextUpdate - thisUpdate; 0 gives no nextUpdate.
	Validity time.Duration

	mu      sync.Mutex
	mode    Mode
	revoked map[string]time.Time
	// Requests counts the requests answered (or hung).
	Requests atomic.Int64
}

// SetMode changes how the responder answers.
func (r *Responder) SetMode(m Mode) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

// Revoke marks serial revoked at.
func (r *Responder) Revoke(serial *big.Int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.revoked == nil {
		r.revoked = map[string]time.Time{}
	}
	r.revoked[serial.Text(16)] = at
}

// ServeHTTP answers a POSTed or GET OCSP request.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(req.Body, 4096))
	if err != nil {
		return
	}
	ocspReq, err := xocsp.ParseRequest(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	mode := r.mode
	at, revoked := r.revoked[ocspReq.SerialNumber.Text(16)]
	r.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	tmpl := xocsp.Response{Status: xocsp.Good, SerialNumber: ocspReq.SerialNumber, ThisUpdate: now.Add(-time.Second)}
	if r.Validity > 0 {
		tmpl.NextUpdate = tmpl.ThisUpdate.Add(r.Validity)
	}
	if revoked {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = xocsp.Revoked, at.Truncate(time.Second), xocsp.KeyCompromise
	}
	key := r.Key
	switch mode {
	case Garbage:
		_, _ = w.Write([]byte("this is not an OCSP response\n"))
		return
	case Hang:
		<-req.Context().Done()
		return
	case Old:
		tmpl.ThisUpdate, tmpl.NextUpdate = now.Add(-2*time.Hour), now.Add(-time.Hour)
	case OtherSerial:
		tmpl.SerialNumber = new(big.Int).Add(ocspReq.SerialNumber, big.NewInt(1))
	case UnknownStatus:
		tmpl.Status = xocsp.Unknown
	case WrongKey:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return
		}
		key = k
	}
	der, err := xocsp.CreateResponse(r.Issuer, r.Issuer, tmpl, key)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}
