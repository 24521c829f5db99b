// Package scavenge gives the heap's free memory back to the system once
// the process has gone quiet.
//
// The Go runtime keeps the heap's free pages up to about its goal (twice
// the live heap at GOGC=100) and gives back only what lies above it. After
// a burst, such as the handshakes of thousands of clients that then stay
// connected and silent, that is about as much memory again as the
// connections hold, and it stays for as long as they idle. A Watcher reads
// the runtime's figures once an interval: when the process allocated less
// than Options.Quiet bytes during the last one and a collection would give
// back at least Options.Free bytes, it gives them back (debug.FreeOSMemory:
// one collection, then every free page returned). What a collection would
// give back is the free heap pages the runtime keeps, and the objects
// allocated since the last collection beyond what that one found live:
// garbage, if the process is quiet.
//
// A busy process is never interrupted: it would soon need the pages again.
// A quiet one keeps at most Free bytes more than it needs, and a return
// costs one collection of what is live.
package scavenge

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Options tune a Watcher. Zero values take the defaults.
type Options struct {
	// Interval is the time between two readings (default 1s).
	Interval time.Duration
	// Quiet is the most the process may allocate in an interval and
	// still count as quiet (default 1 MiB).
	Quiet uint64
	// Free is the least worth giving back (default 16 MiB).
	Free uint64
	// Returned, if set, is called after each return with what a
	// collection would have given back before it, and after it.
	Returned func(before, after uint64)
}

// The defaults of Options.
const (
	DefaultInterval = time.Second
	DefaultQuiet    = 1 << 20
	DefaultFree     = 16 << 20
)

// reading is what a Watcher reads.
type reading struct {
	allocated uint64 // bytes allocated since the process started
	spare     uint64 // bytes a collection would give back (see the package doc)
}

// Worth reports whether spare bytes should be given back after an
// interval in which the process allocated allocated bytes.
func (o Options) Worth(allocated, spare uint64) bool {
	return allocated < o.Quiet && spare >= o.Free
}

// Start runs a Watcher until stop is called; stop returns once it has
// ended.
func Start(opts Options) (stop func()) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Quiet == 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Free == 0 {
		opts.Free = DefaultFree
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { watch(opts, done) })
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// watch reads the figures once an interval until done is closed.
func watch(opts Options, done <-chan struct{}) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	read := func() reading {
		metrics.Read(samples)
		free, objects, live := samples[1].Value.Uint64(), samples[2].Value.Uint64(), samples[3].Value.Uint64()
		return reading{samples[0].Value.Uint64(), free + objects - min(live, objects)}
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	last := read()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := read()
		if opts.Worth(now.allocated-last.allocated, now.spare) {
			debug.FreeOSMemory()
			after := read()
			if opts.Returned != nil {
				opts.Returned(now.spare, after.spare)
			}
			now = after
		}
		last = now
	}
}
