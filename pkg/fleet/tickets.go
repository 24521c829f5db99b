package fleet

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// TicketKeys is the fleet's set of session-ticket keys, newest first: the
// first encrypts new tickets, all of them decrypt (tls.Config.
// SetSessionTicketKeys). Rotated is when the newest was made.
type TicketKeys struct {
	Rotated time.Time
	Keys    [][32]byte
}

// KeepTicketKeys is how many keys are kept: the current one and three
// before it, so a ticket outlives three rotations (36 h at the default
// 12 h), after which its session ends with a full handshake.
const KeepTicketKeys = 4

// ticketKeysJSON is the stored form.
type ticketKeysJSON struct {
	Rotated int64    `json:"rotated"` // Unix nanoseconds
	Keys    []string `json:"keys"`    // base64, 32 bytes each
}

// ParseTicketKeys reads the stored form of a key set. Anything else (a
// key written by hand, another program, a truncated value) is an error.
func ParseTicketKeys(data []byte) (TicketKeys, error) {
	var j ticketKeysJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return TicketKeys{}, errors.New("not a ticket key set (JSON)")
	}
	if len(j.Keys) == 0 || len(j.Keys) > KeepTicketKeys {
		return TicketKeys{}, fmt.Errorf("%d keys, want 1 to %d", len(j.Keys), KeepTicketKeys)
	}
	if j.Rotated <= 0 {
		return TicketKeys{}, errors.New("no rotation time")
	}
	k := TicketKeys{Rotated: time.Unix(0, j.Rotated)}
	for i, s := range j.Keys {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			return TicketKeys{}, fmt.Errorf("key %d is not 32 bytes of base64", i)
		}
		k.Keys = append(k.Keys, [32]byte(b))
	}
	return k, nil
}

// Marshal is the stored form of k.
func (k TicketKeys) Marshal() []byte {
	j := ticketKeysJSON{Rotated: k.Rotated.UnixNano()}
	for _, key := range k.Keys {
		j.Keys = append(j.Keys, base64.StdEncoding.EncodeToString(key[:]))
	}
	b, _ := json.Marshal(j)
	return b
}

// Tickets keeps the fleet's session-ticket keys: it loads them from Redis,
// rotates them every Rotation (whichever replica finds them stale first,
// under a lock, makes the new key), and hands every new set to Apply.
// While Redis is away, the replica keeps the last set it applied.
type Tickets struct {
	c        *Client
	storage  *Storage
	rotation time.Duration
	apply    func([][32]byte)
	lost     func()
	log      *slog.Logger

	last     TicketKeys
	badValue string // the garbage last reported, to report it once
	lastErr  string // the refresh failure last reported, to report it once
}

// TicketOptions configure Tickets.
type TicketOptions struct {
	// Rotation is the age at which the current key is replaced.
	Rotation time.Duration
	// Apply receives every new key set, newest first.
	Apply func([][32]byte)
	// Logger gets rotations and bad stored values.
	Logger *slog.Logger
	// Lost, if set, is called when the key set this replica applied is
	// gone from Redis: Redis lost its data (restarted without
	// persistence, flushed), the rest of the fleet's state with it.
	Lost func()
}

// NewTickets prepares the key rotation; Run runs it.
func NewTickets(c *Client, s *Storage, o TicketOptions) *Tickets {
	return &Tickets{c: c, storage: s, rotation: o.Rotation, apply: o.Apply, lost: o.Lost, log: o.Logger}
}

func (t *Tickets) key() string { return t.c.Key("tickets") }

// maxRefresh bounds the wait between two reads of the key set, so a
// replica picks up a rotation made elsewhere within a minute.
const maxRefresh = time.Minute

// Run refreshes the keys until ctx ends: at once, at each rotation time
// and at least every minute (sooner while Redis is away, and when it
// comes back).
func (t *Tickets) Run(ctx context.Context, back <-chan struct{}) {
	for {
		wait := t.Refresh(ctx)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-back:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Refresh loads the key set, rotates it if it is stale, applies it if it
// changed, and returns how long to wait before the next refresh.
func (t *Tickets) Refresh(ctx context.Context) time.Duration {
	keys, err := t.load(ctx)
	if err == nil && t.stale(keys) {
		keys, err = t.rotate(ctx)
	}
	if err != nil {
		// Redis away or full is the Client's to log, once; another
		// failure is logged once until a refresh succeeds.
		if ctx.Err() == nil && !isDown(err) && !IsFull(err) && err.Error() != t.lastErr {
			t.lastErr = err.Error()
			t.log.Warn("session ticket keys: refresh failed; keeping the last keys", "err", err)
		}
		return min(maxRefresh, t.rotation, 5*time.Second)
	}
	t.lastErr = ""
	if !keys.Rotated.Equal(t.last.Rotated) {
		t.last = keys
		t.apply(keys.Keys)
		t.log.Info("session ticket keys applied", "rotated", keys.Rotated.UTC().Format(time.RFC3339Nano), "keys", len(keys.Keys))
	}
	return max(time.Millisecond, min(maxRefresh, time.Until(keys.Rotated.Add(t.rotation))))
}

func (t *Tickets) stale(k TicketKeys) bool {
	return len(k.Keys) == 0 || !time.Now().Before(k.Rotated.Add(t.rotation))
}

// load reads the key set; a missing one is empty, a garbage one is
// reported (once per value) and counts as empty: the next rotation
// replaces it.
func (t *Tickets) load(ctx context.Context) (TicketKeys, error) {
	data, err := t.c.rdb.Get(ctx, t.key()).Bytes()
	if errors.Is(err, redis.Nil) {
		if len(t.last.Keys) > 0 && t.lost != nil {
			t.lost()
		}
		return TicketKeys{}, nil
	}
	if err != nil {
		return TicketKeys{}, err
	}
	k, perr := ParseTicketKeys(data)
	if perr != nil {
		if string(data) != t.badValue {
			t.badValue = string(data)
			t.log.Warn("redis key holds garbage: ignored and replaced", "key", t.key(), "err", perr)
		}
		return TicketKeys{}, nil
	}
	return k, nil
}

// rotate makes a new key under the fleet's lock, unless another replica
// did while this one waited for it.
func (t *Tickets) rotate(ctx context.Context) (TicketKeys, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.storage.Lock(lctx, "tickets"); err != nil {
		return TicketKeys{}, err
	}
	defer func() { _ = t.storage.Unlock(context.WithoutCancel(ctx), "tickets") }()
	keys, err := t.load(ctx)
	if err != nil || !t.stale(keys) {
		return keys, err
	}
	var fresh [32]byte
	_, _ = rand.Read(fresh[:])
	next := TicketKeys{Rotated: time.Now(), Keys: append([][32]byte{fresh}, keys.Keys...)}
	if len(next.Keys) > KeepTicketKeys {
		next.Keys = next.Keys[:KeepTicketKeys]
	}
	if err := t.c.rdb.Set(ctx, t.key(), next.Marshal(), 0).Err(); err != nil {
		return TicketKeys{}, err
	}
	t.badValue = ""
	t.log.Info("session ticket keys rotated", "keys", len(next.Keys), "next_rotation", next.Rotated.Add(t.rotation).UTC().Format(time.RFC3339))
	return next, nil
}
