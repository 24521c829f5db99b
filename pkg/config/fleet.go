package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// Fleet holds the state replicas share in Redis.
type Fleet struct {
	// Redis is the URL of the fleet's Redis (redis:// or rediss://, with
	// password and DB number); "" means each replica keeps its own state.
	Redis string
	// Prefix starts every key seclisten writes in Redis.
	Prefix string
	// FailClosed makes /readyz say not ready while Redis is unreachable;
	// otherwise (fail open) the replica serves with its local state and
	// only logs.
	FailClosed bool
	// TicketKeyRotation is how often the fleet's session-ticket key is
	// replaced.
	TicketKeyRotation time.Duration
	// LockTTL is how long an ACME lock outlives a replica that stopped
	// renewing it (only tests change it).
	LockTTL time.Duration
}

// DefaultFleet is the Fleet of Default().
func DefaultFleet() Fleet {
	return Fleet{Prefix: "seclisten:", TicketKeyRotation: 12 * time.Hour, LockTTL: time.Minute}
}

// Enabled reports whether the fleet's state is in Redis.
func (f *Fleet) Enabled() bool { return f.Redis != "" }

func (f *Fleet) validate(c *Config) error {
	if f.TicketKeyRotation <= 0 {
		return setting.Errorf("`ticket-key-rotation` must be a positive duration, got %s", f.TicketKeyRotation)
	}
	if f.LockTTL <= 0 {
		return setting.Errorf("`redis-lock-ttl` must be a positive duration, got %s", f.LockTTL)
	}
	if !f.Enabled() {
		return nil
	}
	u, err := url.Parse(f.Redis)
	switch {
	case err != nil:
		// url's errors quote the URL, password included: never repeat it.
		return setting.Errorf("`redis` is not a URL (redis://[:PASSWORD@]HOST:PORT[/DB])")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return setting.Errorf("`redis` must be a redis:// or rediss:// URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return setting.Errorf("`redis` names no host (redis://[:PASSWORD@]HOST:PORT[/DB])")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return setting.Errorf("`redis`: the path must be a database number, got %q", db)
		}
	}
	if f.Prefix == "" {
		return setting.Errorf("`redis-prefix` must not be empty: it keeps seclisten's keys apart")
	}
	if c.Plain {
		return setting.Errorf("`redis` shares TLS state (ACME certificates, session-ticket keys): it needs TLS, not `plain`")
	}
	return nil
}
