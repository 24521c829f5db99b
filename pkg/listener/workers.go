package listener

import (
	"slices"
	"sync"
	"time"
)

// workers runs the connections' handlers on goroutines that outlive them.
//
// A TLS handshake (certificate parsing, X25519 or ML-KEM, the signature)
// grows a goroutine's stack to 16-32 KiB. A goroutine started per
// connection begins small and copies its stack at each doubling, every
// time: a tenth of a bare crypto/tls server's CPU per full handshake is
// that growth and the goroutine's start. A worker keeps its grown stack
// from one connection to the next, so the handshake runs on a stack that
// is already big enough. Idle connections do not keep a worker: they park
// (Conn.Suspend) and their worker comes back here.
//
// The pool keeps at most maxIdle workers waiting; a sweep every idleFor
// ends those that waited through a whole sweep interval, so a burst of
// connections does not leave a burst of large stacks behind, and waiting
// costs a worker no timer. The most recently used worker is reused first:
// its stack is the one most likely in the CPU's caches, and the ones left
// at the bottom are the ones the sweep ends.
type workers struct {
	maxIdle int
	idleFor time.Duration

	mu       sync.Mutex
	idle     []*worker // a stack: the last one in is the first one out
	stopped  bool
	sweeps   uint64 // sweeps done
	sweeping bool   // the sweep goroutine runs
	stopSwp  chan struct{}
}

// worker is one idle goroutine's mailbox. It holds one function, so
// handing a function over never blocks.
type worker struct {
	work  chan func()
	sweep uint64 // the pool's sweep count when it began waiting
}

// Defaults for a Server's pool: more workers than a busy machine runs
// handshakes at once, a wait long enough to bridge the gaps of a steady
// load; at most 64 grown stacks (2 MiB) kept after a burst, for 10-20 s.
const (
	defaultMaxIdleWorkers = 64
	defaultWorkerIdle     = 10 * time.Second
)

// do runs f on an idle worker, or on a new goroutine that becomes one.
func (p *workers) do(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	p.mu.Unlock()
	go p.run(f)
}

// run runs f, then waits in the pool for more work until it is full,
// stopped, or swept.
func (p *workers) run(f func()) {
	w := &worker{work: make(chan func(), 1)}
	for f != nil {
		f()
		if !p.wait(w) {
			return
		}
		f = <-w.work
	}
}

// wait puts w in the pool, and reports false if it should end instead.
func (p *workers) wait(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.maxIdle {
		return false
	}
	if !p.sweeping {
		p.sweeping = true
		p.stopSwp = make(chan struct{})
		go p.sweeper(p.stopSwp)
	}
	w.sweep = p.sweeps
	p.idle = append(p.idle, w)
	return true
}

// sweeper sweeps every idleFor until stop.
func (p *workers) sweeper(stop <-chan struct{}) {
	t := time.NewTicker(p.idleFor)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.sweepOnce()
		case <-stop:
			return
		}
	}
}

// sweepOnce ends the workers that have waited since before the last
// sweep: idle for between idleFor and twice that.
func (p *workers) sweepOnce() {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].sweep < p.sweeps {
		n++
	}
	old := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	p.sweeps++
	p.mu.Unlock()
	for _, w := range old {
		w.work <- nil
	}
}

// idleCount is the number of workers waiting.
func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// stop ends the idle workers and the sweep, and the busy workers when
// they finish; do still runs what it is given, each on a goroutine of its
// own.
func (p *workers) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	if p.sweeping {
		p.sweeping = false
		close(p.stopSwp)
	}
	p.mu.Unlock()
	for _, w := range idle {
		w.work <- nil
	}
}
