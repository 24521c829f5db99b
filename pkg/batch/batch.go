// Package batch writes records (printed lines, log records) from many
// goroutines to one writer, many records to a Write under load.
//
// A Write to stdout or stderr is a system call, about as dear on a
// virtual machine as the rest of an echo round trip. When many
// connections print or log in the same instant, their records can share
// one. The first record into an empty buffer starts a goroutine that
// yields once, so that the records of a whole scheduling round join it,
// then writes what waits. A lone record is written at once.
//
// A scheduling round is not enough on one CPU: a server handshaking
// there has few goroutines ready at a time, so most rounds hold one
// record, and the handshake record's Write cost as much as building it.
// So while records keep coming, Writes are also at least Gap apart: a
// record that comes within Gap of the last Write waits for the next, at
// most Gap, with every record that comes meanwhile.
package batch

import (
	"io"
	"runtime"
	"sync"
	"time"
)

// MaxPending bounds the bytes waiting to be written: a record added
// beyond it waits until they are written. So at most MaxPending bytes and
// one record wait, and a writer that falls behind slows whoever writes
// records, as an unbuffered one would.
const MaxPending = 64 << 10

// Gap is the least time between two Writes while records keep coming:
// a record added within Gap of the last Write waits for the next one, at
// most Gap, unseen by a reader and far below a terminal's refresh. A
// record after a quiet spell is written at once.
const Gap = 2 * time.Millisecond

// Writer gathers whole records and writes them to an io.Writer, in the
// order they were added, never splitting one. It is safe for concurrent
// use. A record may reach the writer a moment after it was added: Flush
// writes what waits, and must be called before the program ends.
type Writer struct {
	mu      sync.Mutex
	pending []byte    // whole records, in order
	due     bool      // a goroutine will write pending (flushSoon)
	last    time.Time // when the last Write started

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
// have run, and no sooner than Gap after the last Write, so that the
// records added meanwhile go in the same Write.
func (b *Writer) flushSoon() {
	runtime.Gosched()
	b.mu.Lock()
	wait := Gap - time.Since(b.last)
	b.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
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
	if len(p) > 0 {
		b.last = time.Now()
	}
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
