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
