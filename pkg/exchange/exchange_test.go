package exchange_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/seclisten/seclisten/pkg/exchange"
)

// memConn is an in-memory connection: it reads r and writes to out.
type memConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// event is one call to the Observer.
type event struct {
	kind    string // "message" or "reply"
	data    string
	written int // bytes written to the client when the call was made
}

// recorder is an Observer that records every call, with how much had been
// written to the client at the time, to check the order of print and reply.
type recorder struct {
	written func() int
	events  []event
}

func (r *recorder) Message(msg []byte) {
	r.events = append(r.events, event{"message", string(msg), r.written()})
}

func (r *recorder) Reply(reply []byte) {
	r.events = append(r.events, event{"reply", string(reply), r.written()})
}

func (r *recorder) messages() []string {
	var out []string
	for _, e := range r.events {
		if e.kind == "message" {
			out = append(out, e.data)
		}
	}
	return out
}

func run(t *testing.T, input io.Reader, opts exchange.Options) (exchange.Result, *memConn, *recorder) {
	t.Helper()
	c := &memConn{r: input}
	rec := &recorder{written: c.out.Len}
	res := exchange.Run(c, opts, rec)
	return res, c, rec
}

func TestRun(t *testing.T) {
	const reply = "ok"
	tests := []struct {
		name     string
		input    func() io.Reader
		once     bool
		maxLine  int
		wantMsgs []string
		wantOut  string
		wantEnd  exchange.End
		wantErr  error
	}{
		{"no input", src(""), false, 10, nil, "", exchange.EndEOF, nil},
		{"one line", src("hello\n"), false, 10, []string{"hello"}, "ok\n", exchange.EndEOF, nil},
		{"three lines", src("a\r\nb\nc\n"), false, 10, []string{"a", "b", "c"}, "ok\nok\nok\n", exchange.EndEOF, nil},
		{"empty lines answered", src("\n\r\n"), false, 10, []string{"", ""}, "ok\nok\n", exchange.EndEOF, nil},
		{"final data without newline answered", src("a\nb"), false, 10, []string{"a", "b"}, "ok\nok\n", exchange.EndEOF, nil},
		{"escapes passed raw to observer", src("\x1b[31m\x00\xff\n"), false, 10,
			[]string{"\x1b[31m\x00\xff"}, "ok\n", exchange.EndEOF, nil},
		{"once", src("a\nb\nc\n"), true, 10, []string{"a"}, "ok\n", exchange.EndOnce, nil},
		{"once without newline", src("only"), true, 10, []string{"only"}, "ok\n", exchange.EndOnce, nil},
		{"once with no input", src(""), true, 10, nil, "", exchange.EndEOF, nil},
		{"line too long", src("abcdefghijk\n"), false, 10, nil,
			"error: line too long (max 10 bytes)\n", exchange.EndLineTooLong, nil},
		{"line too long after good ones", src("a\nabcdefghij\nabcdefghijk\nnever\n"), false, 10,
			[]string{"a", "abcdefghij"}, "ok\nok\nerror: line too long (max 10 bytes)\n", exchange.EndLineTooLong, nil},
		{"line too long without newline", src("abcdefghijk"), false, 10, nil,
			"error: line too long (max 10 bytes)\n", exchange.EndLineTooLong, nil},
		{"exactly max CRLF", src("abcdefghij\r\n"), false, 10, []string{"abcdefghij"}, "ok\n", exchange.EndEOF, nil},
		{"read error after a line", func() io.Reader {
			return io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(errBoom))
		}, false, 10, []string{"a"}, "ok\n", exchange.EndReadError, errBoom},
		{"read error after partial line", func() io.Reader {
			return io.MultiReader(strings.NewReader("a\npart"), iotest.ErrReader(errBoom))
		}, false, 10, []string{"a", "part"}, "ok\nok\n", exchange.EndReadError, errBoom},
		{"one byte at a time", func() io.Reader {
			return iotest.OneByteReader(strings.NewReader("ab\r\ncd\n"))
		}, false, 10, []string{"ab", "cd"}, "ok\nok\n", exchange.EndEOF, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := tt.input()
			counted := &countReader{r: input}
			res, c, rec := run(t, counted, exchange.Options{Reply: []byte(reply), MaxLine: tt.maxLine, Once: tt.once})
			if got := rec.messages(); !equal(got, tt.wantMsgs) {
				t.Errorf("messages = %q, want %q", got, tt.wantMsgs)
			}
			if got := c.out.String(); got != tt.wantOut {
				t.Errorf("output = %q, want %q", got, tt.wantOut)
			}
			if res.End != tt.wantEnd {
				t.Errorf("End = %v, want %v", res.End, tt.wantEnd)
			}
			if tt.wantErr != nil && !errors.Is(res.Err, tt.wantErr) {
				t.Errorf("Err = %v, want %v", res.Err, tt.wantErr)
			}
			if tt.wantErr == nil && res.Err != nil {
				t.Errorf("Err = %v, want nil", res.Err)
			}
			if res.Messages != len(tt.wantMsgs) {
				t.Errorf("Messages = %d, want %d", res.Messages, len(tt.wantMsgs))
			}
			if res.BytesOut != int64(c.out.Len()) {
				t.Errorf("BytesOut = %d, but %d bytes were written", res.BytesOut, c.out.Len())
			}
			if res.BytesIn != counted.n {
				t.Errorf("BytesIn = %d, but %d bytes were read", res.BytesIn, counted.n)
			}
			checkOrder(t, rec.events, reply)
		})
	}
}

// checkOrder checks that every message was observed before its reply was
// written, and each Reply call came right after the reply was written.
func checkOrder(t *testing.T, events []event, reply string) {
	t.Helper()
	perReply := len(reply) + 1
	replies := 0
	for i, e := range events {
		switch e.kind {
		case "message":
			if e.written != replies*perReply {
				t.Errorf("event %d: message %q observed with %d bytes written, want %d (before its reply)",
					i, e.data, e.written, replies*perReply)
			}
			if i+1 < len(events) && events[i+1].kind != "reply" {
				t.Errorf("event %d: message not followed by its reply", i)
			}
		case "reply":
			replies++
			if e.data != reply {
				t.Errorf("event %d: Reply(%q), want %q", i, e.data, reply)
			}
			if e.written != replies*perReply {
				t.Errorf("event %d: Reply observed with %d bytes written, want %d (after the write)",
					i, e.written, replies*perReply)
			}
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestRunBytes(t *testing.T) {
	input := "first\nsecond\r\nthird"
	res, c, _ := run(t, strings.NewReader(input), exchange.Options{Reply: []byte("thanks"), MaxLine: 64})
	want := exchange.Result{End: exchange.EndEOF, Messages: 3, BytesIn: int64(len(input)), BytesOut: 3 * 7}
	if res != want {
		t.Errorf("Result = %+v, want %+v", res, want)
	}
	if c.out.String() != "thanks\nthanks\nthanks\n" {
		t.Errorf("output = %q", c.out.String())
	}
}

func TestRunEmptyReply(t *testing.T) {
	res, c, rec := run(t, strings.NewReader("a\nb\n"), exchange.Options{Reply: []byte{}, MaxLine: 8})
	if c.out.String() != "\n\n" || res.BytesOut != 2 || res.Messages != 2 {
		t.Errorf("output %q, result %+v, want two bare newlines", c.out.String(), res)
	}
	checkOrder(t, rec.events, "")
}

func TestRunLineTooLong(t *testing.T) {
	for _, maxLine := range []int{1, 5, 100, 4096, 70000} {
		input := "x\n" + strings.Repeat("a", maxLine+1) + "\nafter\n"
		res, c, _ := run(t, strings.NewReader(input), exchange.Options{Reply: []byte("R"), MaxLine: maxLine})
		wantErrLine := "error: line too long (max " + strconv.Itoa(maxLine) + " bytes)\n"
		if got := c.out.String(); got != "R\n"+wantErrLine {
			t.Errorf("max %d: output = %q, want %q", maxLine, got, "R\n"+wantErrLine)
		}
		if res.End != exchange.EndLineTooLong || res.Err != nil || res.Messages != 1 {
			t.Errorf("max %d: Result = %+v, want EndLineTooLong after 1 message, no Err", maxLine, res)
		}
		if res.BytesOut != int64(c.out.Len()) {
			t.Errorf("max %d: BytesOut = %d, wrote %d", maxLine, res.BytesOut, c.out.Len())
		}
	}
}

// failWriter accepts ok writes, then fails, writing part of the next one.
type failWriter struct {
	r       io.Reader
	ok      int
	partial int
	out     bytes.Buffer
}

var errWrite = errors.New("write failed")

func (f *failWriter) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.ok == 0 {
		n := min(f.partial, len(p))
		f.out.Write(p[:n])
		return n, errWrite
	}
	f.ok--
	return f.out.Write(p)
}

func TestRunWriteError(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ok      int
		partial int
		once    bool
	}{
		{"first write fails", 0, 0, false},
		{"first write partial", 0, 2, false},
		{"third write fails", 2, 0, false},
		{"third write partial", 2, 1, false},
		{"once write fails", 0, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &failWriter{r: strings.NewReader("a\nb\nc\nd\n"), ok: tt.ok, partial: tt.partial}
			rec := &recorder{written: w.out.Len}
			res := exchange.Run(w, exchange.Options{Reply: []byte("reply"), MaxLine: 10, Once: tt.once}, rec)
			if res.End != exchange.EndWriteError {
				t.Errorf("End = %v, want %v", res.End, exchange.EndWriteError)
			}
			if !errors.Is(res.Err, errWrite) {
				t.Errorf("Err = %v, want %v", res.Err, errWrite)
			}
			if res.Messages != tt.ok+1 {
				t.Errorf("Messages = %d, want %d (the failed reply's message counts)", res.Messages, tt.ok+1)
			}
			if want := int64(tt.ok*6 + tt.partial); res.BytesOut != want || int64(w.out.Len()) != want {
				t.Errorf("BytesOut = %d, written %d, want %d", res.BytesOut, w.out.Len(), want)
			}
			if res.BytesIn != 8 {
				t.Errorf("BytesIn = %d, want 8", res.BytesIn)
			}
			// Every message was observed, but the failed reply was not.
			var msgs, replies int
			for _, e := range rec.events {
				if e.kind == "message" {
					msgs++
				} else {
					replies++
				}
			}
			if msgs != tt.ok+1 || replies != tt.ok {
				t.Errorf("observed %d messages and %d replies, want %d and %d", msgs, replies, tt.ok+1, tt.ok)
			}
		})
	}
}

// TestRunLineTooLongWriteError checks that a failed error reply still ends
// the exchange as line too long, counting what was written.
func TestRunLineTooLongWriteError(t *testing.T) {
	w := &failWriter{r: strings.NewReader("toolong\n"), partial: 3}
	res := exchange.Run(w, exchange.Options{Reply: []byte("r"), MaxLine: 3}, &recorder{written: w.out.Len})
	if res.End != exchange.EndLineTooLong || res.BytesOut != 3 || res.Messages != 0 {
		t.Errorf("Result = %+v, want EndLineTooLong with BytesOut 3", res)
	}
}

// TestRunReplyNotAliased checks that Run keeps its own copy of the reply
// with its newline, and does not write into the caller's slice.
func TestRunReplyNotAliased(t *testing.T) {
	backing := []byte("okXYZ")
	reply := backing[:2]
	_, c, _ := run(t, strings.NewReader("a\n"), exchange.Options{Reply: reply, MaxLine: 10})
	if string(backing) != "okXYZ" {
		t.Errorf("Run changed the bytes after Options.Reply: %q", backing)
	}
	if c.out.String() != "ok\n" {
		t.Errorf("output = %q", c.out.String())
	}
}

func TestEndString(t *testing.T) {
	for _, tt := range []struct {
		e    exchange.End
		want string
	}{
		{exchange.EndEOF, "client closed"},
		{exchange.EndOnce, "once"},
		{exchange.EndLineTooLong, "line too long"},
		{exchange.EndReadError, "read error"},
		{exchange.EndWriteError, "write error"},
		{exchange.End(99), "unknown"},
		{exchange.End(-1), "unknown"},
	} {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("End(%d).String() = %q, want %q", int(tt.e), got, tt.want)
		}
	}
}

// lineReader yields line n times, filling each read, then io.EOF.
type lineReader struct {
	line []byte
	left int // lines not yet fully returned
	off  int // bytes of the current line already returned
}

func (r *lineReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off += c
		if r.off == len(r.line) {
			r.off = 0
			r.left--
		}
	}
	return n, nil
}

type discardConn struct{ io.Reader }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

type nopObserver struct{}

func (nopObserver) Message([]byte) {}
func (nopObserver) Reply([]byte)   {}

// TestRunAllocsPerMessage checks that the steady state allocates nothing:
// Run allocates the same whether it answers 100 messages or 10,000.
func TestRunAllocsPerMessage(t *testing.T) {
	opts := exchange.Options{Reply: []byte("Message received!"), MaxLine: 64 << 10}
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(20, func() {
			res := exchange.Run(discardConn{&lineReader{line: []byte("hello world\n"), left: n}}, opts, nopObserver{})
			if res.Messages != n {
				t.Fatalf("Messages = %d, want %d", res.Messages, n)
			}
		})
	}
	// One allocation per message would add 9,900. The margin absorbs the
	// framer's pooled buffer, which a garbage collection (or the race
	// detector, which drops pooled items on purpose) can take away.
	small, large := allocs(100), allocs(10000)
	if large > small+5 {
		t.Errorf("Run allocates %v times for 100 messages and %v for 10000: allocations per message", small, large)
	}
}

// BenchmarkRun measures one message and its reply in the steady state.
func BenchmarkRun(b *testing.B) {
	line := []byte("hello world\n")
	opts := exchange.Options{Reply: []byte("Message received! Thank you for connecting."), MaxLine: 64 << 10}
	rw := struct {
		io.Reader
		io.Writer
	}{&lineReader{line: line, left: b.N}, io.Discard}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	res := exchange.Run(rw, opts, nopObserver{})
	b.StopTimer()
	if res.Messages != b.N || res.End != exchange.EndEOF {
		b.Fatalf("Result = %+v, want %d messages and EndEOF", res, b.N)
	}
}

// Pace runs before every message is read, and its error ends the exchange.
func TestRunPace(t *testing.T) {
	calls := 0
	errStop := errors.New("paced out")
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("a\nb\nc\n"), &out}
	res := exchange.Run(rw, exchange.Options{Reply: []byte("ok"), MaxLine: 10, Pace: func() error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	}}, nopObserver{})
	if res.End != exchange.EndReadError || !errors.Is(res.Err, errStop) || res.Messages != 2 || out.String() != "ok\nok\n" {
		t.Errorf("Run = %+v, output %q; want two messages answered, then the pacing error", res, out.String())
	}
}
