package fleet

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// Storage is a certmagic.Storage in Redis. Each file is a hash (fields v,
// the value, and m, its modification time in Unix nanoseconds) at
// <prefix>acme/<key>; a sorted set, <prefix>acme-index, lists the keys so
// that List and the directory semantics need no SCAN. Locks are keys
// <prefix>lock/<name> set with NX and an expiry, renewed while held: a
// replica that dies holding one blocks the others for at most LockTTL.
type Storage struct {
	c       *Client
	lockTTL time.Duration

	mu      sync.Mutex
	locks   map[string]*heldLock
	garbage map[string]string // key: the garbage last reported there
	done    chan struct{}
	once    sync.Once
}

// DefaultLockTTL is how long a lock outlives a holder that stopped
// renewing it (crashed, or cut from Redis).
const DefaultLockTTL = time.Minute

// lockPoll bounds the wait between attempts to take a held lock.
const lockPoll = 500 * time.Millisecond

type heldLock struct {
	token string
	stop  chan struct{}
	done  chan struct{}
}

var _ certmagic.Storage = (*Storage)(nil)

// NewStorage is the ACME storage of c; lockTTL 0 means DefaultLockTTL.
func NewStorage(c *Client, lockTTL time.Duration) *Storage {
	if lockTTL <= 0 {
		lockTTL = DefaultLockTTL
	}
	return &Storage{c: c, lockTTL: lockTTL, locks: map[string]*heldLock{}, garbage: map[string]string{}, done: make(chan struct{})}
}

func (s *Storage) fileKey(key string) string { return s.c.Key("acme/" + key) }
func (s *Storage) indexKey() string          { return s.c.Key("acme-index") }

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	key = clean(key)
	_, err := s.c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.fileKey(key), "v", value, "m", strconv.FormatInt(time.Now().UnixNano(), 10))
		p.ZAdd(ctx, s.indexKey(), redis.Z{Member: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: store %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	key = clean(key)
	v, err := s.c.rdb.HGet(ctx, s.fileKey(key), "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis: load %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: load %s: %w", key, err)
	}
	if s.isGarbage(key, v) {
		return nil, fmt.Errorf("redis: load %s: garbage: %w", key, fs.ErrNotExist)
	}
	return v, nil
}

// isGarbage reports whether the value at key cannot be what the key's
// extension says (a certificate, a private key, JSON metadata): written
// by hand, by another program, or truncated. certmagic would fail on it
// at every attempt and never replace it; as a missing file, it is
// obtained again once, under the lock, and overwritten. Each garbage
// value is logged once.
func (s *Storage) isGarbage(key string, v []byte) bool {
	err := checkValue(key, v)
	if err == nil {
		return false
	}
	s.mu.Lock()
	seen := s.garbage[key] == string(v)
	s.garbage[key] = string(v)
	s.mu.Unlock()
	if !seen {
		s.c.log.Warn("redis key holds garbage: treated as missing", "key", s.fileKey(key), "err", err)
	}
	return true
}

// checkValue checks a stored value against its key's extension.
func checkValue(key string, v []byte) error {
	switch path.Ext(key) {
	case ".crt":
		n := 0
		for b, rest := pem.Decode(v); b != nil; b, rest = pem.Decode(rest) {
			if b.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return errors.New("not a certificate chain (PEM)")
			}
			n++
		}
		if n == 0 {
			return errors.New("no PEM certificate")
		}
	case ".key":
		if b, _ := pem.Decode(v); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return errors.New("no PEM private key")
		}
	case ".json":
		if !json.Valid(v) {
			return errors.New("not JSON")
		}
	}
	return nil
}

// Delete deletes key and every key under it.
func (s *Storage) Delete(ctx context.Context, key string) error {
	key = clean(key)
	under, err := s.under(ctx, key)
	if err != nil {
		return fmt.Errorf("redis: delete %s: %w", key, err)
	}
	members := append([]any{key}, toAny(under)...)
	files := []string{s.fileKey(key)}
	for _, k := range under {
		files = append(files, s.fileKey(k))
	}
	_, err = s.c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, files...)
		p.ZRem(ctx, s.indexKey(), members...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: delete %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys under path: its direct children, files and
// directories, or with recursive every key beneath it.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	path = clean(path)
	under, err := s.under(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("redis: list %s: %w", path, err)
	}
	if len(under) == 0 {
		return nil, fmt.Errorf("redis: list %s: %w", path, fs.ErrNotExist)
	}
	base := path
	if base != "" {
		base += "/"
	}
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range under {
		rest := strings.TrimPrefix(k, base)
		parts := strings.Split(rest, "/")
		if !recursive {
			add(base + parts[0])
			continue
		}
		for i := range parts {
			add(base + strings.Join(parts[:i+1], "/"))
		}
	}
	return out, nil
}

// Stat describes key: a file (with its size and modification time) or a
// directory.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = clean(key)
	vals, err := s.c.rdb.HMGet(ctx, s.fileKey(key), "v", "m").Result()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("redis: stat %s: %w", key, err)
	}
	if v, ok := vals[0].(string); ok && !s.isGarbage(key, []byte(v)) {
		info := certmagic.KeyInfo{Key: key, Size: int64(len(v)), IsTerminal: true}
		if m, ok := vals[1].(string); ok {
			if n, err := strconv.ParseInt(m, 10, 64); err == nil {
				info.Modified = time.Unix(0, n)
			}
		}
		return info, nil
	}
	under, err := s.under(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("redis: stat %s: %w", key, err)
	}
	if len(under) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("redis: stat %s: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// under lists the indexed keys beneath dir (every key for "").
func (s *Storage) under(ctx context.Context, dir string) ([]string, error) {
	min, max := "-", "+"
	if dir != "" {
		// "/" is followed by "0" in byte order: [dir/, (dir0 is every key
		// that starts with dir/.
		min, max = "["+dir+"/", "("+dir+"0"
	}
	// ZRANGE … BYLEX needs Redis 6.2 (Debian 12 has 7.0).
	return s.c.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.indexKey(), Start: min, Stop: max, ByLex: true}).Result()
}

// Lock takes the named lock, waiting while another holder has it, until
// ctx ends. The lock is renewed every third of its TTL until Unlock.
func (s *Storage) Lock(ctx context.Context, name string) error {
	token := newToken()
	key := s.c.Key("lock/" + name)
	wait := 50 * time.Millisecond
	for {
		ok, err := s.c.rdb.SetNX(ctx, key, token, s.lockTTL).Result()
		if err != nil && ctx.Err() == nil && !isDown(err) {
			return fmt.Errorf("redis: lock %s: %w", name, err)
		}
		if ok {
			break
		}
		s.expireForeign(ctx, key)
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis: lock %s: %w", name, ctx.Err())
		case <-s.done:
			return fmt.Errorf("redis: lock %s: storage closed", name)
		case <-time.After(wait):
		}
		wait = min(2*wait, lockPoll)
	}
	h := &heldLock{token: token, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	if old := s.locks[name]; old != nil {
		close(old.stop)
	}
	s.locks[name] = h
	s.mu.Unlock()
	go s.renew(key, h)
	return nil
}

// expireForeign gives a lock key without an expiry one: no holder of
// ours leaves such a key (every lock is set with one), so it is garbage
// (written by hand, by another program, or a SET that lost its TTL) and
// would block the fleet forever. It then ends like a crashed holder's.
func (s *Storage) expireForeign(ctx context.Context, key string) {
	ttl, err := s.c.rdb.PTTL(ctx, key).Result()
	if err != nil || ttl != -1 {
		return // -1: no expiry; -2: gone meanwhile
	}
	if ok, _ := s.c.rdb.Do(ctx, "PEXPIRE", key, s.lockTTL.Milliseconds(), "NX").Bool(); ok {
		s.c.log.Warn("redis lock key has no expiry (garbage): it expires like a crashed holder's", "key", key, "expires_in", s.lockTTL.String())
	}
}

var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)

func (s *Storage) renew(key string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
		// A failed renewal is retried at the next tick; if Redis stays
		// away, the lock expires, as it must for a holder cut off.
		_ = renewScript.Run(ctx, s.c.rdb, []string{key}, h.token, s.lockTTL.Milliseconds()).Err()
		cancel()
	}
}

// Unlock releases the named lock if this Storage still holds it.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("redis: unlock %s: not locked here", name)
	}
	close(h.stop)
	<-h.done
	if err := unlockScript.Run(ctx, s.c.rdb, []string{s.c.Key("lock/" + name)}, h.token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: unlock %s: %w", name, err)
	}
	return nil
}

// Close stops renewing every lock held, without releasing them: they
// expire after their TTL, as a crashed holder's would.
func (s *Storage) Close() {
	s.once.Do(func() { close(s.done) })
	s.mu.Lock()
	held := s.locks
	s.locks = map[string]*heldLock{}
	s.mu.Unlock()
	for _, h := range held {
		<-h.done
	}
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "redis:" + s.c.redacted() + " " + s.c.prefix }

func clean(key string) string { return strings.Trim(key, "/") }

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
