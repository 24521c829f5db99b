package ban

import (
	"net/netip"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Impose puts in force a ban decided elsewhere (by another replica of a
// fleet): b.Key (as ParseKey reads it) banned from b.Since until b.Until,
// with b.Count, b.LastReason and b.Window as the replica that decided it
// reported them. It returns the ban as this table holds it and true if it
// changed anything; nothing changes (false) when the key is exempt here,
// the ban has ended, or the key is banned until then or later already. An
// imposed ban counts as a strike of the key, like one of its own.
func (t *Table) Impose(b Ban) (Ban, bool, error) {
	k, err := t.ParseKey(b.Key)
	if err != nil {
		return Ban{}, false, err
	}
	now := t.now().UnixNano()
	since, until := b.Since.UnixNano(), b.Until.UnixNano()
	if t.exempt(k) || until <= now || since > until {
		return Ban{}, false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[k]
	if e != nil && e.banned && e.until >= until {
		return Ban{}, false, nil
	}
	if e == nil {
		e = t.add(k)
	}
	if !e.banned {
		t.active++
	}
	e.banned, e.since, e.until = true, since, until
	e.count, e.failures, e.last = int32(min(max(b.Count, 0), 1<<30)), 0, b.LastReason
	e.strikes = max(e.strikes, 0) + 1
	e.remember = e.until + int64(t.o.Max)
	t.fix(e, e.until)
	select {
	case t.changed <- struct{}{}:
	default:
	}
	out := t.ban(e)
	if b.Window > 0 {
		out.Window = b.Window
	}
	return out, true, nil
}

// Counted reports whether a failure of addr for reason counts towards a
// ban here: the outcome counts (Counts) and addr is not exempt.
func (t *Table) Counted(addr netip.Addr, reason outcome.Code) bool {
	return Counts(reason) && !t.exempt(addr)
}

// Reached starts a ban of addr because the fleet counted count failures
// of it within the window (Options.After or more, across replicas), the
// last for reason, as Record would for failures counted here. It changes
// nothing (false) when count is below After, the outcome does not count,
// addr is exempt, or it is banned already.
func (t *Table) Reached(addr netip.Addr, reason outcome.Code, count int) (Ban, bool) {
	if count < t.o.After || !t.Counted(addr, reason) {
		return Ban{}, false
	}
	k := t.keyOf(addr)
	now := t.now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.unbanned(k, now)
	if e == nil {
		return Ban{}, false
	}
	e.windowStart, e.failures, e.last = now, int32(min(count, 1<<30)), reason
	return t.start(e, now), true
}
