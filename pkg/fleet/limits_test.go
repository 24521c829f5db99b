package fleet_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
	"github.com/seclisten/seclisten/pkg/internal/admit"
)

const (
	testRate  = 20 // per second
	testBurst = 10
)

// replicaLimits is one simulated replica: its admitter and its sync loop.
type replicaLimits struct {
	a    *admit.Admitter
	sync *fleet.Limits
}

func newReplicaLimits(t *testing.T, c *fleet.Client, name string, interval time.Duration) replicaLimits {
	t.Helper()
	_, log := newLog()
	a := admit.New(admit.Options{Limits: admit.Limits{Rate: testRate, Burst: testBurst}})
	l := fleet.NewLimits(c, fleet.LimitOptions{Replica: name, Interval: interval,
		Table: func() fleet.LimitTable { return a }, Logger: log})
	return replicaLimits{a, l}
}

// flood sends attempts from addr to every replica in turn, one every
// 500µs per replica, for d, and returns the admitted count and the time
// it took.
func flood(replicas []replicaLimits, addr netip.Addr, d time.Duration) (int, time.Duration) {
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, r := range replicas {
		wg.Go(func() {
			tick := time.NewTicker(500 * time.Microsecond) // the load's pace
			defer tick.Stop()
			for i := 0; i < 20_000 && time.Since(start) < d; i++ {
				<-tick.C
				if release, _, ok := r.a.Admit(addr); ok {
					admitted.Add(1)
					release()
				}
			}
		})
	}
	wg.Wait()
	return int(admitted.Load()), time.Since(start)
}

// bound is what the fleet may admit in elapsed: within 10% of one
// bucket (a burst and the rate), plus one burst and one connection per
// replica (the free shares of a key no replica holds a lease for).
func bound(elapsed time.Duration, replicas int) float64 {
	return 1.1*(testBurst+testRate*elapsed.Seconds()) + testBurst + float64(replicas)
}

// Three replicas admitting one client concurrently, each from its own
// lease, never admit much more than one bucket fleet-wide; three
// independent replicas admit about three times as much.
func TestLimitsFleetWide(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	var reps []replicaLimits
	for i := range 3 {
		reps = append(reps, newReplicaLimits(t, c, fmt.Sprintf("replica-%d", i), 20*time.Millisecond))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, rep := range reps {
		rep.sync.Sync(ctx) // shared from the start
		wg.Go(func() { rep.sync.Run(ctx) })
	}
	for _, addr := range []string{"192.0.2.7", "2001:db8::1"} {
		got, elapsed := flood(reps, netip.MustParseAddr(addr), 1500*time.Millisecond)
		max := bound(elapsed, len(reps))
		t.Logf("%s: %d admitted by 3 replicas in %s; one bucket allows %.0f", addr, got,
			elapsed.Round(time.Millisecond), testBurst+testRate*elapsed.Seconds())
		if float64(got) > max {
			t.Errorf("%s: %d admitted fleet-wide in %s, want at most %.0f", addr, got, elapsed, max)
		}
		if got < testBurst {
			t.Errorf("%s: %d admitted, not even one burst (%d)", addr, got, testBurst)
		}
	}

	// The contrast: the same flood on three replicas that share nothing.
	var alone []replicaLimits
	for range 3 {
		alone = append(alone, replicaLimits{a: admit.New(admit.Options{Limits: admit.Limits{Rate: testRate, Burst: testBurst}})})
	}
	got, elapsed := flood(alone, netip.MustParseAddr("192.0.2.8"), 1500*time.Millisecond)
	t.Logf("without the fleet: %d admitted in %s", got, elapsed.Round(time.Millisecond))
	if float64(got) <= bound(elapsed, 3) {
		t.Errorf("without the fleet, %d admitted: the test cannot tell shared limits from local ones", got)
	}
}

// Redis away: the replicas fall back to their local limits at once (each
// admits its own bucket), say so once, and share again when it returns.
func TestLimitsRedisDown(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, cl := client(t, r.URL(0))
	l, log := newLog()
	a := admit.New(admit.Options{Limits: admit.Limits{Rate: testRate, Burst: testBurst}})
	s := fleet.NewLimits(c, fleet.LimitOptions{Replica: "one", Table: func() fleet.LimitTable { return a }, Logger: log})
	ctx := context.Background()
	s.Sync(ctx)
	l.wait(t, "per-IP rate limits shared with the fleet", 1)
	r.Stop()
	if release, _, ok := a.Admit(netip.MustParseAddr("192.0.2.99")); ok {
		release() // a key to sync
	}
	s.Sync(ctx) // fails: Redis is away
	l.wait(t, "per-IP rate limits: fleet sync failed; local limits only", 1)
	// The local bucket alone: a burst, then refused.
	addr := netip.MustParseAddr("192.0.2.9")
	n := 0
	for range 2 * testBurst {
		if release, _, ok := a.Admit(addr); ok {
			n++
			release()
		}
	}
	if n < testBurst-1 || n > testBurst+1 {
		t.Errorf("Redis down: %d admitted of %d attempts, want the local burst (%d)", n, 2*testBurst, testBurst)
	}
	s.Sync(ctx) // still away: nothing more logged
	r.Start()
	cl.wait(t, "redis back", 1) // the client's own watch notices it
	s.Sync(ctx)
	l.wait(t, "per-IP rate limits shared with the fleet", 2)
	if n := l.count("fleet sync failed"); n != 1 {
		t.Errorf("%d failure lines for one outage, want 1", n)
	}
}

// A bucket key holding garbage (another program's value, a hand edit) is
// replaced, never a failed sync.
func TestLimitsGarbageKey(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	ctx := context.Background()
	for key, set := range map[string]func() error{
		"test:limit:192.0.2.10": func() error { return c.Redis().Set(ctx, "test:limit:192.0.2.10", "garbage", 0).Err() },
		"test:limit:192.0.2.11": func() error {
			return c.Redis().HSet(ctx, "test:limit:192.0.2.11", "t", "nan", "ts", "x").Err()
		},
		"test:replicas": func() error { return c.Redis().Set(ctx, "test:replicas", "junk", 0).Err() },
	} {
		if err := set(); err != nil {
			t.Fatal(key, err)
		}
	}
	l, log := newLog()
	a := admit.New(admit.Options{Limits: admit.Limits{Rate: testRate, Burst: testBurst}})
	s := fleet.NewLimits(c, fleet.LimitOptions{Replica: "one", Table: func() fleet.LimitTable { return a }, Logger: log})
	s.Sync(ctx)
	for _, ip := range []string{"192.0.2.10", "192.0.2.11"} {
		if release, why, ok := a.Admit(netip.MustParseAddr(ip)); !ok {
			t.Errorf("%s refused (%s) after garbage in its key", ip, why)
		} else {
			release()
		}
	}
	s.Sync(ctx)
	if l.count("sync failed") != 0 {
		t.Errorf("garbage failed a sync:\n%s", l.String())
	}
	if typ := c.Redis().Type(ctx, "test:limit:192.0.2.10").Val(); typ != "hash" {
		t.Errorf("the garbage key is a %s, want replaced by a hash", typ)
	}
}

// The property behind the bound, without the clock: with a rate too slow
// to refill anything during the test, three replicas admitting and
// syncing in any order (random interleavings, each replica's admissions
// and syncs in random amounts) never admit more than two bursts plus one
// connection per replica fleet-wide, however the leases and free shares
// fall.
func TestLimitsPropertyAnyInterleaving(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	const burst, n = 12, 3
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	worst := 0
	defer func() { t.Logf("at most %d admitted in a round (bound %d)", worst, 2*burst+n) }()
	for round := range 20 {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(round)})
		var reps []replicaLimits
		for i := range n {
			_, log := newLog()
			a := admit.New(admit.Options{Limits: admit.Limits{Rate: 1e-6, Burst: burst}})
			reps = append(reps, replicaLimits{a, fleet.NewLimits(c, fleet.LimitOptions{Replica: fmt.Sprintf("r%d-%d", round, i),
				Table: func() fleet.LimitTable { return a }, Logger: log})})
		}
		for _, rep := range reps {
			rep.sync.Sync(ctx) // shared, all live
		}
		total := 0
		for range 200 {
			rep := reps[rnd.IntN(n)]
			if rnd.IntN(3) == 0 {
				rep.sync.Sync(ctx)
				continue
			}
			for range rnd.IntN(4) + 1 {
				if release, _, ok := rep.a.Admit(addr); ok {
					total++
					release()
				}
			}
		}
		worst = max(worst, total)
		if total > 2*burst+n {
			t.Fatalf("round %d: %d admitted fleet-wide with no refill, want at most %d (two bursts + one per replica)", round, total, 2*burst+n)
		}
		if total < burst/2 {
			t.Errorf("round %d: only %d admitted of a burst of %d", round, total, burst)
		}
	}
}
