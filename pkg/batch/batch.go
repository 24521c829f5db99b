// Package batch writes records (printed lines, log records) from many
// goroutines to one writer, many records to a Write under load.
//
// A Write to stdout or stderr is a system call, about as dear on a
// virtual machine as the rest of an echo round trip. When many
// connections print or log in the same instant, their records can share
// one. Writer gathers them without a timer: the first record into an
// empty buffer starts a goroutine that yields once, then writes what
// waits. A goroutine that yields runs after the others ready to run (and
// at least every few dozen switches), so the records of a whole
// scheduling round go in one Write, and a lone record is written at once.
package batch

import (
	"io"
	"runtime"
	"sync"
)

// MaxPending bounds the bytes waiting to be written: a record added
// beyond it waits until they are written. So at most MaxPending bytes and
// one record wait, and a writer that falls behind slows whoever writes
// records, as an unbuffered one would.
const MaxPending = 64 << 10

// Writer gathers whole records and writes them to an io.Writer, in the
// order they were added, never splitting one. It is safe for concurrent
// use. A record may reach the writer a moment after it was added: Flush
// writes what waits, and must be called before the program ends.
type Writer struct {
	mu      sync.Mutex
	pending []byte // whole records, in order
	due     bool   // a goroutine will write pending (flushSoon)

	wmu   sync.Mutex // one Write at a time, in order; guards spare
	spare []byte     // the buffer of the last Write, for the next records

	w io.Writer
}

// New returns a Writer that writes to w.
func New(w io.Writer) *Writer { return &Writer{w: w} }

// Write adds p, one whole record (a log handler's Write), and returns
// len(p), nil: an error of the underlying writer comes later, to no
// caller (wrap that writer to watch for it).
func (b *Writer) Write(p []byte) (int, error) {
	b.Unlock(append(b.Lock(), p...))
	return len(p), nil
}

// Lock locks the Writer and returns the records waiting, for the caller
// to append one whole record to and hand to Unlock: a record built where
// it waits needs no buffer of its own and no copy. Nothing else may be
// done with the slice.
func (b *Writer) Lock() []byte {
	b.mu.Lock()
	for len(b.pending) >= MaxPending {
		b.mu.Unlock()
		b.Flush()
		b.mu.Lock()
	}
	return b.pending
}

// Unlock keeps p (Lock's slice with one record appended) as the records
// waiting, makes sure they will be written, and unlocks the Writer.
func (b *Writer) Unlock(p []byte) {
	b.pending = p
	start := !b.due
	b.due = true
	b.mu.Unlock()
	if start {
		go b.flushSoon()
	}
}

// flushSoon writes the records waiting once the goroutines ready to run
// have run, so that the records they add go in the same Write.
func (b *Writer) flushSoon() {
	runtime.Gosched()
	b.Flush()
}

// Flush writes the records added so far, if any, and returns once they
// are written.
func (b *Writer) Flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	p := b.pending
	b.pending, b.spare = b.spare[:0], nil
	b.due = false
	b.mu.Unlock()
	if len(p) == 0 {
		b.spare = p
		return
	}
	_, _ = b.w.Write(p)
	if cap(p) <= 2*MaxPending {
		b.spare = p[:0]
	}
}
