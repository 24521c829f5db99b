package clienthello

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The bounds on what a Hello keeps of the client's strings and lists.
const (
	// MaxString is the most bytes kept of one string; the rest is counted
	// as "(+N bytes)".
	MaxString = 256
	// MaxList is the most entries kept of one list; the rest are counted
	// as a last entry "(+N more)".
	MaxList = 32
	// MaxServerName is the longest host name (RFC 1035 section 2.3.4, in
	// its textual form without a final dot).
	MaxServerName = 253
)

// Hello is what a client offered, by name, bounded. GREASE values are
// left out of the lists; unknown values are shown in hex.
type Hello struct {
	// Versions, Suites, Groups and SigSchemes are the TLS versions,
	// cipher suites, key-exchange groups and signature schemes offered,
	// in the client's order.
	Versions, Suites, Groups, SigSchemes []string
	// ALPN is the application protocols offered (escaping is the
	// renderer's: they are the client's bytes).
	ALPN []string
	// SNI is the server name asked for, "" for none.
	SNI string
	// JA4 is the client's JA4 fingerprint.
	JA4 string
	// MaxVersion is the highest TLS version offered (0 for none).
	MaxVersion uint16
}

// New describes a ClientHello. Its lists may be shared with other
// Hellos: they are read only.
//
// Most clients of a server send one of a few kinds of ClientHello, so the
// description of each kind (everything but the server name) is kept, for
// up to maxKinds kinds, keyed by the values it is made from: naming some
// 60 values and hashing the JA4 fingerprint is then done once per kind,
// not once per handshake. A client that sends a new kind each time only
// refills the table, which is emptied when full.
func New(h *tls.ClientHelloInfo) *Hello {
	var buf [512]byte
	key, ok := kindKey(buf[:0], h)
	var kind *Hello
	if ok {
		kind = kinds.get(key)
	}
	if kind == nil {
		kind = &Hello{
			Versions:   names(h.SupportedVersions, tls.VersionName),
			Suites:     names(h.CipherSuites, SuiteName),
			Groups:     names(h.SupportedCurves, func(c tls.CurveID) string { return c.String() }),
			SigSchemes: names(h.SignatureSchemes, func(s tls.SignatureScheme) string { return s.String() }),
			ALPN:       Strings(h.SupportedProtos),
			JA4:        JA4(h),
			MaxVersion: maxVersion(h.SupportedVersions),
		}
		if ok {
			kinds.put(key, kind)
		}
	}
	out := *kind
	out.SNI = String(h.ServerName)
	return &out
}

// maxKinds bounds the table of ClientHello kinds; maxKindKey the key of
// one (a ClientHello with longer lists is described every time).
const (
	maxKinds   = 1024
	maxKindKey = 2048
)

// kinds is the table of ClientHello kinds New keeps.
var kinds = kindTable{m: make(map[string]*Hello)}

type kindTable struct {
	mu sync.Mutex
	m  map[string]*Hello
}

func (t *kindTable) get(key []byte) *Hello {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[string(key)] // no allocation: the compiler looks up without copying key
}

func (t *kindTable) put(key []byte, h *Hello) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxKinds {
		clear(t.m)
	}
	t.m[string(key)] = h
}

// kindKey appends to b everything New's description depends on but the
// server name: the lists, the extensions' types (JA4 counts and sorts
// them) and whether a server name was sent (JA4's d or i). It reports
// false when the key would be longer than maxKindKey.
func kindKey[B ~[]byte](b B, h *tls.ClientHelloInfo) (B, bool) {
	b = appendList(b, h.SupportedVersions)
	b = appendList(b, h.CipherSuites)
	b = appendList(b, h.SupportedCurves)
	b = appendList(b, h.SignatureSchemes)
	b = appendList(b, h.Extensions)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.SupportedProtos)))
	for _, p := range h.SupportedProtos {
		if len(b)+len(p) > maxKindKey {
			return b, false
		}
		b = append(b, byte(len(p))) // at most 255 bytes each (RFC 7301)
		b = append(b, p...)
	}
	b = append(b, byte(boolInt(h.ServerName != "")))
	return b, len(b) <= maxKindKey
}

// appendList appends l's length, then its values, two bytes each.
func appendList[B ~[]byte, T ~uint16](b B, l []T) B {
	b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
	for _, v := range l {
		b = binary.BigEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// Recorder is a connection that keeps the ClientHello of its handshake.
// The server's GetConfigForClient calls Record with the connection it is
// given (ClientHelloInfo.Conn), which is how a handshake, failed or not,
// learns what its client offered and which configuration answered it.
type Recorder interface {
	RecordHello(h *Hello, server *tls.Config)
}

// Record describes the ClientHello and gives it, with the configuration
// chosen for it, to the connection, if the connection is a Recorder.
func Record(h *tls.ClientHelloInfo, server *tls.Config) {
	if r, ok := h.Conn.(Recorder); ok {
		r.RecordHello(New(h), server)
	}
}

// suiteNames is crypto/tls's name of every cipher suite it knows.
// tls.CipherSuiteName builds the lists of all suites on each call (two
// slices and a struct per suite, some 200 allocations per ClientHello
// named); this table is built once.
var suiteNames = sync.OnceValue(func() map[uint16]string {
	m := make(map[uint16]string)
	for _, l := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range l {
			m[c.ID] = c.Name
		}
	}
	return m
})

// SuiteName is tls.CipherSuiteName(id) without its allocations: the
// suite's standard name, or its value in hex ("0x1301") when crypto/tls
// does not know it.
func SuiteName(id uint16) string {
	if n, ok := suiteNames()[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

// names names the values of l that are not GREASE, at most MaxList.
func names[T ~uint16](l []T, name func(T) string) []string {
	out := make([]string, 0, min(len(l), MaxList+1))
	kept := 0
	for i, v := range l {
		if isGREASE(uint16(v)) {
			continue
		}
		if kept == MaxList {
			n := 0
			for _, w := range l[i:] {
				n += 1 - boolInt(isGREASE(uint16(w)))
			}
			return append(out, more(n))
		}
		out = append(out, name(v))
		kept++
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func more(n int) string { return "(+" + strconv.Itoa(n) + " more)" }

// String is s, or when s is longer than MaxString+32 bytes (the room
// for the count, so that String of its own result is the same) its first
// MaxString bytes, cut at a character boundary when s is UTF-8, followed
// by " (+N bytes)". It does not escape: that is for the renderer.
func String(s string) string {
	if len(s) <= MaxString+32 {
		return s
	}
	cut := MaxString
	for cut > MaxString-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " (+" + strconv.Itoa(len(s)-cut) + " bytes)"
}

// Strings is l bounded: each entry by String, and a list longer than
// MaxList+1 entries cut to MaxList, then "(+N more)". A list is never
// cut to one entry less, so Strings of a bounded list (whose last entry
// may be such a count) is the same list.
//
// A list that is bounded already is returned as it is, not copied.
func Strings(l []string) []string {
	if l == nil {
		return nil
	}
	if bounded(l) {
		return l
	}
	out := make([]string, 0, min(len(l), MaxList+1))
	for i, s := range l {
		if i == MaxList && len(l) > MaxList+1 {
			return append(out, more(len(l)-i))
		}
		out = append(out, String(s))
	}
	return out
}

// bounded reports whether Strings would return l unchanged.
func bounded(l []string) bool {
	if len(l) > MaxList+1 {
		return false
	}
	for _, s := range l {
		if len(s) > MaxString+32 {
			return false
		}
	}
	return true
}

// ErrServerName is a server name (SNI) that is not a valid host name.
var ErrServerName = errors.New("client sent a server name (SNI) that is not a valid host name")

// ServerNameError is a refused server name, bounded.
type ServerNameError struct {
	// Name is the name the client sent, cut by String.
	Name string
	// Len is its length in bytes.
	Len int
	// Why says what is wrong with it.
	Why string
}

func (e *ServerNameError) Error() string {
	return ErrServerName.Error() + " (" + e.Why + ")"
}

func (e *ServerNameError) Unwrap() error { return ErrServerName }

// CheckServerName returns a *ServerNameError unless name is empty (no
// SNI), a host name of at most 253 bytes (labels of 1 to 63 letters,
// digits, hyphens and underscores, not starting or ending with a hyphen)
// or an IP address. RFC 6066 section 3 allows only host names, but some
// clients send an address, and it is harmless. Refusing the rest keeps a
// client from making the server carry, log and match a name of up to 64
// KiB of arbitrary bytes.
func CheckServerName(name string) error {
	if name == "" {
		return nil
	}
	bad := func(why string) error { return &ServerNameError{Name: String(name), Len: len(name), Why: why} }
	if len(name) > MaxServerName {
		return bad(strconv.Itoa(len(name)) + " bytes, the most is " + strconv.Itoa(MaxServerName))
	}
	if strings.ContainsRune(name, ':') {
		// Only an IPv6 address: no host name holds a colon.
		if _, err := netip.ParseAddr(name); err == nil {
			return nil
		}
	}
	// An IPv4 address passes as a host name of digits.
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return bad("empty label")
		case len(label) > 63:
			return bad("a label longer than 63 bytes")
		case label[0] == '-' || label[len(label)-1] == '-':
			return bad("a label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return bad("byte " + fmt.Sprintf("%#02x", c) + " is not allowed in a host name")
			}
		}
	}
	return nil
}
