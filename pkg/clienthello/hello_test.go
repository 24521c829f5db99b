package clienthello_test

import (
	"crypto/tls"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seclisten/seclisten/pkg/clienthello"
)

func TestNew(t *testing.T) {
	h := clienthello.New(&tls.ClientHelloInfo{
		CipherSuites:      []uint16{0x0a0a, tls.TLS_AES_128_GCM_SHA256, 0x1234},
		SupportedVersions: []uint16{0x3a3a, tls.VersionTLS13, tls.VersionTLS12},
		SupportedCurves:   []tls.CurveID{0x4a4a, tls.X25519MLKEM768, tls.X25519},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedProtos:   []string{"h2", "\x1b[2J"},
		ServerName:        "example.com",
	})
	want := clienthello.Hello{
		Versions:   []string{"TLS 1.3", "TLS 1.2"},
		Suites:     []string{"TLS_AES_128_GCM_SHA256", "0x1234"},
		Groups:     []string{"X25519MLKEM768", "X25519"},
		SigSchemes: []string{"ECDSAWithP256AndSHA256"},
		ALPN:       []string{"h2", "\x1b[2J"},
		SNI:        "example.com",
		MaxVersion: tls.VersionTLS13,
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{{"versions", h.Versions, want.Versions}, {"suites", h.Suites, want.Suites}, {"groups", h.Groups, want.Groups},
		{"sig schemes", h.SigSchemes, want.SigSchemes}, {"alpn", h.ALPN, want.ALPN}} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if h.SNI != want.SNI || h.MaxVersion != want.MaxVersion || !strings.HasPrefix(h.JA4, "t13d") {
		t.Errorf("SNI %q, max version %#x, JA4 %s", h.SNI, h.MaxVersion, h.JA4)
	}
}

func TestBounds(t *testing.T) {
	suites := make([]uint16, 0, 100)
	for i := range 100 {
		suites = append(suites, 0xc000+uint16(i))
		if i%10 == 0 {
			suites = append(suites, 0x5a5a) // GREASE, neither kept nor counted
		}
	}
	protos := make([]string, 40)
	for i := range protos {
		protos[i] = "p"
	}
	protos[0] = strings.Repeat("\x1b", 60000)
	h := clienthello.New(&tls.ClientHelloInfo{CipherSuites: suites, SupportedProtos: protos})
	if len(h.Suites) != clienthello.MaxList+1 || h.Suites[clienthello.MaxList] != "(+68 more)" {
		t.Errorf("suites: %d entries, last %q", len(h.Suites), h.Suites[len(h.Suites)-1])
	}
	if len(h.ALPN) != clienthello.MaxList+1 || h.ALPN[clienthello.MaxList] != "(+8 more)" {
		t.Errorf("alpn: %d entries, last %q", len(h.ALPN), h.ALPN[len(h.ALPN)-1])
	}
	if want := strings.Repeat("\x1b", 256) + " (+59744 bytes)"; h.ALPN[0] != want {
		t.Errorf("alpn[0] = %d bytes, want %d", len(h.ALPN[0]), len(want))
	}
	// A cut never splits a character.
	s := clienthello.String(strings.Repeat("é", 200))
	if !utf8.ValidString(s) || !strings.HasSuffix(s, "é (+144 bytes)") {
		t.Errorf("String cut UTF-8 badly: %q", s[250:])
	}
	if l := clienthello.Strings(h.ALPN); !slices.Equal(l, h.ALPN) {
		t.Errorf("Strings of a bounded list cut it again: %d entries, last %q", len(l), l[len(l)-1])
	}
	if l := clienthello.Strings(make([]string, clienthello.MaxList+1)); len(l) != clienthello.MaxList+1 {
		t.Errorf("Strings cut a list of MaxList+1 entries to %d", len(l))
	}
	if s := clienthello.String(h.ALPN[0]); s != h.ALPN[0] {
		t.Errorf("String of a bounded string cut it again: %q", s[250:])
	}
	if s := clienthello.String("short"); s != "short" {
		t.Errorf("String(short) = %q", s)
	}
	if l := clienthello.Strings(nil); l != nil {
		t.Errorf("Strings(nil) = %q", l)
	}
}

// A host name, what nearly every client sends, is checked without an
// allocation.
func TestCheckServerNameAllocs(t *testing.T) {
	for _, sni := range []string{"example.com", "127.0.0.1", "::1"} {
		if n := testing.AllocsPerRun(100, func() { _ = clienthello.CheckServerName(sni) }); n > 0 {
			t.Errorf("%s: %v allocations, want none", sni, n)
		}
	}
}

func TestCheckServerName(t *testing.T) {
	tests := []struct {
		name, sni, why string
	}{
		{"none", "", ""},
		{"host", "example.com", ""},
		{"single label", "localhost", ""},
		{"underscore", "_dmarc.example.com", ""},
		{"IPv4", "127.0.0.1", ""},
		{"IPv6", "::1", ""},
		{"IPv6 with a zone", "fe80::1%eth0", ""},
		{"IPv4-mapped IPv6", "::ffff:192.0.2.1", ""},
		{"a colon, no address", "a:b", "byte 0x3a is not allowed in a host name"},
		{"longest", strings.Repeat(strings.Repeat("a", 62)+".", 4) + "b", ""},
		{"too long", strings.Repeat(strings.Repeat("a", 62)+".", 4) + "bc", "254 bytes, the most is 253"},
		{"60,000 escapes", strings.Repeat("\x1b", 60000), "60000 bytes, the most is 253"},
		{"escape", "a\x1b[2Jb.example", "byte 0x1b is not allowed in a host name"},
		{"space", "a b", "byte 0x20 is not allowed in a host name"},
		{"UTF-8", "exämple.com", "byte 0xc3 is not allowed in a host name"},
		{"empty label", "a..b", "empty label"},
		{"leading dot", ".a", "empty label"},
		{"long label", strings.Repeat("a", 64) + ".com", "a label longer than 63 bytes"},
		{"hyphen", "-a.com", "a label starts or ends with a hyphen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := clienthello.CheckServerName(tt.sni)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("CheckServerName: %v", err)
				}
				return
			}
			var e *clienthello.ServerNameError
			if !errors.As(err, &e) || !errors.Is(err, clienthello.ErrServerName) {
				t.Fatalf("CheckServerName = %v, want a ServerNameError", err)
			}
			if e.Why != tt.why || e.Len != len(tt.sni) || len(e.Name) > clienthello.MaxString+32 {
				t.Errorf("why %q (want %q), len %d, name %d bytes", e.Why, tt.why, e.Len, len(e.Name))
			}
		})
	}
}

// TestLongServerName sends a 60,000-byte server name of escape bytes from
// a crypto/tls client and checks what the server's side makes of it.
func TestLongServerName(t *testing.T) {
	long := strings.Repeat("\x1b", 60000)
	h := parse(clientHelloRecords(t, &tls.Config{ServerName: long}))
	if h == nil || h.ServerName != long {
		t.Fatal("the long server name did not arrive")
	}
	if err := clienthello.CheckServerName(h.ServerName); err == nil {
		t.Error("a 60,000-byte server name was accepted")
	}
	if s := clienthello.New(h).SNI; len(s) > clienthello.MaxString+32 {
		t.Errorf("SNI kept %d bytes", len(s))
	}
}

var ja4Format = regexp.MustCompile(`^t(13|12|11|10|s3|s2|00)[di]\d{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

// checkBounded fails unless every list and string of h is bounded.
func checkBounded(t *testing.T, h *clienthello.Hello) {
	t.Helper()
	for _, l := range [][]string{h.Versions, h.Suites, h.Groups, h.SigSchemes, h.ALPN} {
		if len(l) > clienthello.MaxList+1 {
			t.Fatalf("list of %d entries", len(l))
		}
		for _, s := range l {
			if len(s) > clienthello.MaxString+32 {
				t.Fatalf("string of %d bytes", len(s))
			}
		}
	}
	if len(h.SNI) > clienthello.MaxString+32 {
		t.Fatalf("SNI of %d bytes", len(h.SNI))
	}
	if !ja4Format.MatchString(h.JA4) {
		t.Fatalf("JA4 %q is malformed", h.JA4)
	}
}

// FuzzNew parses bytes as a ClientHello with crypto/tls, as the server
// does, and checks that the summary of whatever it accepts is bounded and
// its JA4 well formed. The seed corpus is in testdata/fuzz/FuzzNew.
func FuzzNew(f *testing.F) {
	f.Add(clientHelloRecords(f, &tls.Config{ServerName: "example.com", NextProtos: []string{"h2"}}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h := parse(raw)
		if h == nil {
			return
		}
		s := clienthello.New(h)
		checkBounded(t, s)
		// Described again from the table of kinds, and afresh: the same.
		if again, fresh := clienthello.New(h), clienthello.Fresh(h); !reflect.DeepEqual(again, fresh) || !reflect.DeepEqual(s, fresh) {
			t.Fatalf("described from the table of kinds:\n%+v\nafresh:\n%+v", again, fresh)
		}
		if s.JA4 != clienthello.JA4(h) {
			t.Fatal("JA4 is not deterministic")
		}
		if err := clienthello.CheckServerName(h.ServerName); err != nil && !strings.Contains(err.Error(), "not a valid host name") {
			t.Fatalf("CheckServerName: %v", err)
		}
	})
}

// Hellos that differ only in their server name share a description but
// the name; any other difference makes another kind; the table of kinds
// stays bounded.
func TestKinds(t *testing.T) {
	base := tls.ClientHelloInfo{
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		CipherSuites:      []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SupportedCurves:   []tls.CurveID{tls.X25519, tls.CurveP256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		Extensions:        []uint16{0, 10, 13, 16, 43},
		SupportedProtos:   []string{"h2", "http/1.1"},
		ServerName:        "a.example",
	}
	a := clienthello.New(&base)
	other := base
	other.ServerName = "b.example"
	b := clienthello.New(&other)
	if &a.Suites[0] != &b.Suites[0] || a.SNI != "a.example" || b.SNI != "b.example" || a.JA4 != b.JA4 {
		t.Errorf("two hellos of one kind: %+v and %+v, want shared lists and their own names", a, b)
	}
	variants := map[string]func(h *tls.ClientHelloInfo){
		"versions":   func(h *tls.ClientHelloInfo) { h.SupportedVersions = []uint16{tls.VersionTLS12} },
		"suites":     func(h *tls.ClientHelloInfo) { h.CipherSuites = h.CipherSuites[:1] },
		"groups":     func(h *tls.ClientHelloInfo) { h.SupportedCurves = []tls.CurveID{tls.CurveP384} },
		"sigs":       func(h *tls.ClientHelloInfo) { h.SignatureSchemes = []tls.SignatureScheme{tls.Ed25519} },
		"extensions": func(h *tls.ClientHelloInfo) { h.Extensions = []uint16{0, 10, 13, 16} },
		"alpn":       func(h *tls.ClientHelloInfo) { h.SupportedProtos = []string{"h2", "http/1.0"} },
		"alpn split": func(h *tls.ClientHelloInfo) { h.SupportedProtos = []string{"h", "2http/1.1"} },
		"no sni":     func(h *tls.ClientHelloInfo) { h.ServerName, h.Extensions = "", []uint16{10, 13, 16, 43} },
		"long alpn": func(h *tls.ClientHelloInfo) {
			h.SupportedProtos = slices.Repeat([]string{strings.Repeat("x", 255)}, 20)
		},
	}
	for name, change := range variants {
		h := base
		change(&h)
		// Both in the table, then each described again.
		clienthello.New(&base)
		clienthello.New(&h)
		if got, want := clienthello.New(&h), clienthello.Fresh(&h); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: described %+v, want %+v", name, got, want)
		}
	}
	for i := range 3000 {
		h := base
		h.CipherSuites = []uint16{uint16(i)}
		clienthello.New(&h)
		if n := clienthello.Kinds(); n > 1024 {
			t.Fatalf("%d kinds kept, want at most 1024", n)
		}
	}
}

// SuiteName names every suite as crypto/tls does, known or not.
func TestSuiteName(t *testing.T) {
	ids := []uint16{0, 0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0x0005, 0xffff}
	for _, l := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, c := range l {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		if got, want := clienthello.SuiteName(id), tls.CipherSuiteName(id); got != want {
			t.Errorf("SuiteName(%#04x) = %q, want %q", id, got, want)
		}
	}
}
