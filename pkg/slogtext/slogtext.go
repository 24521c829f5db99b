package slogtext

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Quoted is a value that renders itself as slog's text handler would
// render it: the text of its MarshalText, quoted if AppendString would
// quote it.
type Quoted interface {
	AppendSlogText(dst []byte) []byte
}

// Attrs is a value that stands for attributes of its own. Under an empty
// key slog's handlers resolve it (LogValue, a group) and write the group's
// attributes in its place; Handler writes them with AppendSlogTextAttrs,
// without an slog.Attr for each.
type Attrs interface {
	slog.LogValuer
	// AppendSlogTextAttrs appends " key=value" for each attribute of
	// LogValue's group, as slog's text handler writes them outside any
	// group: nothing for an empty group.
	AppendSlogTextAttrs(dst []byte) []byte
}

// Handler writes records in slog's text format.
type Handler struct {
	w     *lockedWriter
	level slog.Leveler
	slow  slog.Handler // slog's text handler, for every other record
}

// lockedWriter serialises the writes of both handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// New returns a handler writing to w what slog.NewTextHandler(w, opts)
// writes. With ReplaceAttr or AddSource set it returns slog's handler
// itself.
func New(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	if opts.ReplaceAttr != nil || opts.AddSource {
		return slog.NewTextHandler(w, opts)
	}
	lw := &lockedWriter{w: w}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{w: lw, level: level, slow: slog.NewTextHandler(lw, opts)}
}

// Enabled reports whether level is at least the handler's.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// WithAttrs returns slog's handler with the attributes.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.slow.WithAttrs(attrs) }

// WithGroup returns slog's handler with the group.
func (h *Handler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Handle writes r as one line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	bp := bufs.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], r)
	if !ok {
		*bp = b[:0]
		bufs.Put(bp)
		return h.slow.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return err
}

// appendRecord appends r as slog's text handler writes it, and reports
// false if r holds a value it leaves to slog's handler.
func appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, r.Time.Round(0))
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = AppendString(b, r.Level.String())
	b = append(b, " msg="...)
	b = AppendString(b, r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	return append(b, '\n'), ok
}

// appendAttr appends " key=value", or reports false for a value slog's
// handler should write (it resolves, groups, formats times, errors and
// everything else with fmt, and drops empty attributes): the record then
// goes to slog's handler whole, and what was appended is dropped.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" && a.Value.Kind() == slog.KindLogValuer {
		if at, ok := a.Value.Any().(Attrs); ok {
			return at.AppendSlogTextAttrs(b), true
		}
	}
	b = append(b, ' ')
	b = AppendString(b, a.Key)
	b = append(b, '=')
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return AppendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return append(b, v.Duration().String()...), true
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64), true
	case slog.KindAny:
		if q, ok := v.Any().(Quoted); ok {
			return q.AppendSlogText(b), true
		}
	}
	return b, false
}

// AppendString appends s as slog's text handler writes a string: as it
// is, or quoted with strconv.AppendQuote when it is empty or holds a
// space, '=', '"', a control character, invalid UTF-8 or a character
// that is not printable.
func AppendString(b []byte, s string) []byte {
	if !needsQuoting(s) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	// Printable ASCII without a quote or a backslash, such as "TLS 1.3"
	// or "CN=alice": AppendQuote would only add the quotes, after asking
	// of each rune whether it is printable.
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// needsQuoting is log/slog's rule (text_handler.go): in ASCII, anything
// encoding/json would escape except the backslash, and the space and '='.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendRFC3339Millis is log/slog's time format: RFC 3339 with exactly
// three digits of milliseconds, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}
