// Package alert names TLS alerts and finds the one a peer sent in a
// crypto/tls error.
package alert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
)

// alertNames are the TLS alerts of the IANA registry (RFC 8446 section 6,
// RFC 5246 section 7.2, RFC 7301, RFC 7507).
var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
	22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error", 60: "export_restriction",
	70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
	109: "missing_extension", 110: "unsupported_extension", 111: "certificate_unobtainable",
	112: "unrecognized_name", 113: "bad_certificate_status_response",
	114: "bad_certificate_hash_value", 115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol", 121: "ech_required",
}

// Name is the registry name of a TLS alert (access_denied), or
// alert_N for a code it lacks.
func Name(code uint8) string {
	if n, ok := alertNames[code]; ok {
		return n
	}
	return fmt.Sprintf("alert_%d", code)
}

// Text is the alert's name and number, as a log shows it:
// "certificate_expired (45)".
func Text(code uint8) string {
	return fmt.Sprintf("%s (%d)", Name(code), code)
}

// alertByText maps crypto/tls's text of each alert ("tls: access denied")
// back to its code: on a TCP connection, crypto/tls reports an alert from
// the peer as a *net.OpError with Op "remote error" around an unexported
// type whose text is that of tls.AlertError.
var alertByText = sync.OnceValue(func() map[string]uint8 {
	m := make(map[string]uint8, 256)
	for code := range 256 {
		m[tls.AlertError(code).Error()] = uint8(code)
	}
	return m
})

// Received is the code of the TLS alert the peer sent, if err is one.
func Received(err error) (uint8, bool) {
	var ae tls.AlertError // QUIC and future crypto/tls
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		code, ok := alertByText()[oe.Err.Error()]
		return code, ok
	}
	return 0, false
}
