package listener

import (
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
// The pool keeps at most maxIdle workers waiting, each for at most
// idleFor; the others end, so a burst of connections does not leave a
// burst of large stacks behind. The most recently used worker is reused
// first: its stack is the one most likely in the CPU's caches.
type workers struct {
	maxIdle int
	idleFor time.Duration

	mu      sync.Mutex
	idle    []*worker // a stack: the last one in is the first one out
	stopped bool
}

// worker is one idle goroutine's mailbox. It holds one function, so
// handing a function over never blocks, even when the worker has just
// given up waiting.
type worker struct {
	work chan func()
}

// Defaults for a Server's pool: more workers than a busy machine runs
// handshakes at once, a wait long enough to bridge the gaps of a steady
// load; at most 64 grown stacks (2 MiB) kept after a burst, for 10 s.
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
// stopped, or nothing came for idleFor.
func (p *workers) run(f func()) {
	var w *worker
	var timer *time.Timer
	for {
		f()
		if w == nil {
			w = &worker{work: make(chan func(), 1)}
		}
		if !p.wait(w) {
			return
		}
		if timer == nil {
			timer = time.NewTimer(p.idleFor)
		} else {
			timer.Reset(p.idleFor)
		}
		select {
		case f = <-w.work:
		case <-timer.C:
			if !p.leave(w) {
				// Taken from the pool as the timer fired: the work
				// is on its way.
				f = <-w.work
			} else {
				return
			}
		}
		if f == nil {
			return
		}
	}
}

// wait puts w in the pool, and reports false if it should end instead.
func (p *workers) wait(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.maxIdle {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// leave takes w out of the pool, and reports false if do took it first.
func (p *workers) leave(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == w {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return true
		}
	}
	return false
}

// idleCount is the number of workers waiting.
func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// stop ends the idle workers, and the busy ones when they finish; do
// still runs what it is given, each on a goroutine of its own.
func (p *workers) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.work <- nil
	}
}
