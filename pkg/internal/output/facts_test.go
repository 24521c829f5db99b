package output_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/slogtext"
)

// The facts of a connection are one description: the log attributes, the
// JSON handshake event and the --report line (text and JSON) carry the same
// keys with the same values.
func TestFactsRenderedAlike(t *testing.T) {
	id := &identity.Identity{Name: "CN=alice", Subject: "CN=alice", Issuer: "CN=CA", DNSNames: []string{"a.example"},
		Serial: "0x1f", Fingerprint: "ab", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(86400, 0)}
	for _, f := range []*output.Facts{
		{Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555"},
		{Identity: "CN=alice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c",
			Group: "X25519", ALPN: "p", SNI: "localhost \x1b[31m", Resumed: true, ClientAuth: "require"},
			Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id},
	} {
		attrs := f.Attrs()
		fromLog := map[string]string{}
		for i := 0; i < len(attrs); i += 2 {
			fromLog[attrs[i].(string)] = flat(attrs[i+1])
		}

		var report map[string]any
		if err := json.Unmarshal([]byte(f.Report(true)), &report); err != nil {
			t.Fatalf("JSON report %q: %v", f.Report(true), err)
		}
		fromJSON := map[string]string{}
		for k, v := range report {
			fromJSON[k] = flat(v)
		}

		fromText, err := parseReport(f.Report(false))
		if err != nil {
			t.Fatalf("text report %q: %v", f.Report(false), err)
		}
		for k, v := range fromLog {
			if fromJSON[k] != v {
				t.Errorf("%s: log %q, JSON report %q", k, v, fromJSON[k])
			}
			if fromText[k] != v {
				t.Errorf("%s: log %q, text report %q", k, v, fromText[k])
			}
		}
		if len(fromLog) != len(fromJSON) || len(fromLog) != len(fromText) {
			t.Errorf("%d log keys, %d JSON keys, %d text keys", len(fromLog), len(fromJSON), len(fromText))
		}
		if strings.ContainsRune(f.Report(false), 0x1b) {
			t.Error("an escape reached the report raw")
		}
	}
}

// flat renders a value as the text report does: lists comma-separated.
func flat(v any) string {
	switch v := v.(type) {
	case output.List:
		return strings.Join(v, ",")
	case output.HelloList:
		return strings.Join(v, ",")
	case []string:
		return strings.Join(v, ",")
	case []any:
		var s []string
		for _, x := range v {
			s = append(s, x.(string))
		}
		return strings.Join(s, ",")
	case bool:
		if v {
			return "true"
		}
		return "false"
	case string:
		return v
	}
	return "?"
}

// parseReport parses a key=value line; a quoted value is unquoted, "-" is
// empty.
func parseReport(s string) (map[string]string, error) {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("no = in %q", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, err
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
		}
		if v == "-" {
			v = ""
		}
		out[k] = v
		s = strings.TrimPrefix(rest, " ")
	}
	return out, nil
}

// The handshake line is logged from LogAttrs, without interfaces or fmt:
// with slog's text and JSON handlers it is byte for byte the line Attrs
// gives when its lists are plain []string, as they were logged before.
func TestLogAttrsLogAlike(t *testing.T) {
	id := &identity.Identity{Name: "CN=al ice", Subject: "CN=al ice", Issuer: "CN=<CA>", DNSNames: []string{"a.example", "b&c"},
		Serial: "0x1f", Fingerprint: "ab", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(86400, 0)}
	hello := &clienthello.Hello{Versions: []string{"TLS 1.3"}, Suites: []string{"TLS_AES_128_GCM_SHA256", "0x1337"},
		Groups: nil, SigSchemes: []string{}, ALPN: []string{"h2", "x \"q\" <y>", "\x1b[31m"}, SNI: "localhost", JA4: "t13d"}
	for _, f := range []*output.Facts{
		{Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555"},
		{Identity: "CN=al ice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c",
			Group: "X25519", ALPN: "p", SNI: "localhost \x1b[31m", Resumed: true, ClientAuth: "require", KeyLog: true},
			Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id, Hello: hello},
	} {
		noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}
		for _, h := range []func(io.Writer) slog.Handler{
			func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, noTime) },
			func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, noTime) },
		} {
			var want, got bytes.Buffer
			attrs := f.Attrs()
			var kept []any
			for i := 0; i < len(attrs); i += 2 {
				if attrs[i] == "remote_addr" {
					continue
				}
				v := attrs[i+1]
				switch l := v.(type) {
				case output.List:
					v = []string(l)
				case output.HelloList:
					v = []string(l)
				}
				kept = append(kept, attrs[i], v)
			}
			slog.New(h(&want)).Info("handshake", kept...)
			slog.New(h(&got)).LogAttrs(context.Background(), slog.LevelInfo, "handshake", f.LogAttrs(nil, "remote_addr")...)
			if w, g := want.String(), got.String(); w != g || !strings.Contains(w, "hello") == (f.Hello != nil) {
				t.Errorf("LogAttrs logs\n%s\nAttrs with []string logs\n%s", g, w)
			}
		}
	}
}

// With slogtext's handler, which takes the ClientHello lists' kept
// rendering, the handshake line is still byte for byte slog's text
// handler's, the first time and from the kept rendering after.
func TestLogAttrsSlogtext(t *testing.T) {
	hello := &clienthello.Hello{Versions: []string{"TLS 1.3", "TLS 1.2"}, Suites: []string{"TLS_AES_128_GCM_SHA256", "0x1337"},
		Groups: []string{"X25519MLKEM768", "X25519"}, SigSchemes: []string{}, ALPN: []string{"h2", "x \"q\" <y>", "\x1b[31m"}, SNI: "localhost", JA4: "t13d"}
	id := &identity.Identity{Name: "CN=al ice", Subject: "CN=al ice", Issuer: "CN=<CA>", DNSNames: []string{"a.example", "b&c"},
		Serial: "0x1f", Fingerprint: "ab", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(86400, 0)}
	f := &output.Facts{Identity: "CN=al ice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c",
		Group: "X25519", ClientAuth: "require"}, Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id, Hello: hello}
	at := time.Date(2026, 12, 1, 5, 0, 0, 123456789, time.UTC)
	for i := range 3 {
		var got, want bytes.Buffer
		r := slog.NewRecord(at, slog.LevelInfo, "handshake", 0)
		r.AddAttrs(f.LogAttrs(nil, "")...)
		if err := slogtext.New(&got, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if err := slog.NewTextHandler(&want, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() || !strings.Contains(got.String(), `hello_suites="[TLS_AES_128_GCM_SHA256 0x1337]"`) ||
			!strings.Contains(got.String(), `client_sans="[DNS:a.example DNS:b&c]"`) {
			t.Errorf("round %d: slogtext wrote\n%s\nslog wrote\n%s", i, got.String(), want.String())
		}
	}
}

// handshakeRecords writes the handshake record twice: the facts as one
// attribute (LogAttr) with h, and as LogAttrs's attributes with slog's
// text handler, which is what the line must be.
func handshakeRecords(t testing.TB, h slog.Handler, f *output.Facts, skip string) (got, want string) {
	t.Helper()
	at := time.Date(2026, 12, 1, 5, 0, 0, 123456789, time.UTC)
	var g, w bytes.Buffer
	r := slog.NewRecord(at, slog.LevelInfo, "handshake", 0)
	r.AddAttrs(slog.Uint64("conn_id", 7), f.LogAttr(skip))
	if h == nil {
		h = slogtext.New(&g, nil)
	} else {
		h = h.WithAttrs(nil)
	}
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	r = slog.NewRecord(at, slog.LevelInfo, "handshake", 0)
	r.AddAttrs(slog.Uint64("conn_id", 7))
	r.AddAttrs(f.LogAttrs(nil, skip)...)
	if err := slog.NewTextHandler(&w, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return g.String(), w.String()
}

// The facts as one attribute (LogAttr) make the line LogAttrs's
// attributes make: slogtext writes it from the facts, the first time and
// from what it kept after, and slog's handlers inline it.
func TestLogAttrAlike(t *testing.T) {
	hello := func() *clienthello.Hello {
		return &clienthello.Hello{Versions: []string{"TLS 1.3", "TLS 1.2"}, Suites: []string{"TLS_AES_128_GCM_SHA256", "0x1337"},
			Groups: nil, SigSchemes: []string{}, ALPN: []string{"h2", "x \"q\" <y>", "\x1b[31m"}, SNI: "a b", JA4: "t13d"}
	}
	id := &identity.Identity{Name: "CN=al ice", Subject: "CN=al ice\x1b", Issuer: "CN=<CA>", DNSNames: []string{"a.example", "b&c"},
		Serial: "0x1f", Fingerprint: "alike", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(86400, 0)}
	shared := hello()
	for name, f := range map[string]*output.Facts{
		"plain TCP": {Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555"},
		"TLS":       {Identity: "192.0.2.9:5555", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c", Group: "X25519", ClientAuth: "none"}, Hello: shared},
		"mTLS": {Identity: "CN=al ice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c",
			Group: "X25519", ALPN: "p", SNI: "localhost \x1b[31m", Resumed: true, ResumedTicket: "own", ClientAuth: "require", KeyLog: true},
			Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id, Hello: shared},
		"a new hello each time": {Identity: "x", Remote: "y", TLS: &output.TLS{}, Hello: hello()},
	} {
		for _, skip := range []string{"", "remote_addr"} {
			for round := range 3 {
				got, want := handshakeRecords(t, nil, f, skip)
				if got != want || !strings.Contains(got, "conn_id=7 ") || (f.Hello != nil) != strings.Contains(got, "hello_suites=") {
					t.Errorf("%s, skip %q, round %d: slogtext wrote\n%s\nslog wrote\n%s", name, skip, round, got, want)
				}
				for _, h := range []func(io.Writer) slog.Handler{
					func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
					func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
				} {
					var one, each bytes.Buffer
					slog.New(h(&one)).LogAttrs(context.Background(), slog.LevelInfo, "handshake", f.LogAttr(skip))
					slog.New(h(&each)).LogAttrs(context.Background(), slog.LevelInfo, "handshake", f.LogAttrs(nil, skip)...)
					if o, e := dropTime(one.String()), dropTime(each.String()); o != e {
						t.Errorf("%s, skip %q: slog's handler wrote\n%s\nfor LogAttr, and\n%s\nfor LogAttrs", name, skip, o, e)
					}
				}
			}
		}
	}
	// What was kept is written without an allocation.
	clean := hello()
	clean.ALPN = []string{"h2"}
	f := &output.Facts{Identity: "CN=al ice", Remote: "192.0.2.9:5555", TLS: &output.TLS{Version: "TLS 1.3", Cipher: "c",
		Group: "X25519", ClientAuth: "require"}, Verdict: outcome.OK, VerdictText: "client certificate verified", Cert: id, Hello: clean}
	var buf []byte
	attr := f.LogAttr("remote_addr").Value.Any().(slogtext.Attrs)
	buf = attr.AppendSlogTextAttrs(buf)
	if n := testing.AllocsPerRun(50, func() { buf = attr.AppendSlogTextAttrs(buf[:0]) }); n > 0 {
		t.Errorf("%v allocations for a record from what was kept, want none", n)
	}
	// slogtext writes the record itself: slog's handler would allocate.
	h := slogtext.New(io.Discard, nil)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "handshake", 0)
	r.AddAttrs(slog.Uint64("conn_id", 7), f.LogAttr("remote_addr"))
	if n := testing.AllocsPerRun(50, func() { _ = h.Handle(context.Background(), r) }); n > 0 {
		t.Errorf("%v allocations for writing the record, want none: not slogtext's own path", n)
	}
}

// dropTime removes a line's time, the one part two calls write apart.
func dropTime(line string) string {
	if i := strings.Index(line, "level"); i > 0 {
		return line[i:]
	}
	return line
}

// FuzzLogAttr checks that slogtext writes the facts of any client as
// slog's text handler writes their attributes.
func FuzzLogAttr(f *testing.F) {
	f.Add("CN=alice", "localhost", "h2,http/1.1", "client certificate verified", "CN=alice", true)
	f.Add("", "", "", "", "", false)
	f.Add("a=b \"c\"", "\x1b[31m", "x y,\xff,é\u00a0,", "expired 3 days ago", "\\", true)
	f.Fuzz(func(t *testing.T, identity_, sni, alpn, verdictText, certName string, resumed bool) {
		hello := &clienthello.Hello{Versions: []string{"TLS 1.3"}, Suites: strings.Split(alpn+",TLS_AES_128_GCM_SHA256", ","),
			Groups: []string{sni}, ALPN: strings.Split(alpn, ","), SNI: sni, JA4: identity_}
		fs := &output.Facts{Identity: identity_, Remote: sni, TLS: &output.TLS{Version: "TLS 1.3", Cipher: alpn, ALPN: alpn,
			SNI: sni, Resumed: resumed, ClientAuth: "require"}, Verdict: outcome.Code(verdictText), VerdictText: verdictText, Hello: hello}
		if certName != "" {
			fs.Cert = &identity.Identity{Name: certName, Subject: certName, Issuer: sni, DNSNames: strings.Split(alpn, ","),
				Fingerprint: "fuzz", NotAfter: time.Unix(int64(len(certName)), 0)}
		}
		for range 2 {
			if got, want := handshakeRecords(t, nil, fs, "remote_addr"); got != want {
				t.Fatalf("slogtext wrote\n%q\nslog wrote\n%q", got, want)
			}
		}
	})
}

// A list changed in place is rendered afresh, not from what was kept.
func TestHelloListChangedInPlace(t *testing.T) {
	l := output.HelloList{"TLS 1.3", "TLS 1.2"}
	if got := string(l.AppendSlogText(nil)); got != `"[TLS 1.3 TLS 1.2]"` {
		t.Fatalf("first rendering %s", got)
	}
	l[1] = "x=y"
	if got := string(l.AppendSlogText(nil)); got != `"[TLS 1.3 x=y]"` {
		t.Errorf("after a change in place: %s, want \"[TLS 1.3 x=y]\"", got)
	}
	if got := string(output.HelloList{"a"}.AppendSlogText(nil)); got != `[a]` {
		t.Errorf("one entry: %s, want [a] (slog quotes only what needs it)", got)
	}
	if got := string(output.HelloList(nil).AppendSlogText(nil)); got != `[]` {
		t.Errorf("empty: %s, want []", got)
	}
}

// TestCertAttrsKept checks the client certificate's attributes kept per
// certificate: the same attributes for the same certificate, and
// another identity's own even when it claims the same fingerprint.
func TestCertAttrsKept(t *testing.T) {
	id := identity.Identity{Name: "CN=kept", Subject: "CN=kept", Issuer: "CN=CA", DNSNames: []string{"a.example"},
		Serial: "0x2a", Fingerprint: "f00d-kept", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(86400, 0)}
	render := func(id identity.Identity) string {
		f := &output.Facts{Identity: id.Name, Remote: "192.0.2.9:5555", Cert: &id}
		var b bytes.Buffer
		r := slog.NewRecord(time.Time{}, slog.LevelInfo, "handshake", 0)
		r.AddAttrs(f.LogAttrs(nil, "")...)
		if err := slog.NewTextHandler(&b, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first := render(id)
	if !strings.Contains(first, `client_name="CN=kept"`) || !strings.Contains(first, `client_not_after=1970-01-02T00:00:00Z`) ||
		!strings.Contains(first, `client_sans=[DNS:a.example]`) {
		t.Fatalf("first record: %s", first)
	}
	if again := render(id); again != first {
		t.Errorf("the same certificate again:\n%s\nwant\n%s", again, first)
	}
	// The same fingerprint, other facts: each field in turn.
	for name, change := range map[string]func(*identity.Identity){
		"name":       func(o *identity.Identity) { o.Name = "CN=other" },
		"subject":    func(o *identity.Identity) { o.Subject = "CN=other" },
		"issuer":     func(o *identity.Identity) { o.Issuer = "CN=other" },
		"serial":     func(o *identity.Identity) { o.Serial = "0x2b" },
		"SAN":        func(o *identity.Identity) { o.DNSNames = []string{"other.example"} },
		"IP":         func(o *identity.Identity) { o.IPs = []string{"192.0.2.1"} },
		"URI":        func(o *identity.Identity) { o.URIs = []string{"spiffe://other"} },
		"email":      func(o *identity.Identity) { o.Emails = []string{"other@example"} },
		"not before": func(o *identity.Identity) { o.NotBefore = time.Unix(1, 0) },
		"not after":  func(o *identity.Identity) { o.NotAfter = time.Unix(1, 0) },
	} {
		other := id
		change(&other)
		if got := render(other); got == first {
			t.Errorf("%s changed: the kept attributes were used:\n%s", name, got)
		}
		if again := render(id); again != first {
			t.Errorf("after another identity with the same fingerprint (%s):\n%s\nwant\n%s", name, again, first)
		}
	}
	// Kept attributes cost no allocation per record.
	f := &output.Facts{Identity: id.Name, Remote: "192.0.2.9:5555", Cert: &id}
	dst := make([]slog.Attr, 0, 48)
	if n := testing.AllocsPerRun(100, func() { dst = f.LogAttrs(dst[:0], "") }); n > 0 {
		t.Errorf("%v allocations for a kept certificate's attributes, want none", n)
	}
}
