package verdict

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/ocsp"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/sanitize"
)

// Verdict is the outcome of checking a client certificate.
type Verdict struct {
	Code outcome.Code // of kind outcome.Verdict
	Text string       // plain words, for the log
}

// OKVerdict is the verdict on a client that passed every check.
var OKVerdict = Verdict{Code: outcome.OK, Text: outcome.OK.Text()}

// ErrNoCertificate is the error for a client that sent no certificate when
// one was required.
var ErrNoCertificate = errors.New("no client certificate sent")

// Explain describes a verification error. leaf is the client's certificate
// when known (nil if none was sent or it did not parse); now is the time of
// the check.
//
// The text is sanitized: it quotes names from certificates, which a client
// controls (an issuer CN with a newline or a bidi override, say).
//
// The text is bounded too (MaxText bytes, then how many were left out): a
// client can send a certificate whose names run to megabytes.
func Explain(err error, leaf *x509.Certificate, now time.Time) Verdict {
	v := explain(err, leaf, now)
	v.Text = bound(sanitize.String([]byte(v.Text)))
	return v
}

// MaxText bounds a verdict's text, in bytes.
const MaxText = 2048

func bound(s string) string {
	if len(s) <= MaxText {
		return s
	}
	cut := MaxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (+%d bytes)", s[:cut], len(s)-cut)
}

func explain(err error, leaf *x509.Certificate, now time.Time) Verdict {
	var (
		verr     *tls.CertificateVerificationError
		invalid  x509.CertificateInvalidError
		unknown  x509.UnknownAuthorityError
		revoked  *crl.RevokedError
		stale    *crl.StaleError
		disallow *identity.NotAllowedError
		// OCSP
		ocspRevoked *ocsp.RevokedError
		ocspUnknown *ocsp.UnknownError
	)
	if errors.As(err, &verr) && leaf == nil && len(verr.UnverifiedCertificates) > 0 {
		leaf = verr.UnverifiedCertificates[0]
	}
	switch {
	case err == nil:
		return OKVerdict
	case errors.Is(err, ErrNoCertificate), isNoCertificate(err):
		return Verdict{outcome.NoCertificate, "no client certificate sent"}
	case errors.As(err, &revoked):
		return Verdict{outcome.Revoked, revoked.Error()}
	case errors.As(err, &ocspRevoked):
		return Verdict{outcome.Revoked, ocspRevoked.Error()}
	case errors.As(err, &ocspUnknown):
		return Verdict{outcome.RevocationUnknown, ocspUnknown.Error()}
	case errors.As(err, &stale):
		return Verdict{outcome.CRLStale, stale.Error()}
	case errors.As(err, &disallow):
		return Verdict{outcome.NotAllowed, disallow.Error()}
	case errors.As(err, &unknown):
		cert := unknown.Cert
		if cert == nil {
			cert = leaf
		}
		if cert == nil {
			return Verdict{outcome.UnknownAuthority, "signed by an unknown authority"}
		}
		var sent []*x509.Certificate
		if verr != nil {
			sent = verr.UnverifiedCertificates
		}
		return Verdict{outcome.UnknownAuthority, unknownAuthority(cert, sent)}
	case errors.As(err, &invalid):
		cert := invalid.Cert
		if cert == nil {
			cert = leaf
		}
		return explainInvalid(invalid, cert, now)
	case isMalformed(err):
		return Verdict{outcome.Malformed, "client certificate malformed: " + trimTLS(err.Error())}
	}
	return Verdict{outcome.VerifyFailed, trimTLS(err.Error())}
}

// unknownAuthority says why a chain does not lead to a trusted CA, from
// what the client sent (leaf first; nil when not known): the chain doctor.
// The usual causes are a client that sends its leaf without the
// intermediate that signed it, and a chain that leads to another root.
func unknownAuthority(cert *x509.Certificate, sent []*x509.Certificate) string {
	text := fmt.Sprintf("signed by an unknown authority: issuer %s", cert.Issuer)
	switch {
	case len(sent) == 1 && bytes.Equal(cert.RawIssuer, cert.RawSubject):
		return text + ": the client certificate is self-signed, not issued by a trusted CA"
	case len(sent) == 1:
		text += " is not one of the trusted CAs; the client sent only its leaf: if that issuer is an intermediate " +
			"under a trusted root, the client must send it too (openssl s_client -cert_chain, or a full-chain certificate file)"
		if len(cert.IssuingCertificateURL) > 0 {
			text += "; the issuer's certificate is at " + cert.IssuingCertificateURL[0] + " (AIA caIssuers)"
		}
		return text
	case len(sent) > 1:
		top := sent[len(sent)-1]
		if bytes.Equal(top.RawIssuer, top.RawSubject) {
			return fmt.Sprintf("signed by an unknown authority: the chain the client sent leads to the root %s, which the server does not trust", top.Subject)
		}
		return fmt.Sprintf("signed by an unknown authority: the chain the client sent (%d certificates) ends at %s, issued by %s, which is not one of the trusted CAs",
			len(sent), top.Subject, top.Issuer)
	}
	return text
}

func explainInvalid(e x509.CertificateInvalidError, cert *x509.Certificate, now time.Time) Verdict {
	switch e.Reason {
	case x509.Expired:
		if cert == nil {
			return Verdict{outcome.Expired, "client certificate expired or not yet valid: " + e.Detail}
		}
		if now.Before(cert.NotBefore) {
			return Verdict{outcome.NotYetValid, fmt.Sprintf("client certificate not valid until %s (%s from now)",
				stamp(cert.NotBefore), Ago(cert.NotBefore.Sub(now)))}
		}
		subject := "client certificate"
		if !isLeaf(cert) {
			subject = "certificate " + cert.Subject.String() + " in the chain"
		}
		return Verdict{outcome.Expired, fmt.Sprintf("%s expired %s ago (not after %s)",
			subject, Ago(now.Sub(cert.NotAfter)), stamp(cert.NotAfter))}
	case x509.IncompatibleUsage:
		have := "none"
		if cert != nil && len(cert.ExtKeyUsage) > 0 {
			names := make([]string, len(cert.ExtKeyUsage))
			for i, u := range cert.ExtKeyUsage {
				names[i] = ekuName(u)
			}
			have = strings.Join(names, ", ")
		}
		return Verdict{outcome.WrongEKU, "certificate lacks clientAuth extended key usage (has " + have + ")"}
	case x509.TooManyIntermediates, x509.TooManyConstraints:
		return Verdict{outcome.ChainTooLong, "certificate chain too long: " + e.Error()}
	case x509.NotAuthorizedToSign, x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage,
		x509.NameConstraintsWithoutSANs, x509.UnconstrainedName:
		return Verdict{outcome.Malformed, "certificate chain invalid: " + e.Error()}
	}
	return Verdict{outcome.VerifyFailed, e.Error()}
}

func isLeaf(c *x509.Certificate) bool { return !c.IsCA }

// isNoCertificate recognises crypto/tls's errors for a client that sent no
// certificate: it has no sentinel for them.
func isNoCertificate(err error) bool {
	s := err.Error()
	return strings.Contains(s, "client didn't provide a certificate")
}

// isMalformed recognises crypto/tls's parse errors for client certificates.
func isMalformed(err error) bool {
	s := err.Error()
	return strings.Contains(s, "failed to parse client certificate") ||
		strings.Contains(s, "x509: malformed") ||
		strings.Contains(s, "client certificate contains an unsupported public key")
}

func trimTLS(s string) string { return strings.TrimPrefix(s, "tls: ") }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Ago formats a duration coarsely, as a person would say it: "3 days",
// "5 hours", "2 minutes", "40 seconds".
func Ago(d time.Duration) string {
	if d == math.MinInt64 {
		d = math.MaxInt64
	} else if d < 0 {
		d = -d
	}
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	switch {
	case d >= 48*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return unit(int64(d/time.Hour), "hour")
	case d >= 2*time.Minute:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64(d/time.Second), "second")
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func ekuName(u x509.ExtKeyUsage) string {
	if n, ok := ekuNames[u]; ok {
		return n
	}
	return fmt.Sprintf("eku(%d)", int(u))
}
