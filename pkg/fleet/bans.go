package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The fleet's bans: each ban is a key under the prefix ("ban:203.0.113.7")
// holding a BanRecord (JSON) that expires when the ban ends, and an event
// on the channel "bans" (Redis pub/sub) so that every replica applies it
// at once. A replica that subscribes (at start, and after each reconnect)
// loads the bans in Redis, and writes back (and announces) its own bans
// that Redis lacks (a Redis restarted empty). A lift deletes the key and is announced on
// the channel too.

// BanRecord is a ban as the fleet stores and announces it.
type BanRecord struct {
	// Key is the banned client, as the limits name it.
	Key string `json:"key"`
	// Since and Until bound the ban.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Count, LastReason and Window are the failures that started it.
	Count      int           `json:"count"`
	LastReason string        `json:"last_reason"`
	Window     time.Duration `json:"window"`
	// Origin is the replica that decided it.
	Origin string `json:"origin"`
}

// Limits of a record's fields: anything longer is not one of ours.
const (
	maxBanKey    = 64 // "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128" is 43
	maxBanReason = 64
	maxOrigin    = 300
)

// ParseBanRecord reads a stored or announced ban. Anything else (a value
// written by hand or by another program, a truncated one) is an error.
func ParseBanRecord(data []byte) (BanRecord, error) {
	var r BanRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return BanRecord{}, errors.New("not a ban record (JSON)")
	}
	return r, r.check()
}

func (r BanRecord) check() error {
	switch {
	case r.Key == "" || len(r.Key) > maxBanKey:
		return errors.New("no client key")
	case len(r.LastReason) > maxBanReason || len(r.Origin) > maxOrigin:
		return errors.New("a field too long")
	case r.Since.IsZero() || r.Until.IsZero() || r.Until.Before(r.Since):
		return errors.New("no valid time span")
	case r.Count < 0 || r.Window < 0:
		return errors.New("a negative count or window")
	}
	return nil
}

// banEvent is what the channel carries: a ban, or a lift.
type banEvent struct {
	Op     string     `json:"op"` // "ban" or "lift"
	Ban    *BanRecord `json:"ban,omitempty"`
	Key    string     `json:"key,omitempty"` // lift
	Origin string     `json:"origin"`
}

// parseBanEvent reads an event from the channel.
func parseBanEvent(data []byte) (banEvent, error) {
	var e banEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return banEvent{}, errors.New("not a ban event (JSON)")
	}
	switch {
	case len(e.Origin) > maxOrigin:
		return banEvent{}, errors.New("origin too long")
	case e.Op == "ban" && e.Ban != nil:
		return e, e.Ban.check()
	case e.Op == "lift" && e.Key != "" && len(e.Key) <= maxBanKey:
		return e, nil
	}
	return banEvent{}, errors.New("neither a ban nor a lift")
}

// BanOptions configure Bans.
type BanOptions struct {
	// Replica names this replica (ReplicaName).
	Replica string
	// Apply is given each ban of another replica, and each ban in Redis
	// at (re)subscription; it must ignore one it already has.
	Apply func(BanRecord)
	// Lift is given each lift of another replica.
	Lift func(key, origin string)
	// Local lists this replica's bans in force, to write back to a Redis
	// that lost them.
	Local func() []BanRecord
	// Event, if set, counts "published", "learned", "lifted" and
	// "garbage".
	Event func(event string)
	// Logger gets garbage (once per key) and failures to share a ban.
	Logger *slog.Logger
	// Loaded, if set, is called after each load of the stored bans (at
	// each subscription): the replica is up to date with the fleet.
	Loaded func()

	// After and Window, if After is above zero, count the failures that
	// lead to a ban fleet-wide (Failed): when the fleet has counted After
	// failures of a key within Window, Reached is called (on the replica
	// whose count crossed it) to ban the key; it reports whether it did.
	After   int
	Window  time.Duration
	Reached func(key, reason string, count int) bool
}

// Bans shares a replica's bans with the fleet.
type Bans struct {
	c     *Client
	o     BanOptions
	queue chan BanRecord

	mu       sync.Mutex
	reported map[string]bool // garbage keys already logged
	failures map[string]failures
}

// failures are a key's failures not yet counted in Redis.
type failures struct {
	n      int
	reason string
}

// maxFailing bounds the keys whose failures wait for the next flush;
// past it, failures are counted locally only.
const maxFailing = 4096

// maxQueued bounds the bans waiting to be published.
const maxQueued = 1024

// NewBans prepares the sharing; Run runs it.
func NewBans(c *Client, o BanOptions) *Bans {
	return &Bans{c: c, o: o, queue: make(chan BanRecord, maxQueued), reported: map[string]bool{},
		failures: map[string]failures{}}
}

func (b *Bans) event(e string) {
	if b.o.Event != nil {
		b.o.Event(e)
	}
}

func (b *Bans) channel() string         { return b.c.Key("bans") }
func (b *Bans) failKey(k string) string { return b.c.Key("fail:" + k) }
func (b *Bans) key(k string) string     { return b.c.Key("ban:" + k) }
func (b *Bans) keyPattern() string      { return b.c.Key("ban:*") }
func (b *Bans) store(r BanRecord) []byte {
	data, _ := json.Marshal(r)
	return data
}

// Publish shares a ban this replica made; it never waits for Redis. A ban
// that cannot be shared (Redis away, the queue full) stays local.
func (b *Bans) Publish(r BanRecord) {
	r.Origin = b.o.Replica
	select {
	case b.queue <- r:
	default:
		b.o.Logger.Warn("ban not shared with the fleet: too many waiting", "key", r.Key)
	}
}

// Lift ends the ban of key fleet-wide; it reports whether Redis held one.
func (b *Bans) Lift(ctx context.Context, key string) (bool, error) {
	ev, _ := json.Marshal(banEvent{Op: "lift", Key: key, Origin: b.o.Replica})
	var del *redis.IntCmd
	_, err := b.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, b.key(key))
		p.Publish(ctx, b.channel(), ev)
		return nil
	})
	if err != nil {
		return false, err
	}
	return del.Val() > 0, nil
}

// Failed counts a failure of key, for reason, towards a fleet-wide ban;
// it never waits for Redis (the counts go at the next flush, every
// DefaultSyncInterval).
func (b *Bans) Failed(key, reason string) {
	if b.o.After <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.failures[key]
	if !ok && len(b.failures) >= maxFailing {
		return
	}
	b.failures[key] = failures{f.n + 1, reason}
}

// countFailures adds the failures since the last flush to the fleet's
// counts (one pipeline), and has the keys that reached After banned.
func (b *Bans) countFailures(ctx context.Context) {
	b.mu.Lock()
	pending := b.failures
	if len(pending) > 0 {
		b.failures = map[string]failures{}
	}
	b.mu.Unlock()
	if len(pending) == 0 || !b.c.Up() {
		return
	}
	totals := map[string]*redis.IntCmd{}
	_, err := b.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, f := range pending {
			totals[k] = p.IncrBy(ctx, b.failKey(k), int64(f.n))
			p.ExpireNX(ctx, b.failKey(k), b.o.Window)
		}
		return nil
	})
	if err != nil {
		return // the failures stay counted locally
	}
	for k, n := range totals {
		if total := n.Val(); total >= int64(b.o.After) && b.o.Reached(k, pending[k].reason, int(min(total, 1<<30))) {
			_ = b.c.rdb.Del(ctx, b.failKey(k)).Err()
		}
	}
}

// Run publishes this replica's bans and applies the others' until ctx
// ends.
func (b *Bans) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { b.publish(ctx) })
	if b.o.After > 0 {
		wg.Go(func() {
			t := time.NewTicker(DefaultSyncInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					b.countFailures(ctx)
				}
			}
		})
	}
	b.listen(ctx)
	wg.Wait()
}

func (b *Bans) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-b.queue:
			if err := b.write(ctx, r); err != nil && ctx.Err() == nil {
				b.o.Logger.Warn("ban not shared with the fleet", "key", r.Key, "err", err)
				continue
			}
			b.event("published")
		}
	}
}

// write stores r until it ends and announces it.
func (b *Bans) write(ctx context.Context, r BanRecord) error {
	ev, _ := json.Marshal(banEvent{Op: "ban", Ban: &r, Origin: r.Origin})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := b.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, b.key(r.Key), b.store(r), redis.SetArgs{ExpireAt: r.Until})
		p.Del(ctx, b.failKey(r.Key)) // the failures that led to it are spent
		p.Publish(ctx, b.channel(), ev)
		return nil
	})
	return err
}

// listen applies the channel's events, and loads the stored bans at each
// (re)subscription. While Redis is away it retries with backoff (250 ms
// doubling to 10 s); go-redis resubscribes at the next call.
func (b *Bans) listen(ctx context.Context) {
	ps := b.c.rdb.Subscribe(ctx, b.channel())
	defer ps.Close()
	// A read on the subscription does not watch ctx: closing it ends the
	// read.
	defer context.AfterFunc(ctx, func() { _ = ps.Close() })()
	wait := minProbe
	for {
		msg, err := ps.ReceiveTimeout(ctx, 15*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ps.Ping(ctx) == nil {
				continue // a quiet channel, and the connection answers
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, maxProbe)
			continue
		}
		wait = minProbe
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.load(ctx)
			}
		case *redis.Message:
			b.handle(m.Payload)
		}
	}
}

// handle applies one event of the channel.
func (b *Bans) handle(payload string) {
	e, err := parseBanEvent([]byte(payload))
	if err != nil {
		b.garbage("channel "+b.channel(), err)
		return
	}
	if e.Origin == b.o.Replica {
		return // ours, back
	}
	switch e.Op {
	case "ban":
		e.Ban.Origin = e.Origin
		b.event("learned")
		b.o.Apply(*e.Ban)
	case "lift":
		b.event("lifted")
		b.o.Lift(e.Key, e.Origin)
	}
}

// load applies every ban stored in Redis, and writes back this replica's
// bans that Redis does not hold.
func (b *Bans) load(ctx context.Context) {
	held := map[string]bool{}
	iter := b.c.rdb.Scan(ctx, 0, b.keyPattern(), 100).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if iter.Err() != nil {
		return // Redis away: the next subscription loads them
	}
	for len(keys) > 0 {
		n := min(len(keys), 100)
		vals, err := b.c.rdb.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired since the scan
			}
			r, err := ParseBanRecord([]byte(s))
			if err != nil {
				b.garbage(keys[i], err)
				continue
			}
			held[r.Key] = true
			if r.Origin != b.o.Replica {
				b.o.Apply(r)
			}
		}
		keys = keys[n:]
	}
	if b.o.Loaded != nil {
		defer b.o.Loaded()
	}
	if b.o.Local == nil {
		return
	}
	for _, r := range b.o.Local() {
		if held[r.Key] || time.Until(r.Until) <= 0 {
			continue
		}
		// Announced too: the replicas that loaded before this one missed it.
		r.Origin = b.o.Replica
		if b.c.rdb.SetArgs(ctx, b.key(r.Key), b.store(r), redis.SetArgs{Mode: "NX", ExpireAt: r.Until}).Val() == "OK" {
			ev, _ := json.Marshal(banEvent{Op: "ban", Ban: &r, Origin: r.Origin})
			_ = b.c.rdb.Publish(ctx, b.channel(), ev).Err()
		}
	}
}

// garbage logs a value that is no ban record, once per key (up to 1,024
// keys; then only counted).
func (b *Bans) garbage(where string, err error) {
	b.event("garbage")
	b.mu.Lock()
	first := !b.reported[where] && len(b.reported) < 1024
	if first {
		b.reported[where] = true
	}
	b.mu.Unlock()
	if first {
		b.o.Logger.Warn("redis ban record holds garbage: ignored", "key", strings.ToValidUTF8(where, "?"), "err", err)
	}
}
