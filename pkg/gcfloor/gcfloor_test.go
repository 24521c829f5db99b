package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		floor, live uint64
		base, want  int
	}{
		// The runtime's 4 MiB minimum, scaled by GOGC, reaches 16 MiB at 400.
		{"tiny heap: capped where the minimum is the floor", 16 * mib, 1 * mib, 100, 400},
		{"nothing live", 16 * mib, 0, 100, 400},
		{"a quarter of the floor", 16 * mib, 4 * mib, 100, 300},
		{"half the floor: the base", 16 * mib, 8 * mib, 100, 100},
		{"above the floor: the base", 16 * mib, 100 * mib, 100, 100},
		{"a higher base is kept", 16 * mib, 100 * mib, 300, 300},
		{"a higher base than the floor needs", 16 * mib, 1 * mib, 800, 800},
		{"a lower base", 16 * mib, 12 * mib, 50, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.floor, tc.live, tc.base); got != tc.want {
				t.Errorf("Percent(%d MiB, %d MiB, %d) = %d, want %d", tc.floor/mib, tc.live/mib, tc.base, got, tc.want)
			}
		})
	}
}

// gogc reads the GOGC in force.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collect runs a collection and waits until the floor has adjusted
// after it. An adjustment queued by an earlier cycle may run first and
// read that cycle's heap, and arm a sentinel in the middle of the new
// cycle, which survives it: then it collects again, until an adjustment
// has seen the cycle. The bound against a hang is a count of cycles.
func collect(t *testing.T, f *Floor) {
	t.Helper()
	runtime.GC()
	want := cycles()
	for range 1000 {
		f.mu.Lock()
		seen, ch := f.seen, f.cycled
		f.mu.Unlock()
		if seen >= want {
			return
		}
		select {
		case <-ch: // an adjustment: look again
		default:
			runtime.GC()
		}
	}
	t.Fatalf("no adjustment saw cycle %d in 1000 collections", want)
}

// cycles is how many collections have completed.
func cycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// atBase runs the test with GOGC at base, and puts it back after.
func atBase(t *testing.T, base int) {
	old := debug.SetGCPercent(base)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

var held []byte // a live heap the collector must keep

func TestFloorFollowsTheLiveHeap(t *testing.T) {
	atBase(t, 100)
	f := start(16 * mib)
	if f == nil {
		t.Fatal("start returned nil with GOGC at 100")
	}
	defer f.stop()
	collect(t, f)
	if got := gogc(); got != 400 {
		t.Errorf("GOGC with a small live heap = %d, want 400", got)
	}

	held = make([]byte, 64*mib)
	collect(t, f)
	if got := gogc(); got != 100 {
		t.Errorf("GOGC with 64 MiB live = %d, want the base, 100", got)
	}

	held = nil
	collect(t, f)
	if got := gogc(); got != 400 {
		t.Errorf("GOGC once the heap is small again = %d, want 400", got)
	}

	f.stop()
	if got := gogc(); got != 100 {
		t.Errorf("GOGC after stop = %d, want the base, 100", got)
	}
	// The cleanup armed before stop runs once more, and re-arms nothing.
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != 100 {
		t.Errorf("GOGC after stop and two collections = %d, want 100", got)
	}
}

func TestFloorOffWithTheCollector(t *testing.T) {
	atBase(t, -1)
	if f := start(16 * mib); f != nil {
		f.stop()
		t.Fatal("start with GOGC=off returned a floor, want nil")
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC after start with GOGC=off = %d, want -1", got)
	}
}

func TestFloorKeepsAHigherBase(t *testing.T) {
	atBase(t, 800)
	f := start(16 * mib)
	defer f.stop()
	collect(t, f)
	if got := gogc(); got != 800 {
		t.Errorf("GOGC with base 800 = %d, want 800", got)
	}
}

// A GOGC a little above the base (within the eighth not worth a change)
// still goes back to the base exactly once the heap is large.
func TestFloorGivesBackTheBaseExactly(t *testing.T) {
	atBase(t, 100)
	f := start(16 * mib)
	defer f.stop()
	f.mu.Lock()
	f.percent = 110
	debug.SetGCPercent(110)
	f.mu.Unlock()
	held = make([]byte, 64*mib)
	defer func() { held = nil }()
	collect(t, f)
	if got := gogc(); got != 100 {
		t.Errorf("GOGC with 64 MiB live, from 110 = %d, want the base, 100", got)
	}
}
