package output

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/sanitize"
	"github.com/seclisten/seclisten/pkg/slogtext"
)

// Facts is what the server saw of a connection: how the client is named,
// what TLS negotiated, and the verdict on its certificate. It is described
// once, by its fields, and rendered three ways from them: log attributes
// (Attrs), the JSON handshake event (Conn.Handshake) and the --report line
// (Report). Every string in it may come from the client; each renderer
// escapes it.
type Facts struct {
	// Identity names the client: its certificate name, or its address.
	Identity string
	// Remote is the client's address.
	Remote string
	// TLS is what the handshake negotiated; nil for plain TCP.
	TLS *TLS
	// Verdict and VerdictText judge the client certificate; empty without
	// client authentication.
	Verdict     outcome.Code
	VerdictText string
	// Cert describes the client certificate, if one was sent.
	Cert *identity.Identity
	// Hello is what the client offered in its ClientHello (TLS only).
	Hello *clienthello.Hello
}

// TLS is what a handshake negotiated.
type TLS struct {
	Version, Cipher, Group, ALPN, SNI string
	Resumed                           bool
	// ResumedTicket, on a resumption, says whose session ticket it was:
	// "own" or "other-replica" (a fleet sharing ticket keys).
	ResumedTicket string
	// ClientAuth is the client-authentication mode in force.
	ClientAuth string
	// KeyLog is set when the session's secrets were written to a key log.
	KeyLog bool
}

// fact is one field of Facts: a string, a list or a boolean. Strings and
// lists may come from the client, so each is bounded when made
// (clienthello.String, clienthello.Strings), and escaped when rendered.
type fact struct {
	key  string
	str  string
	list []string
	bool bool
	kind factKind
}

type factKind uint8

const (
	aString factKind = iota
	aList
	aHelloList // a list from clienthello's table of kinds (HelloList)
	aBool
)

func str(key, v string) fact { return fact{key: key, str: clienthello.String(v)} }
func list(key string, v []string) fact {
	return fact{key: key, list: clienthello.Strings(v), kind: aList}
}
func helloList(key string, v []string) fact {
	return fact{key: key, list: clienthello.Strings(v), kind: aHelloList}
}

// text is a string of the server's making, such as a verdict's text,
// which quotes the client only in bounded pieces.
func text(key, v string) fact         { return fact{key: key, str: v} }
func boolean(key string, v bool) fact { return fact{key: key, bool: v, kind: aBool} }

// maxFacts is the most facts facts lists.
const maxFacts = 13 + helloFactCount

// facts lists the connection's facts, in order, without the certificate.
func (f *Facts) facts() []fact {
	return f.listFacts(make([]fact, 0, maxFacts))
}

// listFacts appends the connection's facts to out, in order, without the
// certificate. With room for maxFacts in out it does not allocate: a
// renderer that keeps no fact passes an array on its stack (a fact is
// some 70 bytes, a handshake's 20 of them 1.4 KiB of garbage otherwise).
func (f *Facts) listFacts(out []fact) []fact {
	out = append(out, str("identity", f.Identity), str("remote_addr", f.Remote))
	if f.TLS == nil {
		return append(out, str("tls_version", "none"))
	}
	t := f.TLS
	out = append(out, str("tls_version", t.Version), str("cipher", t.Cipher), str("group", t.Group),
		str("alpn", t.ALPN), str("sni", t.SNI), boolean("resumed", t.Resumed))
	if t.ResumedTicket != "" {
		out = append(out, str("resumed_ticket", t.ResumedTicket))
	}
	out = append(out, str("client_auth", t.ClientAuth))
	if f.Verdict != "" {
		out = append(out, str("verdict", string(f.Verdict)), text("verdict_text", f.VerdictText))
	}
	if t.KeyLog {
		out = append(out, boolean("keylog", true))
	}
	return appendHelloFacts(out, f.Hello)
}

// helloFactCount is how many facts appendHelloFacts appends.
const helloFactCount = 7

// appendHelloFacts appends what the client offered, nothing without a
// ClientHello.
func appendHelloFacts(out []fact, h *clienthello.Hello) []fact {
	if h == nil {
		return out
	}
	return append(out, helloList("hello_versions", h.Versions), helloList("hello_suites", h.Suites),
		helloList("hello_groups", h.Groups), helloList("hello_sig_schemes", h.SigSchemes),
		helloList("hello_alpn", h.ALPN), str("hello_sni", h.SNI), str("ja4", h.JA4))
}

// HelloAttrs appends what the client offered to attrs as slog key-value
// pairs.
func HelloAttrs(attrs []any, h *clienthello.Hello) []any {
	return appendAttrs(attrs, "", appendHelloFacts(make([]fact, 0, helloFactCount), h))
}

// certFacts lists what a certificate says.
func certFacts(id *identity.Identity) []fact {
	return []fact{str("name", id.Name), str("subject", id.Subject), list("sans", id.SANs()),
		str("issuer", id.Issuer), str("serial", id.Serial), str("sha256", id.Fingerprint),
		str("not_before", id.NotBefore.UTC().Format(time.RFC3339)),
		str("not_after", id.NotAfter.UTC().Format(time.RFC3339))}
}

// Attrs renders the facts as slog key-value pairs, the client certificate's
// under keys prefixed "client_".
func (f *Facts) Attrs() []any {
	attrs := appendAttrs(nil, "", f.facts())
	if f.Cert != nil {
		attrs = CertAttrs(attrs, "client_", f.Cert)
	}
	return attrs
}

// CertAttrs appends a certificate's facts to attrs as slog key-value pairs,
// each key prefixed.
func CertAttrs(attrs []any, prefix string, id *identity.Identity) []any {
	return appendAttrs(attrs, prefix, certFacts(id))
}

func appendAttrs(attrs []any, prefix string, facts []fact) []any {
	for _, f := range facts {
		a := f.attr(prefix)
		attrs = append(attrs, a.Key, a.Value.Any())
	}
	return attrs
}

// LogAttrs is Attrs as slog attributes, without the one keyed skip (""
// for none), appended to dst: the same log output, without boxing every
// value in an interface (Logger.LogAttrs).
func (f *Facts) LogAttrs(dst []slog.Attr, skip string) []slog.Attr {
	var room [maxFacts]fact
	for _, ft := range f.listFacts(room[:0]) {
		if ft.key != skip {
			dst = append(dst, ft.attr(""))
		}
	}
	if f.Cert != nil {
		dst = append(dst, clientCertAttrs(f.Cert)...)
	}
	return dst
}

// LogAttr is LogAttrs(nil, skip) as one attribute, for a record of its
// own: slog's handlers write the facts' attributes in its place (an empty
// key and, resolved, a group: slog.LogValuer), and slogtext's writes them
// from the facts directly (slogtext.Attrs), without an slog.Attr for each
// of some thirty facts, or a scan of each ClientHello list.
func (f *Facts) LogAttr(skip string) slog.Attr {
	return slog.Attr{Value: slog.AnyValue(&logFacts{f: f, skip: skip})}
}

type logFacts struct {
	f    *Facts
	skip string
}

// LogValue is the facts' attributes, as a group.
func (l *logFacts) LogValue() slog.Value {
	return slog.GroupValue(l.f.LogAttrs(nil, l.skip)...)
}

// AppendSlogTextAttrs appends what slog's text handler writes for the
// attributes of LogValue.
func (l *logFacts) AppendSlogTextAttrs(b []byte) []byte {
	var room [maxFacts]fact
	for _, ft := range l.f.listFacts(room[:0]) {
		if ft.key != l.skip {
			b = ft.appendSlogText(b, "")
		}
	}
	if l.f.Cert != nil {
		b = append(b, keptCert(l.f.Cert).text...)
	}
	return b
}

// appendSlogText appends " key=value" as slog's text handler writes
// f.attr(prefix): keys are the package's own, never quoted.
func (f fact) appendSlogText(b []byte, prefix string) []byte {
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, f.key...)
	b = append(b, '=')
	switch f.kind {
	case aBool:
		return strconv.AppendBool(b, f.bool)
	case aString:
		return slogtext.AppendString(b, sanitize.Text(f.str))
	case aHelloList:
		if e, ok := keptList(f.list); ok && e.clean {
			return append(b, e.text...)
		}
	}
	if len(f.list) == 0 {
		return slogtext.AppendString(b, "[]")
	}
	// A list the first time, or one that needs escaping.
	return f.attr(prefix).Value.Any().(slogtext.Quoted).AppendSlogText(b)
}

// clientCertAttrs is certFacts(id) as slog attributes keyed "client_…",
// kept per certificate (keptCert). The attributes are shared: read only.
func clientCertAttrs(id *identity.Identity) []slog.Attr {
	return keptCert(id).attrs
}

// keptCert is the client certificate's facts rendered, kept per
// certificate: a client that comes back, and every client of a fleet's
// one certificate, would otherwise cost each handshake two times
// formatted, eight keys joined and seven strings sanitised.
func keptCert(id *identity.Identity) *certAttrEntry {
	if id.Fingerprint == "" {
		return newCertEntry(id)
	}
	certAttrCache.RLock()
	e, ok := certAttrCache.m[id.Fingerprint]
	certAttrCache.RUnlock()
	if ok && sameFacts(&e.id, id) {
		return e
	}
	e = newCertEntry(id)
	certAttrCache.Lock()
	if len(certAttrCache.m) >= maxCertAttrs {
		// Bounded, without bookkeeping: start afresh.
		clear(certAttrCache.m)
	}
	if certAttrCache.m == nil {
		certAttrCache.m = make(map[string]*certAttrEntry)
	}
	certAttrCache.m[id.Fingerprint] = e
	certAttrCache.Unlock()
	return e
}

func newCertEntry(id *identity.Identity) *certAttrEntry {
	facts := certFacts(id)
	e := &certAttrEntry{id: *id, attrs: make([]slog.Attr, len(facts))}
	for i, ft := range facts {
		e.attrs[i] = ft.attr("client_")
		e.text = ft.appendSlogText(e.text, "client_")
	}
	return e
}

// maxCertAttrs bounds the certificates whose facts are kept (a few KiB
// each, at most: every string in them is bounded).
const maxCertAttrs = 1024

var certAttrCache struct {
	sync.RWMutex
	m map[string]*certAttrEntry // by the certificate's SHA-256
}

type certAttrEntry struct {
	id    identity.Identity // what the attributes were made from
	attrs []slog.Attr
	text  []byte // the attributes as slog's text handler writes them
}

// sameFacts reports whether a and b say the same in every field
// certFacts reads: an entry is used only for such an identity, so an
// Identity made by hand with another's fingerprint gets its own
// attributes.
func sameFacts(a, b *identity.Identity) bool {
	return a.Name == b.Name && a.Subject == b.Subject && a.Issuer == b.Issuer && a.Serial == b.Serial &&
		slices.Equal(a.DNSNames, b.DNSNames) && slices.Equal(a.IPs, b.IPs) && slices.Equal(a.URIs, b.URIs) &&
		slices.Equal(a.Emails, b.Emails) && a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter)
}

// attr is the fact as a sanitised slog attribute, its key prefixed.
func (f fact) attr(prefix string) slog.Attr {
	key := f.key
	if prefix != "" {
		key = prefix + key
	}
	switch f.kind {
	case aList, aHelloList:
		if f.kind == aHelloList && isClean(f.list) {
			// Known to need no escaping: not scanned again.
			return slog.Any(key, HelloList(f.list))
		}
		// The list itself when no entry needs escaping (the usual case:
		// names of crypto/tls's making), else a sanitised copy.
		l := List(f.list)
		for i, s := range f.list {
			if t := sanitize.Text(s); t != s {
				if &l[0] == &f.list[0] {
					l = slices.Clone(l)
				}
				l[i] = t
			}
		}
		if f.kind == aHelloList && (len(l) == 0 || &l[0] == &f.list[0]) {
			// The kind's own list, shared by its clients.
			return slog.Any(key, HelloList(l))
		}
		return slog.Any(key, l)
	case aBool:
		return slog.Bool(key, f.bool)
	}
	return slog.String(key, sanitize.Text(f.str))
}

// List is a list of strings in a log record, rendered as slog renders a
// []string: "[a b c]" by the text handler (fmt's %+v), a JSON array by
// the JSON handler. It renders without fmt's reflection.
type List []string

// MarshalText is what fmt.Sprintf("%+v", []string(l)) prints.
func (l List) MarshalText() ([]byte, error) {
	n := 2
	for _, s := range l {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return append(b, ']'), nil
}

// AppendSlogText appends the list as slog's text handler writes it
// (slogtext.Quoted), so that a record holding it, the handshake record of
// a client with a certificate, stays on slogtext's own path.
func (l List) AppendSlogText(dst []byte) []byte {
	t, _ := l.MarshalText()
	return slogtext.AppendString(dst, string(t))
}

// MarshalJSON is the JSON array encoding/json writes for []string(l),
// HTML characters unescaped as slog's JSON handler leaves them.
func (l List) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode([]string(l)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// HelloList is a list a client offered, as clienthello's table of kinds
// keeps it: the same slice for every client of a kind. It renders as List
// does, and keeps its rendering for the text log (slogtext.Quoted): the
// text handler would otherwise quote the same few hundred bytes rune by
// rune in every handshake record, the largest cost of the record.
type HelloList []string

// MarshalText is List's.
func (l HelloList) MarshalText() ([]byte, error) { return List(l).MarshalText() }

// MarshalJSON is List's.
func (l HelloList) MarshalJSON() ([]byte, error) { return List(l).MarshalJSON() }

// AppendSlogText appends the list as slog's text handler writes it,
// from the rendering kept for this list.
func (l HelloList) AppendSlogText(dst []byte) []byte {
	if len(l) == 0 {
		return slogtext.AppendString(dst, "[]")
	}
	if e, ok := keptList(l); ok {
		return append(dst, e.text...)
	}
	text := List(l).AppendSlogText(nil)
	clean := true
	for _, s := range l {
		clean = clean && sanitize.Text(s) == s
	}
	quoted.Lock()
	if len(quoted.m) >= maxQuoted {
		clear(quoted.m)
	}
	quoted.m[&l[0]] = quotedList{list: slices.Clone([]string(l)), text: text, clean: clean}
	quoted.Unlock()
	return append(dst, text...)
}

// isClean reports whether l is known to need no escaping: a list kept
// as it was found clean.
func isClean(l []string) bool {
	e, ok := keptList(l)
	return ok && e.clean
}

// keptList is the rendering kept for l, if there is one.
func keptList(l []string) (quotedList, bool) {
	if len(l) == 0 {
		return quotedList{}, false
	}
	quoted.RLock()
	e, ok := quoted.m[&l[0]]
	quoted.RUnlock()
	return e, ok && slices.Equal(e.list, l)
}

// quoted keeps the text-log renderings of HelloLists, by the address of
// their first entry. An entry holds a copy of the list it renders and
// serves only a list equal to it, so a list changed in place, or a new
// one at a reused address, is rendered afresh.
var quoted = struct {
	sync.RWMutex
	m map[*string]quotedList
}{m: map[*string]quotedList{}}

type quotedList struct {
	list  []string
	text  []byte
	clean bool // no entry needs escaping (sanitize.Text)
}

// maxQuoted bounds quoted; it is emptied when full (clienthello keeps at
// most 1,024 kinds, each with five lists).
const maxQuoted = 8192

// appendFacts appends the facts as JSON members (each with its leading
// comma), the certificate as a "client_cert" object.
func (f *Facts) appendFacts(b []byte) []byte {
	b = appendJSON(b, f.facts())
	if f.Cert != nil {
		b = appendCert(b, f.Cert)
	}
	return b
}

// appendCert appends ,"client_cert":{...}.
func appendCert(b []byte, id *identity.Identity) []byte {
	b = append(b, `,"client_cert":`...)
	return appendObject(b, certFacts(id))
}

// appendObject appends the facts as one JSON object.
func appendObject(b []byte, facts []fact) []byte {
	start := len(b)
	b = appendJSON(b, facts)
	if len(b) == start {
		return append(b, "{}"...)
	}
	b[start] = '{'
	return append(b, '}')
}

func appendJSON(b []byte, facts []fact) []byte {
	for _, f := range facts {
		switch f.kind {
		case aString:
			b = appendField(b, f.key, []byte(f.str))
		case aList, aHelloList:
			b = appendStrings(b, f.key, f.list)
		case aBool:
			b = append(b, ',', '"')
			b = append(b, f.key...)
			b = append(b, `":`...)
			b = strconv.AppendBool(b, f.bool)
		}
	}
	return b
}

// Report renders the facts as the --report line: key=value pairs (a value
// with a space or a quote is quoted, an empty one is "-", a list is
// comma-separated), or one JSON object when asJSON.
func (f *Facts) Report(asJSON bool) string {
	facts := f.facts()
	if f.Cert != nil {
		for _, c := range certFacts(f.Cert) {
			c.key = "client_" + c.key
			facts = append(facts, c)
		}
	}
	if asJSON {
		return string(appendObject(nil, facts))
	}
	var b strings.Builder
	for i, f := range facts {
		if i > 0 {
			b.WriteByte(' ')
		}
		var val string
		switch f.kind {
		case aString:
			val = sanitize.String([]byte(f.str))
		case aList, aHelloList:
			val = sanitize.String([]byte(strings.Join(f.list, ",")))
		case aBool:
			val = strconv.FormatBool(f.bool)
		}
		if val == "" {
			val = "-"
		}
		if strings.ContainsAny(val, " \"") {
			val = strconv.Quote(val)
		}
		b.WriteString(f.key + "=" + val)
	}
	return b.String()
}

// Handshake prints the handshake event (JSON only).
func (c *Conn) Handshake(f *Facts) {
	if c.p.format != JSON {
		return
	}
	c.end(f.appendFacts(c.begin("handshake")))
}

// Reject prints the reject event (JSON only): the connection is refused,
// with the outcome code, the reason in plain words, what the client
// offered when its ClientHello was read, and the client's certificate
// when one was sent.
func (c *Conn) Reject(code outcome.Code, text string, hello *clienthello.Hello, cert *identity.Identity) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("reject")
	b = appendField(b, "code", []byte(code))
	b = appendField(b, "reason", []byte(text))
	b = appendJSON(b, appendHelloFacts(make([]fact, 0, helloFactCount), hello))
	if cert != nil {
		b = appendCert(b, cert)
	}
	c.end(b)
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
