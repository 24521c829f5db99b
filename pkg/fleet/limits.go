package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seclisten/seclisten/pkg/internal/admit"
)

// The fleet shares each client's rate limit through one token bucket per
// key in Redis (a hash under the prefix, "limit:203.0.113.7", expiring
// once it would be full again). Admission never waits for Redis: each
// replica admits from a local lease (pkg/internal/admit explains the
// leases and the free share), and a sync loop, every DefaultSyncInterval,
// sends one script call (EVALSHA) for all the keys used since the last
// sync: per key, what the replica gives back or owes, and whether it wants
// a new lease. The script refills the bucket at the rate, applies the
// returns, and grants each replica that wants one its share of the
// balance (the balance divided among the replicas that wanted a lease for
// the key within activeWindow, rounded up), reserving it. Redis commands
// per accepted connection are at most one script per sync, whatever the
// number of connections.
//
// go-redis/redis_rate (GCRA on Redis) decides one request per round trip;
// batching every key of a sync into one call and reserving leases needs
// its own script, below.

// DefaultSyncInterval is how often the limits are synced with the fleet.
const DefaultSyncInterval = 100 * time.Millisecond

// Times the script reckons with.
const (
	// activeWindow: a replica that wanted a lease for a key this recently
	// shares the key's balance.
	activeWindow = time.Second
	// liveTTL: a replica that synced this recently is live (it divides
	// the free share).
	liveTTL = 3 * time.Second
	// maxBatch bounds the keys of one script call.
	maxBatch = 500
)

// limitScript: KEYS[1] the live replicas (a sorted set), KEYS[2...] the
// buckets; ARGV replica, rate (per second), burst, activeWindow ms,
// liveTTL ms, key TTL ms, then per bucket its return and want ("1" or
// "0"). It returns the live replicas, then per bucket the lease granted
// and the balance left (a decimal string). A key that holds something
// else than the script's hash is replaced.
var limitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, rate, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local win, livettl, keyttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then redis.call('DEL', KEYS[1]) end
redis.call('ZADD', KEYS[1], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - livettl)
redis.call('PEXPIRE', KEYS[1], livettl)
local out = {redis.call('ZCARD', KEYS[1])}
local me = 'r:' .. id
for i = 2, #KEYS do
  local k = KEYS[i]
  local ret = tonumber(ARGV[3 + 2 * i]) or 0
  local want = ARGV[4 + 2 * i] == '1'
  local typ = redis.call('TYPE', k).ok
  if typ ~= 'hash' and typ ~= 'none' then redis.call('DEL', k) end
  local h = redis.call('HMGET', k, 't', 'ts')
  local tok, ts = tonumber(h[1]), tonumber(h[2])
  if tok == nil or ts == nil or tok ~= tok or ts ~= ts then tok, ts = burst, now end
  if now > ts then tok = tok + (now - ts) * rate / 1000 end
  tok = math.max(-burst, math.min(burst, tok + ret))
  if want then redis.call('HSET', k, me, now) else redis.call('HDEL', k, me) end
  local active = 0
  local all = redis.call('HGETALL', k)
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 2) == 'r:' then
      local at = tonumber(all[j + 1])
      if at and at >= now - win then active = active + 1 else redis.call('HDEL', k, all[j]) end
    end
  end
  local grant = 0
  if want and tok >= 1 then
    grant = math.min(math.floor(tok), math.ceil(tok / math.max(active, 1)))
    tok = tok - grant
  end
  redis.call('HSET', k, 't', tostring(tok), 'ts', now)
  redis.call('PEXPIRE', k, keyttl)
  out[#out + 1] = grant
  out[#out + 1] = tostring(tok)
end
return out
`)

// LimitTable is a replica's side of the shared limits (an
// *admit.Admitter).
type LimitTable interface {
	SetFleet(on bool, replicas int)
	FleetRate() (perSecond float64, burst int)
	FleetReports(buf []admit.FleetReport) []admit.FleetReport
	FleetAnswers(reports []admit.FleetReport)
	Key(addr netip.Addr) string
}

// LimitOptions configure Limits.
type LimitOptions struct {
	// Replica names this replica in Redis and in logs (ReplicaName).
	Replica string
	// Interval is the time between two syncs; zero means
	// DefaultSyncInterval.
	Interval time.Duration
	// Table returns the table in service (a reload can replace it).
	Table func() LimitTable
	// Synced, if set, is told of each sync: the keys it carried and its
	// error (nil on success).
	Synced func(keys int, err error)
	// Logger gets the changes of state, once each.
	Logger *slog.Logger
}

// Limits syncs a replica's per-IP rate limits with the fleet.
type Limits struct {
	c    *Client
	o    LimitOptions
	buf  []admit.FleetReport
	args []any
	keys []string
	// shared is the state last logged: the limits are shared.
	shared, known bool
	// beat is when the last script ran: with no key to sync, one runs
	// every heartbeat only, to stay counted among the live replicas.
	beat time.Time
}

// heartbeat is the longest time between two syncs, keys or none.
const heartbeat = time.Second

// NewLimits prepares the sync; Run runs it.
func NewLimits(c *Client, o LimitOptions) *Limits {
	if o.Interval <= 0 {
		o.Interval = DefaultSyncInterval
	}
	return &Limits{c: c, o: o}
}

// ReplicaName names this process in the fleet: host name, process ID and
// a random part, so that a replica restarted with the same host name and
// process ID (a container's PID 1) is a new one.
func ReplicaName() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return h + "/" + strconv.Itoa(os.Getpid()) + "/" + newToken()[:6]
}

// Run syncs every Interval until ctx ends.
func (l *Limits) Run(ctx context.Context) {
	t := time.NewTicker(l.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.o.Table().SetFleet(false, 1)
			return
		case <-t.C:
		}
		l.Sync(ctx)
	}
}

// errRedisDown is a sync skipped because Redis is away.
var errRedisDown = errors.New("redis unreachable")

// Sync reports the keys used since the last sync and applies the fleet's
// answers. While Redis is away, or when a sync fails, the fleet's share is
// off and the local limits alone apply until a sync succeeds.
func (l *Limits) Sync(ctx context.Context) {
	tab := l.o.Table()
	perSecond, burst := tab.FleetRate()
	l.buf = tab.FleetReports(l.buf[:0])
	if perSecond <= 0 {
		tab.SetFleet(false, 1)
		return
	}
	if !l.c.Up() {
		tab.SetFleet(false, 1)
		l.state(false, errRedisDown)
		return
	}
	if len(l.buf) == 0 && l.shared && time.Since(l.beat) < heartbeat {
		return
	}
	l.beat = time.Now()
	live, err := 0, error(nil)
	for i := 0; i < len(l.buf) || i == 0; i += maxBatch {
		chunk := l.buf[i:min(i+maxBatch, len(l.buf))]
		n, berr := l.batch(ctx, tab, chunk, perSecond, burst)
		if l.o.Synced != nil {
			l.o.Synced(len(chunk), berr)
		}
		if berr != nil {
			err = berr
			break
		}
		live = n
		tab.FleetAnswers(chunk)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		tab.SetFleet(false, 1)
		l.state(false, err)
		return
	}
	tab.SetFleet(true, live)
	l.state(true, nil)
}

// batch runs the script for reports and writes its answers into them; it
// returns the live replicas.
func (l *Limits) batch(ctx context.Context, tab LimitTable, reports []admit.FleetReport, perSecond float64, burst int) (int, error) {
	keyTTL := time.Duration(2*float64(burst)/perSecond*float64(time.Second)) + liveTTL
	l.keys = append(l.keys[:0], l.c.Key("replicas"))
	l.args = append(l.args[:0], l.o.Replica, strconv.FormatFloat(perSecond, 'g', -1, 64), burst,
		activeWindow.Milliseconds(), liveTTL.Milliseconds(), keyTTL.Milliseconds())
	for _, r := range reports {
		l.keys = append(l.keys, l.c.Key("limit:"+tab.Key(r.Key)))
		want := "0"
		if r.Want {
			want = "1"
		}
		l.args = append(l.args, r.Return, want)
	}
	res, err := limitScript.Run(ctx, l.c.rdb, l.keys, l.args...).Slice()
	if err != nil {
		return 0, err
	}
	live, err := parseLimitAnswer(res, reports)
	if err != nil {
		return 0, fmt.Errorf("limit script answered %w", err)
	}
	return live, nil
}

// parseLimitAnswer reads the script's answer into reports.
func parseLimitAnswer(res []any, reports []admit.FleetReport) (int, error) {
	if len(res) != 1+2*len(reports) {
		return 0, fmt.Errorf("%d values for %d keys", len(res), len(reports))
	}
	live, ok := res[0].(int64)
	if !ok || live < 1 {
		return 0, errors.New("no live replica count")
	}
	for i := range reports {
		g, ok := res[1+2*i].(int64)
		s, ok2 := res[2+2*i].(string)
		b, err := strconv.ParseFloat(s, 64)
		if !ok || !ok2 || err != nil || g < 0 || math.IsNaN(b) || math.IsInf(b, 0) {
			return 0, fmt.Errorf("a bad lease for key %d", i)
		}
		reports[i].Grant, reports[i].Balance = int(min(g, math.MaxInt32)), b
	}
	return int(min(live, math.MaxInt32)), nil
}

// state logs a change between shared and local-only limits, once.
func (l *Limits) state(shared bool, err error) {
	if l.known && l.shared == shared {
		return
	}
	first := !l.known
	l.known, l.shared = true, shared
	switch {
	case shared:
		l.o.Logger.Info("per-IP rate limits shared with the fleet", "replica", l.o.Replica)
	case first && errors.Is(err, errRedisDown):
		// Redis's own line says it; the limits were never shared.
	default:
		l.o.Logger.Warn("per-IP rate limits: fleet sync failed; local limits only", "err", err)
	}
}
