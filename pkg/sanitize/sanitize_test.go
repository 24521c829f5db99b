package sanitize_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seclisten/seclisten/pkg/sanitize"
)

// mustEscape lists the valid non-ASCII runes Append must write as \uNNNN. It
// is kept apart from the package's own list on purpose: the test states the
// rules of the doc comment, it does not copy the code.
func mustEscape(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r == 0xfeff: // byte-order mark
		return true
	}
	return false
}

// unescape inverts Append. It is strict: it accepts only the escapes Append
// writes, in the only form Append writes them (lowercase hex, \x only for
// bytes that have no shorter form, \u only for the escaped runes), and refuses
// any raw byte Append would have escaped. So unescape(Append(b)) == b proves
// both that the output is unambiguous and that it is canonical.
func unescape(s []byte) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c < 0x20 || c == 0x7f {
				return nil, fmt.Errorf("raw control byte %#02x at %d", c, i)
			}
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, fmt.Errorf("raw invalid UTF-8 byte %#02x at %d", c, i)
			}
			if mustEscape(r) {
				return nil, fmt.Errorf("raw %U at %d", r, i)
			}
			out = append(out, s[i:i+size]...)
			i += size
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("lone backslash at end")
		}
		switch s[i+1] {
		case '\\':
			out = append(out, '\\')
			i += 2
		case 't':
			out = append(out, '\t')
			i += 2
		case 'n':
			out = append(out, '\n')
			i += 2
		case 'r':
			out = append(out, '\r')
			i += 2
		case 'x':
			v, err := lowerHex(s, i+2, 2)
			if err != nil {
				return nil, err
			}
			b := byte(v)
			switch {
			case b == '\t' || b == '\n' || b == '\r':
				return nil, fmt.Errorf(`\x%02x at %d has a shorter escape`, b, i)
			case b >= 0x20 && b < 0x7f:
				return nil, fmt.Errorf(`\x%02x at %d escapes printable ASCII`, b, i)
			}
			out = append(out, b)
			i += 4
		case 'u':
			v, err := lowerHex(s, i+2, 4)
			if err != nil {
				return nil, err
			}
			r := rune(v)
			if !mustEscape(r) {
				return nil, fmt.Errorf(`\u%04x at %d escapes a rune that is kept as is`, r, i)
			}
			out = utf8.AppendRune(out, r)
			i += 6
		default:
			return nil, fmt.Errorf("unknown escape \\%c at %d", s[i+1], i)
		}
	}
	return out, nil
}

// lowerHex parses n lowercase hex digits at s[at:].
func lowerHex(s []byte, at, n int) (int, error) {
	if at+n > len(s) {
		return 0, fmt.Errorf("short escape at %d", at-2)
	}
	v := 0
	for _, c := range s[at : at+n] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		default:
			return 0, fmt.Errorf("bad hex digit %q in escape at %d", c, at-2)
		}
	}
	return v, nil
}

var appendTests = []struct {
	name string
	in   string
	want string
}{
	{"empty", "", ""},
	{"printable ASCII", "Hello, world! ~{}[]|`'\"", "Hello, world! ~{}[]|`'\""},
	{"all printable ASCII but backslash", printableASCII(), printableASCII()},
	{"space only", "   ", "   "},
	{"backslash", `\`, `\\`},
	{"backslash looks like escape", `\x1b`, `\\x1b`},
	{"two backslashes", `a\\b`, `a\\\\b`},
	{"tab", "a\tb", `a\tb`},
	{"line feed", "a\nb", `a\nb`},
	{"carriage return", "a\rb", `a\rb`},
	{"CRLF", "line\r\n", `line\r\n`},
	{"NUL", "\x00", `\x00`},
	{"ESC CSI", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
	{"OSC 50", "\x1b]50;?\x07", `\x1b]50;?\x07`},
	{"BEL", "\a", `\x07`},
	{"backspace", "\b", `\x08`},
	{"vertical tab form feed", "\v\f", `\x0b\x0c`},
	{"unit separator", "\x1f", `\x1f`},
	{"DEL", "\x7f", `\x7f`},
	{"every C0 but tab LF CR", "\x01\x02\x03\x04\x05\x06\x0e\x1a",
		`\x01\x02\x03\x04\x05\x06\x0e\x1a`},
	{"lone continuation byte", "\x80", `\x80`},
	{"0xff", "\xff", `\xff`},
	{"0xfe", "\xfe", `\xfe`},
	{"truncated two-byte", "\xc3", `\xc3`},
	{"truncated three-byte", "\xe6\x97", `\xe6\x97`},
	{"truncated four-byte then ASCII", "\xf0\x9f\x98a", `\xf0\x9f\x98a`},
	{"surrogate half", "\xed\xa0\x80", `\xed\xa0\x80`},
	{"low surrogate", "\xed\xbf\xbf", `\xed\xbf\xbf`},
	{"overlong NUL", "\xc0\x80", `\xc0\x80`},
	{"overlong slash", "\xc1\xaf", `\xc1\xaf`},
	{"overlong three-byte", "\xe0\x80\xaf", `\xe0\x80\xaf`},
	{"above U+10FFFF", "\xf4\x90\x80\x80", `\xf4\x90\x80\x80`},
	{"five-byte form", "\xf8\x88\x80\x80\x80", `\xf8\x88\x80\x80\x80`},
	{"C1 U+0080", "\u0080", `\u0080`},
	{"C1 CSI U+009B", "\xc2\x9b31m", `\u009b31m`},
	{"C1 U+009F", "\u009f", `\u009f`},
	{"U+00A0 kept", "\u00a0", "\u00a0"},
	{"ALM U+061C", "\u061c", `\u061c`},
	{"LRM U+200E", "\u200e", `\u200e`},
	{"RLM U+200F", "\u200f", `\u200f`},
	{"LRE U+202A", "\u202a", `\u202a`},
	{"RLE U+202B", "\u202b", `\u202b`},
	{"PDF U+202C", "\u202c", `\u202c`},
	{"LRO U+202D", "\u202d", `\u202d`},
	{"RLO U+202E Trojan Source", "access\xe2\x80\xaelevel", `access\u202elevel`},
	{"LRI U+2066", "\u2066", `\u2066`},
	{"RLI U+2067", "\u2067", `\u2067`},
	{"FSI U+2068", "\u2068", `\u2068`},
	{"PDI U+2069", "\u2069", `\u2069`},
	{"U+2065 kept", "\u2065", "\u2065"},
	{"U+206A kept", "\u206a", "\u206a"},
	{"U+202F kept", "\u202f", "\u202f"},
	{"line separator", "a\u2028b", `a\u2028b`},
	{"paragraph separator", "a\u2029b", `a\u2029b`},
	{"BOM", "\ufeffhello", `\ufeffhello`},
	{"replacement character kept", "\ufffd", "\ufffd"},
	{"e acute", "café", "café"},
	{"CJK", "日本", "日本"},
	{"emoji", "😀👍🏽", "😀👍🏽"},
	{"max rune kept", "\U0010ffff", "\U0010ffff"},
	{"mixed", "é\x1b\\\u202e日\xff\n", `é\x1b\\\u202e日\xff\n`},
}

func printableASCII() string {
	var b strings.Builder
	for c := byte(0x20); c < 0x7f; c++ {
		if c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestAppend(t *testing.T) {
	for _, tt := range appendTests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitize.Append(nil, []byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("Append(nil, %q) = %q, want %q", tt.in, got, tt.want)
			}
			if s := sanitize.String([]byte(tt.in)); s != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, s, tt.want)
			}
			back, err := unescape(got)
			if err != nil {
				t.Fatalf("unescape(%q): %v", got, err)
			}
			if !bytes.Equal(back, []byte(tt.in)) {
				t.Errorf("unescape(Append(%q)) = %q", tt.in, back)
			}
		})
	}
}

// TestAppendEveryByte checks each single byte against the rules.
func TestAppendEveryByte(t *testing.T) {
	for i := 0; i < 256; i++ {
		c := byte(i)
		var want string
		switch {
		case c == '\\':
			want = `\\`
		case c == '\t':
			want = `\t`
		case c == '\n':
			want = `\n`
		case c == '\r':
			want = `\r`
		case c >= 0x20 && c < 0x7f:
			want = string(c)
		default: // other C0, DEL, and every lone byte >= 0x80 (never valid alone)
			want = fmt.Sprintf(`\x%02x`, c)
		}
		if got := sanitize.String([]byte{c}); got != want {
			t.Errorf("String(%#02x) = %q, want %q", c, got, want)
		}
	}
}

// TestAppendEscapedRunes checks every rune in the escaped ranges, and that
// their neighbours are kept.
func TestAppendEscapedRunes(t *testing.T) {
	for r := rune(0x80); r < 0x10000; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue // surrogates cannot be encoded
		}
		in := utf8.AppendRune(nil, r)
		got := sanitize.String(in)
		want := string(in)
		if mustEscape(r) {
			want = fmt.Sprintf(`\u%04x`, r)
		}
		if got != want {
			t.Fatalf("String(%U) = %q, want %q", r, got, want)
		}
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	prefix := []byte("[peer] \x00")
	for _, tt := range appendTests {
		dst := append(make([]byte, 0, 64), prefix...)
		got := sanitize.Append(dst, []byte(tt.in))
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("Append(%q, %q) = %q: prefix changed", prefix, tt.in, got)
		}
		if string(got[len(prefix):]) != tt.want {
			t.Errorf("Append(%q, %q) = %q, want prefix then %q", prefix, tt.in, got, tt.want)
		}
	}
}

func TestAppendNoAllocWithRoom(t *testing.T) {
	in := []byte("hello \x1b[31m wörld \u202e 日本 \xff\\ 😀\n")
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst = sanitize.Append(dst[:0], in)
	})
	if allocs != 0 {
		t.Errorf("Append with room in dst: %v allocs, want 0", allocs)
	}
}

func TestUnescapeRejects(t *testing.T) {
	// The helper must be strict, or the round trip proves little.
	for _, s := range []string{
		`\`, `\q`, `\x1`, `\x1B`, `\x41`, `\x0a`, `\u202`, `\u202E`, `\u00e9`,
		"\x1b", "\xff", "\u202e", "\n",
	} {
		if out, err := unescape([]byte(s)); err == nil {
			t.Errorf("unescape(%q) = %q, want an error", s, out)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, tt := range appendTests {
		f.Add([]byte(tt.in))
	}
	prefix := []byte("prefix\\\x00")
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		out := sanitize.Append(nil, b)
		if got := sanitize.Text(string(b)); got != string(out) {
			t.Fatalf("Text(%q) = %q, Append gives %q", b, got, out)
		}
		if !bytes.Equal(b, in) {
			t.Fatalf("Append modified its input: %q became %q", in, b)
		}

		// (a) valid UTF-8.
		if !utf8.Valid(out) {
			t.Fatalf("Append(%q) = %q: not valid UTF-8", b, out)
		}
		// (b) no control byte, no DEL, no escaped rune.
		for i, r := range string(out) {
			if r < 0x20 || r == 0x7f || mustEscape(r) {
				t.Fatalf("Append(%q) = %q: %U at %d", b, out, r, i)
			}
		}
		// (c) unambiguous: the strict inverse gives the input back.
		back, err := unescape(out)
		if err != nil {
			t.Fatalf("Append(%q) = %q: unescape: %v", b, out, err)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("unescape(Append(%q)) = %q", b, back)
		}
		// (d) String agrees with Append.
		if s := sanitize.String(b); s != string(out) {
			t.Fatalf("String(%q) = %q, Append gives %q", b, s, out)
		}
		// (e) Append appends, with and without room in dst.
		for _, c := range []int{len(prefix), len(prefix) + len(out)} {
			dst := append(make([]byte, 0, c), prefix...)
			got := sanitize.Append(dst, b)
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], out) {
				t.Fatalf("Append(%q, %q) = %q, want the prefix then %q", prefix, b, got, out)
			}
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"ascii", []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 23))},
		{"mixed", []byte(strings.Repeat("héllo \x1b[31m日本\u202e\\ \xff😀\tend ", 32))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]byte, 0, 6*len(bc.in))
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				dst = sanitize.Append(dst[:0], bc.in)
			}
		})
	}
}
