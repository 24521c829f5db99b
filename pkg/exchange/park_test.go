package exchange_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/seclisten/seclisten/pkg/exchange"
)

// errDue is a temporary error, as a read that should park returns.
var errDue = errors.New("park due")

// parkingReader hands out its chunks one read at a time; the first read
// made while idle after each chunk returns errDue instead.
type parkingReader struct {
	chunks   [][]byte
	idle     bool
	parkNext bool
	idleSeen int
}

func (r *parkingReader) Idle(on bool) {
	r.idle = on
	if on {
		r.idleSeen++
	}
}
func (r *parkingReader) ParkDue(err error) bool { return errors.Is(err, errDue) }

func (r *parkingReader) Read(p []byte) (int, error) {
	if r.idle && r.parkNext {
		r.parkNext = false
		return 0, errDue
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	r.parkNext = true // after each chunk, the next idle read parks
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

type msgRecorder struct{ msgs []string }

func (r *msgRecorder) Message(m []byte) { r.msgs = append(r.msgs, string(m)) }
func (r *msgRecorder) Reply([]byte)     {}

// An exchange parks only at a line boundary with nothing buffered, and
// Resume goes on where it stopped, counting on: nothing lost or reordered,
// and the message it waited for is paced once.
func TestParkAndResume(t *testing.T) {
	r := &parkingReader{chunks: [][]byte{[]byte("one\ntw"), []byte("o\n"), []byte("three\nfour")}}
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{r, &out}
	paced := 0
	opts := exchange.Options{Reply: []byte("ok"), MaxLine: 100, Parker: r, Pace: func() error { paced++; return nil }}
	obs := &msgRecorder{}
	r.parkNext = true
	res := exchange.Run(rw, opts, obs)
	if res.End != exchange.EndParked || res.Messages != 0 {
		t.Fatalf("first Run = %+v, want parked before any message", res)
	}
	for parks := 1; res.End == exchange.EndParked; parks++ {
		if parks > 10 {
			t.Fatal("parks for ever")
		}
		res = exchange.Resume(rw, opts, obs, res)
	}
	if res.End != exchange.EndEOF || res.Messages != 4 || res.BytesIn != 18 || res.BytesOut != 12 {
		t.Fatalf("Result = %+v, want EOF after 4 messages, 18 bytes in, 12 out", res)
	}
	if got := obs.msgs; len(got) != 4 || got[0] != "one" || got[1] != "two" || got[2] != "three" || got[3] != "four" {
		t.Fatalf("messages %q", got)
	}
	if paced != 5 { // four messages and the EOF read
		t.Fatalf("paced %d times, want 5", paced)
	}
}

// With a Parker that never says to park, the exchange still allocates
// nothing per message.
func TestParkerAllocsPerMessage(t *testing.T) {
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(20, func() {
			r := &lineReaderParker{lineReader: lineReader{line: []byte("hello world\n"), left: n}}
			opts := exchange.Options{Reply: []byte("ok"), MaxLine: 64 << 10, Parker: r}
			if res := exchange.Run(discardConn{r}, opts, nopObserver{}); res.Messages != n {
				t.Fatalf("Messages = %d, want %d", res.Messages, n)
			}
		})
	}
	if small, large := allocs(100), allocs(10000); large > small+5 {
		t.Errorf("Run allocates %v times for 100 messages and %v for 10000", small, large)
	}
}

type lineReaderParker struct{ lineReader }

func (*lineReaderParker) Idle(bool)          {}
func (*lineReaderParker) ParkDue(error) bool { return false }

// chunkedParker delivers data in the chunk sizes of sizes (cycled), and
// parks an idle read whenever the next bit of mask says so (one bit per
// idle read, cycled).
type chunkedParker struct {
	data  []byte
	sizes []byte
	mask  []byte
	n     int // reads so far
	idle  int // idle reads so far
	on    bool
	woke  bool // the last idle read parked: the next one finds data (a wake-up means it came)
}

func (r *chunkedParker) Idle(on bool)           { r.on = on }
func (r *chunkedParker) ParkDue(err error) bool { return errors.Is(err, errDue) }

func (r *chunkedParker) Read(p []byte) (int, error) {
	if r.on && !r.woke {
		r.idle++
		if len(r.mask) > 0 && r.mask[(r.idle/8)%len(r.mask)]&(1<<(r.idle%8)) != 0 {
			r.woke = true
			return 0, errDue
		}
	}
	r.woke = false
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := len(r.data)
	if len(r.sizes) > 0 {
		k = 1 + int(r.sizes[r.n%len(r.sizes)])
	}
	r.n++
	k = copy(p, r.data[:min(k, len(r.data))])
	r.data = r.data[k:]
	return k, nil
}

// FuzzParkResume: over random streams, chunkings and park points, an
// exchange parked and resumed at any of its idle reads sees the same
// messages and ends the same way as one that never parks.
func FuzzParkResume(f *testing.F) {
	f.Add([]byte("one\ntwo\r\nthree"), []byte{0, 3}, []byte{0xff})
	f.Add([]byte("a\n\nb\n"), []byte{1}, []byte{0x55})
	f.Add([]byte("a very long line that is over the limit\nx\n"), []byte{7}, []byte{0xaa})
	f.Fuzz(func(t *testing.T, data, sizes, mask []byte) {
		run := func(mask []byte) ([]string, exchange.Result, int) {
			r := &chunkedParker{data: data, sizes: sizes, mask: mask}
			rw := struct {
				io.Reader
				io.Writer
			}{r, io.Discard}
			obs := &msgRecorder{}
			opts := exchange.Options{Reply: []byte("ok"), MaxLine: 16, Parker: r}
			res := exchange.Run(rw, opts, obs)
			parks := 0
			for res.End == exchange.EndParked {
				if parks++; parks > 10*len(data)+10 {
					t.Fatal("parks for ever")
				}
				res = exchange.Resume(rw, opts, obs, res)
			}
			return obs.msgs, res, parks
		}
		want, wantRes, _ := run(nil)
		got, gotRes, _ := run(mask)
		if len(got) != len(want) {
			t.Fatalf("messages %q parked, %q not", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("messages %q parked, %q not", got, want)
			}
		}
		if gotRes != wantRes {
			t.Fatalf("Result %+v parked, %+v not", gotRes, wantRes)
		}
	})
}
