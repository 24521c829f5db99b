package exchange_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/seclisten/seclisten/pkg/exchange"
)

var errBoom = errors.New("boom")

// frame reads every message from f until an error and returns copies of the
// messages and the error. It gives up after limit messages, so a framer that
// never stops cannot hang the test.
func frame(t *testing.T, f *exchange.Framer, limit int) ([]string, error) {
	t.Helper()
	var msgs []string
	for range limit {
		msg, err := f.Next()
		if err != nil {
			if msg != nil {
				t.Errorf("Next returned %q with error %v, want nil", msg, err)
			}
			return msgs, err
		}
		msgs = append(msgs, string(msg))
	}
	t.Fatalf("no error after %d messages: %q", limit, msgs)
	return nil, nil
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name    string
		r       func() io.Reader
		maxLen  int
		want    []string
		wantErr error // compared with errors.Is; nil means *LineTooLongError
	}{
		{"empty stream", src(""), 10, nil, io.EOF},
		{"one LF line", src("hello\n"), 10, []string{"hello"}, io.EOF},
		{"LF lines", src("a\nbb\nccc\n"), 10, []string{"a", "bb", "ccc"}, io.EOF},
		{"CRLF lines", src("a\r\nbb\r\n"), 10, []string{"a", "bb"}, io.EOF},
		{"mixed LF and CRLF", src("a\r\nb\nc\r\n"), 10, []string{"a", "b", "c"}, io.EOF},
		{"lone CR inside kept", src("a\rb\n"), 10, []string{"a\rb"}, io.EOF},
		{"CR at start kept", src("\rab\n"), 10, []string{"\rab"}, io.EOF},
		{"only one CR stripped", src("a\r\r\n"), 10, []string{"a\r"}, io.EOF},
		{"empty LF line", src("\n"), 10, []string{""}, io.EOF},
		{"empty lines", src("\n\r\n\n"), 10, []string{"", "", ""}, io.EOF},
		{"final data without newline", src("a\nrest"), 10, []string{"a", "rest"}, io.EOF},
		{"only data without newline", src("rest"), 10, []string{"rest"}, io.EOF},
		{"final lone CR kept", src("ab\r"), 10, []string{"ab\r"}, io.EOF},
		{"data with EOF in same read", func() io.Reader {
			return iotest.DataErrReader(strings.NewReader("a\nb"))
		}, 10, []string{"a", "b"}, io.EOF},
		{"custom error after lines", func() io.Reader {
			return io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(errBoom))
		}, 10, []string{"a"}, errBoom},
		{"final data then custom error", func() io.Reader {
			return io.MultiReader(strings.NewReader("a\nrest"), iotest.ErrReader(errBoom))
		}, 10, []string{"a", "rest"}, errBoom},
		{"custom error at once", func() io.Reader { return iotest.ErrReader(errBoom) }, 10, nil, errBoom},
		{"timeout error", func() io.Reader {
			return iotest.TimeoutReader(strings.NewReader("abc"))
		}, 10, []string{"abc"}, iotest.ErrTimeout},
		{"exactly max with LF", src("abcde\n"), 5, []string{"abcde"}, io.EOF},
		{"exactly max with CRLF", src("abcde\r\n"), 5, []string{"abcde"}, io.EOF},
		{"exactly max without newline", src("abcde"), 5, []string{"abcde"}, io.EOF},
		{"max 1", src("a\nb\r\n\n"), 1, []string{"a", "b", ""}, io.EOF},
		{"max+1 with LF", src("abcdef\n"), 5, nil, nil},
		{"max+1 with CRLF", src("abcdef\r\n"), 5, nil, nil},
		{"max+1 without newline", src("abcdef"), 5, nil, nil},
		{"max+1 with inner CR", src("abcd\re\n"), 5, nil, nil},
		{"max+1 after good lines", src("ok\nabcde\nabcdef\nnever\n"), 5, []string{"ok", "abcde"}, nil},
		{"exactly max one byte at a time", func() io.Reader {
			return iotest.OneByteReader(strings.NewReader("abcde\r\nabcde\nabcde"))
		}, 5, []string{"abcde", "abcde", "abcde"}, io.EOF},
		{"max+1 one byte at a time", func() io.Reader {
			return iotest.OneByteReader(strings.NewReader("abcde\r\nabcdef\r\n"))
		}, 5, []string{"abcde"}, nil},
		{"CR split from LF", func() io.Reader {
			return io.MultiReader(strings.NewReader("abcde\r"), strings.NewReader("\nx\n"))
		}, 5, []string{"abcde", "x"}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := exchange.NewFramer(tt.r(), tt.maxLen)
			msgs, err := frame(t, f, 100)
			if !equal(msgs, tt.want) {
				t.Errorf("messages = %q, want %q", msgs, tt.want)
			}
			checkErr(t, err, tt.wantErr, tt.maxLen)
			if tt.wantErr != nil {
				// The error is sticky.
				if msg, err2 := f.Next(); msg != nil || err2 != err {
					t.Errorf("Next after %v = %q, %v, want the same error", err, msg, err2)
				}
			}
		})
	}
}

func src(s string) func() io.Reader {
	return func() io.Reader { return strings.NewReader(s) }
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkErr checks err against want, where a nil want means a
// *LineTooLongError for maxLen.
func checkErr(t *testing.T, err, want error, maxLen int) {
	t.Helper()
	if want != nil {
		if !errors.Is(err, want) {
			t.Errorf("error = %v, want %v", err, want)
		}
		return
	}
	var tooLong *exchange.LineTooLongError
	if !errors.As(err, &tooLong) {
		t.Fatalf("error = %v, want *LineTooLongError", err)
	}
	if tooLong.Max != maxLen {
		t.Errorf("LineTooLongError.Max = %d, want %d", tooLong.Max, maxLen)
	}
	if got, want := err.Error(), fmt.Sprintf("line too long (max %d bytes)", maxLen); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// infiniteReader returns 'a' forever and counts what it returned.
type infiniteReader struct{ n int64 }

func (r *infiniteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// TestFramerBoundedRead checks that an endless line is refused after about
// max bytes, and the framer does not keep reading what the client sends.
func TestFramerBoundedRead(t *testing.T) {
	for _, maxLen := range []int{1, 10, 4094, 4095, 4096, 4097, 10000, 64 << 10, 1 << 20} {
		for _, wrap := range []struct {
			name string
			fn   func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"half", iotest.HalfReader},
		} {
			t.Run(fmt.Sprintf("%d/%s", maxLen, wrap.name), func(t *testing.T) {
				r := &infiniteReader{}
				f := exchange.NewFramer(wrap.fn(r), maxLen)
				msg, err := f.Next()
				checkErr(t, err, nil, maxLen)
				if msg != nil {
					t.Errorf("message %d bytes with the error", len(msg))
				}
				limit := int64(maxLen + 2 + 4096)
				if r.n > limit {
					t.Errorf("read %d bytes for max %d, want at most %d", r.n, maxLen, limit)
				}
				if r.n <= int64(maxLen) {
					t.Errorf("read %d bytes: the error came before the line was over %d", r.n, maxLen)
				}
				if f.BytesRead() != r.n {
					t.Errorf("BytesRead = %d, reader gave %d", f.BytesRead(), r.n)
				}
			})
		}
	}
}

// TestFramerBoundedReadAfterLines checks the bound holds for a long line that
// starts after short ones, deep into a buffer.
func TestFramerBoundedReadAfterLines(t *testing.T) {
	const maxLen = 10000
	head := strings.Repeat("short line\n", 1000)
	r := &infiniteReader{}
	f := exchange.NewFramer(io.MultiReader(strings.NewReader(head), r), maxLen)
	msgs, err := frame(t, f, 2000)
	checkErr(t, err, nil, maxLen)
	if len(msgs) != 1000 {
		t.Errorf("got %d messages, want 1000", len(msgs))
	}
	if limit := int64(maxLen + 2 + 4096); r.n > limit {
		t.Errorf("read %d bytes of the long line for max %d, want at most %d", r.n, maxLen, limit)
	}
}

// TestFramerGrowth checks lines longer than the initial buffer, read in
// small pieces so the buffer grows and compacts across many reads.
func TestFramerGrowth(t *testing.T) {
	long := func(n int, c byte) string { return strings.Repeat(string(c), n) }
	for _, tt := range []struct {
		name   string
		input  string
		maxLen int
		want   []string
	}{
		{"one long line", long(10000, 'a') + "\n", 20000, []string{long(10000, 'a')}},
		{"exactly max LF", long(5000, 'b') + "\n", 5000, []string{long(5000, 'b')}},
		{"exactly max CRLF", long(5000, 'b') + "\r\n", 5000, []string{long(5000, 'b')}},
		{"exactly max no newline", long(5000, 'b'), 5000, []string{long(5000, 'b')}},
		{"exactly max 4096 CRLF", long(4096, 'b') + "\r\n", 4096, []string{long(4096, 'b')}},
		{"exactly max 4094 CRLF", long(4094, 'b') + "\r\n", 4094, []string{long(4094, 'b')}},
		{"long then short", long(9000, 'c') + "\r\nx\ny\r\n\nz", 9000,
			[]string{long(9000, 'c'), "x", "y", "", "z"}},
		{"short long short long", "s\n" + long(7000, 'd') + "\nt\n" + long(6000, 'e') + "\r\nu",
			8000, []string{"s", long(7000, 'd'), "t", long(6000, 'e'), "u"}},
		{"many short lines", strings.Repeat("0123456789\r\n", 2000), 10,
			repeat(2000, "0123456789")},
	} {
		for _, wrap := range []struct {
			name string
			fn   func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte", iotest.OneByteReader},
			{"half", iotest.HalfReader},
			{"data err", iotest.DataErrReader},
		} {
			t.Run(tt.name+"/"+wrap.name, func(t *testing.T) {
				f := exchange.NewFramer(wrap.fn(strings.NewReader(tt.input)), tt.maxLen)
				msgs, err := frame(t, f, 5000)
				if !errors.Is(err, io.EOF) {
					t.Errorf("error = %v, want io.EOF", err)
				}
				if len(msgs) != len(tt.want) {
					t.Fatalf("got %d messages, want %d", len(msgs), len(tt.want))
				}
				for i := range msgs {
					if msgs[i] != tt.want[i] {
						t.Errorf("message %d: got %d bytes %.20q..., want %d bytes %.20q...",
							i, len(msgs[i]), msgs[i], len(tt.want[i]), tt.want[i])
					}
				}
				if got := f.BytesRead(); got != int64(len(tt.input)) {
					t.Errorf("BytesRead = %d, want %d", got, len(tt.input))
				}
			})
		}
	}
}

func repeat(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestFramerLongLineOverLimitAfterGrowth checks a line one byte over a limit
// larger than the initial buffer, read in small pieces.
func TestFramerLongLineOverLimitAfterGrowth(t *testing.T) {
	for _, maxLen := range []int{4095, 4096, 5000, 9999} {
		for _, term := range []string{"\n", "\r\n", ""} {
			t.Run(fmt.Sprintf("%d/%q", maxLen, term), func(t *testing.T) {
				input := "ok\n" + strings.Repeat("z", maxLen+1) + term + "after\n"
				f := exchange.NewFramer(iotest.HalfReader(strings.NewReader(input)), maxLen)
				msgs, err := frame(t, f, 10)
				checkErr(t, err, nil, maxLen)
				if !equal(msgs, []string{"ok"}) {
					t.Errorf("messages = %q, want [ok]", msgs)
				}
			})
		}
	}
}

func TestFramerBytesRead(t *testing.T) {
	f := exchange.NewFramer(iotest.OneByteReader(strings.NewReader("ab\ncd\r\n")), 10)
	if f.BytesRead() != 0 {
		t.Fatalf("BytesRead before Next = %d", f.BytesRead())
	}
	if _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if got := f.BytesRead(); got != 3 {
		t.Errorf("BytesRead after one line, one byte a read = %d, want 3", got)
	}
	if _, err := frame(t, f, 10); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if got := f.BytesRead(); got != 7 {
		t.Errorf("BytesRead at the end = %d, want 7", got)
	}
}

// chunkReader returns data at most chunk bytes at a time, then end. With
// eofWithData the last chunk comes with end in the same call.
type chunkReader struct {
	data        []byte
	chunk       int
	end         error
	eofWithData bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.end
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	if len(r.data) == 0 && r.eofWithData {
		return n, r.end
	}
	return n, nil
}

// FuzzFramer checks the framer against a plain model of the format:
//
//   - the input is split at every LF; every piece but the last was ended by
//     that LF, and loses one CR before it if there is one (CRLF);
//   - the last piece, if not empty, is the final message, as is (a CR at its
//     end was not followed by LF, so it is content);
//   - the messages come out in order, each at most max bytes; the first
//     piece over max ends the stream with *LineTooLongError instead;
//   - otherwise the reader's end error follows the messages, and joining the
//     messages with their terminators gives the input back byte for byte.
//
// This holds for any chunking of the reads, and the framer never reads more
// than its buffer (max+2, or the 4 KiB initial size) past the start of the
// line it refuses.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("a\r\nb\nc"), uint16(3), byte(1), false)
	f.Add([]byte("abc\r\n"), uint16(3), byte(2), true)
	f.Fuzz(func(t *testing.T, data []byte, max16 uint16, chunk8 byte, useErr bool) {
		maxLen := int(max16%300) + 1
		chunk := int(chunk8)
		if chunk == 0 {
			chunk = len(data) + 1
		}
		end := io.EOF
		if useErr {
			end = errBoom
		}

		// The model.
		type expected struct {
			msg    []byte
			term   string // "\n", "\r\n" or "" (final piece)
			offset int    // where the piece starts in data
		}
		var want []expected
		tooLongAt := -1 // offset of the first line over max
		offset := 0
		pieces := bytes.Split(data, []byte("\n"))
		for i, p := range pieces {
			last := i == len(pieces)-1
			e := expected{msg: p, term: "\n", offset: offset}
			if last {
				e.term = ""
			} else if n := len(p); n > 0 && p[n-1] == '\r' {
				e.msg, e.term = p[:n-1], "\r\n"
			}
			if last && len(p) == 0 {
				break
			}
			if len(e.msg) > maxLen {
				tooLongAt = offset
				break
			}
			want = append(want, e)
			offset += len(p) + 1
		}

		r := &chunkReader{data: data, chunk: chunk, end: end, eofWithData: chunk8%2 == 1}
		fr := exchange.NewFramer(r, maxLen)
		var got [][]byte
		var err error
		for range len(data) + 2 {
			var msg []byte
			msg, err = fr.Next()
			if err != nil {
				if msg != nil {
					t.Fatalf("Next returned %q with error %v", msg, err)
				}
				break
			}
			if len(msg) > maxLen {
				t.Fatalf("message %d has %d bytes, over max %d: %q", len(got), len(msg), maxLen, msg)
			}
			got = append(got, bytes.Clone(msg))
		}
		if err == nil {
			t.Fatalf("no error after %d messages for %d bytes of input", len(got), len(data))
		}

		var tooLong *exchange.LineTooLongError
		isTooLong := errors.As(err, &tooLong)
		if isTooLong && tooLong.Max != maxLen {
			t.Fatalf("LineTooLongError.Max = %d, want %d", tooLong.Max, maxLen)
		}
		if isTooLong != (tooLongAt >= 0) {
			t.Fatalf("error = %v, model says line too long at %d (max %d, input %q)", err, tooLongAt, maxLen, data)
		}
		if !isTooLong && err != end {
			t.Fatalf("error = %v, want the reader's %v", err, end)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d messages %q, model wants %d (max %d, input %q)", len(got), got, len(want), maxLen, data)
		}
		var rebuilt []byte
		for i := range got {
			if !bytes.Equal(got[i], want[i].msg) {
				t.Fatalf("message %d = %q, model wants %q", i, got[i], want[i].msg)
			}
			rebuilt = append(append(rebuilt, got[i]...), want[i].term...)
		}
		if isTooLong {
			if !bytes.Equal(rebuilt, data[:tooLongAt]) {
				t.Fatalf("messages rebuild %q, want the input before the long line %q", rebuilt, data[:tooLongAt])
			}
			if past, limit := fr.BytesRead()-int64(tooLongAt), int64(max(maxLen+2, 4096)); past > limit {
				t.Fatalf("read %d bytes past the start of the long line, want at most %d", past, limit)
			}
		} else {
			if !bytes.Equal(rebuilt, data) {
				t.Fatalf("messages rebuild %q, want the input %q", rebuilt, data)
			}
			if fr.BytesRead() != int64(len(data)) {
				t.Fatalf("BytesRead = %d, want %d", fr.BytesRead(), len(data))
			}
		}
	})
}
