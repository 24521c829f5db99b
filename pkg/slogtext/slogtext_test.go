package slogtext_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/slogtext"
)

// list is a Quoted value as a caller would write one: slog's rendering of
// its MarshalText.
type list []string

func (l list) MarshalText() ([]byte, error) {
	return []byte("[" + strings.Join(l, " ") + "]"), nil
}

func (l list) AppendSlogText(dst []byte) []byte {
	t, _ := l.MarshalText()
	return slogtext.AppendString(dst, string(t))
}

// inline is an Attrs value as a caller would write one: string
// attributes, key and value in turn.
type inline []string

func (in inline) LogValue() slog.Value {
	var attrs []slog.Attr
	for i := 0; i+1 < len(in); i += 2 {
		attrs = append(attrs, slog.String(in[i], in[i+1]))
	}
	return slog.GroupValue(attrs...)
}

func (in inline) AppendSlogTextAttrs(dst []byte) []byte {
	for i := 0; i+1 < len(in); i += 2 {
		dst = append(dst, ' ')
		dst = slogtext.AppendString(dst, in[i])
		dst = append(dst, '=')
		dst = slogtext.AppendString(dst, in[i+1])
	}
	return dst
}

// attrsFrom turns fuzz bytes into attributes of every kind: fields split
// by 0xff, the first byte of each choosing the kind.
func attrsFrom(data []byte) []slog.Attr {
	var attrs []slog.Attr
	for i, f := range bytes.Split(data, []byte{0xff}) {
		if len(f) == 0 {
			continue
		}
		kind, rest := f[0], string(f[1:])
		key := rest
		if k, v, ok := strings.Cut(rest, "="); ok {
			key, rest = k, v
		}
		var n uint64
		if len(f) >= 9 {
			n = binary.LittleEndian.Uint64(f[1:9])
		}
		switch kind % 16 {
		case 0:
			attrs = append(attrs, slog.String(key, rest))
		case 1:
			attrs = append(attrs, slog.Int64(key, int64(n)))
		case 2:
			attrs = append(attrs, slog.Uint64(key, n))
		case 3:
			attrs = append(attrs, slog.Bool(key, n%2 == 0))
		case 4:
			attrs = append(attrs, slog.Duration(key, time.Duration(n)))
		case 5:
			attrs = append(attrs, slog.Float64(key, math.Float64frombits(n)))
		case 6:
			attrs = append(attrs, slog.Any(key, list(strings.Fields(rest))))
		case 7:
			attrs = append(attrs, slog.Any(key, list(strings.Split(rest, ","))))
		case 8: // the rest is slog's: a time, an error, a group, nothing
			attrs = append(attrs, slog.Time(key, time.Unix(int64(n%(1<<40)), int64(i))))
		case 9:
			attrs = append(attrs, slog.Any(key, errors.New(rest)))
		case 10:
			attrs = append(attrs, slog.Group(key, slog.String("a", rest)))
		case 11:
			attrs = append(attrs, slog.Attr{})
		case 12:
			attrs = append(attrs, slog.Any(key, []string{rest}))
		case 13:
			attrs = append(attrs, slog.Int(key, i))
		case 14: // attributes of their own, inlined
			attrs = append(attrs, slog.Any("", inline(strings.Split(rest, ","))))
		case 15: // the same under a key: a group, slog's
			attrs = append(attrs, slog.Any(key, inline(strings.Split(rest, ","))))
		}
	}
	return attrs
}

// both writes the record with this package's handler and with slog's.
func both(t *testing.T, opts *slog.HandlerOptions, r slog.Record) (got, want string) {
	t.Helper()
	var g, w bytes.Buffer
	if err := slogtext.New(&g, opts).Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	if err := slog.NewTextHandler(&w, opts).Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	return g.String(), w.String()
}

// FuzzHandle checks that every record comes out as slog's text handler
// writes it, whether this handler writes it or hands it over.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		"",
		"\x00conn_id=7\xff\x01n=12345678\xff\x06hello_suites=TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384",
		"\x00empty=\xff\x00=no key\xff\x00k=a \"quoted\" \\ value\xff\x00k=\x1b[31m\xff\x00k=é\u00a0\xff\x00k=\xc3",
		"\x04d=\x01\x02\x03\x04\x05\x06\x07\x08\xff\x05f=\x00\x00\x00\x00\x00\x00\xf8\x7f\xff\x03b=\x01\x00\x00\x00\x00\x00\x00\x00",
		"\x06l=\xff\x07l=a,,b\xff\x06l=a=b c\"d",
		"\x08t=\x01\x02\x03\x04\x05\x06\x07\x08\xff\x00s=x",
		"\x09err=boom\xff\x0ag=x\xff\x0b\xff\x0cbytes=raw",
		"\x00k=\x7f\xff\x00k\x01=v\xff\x00k=tab\there",
		"\x0eidentity,CN=a b,tls_version,TLS 1.3,sni,,alpn,x\"y\xff\x0e\xff\x0eodd\xff\x0fg=k,v\xff\x00k=v",
	} {
		f.Add("handshake", int8(0), int64(1764556800123456789), []byte(s))
	}
	f.Fuzz(func(t *testing.T, msg string, level int8, unixNano int64, data []byte) {
		r := slog.NewRecord(time.Unix(0, unixNano), slog.Level(level), msg, 0)
		if unixNano%7 == 0 {
			r.Time = time.Time{}
		}
		r.AddAttrs(attrsFrom(data)...)
		got, want := both(t, &slog.HandlerOptions{Level: slog.LevelDebug - 10}, r)
		if got != want {
			t.Errorf("slogtext wrote\n%q\nslog wrote\n%q", got, want)
		}
	})
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		opts *slog.HandlerOptions
		l    slog.Level
		want bool
	}{
		{nil, slog.LevelInfo, true},
		{nil, slog.LevelDebug, false},
		{&slog.HandlerOptions{Level: slog.LevelWarn}, slog.LevelInfo, false},
		{&slog.HandlerOptions{Level: slog.LevelDebug}, slog.LevelDebug, true},
	} {
		if got := slogtext.New(&bytes.Buffer{}, tc.opts).Enabled(context.Background(), tc.l); got != tc.want {
			t.Errorf("Enabled(%v) with %+v = %v, want %v", tc.l, tc.opts, got, tc.want)
		}
	}
}

// WithAttrs and WithGroup give slog's own handler, writing to the same
// writer: the same output as slog's.
func TestWithAttrsAndGroup(t *testing.T) {
	var g, w bytes.Buffer
	hs := []slog.Handler{slogtext.New(&g, nil), slog.NewTextHandler(&w, nil)}
	for _, h := range hs {
		l := slog.New(h).With("replica", "a b").WithGroup("acme")
		l.Info("order", "n", 3, "list", list{"x", "y"})
	}
	if g.String() == "" || !equalButTime(g.String(), w.String()) {
		t.Errorf("slogtext wrote\n%q\nslog wrote\n%q", g.String(), w.String())
	}
}

// equalButTime compares two lines after their time field.
func equalButTime(a, b string) bool {
	_, a, _ = strings.Cut(a, " ")
	_, b, _ = strings.Cut(b, " ")
	return a == b
}

// TestQuotedAllocates measures the point of the package: a record of
// strings, numbers and Quoted values allocates nothing once warm.
func TestQuotedAllocates(t *testing.T) {
	h := slogtext.New(discard{}, nil)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "handshake", 0)
	q := preQuoted(`"[TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384]"`)
	r.AddAttrs(slog.Uint64("conn_id", 1), slog.String("remote_addr", "127.0.0.1:4000"), slog.Bool("resumed", false),
		slog.Any("hello_suites", q), slog.String("ja4", "t13d1516h2_8daaf6152771_02713d6af862"))
	if got := testing.AllocsPerRun(100, func() { _ = h.Handle(context.Background(), r) }); got >= 0.5 {
		t.Errorf("%v allocations a record, want none", got)
	}
}

type preQuoted string

func (p preQuoted) AppendSlogText(dst []byte) []byte { return append(dst, p...) }

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
