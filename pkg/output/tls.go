package output

import (
	"time"

	"github.com/seclisten/seclisten/pkg/identity"
)

// Handshake is what the handshake event reports.
type Handshake struct {
	Version, Cipher, Group, ALPN, SNI string
	Resumed                           bool
	// ClientAuth is the mode (none, request, verify-if-given, require, audit).
	ClientAuth string
	// Verdict and VerdictText judge the client certificate (empty with no
	// client authentication).
	Verdict, VerdictText string
	// ClientCert describes the client certificate, if one was sent.
	ClientCert *identity.Identity
}

// Handshake prints the handshake event (JSON only).
func (c *Conn) Handshake(h Handshake) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("handshake")
	b = appendField(b, "tls_version", []byte(h.Version))
	b = appendField(b, "cipher", []byte(h.Cipher))
	b = appendField(b, "group", []byte(h.Group))
	b = appendField(b, "alpn", []byte(h.ALPN))
	b = appendField(b, "sni", []byte(h.SNI))
	b = append(b, `,"resumed":`...)
	b = appendBool(b, h.Resumed)
	b = appendField(b, "client_auth", []byte(h.ClientAuth))
	if h.Verdict != "" {
		b = appendField(b, "verdict", []byte(h.Verdict))
		b = appendField(b, "verdict_text", []byte(h.VerdictText))
	}
	if h.ClientCert != nil {
		b = appendCert(b, h.ClientCert)
	}
	c.end(b)
}

// Reject prints the reject event (JSON only): the connection is refused
// with a verdict code and the reason in plain words.
func (c *Conn) Reject(code, text string, cert *identity.Identity) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("reject")
	b = appendField(b, "verdict", []byte(code))
	b = appendField(b, "reason", []byte(text))
	if cert != nil {
		b = appendCert(b, cert)
	}
	c.end(b)
}

// appendCert appends ,"client_cert":{...}.
func appendCert(b []byte, id *identity.Identity) []byte {
	b = append(b, `,"client_cert":{"name":`...)
	b = appendString(b, sanitizeString(id.Name))
	b = appendField(b, "subject", []byte(id.Subject))
	b = appendField(b, "issuer", []byte(id.Issuer))
	b = appendStrings(b, "sans", id.SANs())
	b = appendField(b, "serial", []byte(id.Serial))
	b = appendField(b, "sha256", []byte(id.Fingerprint))
	b = appendField(b, "not_before", []byte(id.NotBefore.UTC().Format(time.RFC3339)))
	b = appendField(b, "not_after", []byte(id.NotAfter.UTC().Format(time.RFC3339)))
	return append(b, '}')
}

func appendStrings(b []byte, key string, vals []string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, sanitizeString(v))
	}
	return append(b, ']')
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}
