package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minHeap is the runtime's smallest heap goal at GOGC=100
// (runtime.defaultHeapMinimum); it scales with GOGC.
const minHeap = 4 << 20

// Floor raises GOGC while the live heap is small. It adjusts once per
// garbage collection, from a cleanup that each cycle runs and re-arms:
// no goroutine or timer of its own.
type Floor struct {
	floor uint64
	base  int // GOGC when the floor was started

	mu      sync.Mutex
	stopped bool
	percent int               // GOGC as last set
	samples [2]metrics.Sample // the live heap and the cycles, read after each cycle
	seen    uint64            // the cycles as of the last adjustment (tests)
	cycled  chan struct{}     // closed and replaced at each adjustment (tests)
}

// sentinel is the object whose cleanup marks the end of a cycle. It holds
// a pointer so that it is never one of the runtime's tiny allocations,
// whose cleanups need not run.
type sentinel struct{ _ *int }

// once makes Keep's floor the process's only one.
var once sync.Once

// Keep keeps the heap goal at least floor bytes for the rest of the
// process, from GOGC as it is now. Only the first call does anything: GOGC
// is one setting per process. It does nothing if GOGC is off.
func Keep(floor uint64) {
	once.Do(func() { start(floor) })
}

// start starts a floor from the GOGC in force; nil if the collector is off.
func start(floor uint64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base <= 0 {
		return nil
	}
	f := &Floor{floor: floor, base: base, percent: base, cycled: make(chan struct{})}
	f.samples[0].Name = "/gc/heap/live:bytes"
	f.samples[1].Name = "/gc/cycles/total:gc-cycles"
	f.adjust()
	f.arm()
	return f
}

// arm registers the cleanup that runs after the next cycle.
func (f *Floor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *Floor) { f.cycle() }, f)
}

// cycle adjusts GOGC after a collection and re-arms, unless stopped.
func (f *Floor) cycle() {
	if f.adjust() {
		f.arm()
	}
}

// adjust sets GOGC for the live heap now, and says whether the floor is
// still running.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples[:])
	p := Percent(f.floor, f.samples[0].Value.Uint64(), f.base)
	// Small changes are not worth the runtime's lock (within an eighth),
	// but the base is always given back exactly.
	if d := p - f.percent; d != 0 && (p == f.base || d > f.percent/8 || -d > f.percent/8) {
		debug.SetGCPercent(p)
		f.percent = p
	}
	f.seen = f.samples[1].Value.Uint64()
	close(f.cycled)
	f.cycled = make(chan struct{})
	return true
}

// stop gives GOGC back to its base and ends the adjustments.
func (f *Floor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	debug.SetGCPercent(f.base)
}

// Percent is the GOGC that makes the heap goal of a live heap of live
// bytes at least floor, never below base. The runtime's goal is the
// larger of live·(1 + GOGC/100) and 4 MiB·GOGC/100, so GOGC is capped
// where the second alone reaches the floor.
func Percent(floor, live uint64, base int) int {
	if live == 0 {
		live = 1
	}
	p := base
	if live < floor {
		p = max(p, int((floor-live)*100/live))
	}
	return max(base, min(p, int(floor*100/minHeap)))
}
