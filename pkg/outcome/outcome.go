package outcome

// Code is one outcome. Its string is the spelling used everywhere: lower
// case words joined by hyphens, also the metric label.
type Code string

// Kind groups the codes by the stage of a connection they belong to.
type Kind uint8

// The kinds, in the order of a connection's life.
const (
	// Admission: refused before any TLS work (the lists and per-IP limits,
	// the PROXY header).
	Admission Kind = iota + 1
	// Handshake: the TLS handshake, or the protocol check of a plain
	// port, did not complete.
	Handshake
	// Verdict: the judgement of a client certificate.
	Verdict
	// Notice: something a connection met that did not end it.
	Notice
	// Close: why a served connection ended.
	Close
)

func (k Kind) String() string {
	switch k {
	case Admission:
		return "admission"
	case Handshake:
		return "handshake"
	case Verdict:
		return "verdict"
	case Notice:
		return "notice"
	case Close:
		return "close"
	}
	return "unknown"
}

// Admission refusals.
const (
	Rate           Code = "rate"
	PerIPCap       Code = "per-ip-cap"
	LimiterFull    Code = "limiter-full"
	DenyList       Code = "deny-list"
	NotInAllowList Code = "not-in-allow-list"
	ProxyUntrusted Code = "proxy-untrusted"
	ProxyBadHeader Code = "proxy-bad-header"
	ProxyTimeout   Code = "proxy-timeout"
	// Banned: the address failed too often and is banned for a while.
	Banned Code = "banned"
)

// Handshake failures that are not a certificate verdict.
const (
	HandshakeTimeout Code = "handshake-timeout"
	NotTLS           Code = "not-tls"
	TLSOnPlain       Code = "tls-on-plain"
	ProtocolVersion  Code = "protocol-version"
	NoCipher         Code = "no-cipher"
	NoALPN           Code = "no-alpn"
	BadSNI           Code = "bad-sni"
	HandshakeClosed  Code = "handshake-closed"
	TLSError         Code = "tls-error"
)

// Certificate verdicts. OK and Unverified serve the client; every other
// verdict refuses it (or, in audit mode, is logged and served).
const (
	OK               Code = "ok"
	Unverified       Code = "unverified"
	NoCertificate    Code = "no-certificate"
	Expired          Code = "expired"
	NotYetValid      Code = "not-yet-valid"
	UnknownAuthority Code = "unknown-authority"
	WrongEKU         Code = "wrong-eku"
	Revoked          Code = "revoked"
	CRLStale         Code = "crl-stale"
	// RevocationUnknown: no fresh CRL (or OCSP answer) could be had for a
	// certificate that names one, and revocation fails closed.
	RevocationUnknown Code = "revocation-unknown"
	NotAllowed        Code = "not-allowed"
	ChainTooLong      Code = "chain-too-long"
	Malformed         Code = "malformed"
	VerifyFailed      Code = "verify-failed"
)

// Notices.
const (
	// Slowed: a connection sent faster than the message rate and was slowed.
	Slowed Code = "slowed"
	// ClientCertExpiring: a served client's certificate expires soon.
	ClientCertExpiring Code = "client-cert-expiring"
)

// Close reasons.
const (
	ClientClosed   Code = "client-closed"
	Once           Code = "once"
	LineTooLong    Code = "line-too-long"
	IdleTimeout    Code = "idle-timeout"
	MaxLifetime    Code = "max-lifetime"
	Shutdown       Code = "shutdown"
	Reset          Code = "reset"
	WriteTimeout   Code = "write-timeout"
	WriteFailed    Code = "write-failed"
	ReadFailed     Code = "read-failed"
	HandshakeEnded Code = "handshake-failed"
	ACMEChallenge  Code = "acme-challenge"
	// ReloadDenied: a reload's policy refuses the client of a connection
	// in flight (with --reload-closes-denied).
	ReloadDenied Code = "reload-denied"
)

type info struct {
	code Code
	kind Kind
	text string
}

// codes is every code, in the order of a connection's life.
var codes = []info{
	{Rate, Admission, "too many new connections from one address (per-IP rate limit)"},
	{PerIPCap, Admission, "too many connections open from one address (per-IP cap)"},
	{LimiterFull, Admission, "the per-IP table is full of addresses with connections open"},
	{DenyList, Admission, "address in the deny list"},
	{NotInAllowList, Admission, "address not in the allow list"},
	{ProxyUntrusted, Admission, "peer is not a trusted proxy"},
	{ProxyBadHeader, Admission, "malformed PROXY protocol header"},
	{ProxyTimeout, Admission, "no PROXY protocol header in time"},
	{Banned, Admission, "address temporarily banned after repeated failures"},

	{HandshakeTimeout, Handshake, "handshake timed out"},
	{NotTLS, Handshake, "client sent plaintext, not a TLS ClientHello"},
	{TLSOnPlain, Handshake, "client sent a TLS ClientHello to the plain port"},
	{ProtocolVersion, Handshake, "no TLS version in common with the client"},
	{NoCipher, Handshake, "no cipher suite in common with the client"},
	{NoALPN, Handshake, "no application protocol (ALPN) in common with the client"},
	{BadSNI, Handshake, "client sent a server name (SNI) that is not a valid host name"},
	{HandshakeClosed, Handshake, "client closed the connection during the handshake"},
	{TLSError, Handshake, "TLS handshake failed"},

	{OK, Verdict, "client certificate verified"},
	{Unverified, Verdict, "client certificate not verified (request mode)"},
	{NoCertificate, Verdict, "no client certificate sent"},
	{Expired, Verdict, "client certificate expired"},
	{NotYetValid, Verdict, "client certificate not valid yet"},
	{UnknownAuthority, Verdict, "client certificate signed by an unknown authority"},
	{WrongEKU, Verdict, "client certificate lacks the clientAuth extended key usage"},
	{Revoked, Verdict, "client certificate revoked"},
	{CRLStale, Verdict, "the CRL is past its next update"},
	{RevocationUnknown, Verdict, "revocation status unknown: no CRL or OCSP answer could be had"},
	{NotAllowed, Verdict, "client certificate not in the allowlists"},
	{ChainTooLong, Verdict, "certificate chain too long"},
	{Malformed, Verdict, "client certificate or chain malformed"},
	{VerifyFailed, Verdict, "client certificate verification failed"},

	{Slowed, Notice, "slowed by the per-connection message rate"},
	{ClientCertExpiring, Notice, "a served client's certificate expires soon"},

	{ClientClosed, Close, "client closed the connection"},
	{Once, Close, "one exchange done (once mode)"},
	{LineTooLong, Close, "line longer than the limit"},
	{IdleTimeout, Close, "client sent nothing for the idle timeout"},
	{MaxLifetime, Close, "connection reached its maximum lifetime"},
	{Shutdown, Close, "server shutting down"},
	{Reset, Close, "connection reset by the client"},
	{WriteTimeout, Close, "client did not read its replies in time"},
	{WriteFailed, Close, "writing a reply failed"},
	{ReadFailed, Close, "reading failed"},
	{HandshakeEnded, Close, "handshake failed"},
	{ACMEChallenge, Close, "ACME TLS-ALPN-01 validation answered"},
	{ReloadDenied, Close, "closed at a reload: the new policy refuses the client"},
}

var byCode = func() map[Code]info {
	m := make(map[Code]info, len(codes))
	for _, i := range codes {
		if _, dup := m[i.code]; dup {
			panic("outcome: code declared twice: " + string(i.code))
		}
		m[i.code] = i
	}
	return m
}()

// Kind is the stage the code belongs to; 0 for an unknown code.
func (c Code) Kind() Kind { return byCode[c].kind }

// Text is the outcome in plain words.
func (c Code) Text() string { return byCode[c].text }

// Known reports whether c is one of the declared codes.
func (c Code) Known() bool { _, ok := byCode[c]; return ok }

// Label is the metric label of the code: its spelling.
func (c Code) Label() string { return string(c) }

func (c Code) String() string { return string(c) }

// All returns every code of kind k, in declaration order; every code when
// k is 0.
func All(k Kind) []Code {
	var out []Code
	for _, i := range codes {
		if k == 0 || i.kind == k {
			out = append(out, i.code)
		}
	}
	return out
}
