package scavenge_test

import (
	"bytes"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/scavenge"
)

// A process gives its spare heap back only when it is quiet and a
// collection would give back enough.
func TestWorth(t *testing.T) {
	o := scavenge.Options{Quiet: scavenge.DefaultQuiet, Free: scavenge.DefaultFree}
	for _, tc := range []struct {
		name             string
		allocated, spare uint64
		want             bool
	}{
		{"quiet, much spare", 0, 64 << 20, true},
		{"quiet, just enough spare", scavenge.DefaultQuiet - 1, scavenge.DefaultFree, true},
		{"quiet, little spare", 1 << 10, scavenge.DefaultFree - 1, false},
		{"busy, much spare", scavenge.DefaultQuiet, 64 << 20, false},
		{"busy, little spare", 100 << 20, 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := o.Worth(tc.allocated, tc.spare); got != tc.want {
				t.Errorf("Worth(%d, %d) = %v, want %v", tc.allocated, tc.spare, got, tc.want)
			}
		})
	}
}

// sink keeps allocations live (or, set to nil, makes them garbage).
var sink [][]byte

// heapFree is the free heap the runtime keeps, not yet given back.
func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// After a burst of garbage, a quiet process gives it back: what a
// collection would give back is then below the threshold. The garbage is
// either collected already (free pages the runtime keeps) or not yet
// (objects beyond what the last collection found live). A live heap as
// large keeps the runtime's own scavenger away from the pages (they are
// under its goal), so what is given back is the Watcher's doing. Stopping
// the Watcher ends its goroutine.
func TestReturnsSpareHeap(t *testing.T) {
	for _, collected := range []bool{true, false} {
		t.Run(map[bool]string{true: "collected garbage", false: "garbage not collected yet"}[collected], func(t *testing.T) {
			live := make([][]byte, 0, 1<<12)
			for range 1 << 12 {
				live = append(live, make([]byte, 16<<10)) // 64 MiB live
			}
			runtime.GC()
			for range 3 << 11 {
				sink = append(sink, make([]byte, 16<<10)) // 48 MiB, then garbage
			}
			sink = nil
			if collected {
				runtime.GC()
				if f := heapFree(); f < 32<<20 {
					t.Fatalf("free heap after the burst: %d bytes, want at least 32 MiB for the test to mean anything", f)
				}
			}
			returned := make(chan [2]uint64, 1)
			stop := scavenge.Start(scavenge.Options{
				Interval: 10 * time.Millisecond,
				Free:     8 << 20,
				Returned: func(b, a uint64) {
					select {
					case returned <- [2]uint64{b, a}:
					default:
					}
				},
			})
			select {
			case r := <-returned:
				// The runtime's own scavenger may have given back some
				// of the garbage's pages first: the Watcher's share is
				// what was left, at least the threshold.
				if r[0] < 8<<20 || r[1] >= 8<<20 {
					t.Errorf("spare heap before and after the return: %d, %d bytes; want at least 8 MiB, then under 8 MiB", r[0], r[1])
				}
			case <-time.After(30 * time.Second): // hang guard
				t.Fatal("no return within 30 s")
			}
			if f := heapFree(); f >= 8<<20 {
				t.Errorf("free heap kept after the return: %d bytes, want under 8 MiB", f)
			}
			stop()
			stop() // a second stop is harmless
			runtime.KeepAlive(live)
			// stop has returned once the Watcher's goroutine left watch.
			// Counting goroutines would not do: the runtime counts its
			// finalizer and cleanup goroutines while they run user code.
			buf := make([]byte, 1<<20)
			if stacks := buf[:runtime.Stack(buf, true)]; bytes.Contains(stacks, []byte("scavenge.watch(")) {
				t.Errorf("the Watcher's goroutine is still running after stop:\n%s", stacks)
			}
		})
	}
}
