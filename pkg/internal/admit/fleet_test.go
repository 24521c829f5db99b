package admit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// admitN tries n connections from addr and returns how many were admitted.
func admitN(a *Admitter, addr netip.Addr, n int) int {
	got := 0
	for range n {
		if release, _, ok := a.Admit(addr); ok {
			got++
			release()
		}
	}
	return got
}

// The fleet's share: before any answer a key admits its free share (the
// burst divided among the live replicas, rounded up); a lease admits
// exactly its grant; the reports carry what was used and what is left;
// off, the local bucket alone applies.
func TestFleetShare(t *testing.T) {
	clk := newClock()
	a := New(Options{Limits: Limits{Rate: 10, Burst: 9, Now: clk.Now}})
	addr := netip.MustParseAddr("192.0.2.1")
	a.SetFleet(true, 3)
	if got := admitN(a, addr, 10); got != 3 {
		t.Fatalf("free share of 3 replicas: %d admitted, want 3 (9/3)", got)
	}
	reps := a.FleetReports(nil)
	if len(reps) != 1 || reps[0].Key != addr || reps[0].Return != -3 || !reps[0].Want {
		t.Fatalf("reports = %+v, want one owing 3 and wanting a lease", reps)
	}
	if again := a.FleetReports(nil); len(again) != 0 {
		t.Fatalf("reported twice: %+v", again)
	}
	reps[0].Grant, reps[0].Balance = 2, 1
	a.FleetAnswers(reps)
	if got := admitN(a, addr, 5); got != 2 {
		t.Errorf("lease of 2: %d admitted", got)
	}
	if _, why, ok := a.Admit(addr); ok || why != outcome.Rate {
		t.Errorf("past the lease: %v %q, want refused for rate", ok, why)
	}
	// The key is listed again: the lease ends at the next report, used up.
	reps = a.FleetReports(nil)
	if len(reps) != 1 || reps[0].Return != 0 || !reps[0].Want {
		t.Fatalf("reports after the lease = %+v", reps)
	}
	// A key without a lease after an answer: its share of the balance it
	// learned, refilled since (1 + 10/s * 0.5 s = 6, over 3 replicas: 2).
	reps[0].Grant, reps[0].Want = 0, false
	a.FleetAnswers(reps)
	clk.Advance(500 * time.Millisecond)
	if got := admitN(a, addr, 5); got != 2 {
		t.Errorf("free share after an answer: %d admitted, want 2", got)
	}
	// Off: the local bucket alone (a fresh key: its burst).
	a.SetFleet(false, 1)
	if got := admitN(a, netip.MustParseAddr("192.0.2.2"), 20); got != 9 {
		t.Errorf("fleet off: %d admitted, want the local burst 9", got)
	}
	// A reload with new limits keeps the switch.
	a.SetFleet(true, 2)
	b := a.With(Options{Limits: Limits{Rate: 10, Burst: 4, Now: clk.Now}})
	if got := admitN(b, netip.MustParseAddr("192.0.2.3"), 10); got != 2 {
		t.Errorf("after a reload: %d admitted, want the free share 2 (4/2)", got)
	}
}

// The fleet's path allocates nothing once a key is listed.
func TestFleetShareAllocs(t *testing.T) {
	a := New(Options{Limits: Limits{Rate: 1e9, Burst: 1e9}})
	a.SetFleet(true, 1)
	addr := netip.MustParseAddr("192.0.2.1")
	var buf []FleetReport
	allocs := testing.AllocsPerRun(1000, func() {
		release, _, _ := a.Admit(addr)
		release()
		buf = a.FleetReports(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per admission and report", allocs)
	}
}

// BenchmarkAllowFleet is BenchmarkAllowSameIP's rate case with the fleet's
// share on: one key holding a large lease, reported every 1,000 calls.
func BenchmarkAllowFleet(b *testing.B) {
	a := New(Options{Limits: Limits{Rate: 1e9, Burst: 1e9}})
	a.SetFleet(true, 1)
	addr := netip.MustParseAddr("192.0.2.1")
	var buf []FleetReport
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		release, _, ok := a.Admit(addr)
		if !ok {
			b.Fatal("refused")
		}
		release()
		if i++; i%1000 == 0 {
			buf = a.FleetReports(buf[:0])
			for j := range buf {
				buf[j].Grant, buf[j].Balance = 1e6, 1e9
			}
			a.FleetAnswers(buf)
		}
	}
}
