package output

import (
	"bytes"
	"testing"

	"github.com/seclisten/seclisten/pkg/sanitize"
)

// FuzzAppendField checks that appendField, which escapes in place, writes
// what sanitizing into a copy and escaping it a byte at a time writes,
// after any prefix already in the buffer.
func FuzzAppendField(f *testing.F) {
	for _, s := range []string{"", "plain", `a "quoted" word`, `back\slash`, `"\"`, "\x1b[31mred\\\"", "é\x00\xff\"", `\\\\""""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		prefix := []byte(`{"event":"message"`)
		want := append(append([]byte{}, prefix...), `,"text":"`...)
		for _, c := range sanitize.Append(nil, v) {
			if c == '"' || c == '\\' {
				want = append(want, '\\')
			}
			want = append(want, c)
		}
		want = append(want, '"')
		got := appendField(append([]byte{}, prefix...), "text", v)
		if !bytes.Equal(got, want) {
			t.Errorf("appendField(%q) = %q, want %q", v, got, want)
		}
	})
}
