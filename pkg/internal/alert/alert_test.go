package alert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// Every code has a name a log can carry as one word.
func TestNames(t *testing.T) {
	for code := range 256 {
		if n := Name(uint8(code)); n == "" || strings.ContainsAny(n, " :") {
			t.Errorf("alert %d named %q", code, n)
		}
	}
	if n := Text(49); n != "access_denied (49)" {
		t.Errorf("alert 49 is %q", n)
	}
}

// Received finds the alert in what crypto/tls returns for one from the peer
// (an OpError around a type that reads like tls.AlertError), and in a
// tls.AlertError; nothing in other errors.
func TestReceived(t *testing.T) {
	for _, err := range []error{
		&net.OpError{Op: "remote error", Err: errors.New(tls.AlertError(45).Error())},
		fmt.Errorf("handshake: %w", tls.AlertError(45)),
	} {
		if code, ok := Received(err); !ok || code != 45 {
			t.Errorf("Received(%v) = %d, %v; want 45", err, code, ok)
		}
	}
	for _, err := range []error{errors.New("tls: bad certificate"), &net.OpError{Op: "read", Err: errors.New("EOF")}} {
		if _, ok := Received(err); ok {
			t.Errorf("Received(%v) found an alert", err)
		}
	}
}
