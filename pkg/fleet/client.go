package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options configure a Client.
type Options struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	URL string
	// Prefix starts every key the Client touches, so that several fleets
	// (or other programs) can share one Redis.
	Prefix string
	// Logger gets the changes of state ("redis unreachable", "redis back").
	Logger *slog.Logger
	// Observe, if set, is told of every round trip: its duration and
	// error (nil on success; redis.Nil, a missing key, counts as success).
	Observe func(d time.Duration, err error)
	// Changed, if set, is called after each change of state, with the new
	// one.
	Changed func(up bool)
}

// Client is a Redis connection that knows whether Redis answers.
type Client struct {
	rdb    *redis.Client
	prefix string
	log    *slog.Logger
	opts   Options

	up      atomic.Bool
	full    atomic.Bool // the last write was refused for want of memory
	mu      sync.Mutex
	known   bool          // a first state has been logged
	wake    chan struct{} // tells the watch loop of a failure
	stopped chan struct{}
	cancel  context.CancelFunc
}

// Probe schedule while Redis is away: 250 ms doubling to 10 s, so a Redis
// that is down costs a few pings, never a spin. While it answers, one ping
// every UpProbe notices that it went away even when nothing else asks.
const (
	minProbe = 250 * time.Millisecond
	maxProbe = 10 * time.Second
	upProbe  = 5 * time.Second
)

// New parses the URL and prepares the connection; it contacts nothing.
// Start does.
func New(opts Options) (*Client, error) {
	ro, err := ParseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	ro.DialTimeout = 2 * time.Second
	ro.ReadTimeout = 2 * time.Second
	ro.WriteTimeout = 2 * time.Second
	ro.MaxRetries = 1
	// Nothing the fleet needs, and two errors per connection (counted as
	// Redis errors) on servers before 7.2 (Debian 12's is 7.0): CLIENT
	// SETINFO and CLIENT MAINT_NOTIFICATIONS at each connect.
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// go-redis logs its own pool errors, every attempt, with the standard
	// logger (not JSON, and a line per retry); the state changes logged
	// here say the same, once.
	silenceOnce.Do(func() { redis.SetLogger(silent{}) })
	c := &Client{rdb: redis.NewClient(ro), prefix: opts.Prefix, log: opts.Logger, opts: opts,
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	c.rdb.AddHook(observer{c})
	return c, nil
}

// ParseURL checks a redis:// or rediss:// URL and returns go-redis options.
// Its errors never repeat the password.
func ParseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis errors can quote the URL, password included.
		return nil, fmt.Errorf("not a Redis URL (%s://host:port/db)", u.Scheme)
	}
	return o, nil
}

var silenceOnce sync.Once

// silent is go-redis's internal logger, discarding.
type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// Key is the Client's prefix followed by name.
func (c *Client) Key(name string) string { return c.prefix + name }

// Redis is the underlying go-redis client.
func (c *Client) Redis() *redis.Client { return c.rdb }

// Up reports whether Redis answered the last time it was asked.
func (c *Client) Up() bool { return c.up.Load() }

// Start pings Redis once (its state is logged either way) and then watches
// it until Close.
func (c *Client) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.probe(ctx)
	go c.watch(ctx)
}

// Close stops the watch and closes the connections.
func (c *Client) Close() error {
	if c.cancel != nil {
		c.cancel()
		<-c.stopped
	}
	return c.rdb.Close()
}

func (c *Client) watch(ctx context.Context) {
	defer close(c.stopped)
	wait := minProbe
	t := time.NewTimer(upProbe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
			// Since Go 1.23, Reset needs no drain of a stopped timer.
		}
		if c.probe(ctx) {
			wait = minProbe
			t.Reset(upProbe)
			continue
		}
		t.Reset(wait)
		wait = min(2*wait, maxProbe)
	}
}

func (c *Client) probe(ctx context.Context) bool {
	err := c.rdb.Ping(ctx).Err()
	if ctx.Err() != nil {
		return c.Up()
	}
	c.set(err == nil, err)
	return err == nil
}

// set records Redis's state, logging a change (and the first state if it
// is bad) once.
func (c *Client) set(up bool, err error) (changed bool) {
	c.mu.Lock()
	changed = c.up.Load() != up || !c.known
	first := !c.known
	c.known = true
	c.up.Store(up)
	c.mu.Unlock()
	if !changed {
		return false
	}
	switch {
	case up && first:
		c.log.Info("redis connected", "redis", c.redacted())
	case up:
		c.log.Info("redis back", "redis", c.redacted())
	default:
		c.log.Warn("redis unreachable: serving with local state", "redis", c.redacted(), "err", err)
	}
	if c.opts.Changed != nil {
		c.opts.Changed(up)
	}
	return true
}

// failed tells the Client that an operation failed for want of Redis.
func (c *Client) failed(err error) {
	// Only a change wakes the watch: its own failing probes must not.
	if !isDown(err) || !c.set(false, err) {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// isDown tells errors that mean Redis is away (network, timeouts, refused
// authentication, a loading or read-only server) from answers (a missing
// key, a script's refusal).
func isDown(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		// A full Redis (OOM) answers reads: it is up, and the write
		// that failed says so to its caller.
		return redis.IsAuthError(err) || redis.IsLoadingError(err) || redis.IsClusterDownError(err)
	}
	return true
}

// redacted is the URL without its password, for the log.
func (c *Client) redacted() string {
	u, err := url.Parse(c.opts.URL)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

// observer times every command and pipeline, and notices failures.
type observer struct{ c *Client }

func (o observer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (o observer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		o.done(time.Since(start), err)
		o.c.wrote(cmd.Name(), err)
		return err
	}
}

func (o observer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		o.done(time.Since(start), err)
		for _, cmd := range cmds {
			o.c.wrote(cmd.Name(), cmd.Err())
		}
		return err
	}
}

// writes are the commands the fleet writes with: one that succeeds says
// Redis has room again.
var writes = map[string]bool{"set": true, "hset": true, "zadd": true, "evalsha": true, "eval": true}

// wrote notes a Redis full (maxmemory reached with noeviction: writes
// fail with OOM, reads work) and its end, logging each change once.
func (c *Client) wrote(name string, err error) {
	switch {
	case IsFull(err):
		if !c.full.Swap(true) {
			c.log.Warn("redis full: writes refused (maxmemory); serving with local state", "redis", c.redacted(), "err", err)
		}
	case err == nil && writes[name]:
		if c.full.Swap(false) {
			c.log.Info("redis takes writes again", "redis", c.redacted())
		}
	}
}

// IsFull reports whether err is Redis refusing a write for want of
// memory.
func IsFull(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM ")
}

func (o observer) done(d time.Duration, err error) {
	if errors.Is(err, redis.Nil) || err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// A missing key is an answer; NOSCRIPT is go-redis's first try of
		// a script by its hash, followed by the script itself.
		err = nil
	}
	if o.c.opts.Observe != nil {
		o.c.opts.Observe(d, err)
	}
	if err != nil && isDown(err) {
		o.c.failed(err)
	}
}
