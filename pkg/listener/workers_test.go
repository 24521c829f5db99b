package listener

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A worker runs one function after another; the pool keeps at most
// maxIdle; stop ends them all (synctest.Test fails if a goroutine of the
// bubble is left blocked).
func TestWorkersReuseAndBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &workers{maxIdle: 2, idleFor: time.Hour}
		var ran atomic.Int32
		p.do(func() { ran.Add(1) })
		synctest.Wait()
		if n := p.idleCount(); n != 1 {
			t.Fatalf("%d idle workers after one function, want 1", n)
		}
		p.do(func() { ran.Add(1) })
		synctest.Wait()
		if n := p.idleCount(); n != 1 {
			t.Fatalf("%d idle workers after two functions in turn, want 1 (reused)", n)
		}

		// Five at once: five workers, two of them kept.
		release := make(chan struct{})
		for range 5 {
			p.do(func() { <-release; ran.Add(1) })
		}
		synctest.Wait()
		if n := p.idleCount(); n != 0 {
			t.Fatalf("%d idle workers while all work, want 0", n)
		}
		close(release)
		synctest.Wait()
		if n := p.idleCount(); n != 2 {
			t.Fatalf("%d idle workers after a burst of 5, want maxIdle 2", n)
		}
		if n := ran.Load(); n != 7 {
			t.Fatalf("%d functions ran, want 7", n)
		}
		p.stop()
		synctest.Wait()
		if n := p.idleCount(); n != 0 {
			t.Fatalf("%d idle workers after stop", n)
		}
		// After stop, work still runs, and its goroutine ends.
		p.do(func() { ran.Add(1) })
		synctest.Wait()
		if n := ran.Load(); n != 8 {
			t.Fatalf("%d functions ran, want 8", n)
		}
	})
}

// An idle worker ends at the second sweep after it began waiting (idle
// between idleFor and twice that); one handed work at the instant of a
// sweep runs it.
func TestWorkersIdleExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &workers{maxIdle: 4, idleFor: time.Second}
		p.do(func() {})
		synctest.Wait()
		time.Sleep(time.Second + time.Nanosecond) // fake time (synctest): advances the bubble's clock at once
		synctest.Wait()
		if n := p.idleCount(); n != 1 {
			t.Fatalf("%d idle workers after one sweep, want 1", n)
		}
		time.Sleep(time.Second) // fake time (synctest): advances the bubble's clock at once
		synctest.Wait()
		if n := p.idleCount(); n != 0 {
			t.Fatalf("%d idle workers after two sweeps, want 0", n)
		}

		var ran atomic.Int32
		for i := range 50 {
			p.do(func() {})
			synctest.Wait()
			// Fake time: a sweep and this do happen at the same
			// instant, in either order.
			time.Sleep(time.Second) // fake time (synctest): advances the bubble's clock at once
			p.do(func() { ran.Add(1) })
			synctest.Wait()
			if n := ran.Load(); n != int32(i+1) {
				t.Fatalf("round %d: %d functions ran, want %d", i, n, i+1)
			}
		}
		p.stop()
	})
}
