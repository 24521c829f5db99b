package exchange

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// initialBufSize is the framing buffer a connection reads into while it has
// unread bytes. It grows by doubling, up to the line limit, only for clients
// that send long lines, and shrinks back once such a line has been consumed.
const initialBufSize = 4 << 10

// firstReadSize is the small array a Framer with nothing unread reads into.
// A connection waiting for its client (most of them, most of the time)
// holds no framing buffer, only this: 10,000 idle connections would
// otherwise keep 40 MiB of empty 4 KiB buffers.
const firstReadSize = 256

// bufPool holds the initialBufSize buffers of Framers that have nothing
// unread, so busy connections reuse them without allocating.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, initialBufSize)
	return &b
}}

// LineTooLongError reports a line longer than the configured limit. The
// Framer never held more of it than one buffer: Max+2 bytes, or the initial
// 4 KiB if that is more.
type LineTooLongError struct {
	Max int
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line too long (max %d bytes)", e.Max)
}

// Framer splits a byte stream into messages: lines ending in LF or CRLF, and
// the bytes after the last newline when the stream ends.
//
// Memory is bounded by the limit: the buffer grows by doubling to at most
// limit+2 bytes (limit content bytes plus a CRLF is the longest legal line),
// or stays at its initial 4 KiB if that is more, and a line is an error as
// soon as more than limit bytes of it (not counting a final CR) are
// buffered, whatever the client sends after.
type Framer struct {
	r          io.Reader
	max        int
	buf        []byte  // nil, a pooled initialBufSize buffer, or a larger one
	pooled     *[]byte // the pool's handle on buf, when buf came from the pool
	first      [firstReadSize]byte
	start, end int   // unread bytes are buf[start:end]
	scanned    int   // buf[start:scanned] is known to hold no LF
	err        error // sticky error from r
	total      int64
	park       Parker // Options.Parker, or nil
	parked     bool   // the last fill's read said to park
}

// errParked ends Next when the Parker said to park.
var errParked = errors.New("exchange: parked")

// NewFramer returns a Framer reading from r with lines of at most limit
// bytes, not counting the line terminator. A limit below 1 counts as 1.
func NewFramer(r io.Reader, limit int) *Framer {
	return &Framer{r: r, max: max(limit, 1)}
}

// Next returns the next message without its line terminator. The slice is
// valid until the following call. When the stream ends with bytes after the
// last newline, Next returns them as a final message (with a nil error), and
// the error on the call after. A line over the limit yields a
// *LineTooLongError, after which the Framer must not be used.
func (f *Framer) Next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(f.buf[f.scanned:f.end], '\n'); i >= 0 {
			nl := f.scanned + i
			line := f.buf[f.start:nl]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > f.max {
				return nil, &LineTooLongError{Max: f.max}
			}
			f.start = nl + 1
			f.scanned = f.start
			return line, nil
		}
		f.scanned = f.end
		if f.pendingContent() > f.max {
			return nil, &LineTooLongError{Max: f.max}
		}
		if f.err != nil {
			if f.end-f.start > f.max {
				// A final CR that turned out not to start a CRLF counts.
				return nil, &LineTooLongError{Max: f.max}
			}
			if f.start < f.end {
				line := f.buf[f.start:f.end]
				f.start, f.scanned = f.end, f.end
				return line, nil
			}
			f.release()
			f.start, f.end, f.scanned = 0, 0, 0
			return nil, f.err
		}
		f.fill()
		if f.parked {
			f.parked = false
			return nil, errParked
		}
	}
}

// pendingContent is the length of the unterminated line held so far, not
// counting a final CR that may be the first half of a CRLF.
func (f *Framer) pendingContent() int {
	n := f.end - f.start
	if n > 0 && f.buf[f.end-1] == '\r' {
		n--
	}
	return n
}

// fill reads once into the buffer, making room first. With nothing unread
// it gives the buffer back and reads into f.first, so the blocking wait for
// a client's next message holds no buffer; one is taken only when bytes
// arrive.
func (f *Framer) fill() {
	if f.start == f.end {
		f.release()
		f.start, f.end, f.scanned = 0, 0, 0
		if f.park != nil {
			f.park.Idle(true)
		}
		n, err := f.r.Read(f.first[:])
		if f.park != nil {
			f.park.Idle(false)
			if err != nil && f.park.ParkDue(err) {
				// Temporary: nothing is lost, the next read goes on.
				err = nil
				f.parked = n == 0
			}
		}
		f.total += int64(n)
		if err != nil {
			f.err = err
		}
		if n > 0 {
			f.pooled = bufPool.Get().(*[]byte)
			f.buf = *f.pooled
			f.end = copy(f.buf, f.first[:n])
		}
		return
	}
	if f.end == len(f.buf) {
		if f.start > 0 {
			n := copy(f.buf, f.buf[f.start:f.end])
			f.scanned -= f.start
			f.start, f.end = 0, n
		} else {
			// Max content plus CRLF is the most a legal line needs.
			size := min(2*len(f.buf), f.max+2)
			nb := make([]byte, max(size, len(f.buf)+1))
			copy(nb, f.buf[:f.end])
			f.release()
			f.buf = nb
		}
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	f.total += int64(n)
	if err != nil {
		f.err = err
	}
}

// release drops the buffer, returning it to the pool if it came from there.
// Only call it when no slice of the buffer is still handed out (before a
// read with nothing unread, or at the end).
func (f *Framer) release() {
	if f.pooled != nil {
		bufPool.Put(f.pooled)
		f.pooled = nil
	}
	f.buf = nil
}

// BytesRead is the number of bytes read from the underlying reader.
func (f *Framer) BytesRead() int64 { return f.total }
