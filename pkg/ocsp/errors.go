package ocsp

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// RevokedError reports a certificate its responder says is revoked.
type RevokedError struct {
	Responder string
	RevokedAt time.Time
	Reason    int // RFC 5280 section 5.3.1
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("revoked (OCSP, responder %s, at %s)", e.Responder, e.RevokedAt.UTC().Format(time.RFC3339))
}

// UnknownError reports that no good answer could be had: the responder
// failed, or answered "unknown".
type UnknownError struct {
	Responder string
	Err       error
}

func (e *UnknownError) Error() string {
	return "revocation status unknown: OCSP failed: " + e.Err.Error()
}

func (e *UnknownError) Unwrap() error { return e.Err }

// Judge turns Check's result into nil (good), a *RevokedError or an
// *UnknownError.
func Judge(a Answer, err error) error {
	switch {
	case err != nil:
		var responder string
		if e, ok := err.(*Error); ok {
			responder = e.Responder
		}
		return &UnknownError{Responder: responder, Err: err}
	case a.Status == Revoked:
		return &RevokedError{Responder: a.Responder, RevokedAt: a.RevokedAt, Reason: a.Reason}
	case a.Status == Good:
		return nil
	}
	return &UnknownError{Responder: a.Responder, Err: fmt.Errorf("responder %s does not know the certificate (status unknown)", a.Responder)}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
