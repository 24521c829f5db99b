package sanitize

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends the printable form of b to dst and returns the extended
// buffer. It never allocates when dst has room.
//
// The rules, chosen so the output is unambiguous and safe on any terminal:
//
//   - printable ASCII is kept, except the backslash, which becomes \\ so an
//     escape in the output always means the client sent that byte;
//   - tab, line feed and carriage return become \t, \n and \r;
//   - every other C0 control and DEL become \xNN (ESC is \x1b, NUL \x00);
//   - a byte that does not start valid UTF-8 becomes \xNN (invalid UTF-8,
//     surrogates and overlong forms included);
//   - C1 controls (U+0080–U+009F), bidirectional controls (U+061C, U+200E,
//     U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
//     separators (U+2028, U+2029) and the byte-order mark U+FEFF become
//     \uNNNN;
//   - every other valid UTF-8 character (é, 日本, emoji) is kept as is.
func Append(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c == '\\' {
			dst = append(dst, '\\', '\\')
			i++
			continue
		}
		if c >= 0x20 && c < 0x7f {
			// Fast path: a run of plain printable ASCII.
			j := i + 1
			for j < len(b) && b[j] >= 0x20 && b[j] < 0x7f && b[j] != '\\' {
				j++
			}
			dst = append(dst, b[i:j]...)
			i = j
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendControl(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case escapedRune(r):
			dst = append(dst, '\\', 'u',
				hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			dst = append(dst, b[i:i+size]...)
		}
		i += size
	}
	return dst
}

// String returns the printable form of b. It is Append for callers that
// want a string and do not mind the allocation.
func String(b []byte) string {
	return string(Append(make([]byte, 0, len(b)+8), b))
}

// Text is String([]byte(s)), but returns s itself, without a copy, when
// nothing in it needs escaping: the common case of a name or an address,
// rendered for every connection.
func Text(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return String([]byte(s))
		}
	}
	return s
}

func appendControl(dst []byte, c byte) []byte {
	switch c {
	case '\t':
		return append(dst, '\\', 't')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	}
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// escapedRune reports whether a valid, non-ASCII rune must be escaped.
func escapedRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls, e.g. U+009B, the 8-bit CSI
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // bidi marks
		return true
	case r >= 0x202a && r <= 0x202e: // bidi embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // bidi isolates
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r == 0xfeff: // byte-order mark, invisible
		return true
	}
	return false
}
