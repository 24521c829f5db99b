package config

import (
	"strings"
	"testing"
)

func TestFleetValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string // "" for valid
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.Fleet.Redis = "redis://127.0.0.1:6379/2" }, ""},
		{func(c *Config) { c.Fleet.Redis = "rediss://:pw@redis.internal:6380" }, ""},
		{func(c *Config) { c.Fleet.Redis = "http://h:1" }, "`redis` must be a redis:// or rediss:// URL"},
		{func(c *Config) { c.Fleet.Redis = "redis://" }, "`redis` names no host"},
		{func(c *Config) { c.Fleet.Redis = "redis://:secret@h:1/db" }, "`redis`: the path must be a database number"},
		{func(c *Config) { c.Fleet.Redis = "redis://:secret@h:1/%zz" }, "`redis` is not a URL"},
		{func(c *Config) { c.Fleet.Redis = "redis://h:1"; c.Fleet.Prefix = "" }, "`redis-prefix` must not be empty"},
		{func(c *Config) { c.Fleet.Redis = "redis://h:1"; c.Plain = true }, "needs TLS"},
		{func(c *Config) { c.Fleet.TicketKeyRotation = 0 }, "`ticket-key-rotation` must be a positive duration"},
		{func(c *Config) { c.Fleet.LockTTL = -1 }, "`redis-lock-ttl` must be a positive duration"},
	} {
		c := Default()
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.Fleet, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", c.Fleet, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%+v: the error repeats the password: %v", c.Fleet, err)
		}
	}
}
