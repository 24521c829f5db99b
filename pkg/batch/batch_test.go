package batch_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seclisten/seclisten/pkg/batch"
)

// hangGuard bounds a wait that an event ends.
const hangGuard = 30 * time.Second

// records splits what was written into records (lines), failing if it
// does not end with a whole one.
func records(t *testing.T, b string) []string {
	t.Helper()
	if b == "" {
		return nil
	}
	if !strings.HasSuffix(b, "\n") {
		t.Fatalf("%q does not end in a newline", b)
	}
	return strings.Split(strings.TrimSuffix(b, "\n"), "\n")
}

// write adds rec as Printer does, built where it waits.
func write(b *batch.Writer, rec []byte) { b.Unlock(append(b.Lock(), rec...)) }

// signalWriter sends each Write on wrote.
type signalWriter struct{ wrote chan string }

func (w *signalWriter) Write(b []byte) (int, error) {
	w.wrote <- string(b)
	return len(b), nil
}

// TestWrittenUnasked checks that a record is written without Flush, and
// soon: a lone record does not wait for others to join it.
func TestWrittenUnasked(t *testing.T) {
	w := &signalWriter{wrote: make(chan string, 2)}
	b := batch.New(w)
	for _, rec := range []string{"hello\n", "again\n"} {
		if n, err := b.Write([]byte(rec)); n != len(rec) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		select {
		case got := <-w.wrote:
			if got != rec {
				t.Errorf("wrote %q, want %q", got, rec)
			}
		case <-time.After(hangGuard):
			t.Fatalf("%q was not written", rec)
		}
	}
	b.Flush() // nothing waits: no Write
	select {
	case got := <-w.wrote:
		t.Errorf("Flush with nothing waiting wrote %q", got)
	default:
	}
}

// TestGap checks the spacing of Writes while records keep coming, on the
// bubble's fake clock, waiting on each Write: a lone record is written at
// once; records added within Gap of the last Write come in the next,
// together, exactly Gap after it; Flush does not wait; after a quiet spell
// a record is written at once again.
func TestGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &signalWriter{wrote: make(chan string, 1)}
		b := batch.New(w)
		start := time.Now()
		next := func(when, want string, after time.Duration) {
			t.Helper()
			if got := <-w.wrote; got != want {
				t.Fatalf("%s: wrote %q, want %q", when, got, want)
			}
			if d := time.Since(start); d != after {
				t.Errorf("%s: written %v after the start, want %v", when, d, after)
			}
		}
		write(b, []byte("a\n"))
		next("a lone record", "a\n", 0)
		write(b, []byte("b\n"))
		write(b, []byte("c\n"))
		next("records within Gap of a Write", "b\nc\n", batch.Gap)
		write(b, []byte("d\n"))
		b.Flush()
		next("Flush", "d\n", batch.Gap)
		// The quiet spell: the one wait here without an event to wait on
		// (time.Sleep moves the bubble's clock at once). Every goroutine
		// the records started has ended first, or the bubble would not end.
		time.Sleep(10 * batch.Gap)
		write(b, []byte("e\n"))
		next("a record after a quiet spell", "e\n", 11*batch.Gap)
		synctest.Wait()
		select {
		case got := <-w.wrote:
			t.Errorf("wrote %q more", got)
		default:
		}
	})
}

// recordWriter records each Write, and fails on overlapping ones.
type recordWriter struct {
	mu     sync.Mutex
	busy   bool
	writes []string
	t      *testing.T
	hold   chan struct{} // if set, the first Write waits until it is closed
}

func (w *recordWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	if w.busy {
		w.t.Error("concurrent Write calls")
	}
	w.busy = true
	first := len(w.writes) == 0
	w.writes = append(w.writes, string(b))
	w.mu.Unlock()
	if first && w.hold != nil {
		<-w.hold
	}
	w.mu.Lock()
	w.busy = false
	w.mu.Unlock()
	return len(b), nil
}

// TestConcurrent checks records from many goroutines, added whole
// (Write) or built in place in pieces (Lock, Unlock): every one written
// once, whole, each goroutine's in order.
func TestConcurrent(t *testing.T) {
	const goroutines, each = 50, 200
	w := &recordWriter{t: t}
	b := batch.New(w)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if i%2 == 0 {
					_, _ = fmt.Fprintf(b, "g%d-r%d-%s\n", g, i, strings.Repeat("x", (g*i)%300))
					continue
				}
				p := fmt.Appendf(b.Lock(), "g%d-r%d-", g, i)
				p = append(p, strings.Repeat("x", (g*i)%300)...)
				b.Unlock(append(p, '\n'))
			}
		})
	}
	wg.Wait()
	b.Flush()
	next := make(map[int]int)
	n := 0
	for _, wr := range w.writes {
		for _, rec := range records(t, wr) {
			var g, i int
			if _, err := fmt.Sscanf(rec, "g%d-r%d-", &g, &i); err != nil {
				t.Fatalf("record %q: %v", rec, err)
			}
			if want := fmt.Sprintf("g%d-r%d-%s", g, i, strings.Repeat("x", (g*i)%300)); rec != want {
				t.Fatalf("record %q, want %q", rec, want)
			}
			if i != next[g] {
				t.Fatalf("goroutine %d: record %d written after %d", g, i, next[g]-1)
			}
			next[g]++
			n++
		}
	}
	if n != goroutines*each {
		t.Errorf("%d records written, want %d", n, goroutines*each)
	}
}

// TestBehindSlowWriter checks what a writer that falls behind sees: the
// records added while it writes come in the next Write, whole and in
// order, and no Write holds more than MaxPending and one record, however
// many are added meanwhile: whoever adds them waits instead.
func TestBehindSlowWriter(t *testing.T) {
	const recLen, total = 1024, 300 // 300 KiB
	reached := make(chan struct{})  // 64 records added: as many as may wait
	w := &recordWriter{t: t, hold: reached}
	b := batch.New(w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			write(b, []byte(fmt.Sprintf("%04d-%s\n", i, strings.Repeat("x", recLen-len("0000-\n")))))
			if i == 63 {
				close(reached)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("adding records did not end")
	}
	b.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	next := 0
	for _, wr := range w.writes {
		if len(wr) > batch.MaxPending+recLen {
			t.Errorf("a Write of %d bytes, over the bound", len(wr))
		}
		for _, rec := range records(t, wr) {
			if len(rec) != recLen-1 || !strings.HasPrefix(rec, fmt.Sprintf("%04d-", next)) {
				t.Fatalf("record %d is %.20q… (%d bytes)", next, rec, len(rec))
			}
			next++
		}
	}
	if next != total {
		t.Errorf("%d records written, want %d", next, total)
	}
	if len(w.writes) < 2 || len(w.writes) >= total/2 {
		t.Errorf("%d Writes for %d records behind a blocked writer, want them batched", len(w.writes), total)
	}
}

// TestLargeRecord checks that a record over MaxPending is written whole.
func TestLargeRecord(t *testing.T) {
	var out bytes.Buffer
	b := batch.New(&out)
	big := strings.Repeat("y", 3*batch.MaxPending) + "\n"
	write(b, []byte("a\n"))
	write(b, []byte(big))
	write(b, []byte("b\n"))
	b.Flush()
	if want := "a\n" + big + "b\n"; out.String() != want {
		t.Errorf("wrote %d bytes, want %d", out.Len(), len(want))
	}
}

// BenchmarkWrite compares writing each record to /dev/null with a Write
// of its own against the batching Writer, from 100 goroutines.
func BenchmarkWrite(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := []byte("[127.0.0.1:45678] hello from the benchmark\n")
	for _, tc := range []struct {
		name string
		w    func() (write func([]byte), flush func())
	}{
		{"direct", func() (func([]byte), func()) {
			var mu sync.Mutex
			return func(p []byte) { mu.Lock(); _, _ = f.Write(p); mu.Unlock() }, func() {}
		}},
		{"batch", func() (func([]byte), func()) {
			bw := batch.New(f)
			return func(p []byte) { write(bw, p) }, bw.Flush
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			write, flush := tc.w()
			b.SetParallelism(50) // 100 goroutines on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					write(rec)
				}
			})
			flush()
		})
	}
}
