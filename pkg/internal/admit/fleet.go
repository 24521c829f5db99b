package admit

import (
	"math"
	"net/netip"
	"sync/atomic"
	"time"
)

// A fleet of replicas can share the rate limit (pkg/fleet keeps the shared
// bucket in Redis). Admit never waits for the fleet: each key's connections
// are admitted from a local allowance, and a sync loop reports what each
// key used and learns what it may use next, every few hundred milliseconds,
// for the keys used since the last sync only:
//
//   - A lease: at a sync, a key that was used or refused is granted a
//     share of the fleet's balance (reserved there, so the leases of all
//     replicas never add up to more than the balance). While a key holds
//     a lease it admits only from it.
//   - A free share: a key without a lease (never synced, idle since its
//     last sync, or waiting for an answer) admits up to its share of the
//     balance it last learned, refilled at the rate since then (the full
//     burst when it knows nothing), divided among the live replicas,
//     rounded up. Those connections are reported at the next sync and
//     owed by the fleet's balance, so the fleet-wide excess over one
//     bucket is at most one burst plus one connection per replica.
//
// The local bucket applies either way, so while the fleet is off (Redis
// unreachable) the local limits alone hold.

// fleetState is the limiter's side of the fleet's share.
type fleetState struct {
	on       atomic.Bool
	replicas atomic.Int32 // live replicas, at least 1
	epoch    time.Time    // fleetEntry.at counts ticks from here
	// touched lists the entries to report at the next sync, each once
	// (flagListed); under the limiter's lock.
	touched []*entry
}

// fleetTick is the unit of fleetEntry.at.
const fleetTick = 10 * time.Millisecond

const (
	flagListed uint8 = 1 << iota // in fleetState.touched
	flagWant                     // used or refused since the last report
	flagLeased                   // holds a lease (grant)
	flagSynced                   // base and at hold an answer
)

// fleetEntry is one key's share, in 16 bytes (an entry stays in its
// allocation size class: TestEntrySize).
type fleetEntry struct {
	grant int32   // connections left in the lease
	lent  int16   // admitted without a lease since the last report
	flags uint8   // flag*
	base  float32 // the fleet's balance for the key at the last answer
	at    uint32  // when (fleetTicks since the epoch; wraps in 497 days)
}

// fresh is the share of a new key in an entry that may be listed for the
// next report still (an evicted key's entry, reused).
func (f fleetEntry) fresh() fleetEntry { return fleetEntry{flags: f.flags & flagListed} }

func (l *limiter) tick(now time.Time) uint32 { return uint32(now.Sub(l.fleet.epoch) / fleetTick) }

// fleetAllows reports whether e may admit one more connection now under
// its share, and lists e for the next report. Under the lock.
func (l *limiter) fleetAllows(e *entry, now time.Time) bool {
	f := &e.fleetEntry
	f.flags |= flagWant
	if f.flags&flagListed == 0 {
		f.flags |= flagListed
		l.fleet.touched = append(l.fleet.touched, e)
	}
	if f.flags&flagLeased != 0 {
		return f.grant > 0
	}
	return int(f.lent) < l.freeShare(f, now)
}

// freeShare is what a key without a lease may admit: its last known fleet
// balance, refilled since, divided among the live replicas and rounded up
// (at most the balance itself, and at most MaxInt16).
func (l *limiter) freeShare(f *fleetEntry, now time.Time) int {
	bal := float64(l.burst)
	if f.flags&flagSynced != 0 {
		dt := float64(l.tick(now)-f.at) * fleetTick.Seconds()
		bal = min(bal, float64(f.base)+dt*float64(l.limit))
	}
	if bal < 1 {
		return 0
	}
	n := float64(max(l.fleet.replicas.Load(), 1))
	return int(min(math.Ceil(bal/n), math.Floor(bal), math.MaxInt16))
}

// fleetTake counts an admitted connection against e's share.
func (e *entry) fleetTake() {
	if e.flags&flagLeased != 0 {
		e.grant--
	} else {
		e.lent++
	}
}

// FleetReport is one key's account at a fleet sync, and the fleet's answer.
type FleetReport struct {
	// Key is the key, as Key names it.
	Key netip.Addr
	// Return is the lease left unused minus the connections admitted
	// without a lease: what the fleet's balance gets back (negative: what
	// it owes).
	Return int
	// Want says the key was used or refused since the last report: it asks
	// for a lease.
	Want bool

	// Grant, the answer, is the lease granted (when Want).
	Grant int
	// Balance, the answer, is the fleet's balance left for the key.
	Balance float64
}

// SetFleet turns the fleet's share on or off (while off, only the local
// limits apply) and says how many replicas are live.
func (a *Admitter) SetFleet(on bool, replicas int) {
	a.limiter.fleet.replicas.Store(int32(min(max(replicas, 1), math.MaxInt32)))
	a.limiter.fleet.on.Store(on)
}

// FleetRate is the rate limit that the fleet shares: connections per
// second and the burst; a zero rate when the rate is not limited.
func (a *Admitter) FleetRate() (perSecond float64, burst int) {
	return float64(a.limiter.limit), a.limiter.burst
}

// FleetReports appends to buf the reports of the keys used, refused or
// holding a lease since the last call, and ends their leases: until
// FleetAnswers, those keys admit from their free share.
func (a *Admitter) FleetReports(buf []FleetReport) []FleetReport {
	l := a.limiter
	l.mu.Lock()
	for _, e := range l.fleet.touched {
		f := &e.fleetEntry
		r := FleetReport{Key: e.key, Return: -int(f.lent), Want: f.flags&flagWant != 0}
		if f.flags&flagLeased != 0 {
			r.Return += int(f.grant)
		}
		f.grant, f.lent = 0, 0
		f.flags &^= flagListed | flagWant | flagLeased
		buf = append(buf, r)
	}
	clear(l.fleet.touched)
	l.fleet.touched = l.fleet.touched[:0]
	l.mu.Unlock()
	return buf
}

// FleetAnswers applies the fleet's answers to reports that FleetReports
// made: each key that wanted a lease holds its Grant, and is listed for
// the next report (to renew the lease, or give back what is left of it).
// Keys no longer in the table are skipped.
func (a *Admitter) FleetAnswers(reports []FleetReport) {
	l := a.limiter
	at := l.tick(l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range reports {
		e := l.m[r.Key]
		if e == nil {
			continue
		}
		f := &e.fleetEntry
		f.base, f.at = float32(r.Balance), at
		f.flags |= flagSynced
		if !r.Want {
			continue
		}
		f.flags |= flagLeased
		f.grant = int32(min(max(r.Grant, 0), math.MaxInt32))
		if f.flags&flagListed == 0 {
			f.flags |= flagListed
			l.fleet.touched = append(l.fleet.touched, e)
		}
	}
}

// inheritFleet carries the fleet's switch from an old limiter to a new one
// (a reload with new limits).
func (l *limiter) inheritFleet(old *limiter) {
	l.fleet.replicas.Store(old.fleet.replicas.Load())
	l.fleet.on.Store(old.fleet.on.Load())
}
