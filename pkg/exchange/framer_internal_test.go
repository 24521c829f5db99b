package exchange

import (
	"io"
	"testing"
)

// readFunc is an io.Reader from a function.
type readFunc func(p []byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// A Framer with nothing unread holds no buffer while it waits for the next
// read (an idle connection keeps only the small first-read array), and
// takes one from the pool again when bytes arrive.
func TestFramerIdleHoldsNoBuffer(t *testing.T) {
	chunks := []string{"first\nsec", "ond\n", "third\n"}
	var f *Framer
	calls := 0
	f = NewFramer(readFunc(func(p []byte) (int, error) {
		calls++
		switch calls {
		case 1, 3, 4:
			// Nothing unread: the buffer was given back before this read.
			if f.buf != nil || f.pooled != nil {
				t.Errorf("read %d: framer holds a %d-byte buffer with nothing unread", calls, cap(f.buf))
			}
			if len(p) != firstReadSize {
				t.Errorf("read %d: into %d bytes, want the %d-byte first-read array", calls, len(p), firstReadSize)
			}
		case 2:
			// "sec" is unread: the read goes into the pooled buffer, after it.
			if f.pooled == nil || len(p) != initialBufSize-len("first\nsec") {
				t.Errorf("read 2: pooled %v, %d bytes of room; want the pooled buffer", f.pooled != nil, len(p))
			}
		}
		if len(chunks) == 0 {
			return 0, io.EOF
		}
		n := copy(p, chunks[0])
		chunks = chunks[1:]
		return n, nil
	}), 64)
	for _, want := range []string{"first", "second", "third"} {
		msg, err := f.Next()
		if err != nil || string(msg) != want {
			t.Fatalf("Next = %q, %v; want %q", msg, err, want)
		}
	}
	if _, err := f.Next(); err != io.EOF {
		t.Fatalf("Next at the end: %v, want io.EOF", err)
	}
	if f.buf != nil || f.pooled != nil {
		t.Error("framer still holds its buffer after the end")
	}
}
