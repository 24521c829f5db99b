package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seclisten/seclisten/pkg/setting"
)

// Bans holds the temporary-ban settings of Config: After failures (the
// outcomes that mean abuse, see pkg/internal/ban) within Window ban the
// client's key for For, doubled for each new ban of the same key, up to
// Max.
type Bans struct {
	// After is the failures that ban (0: bans off) and Window the time
	// they are counted in.
	After  int
	Window time.Duration
	// For is the first ban; Max the longest (at least For).
	For, Max time.Duration
}

// Enabled reports whether bans are on.
func (b *Bans) Enabled() bool { return b.After > 0 }

func (b *Bans) validate() error {
	switch {
	case b.After < 0 || (b.After > 0 && b.Window <= 0):
		return setting.Errorf("`ban-after` must be failures per window, like 10/1m")
	case b.For <= 0:
		return setting.Errorf("`ban-for` must be a positive duration, got %s", b.For)
	case b.Max < b.For:
		return setting.Errorf("`ban-max` (%s) must be at least `ban-for` (%s)", b.Max, b.For)
	}
	return nil
}

// ParseBanAfter parses failures per window, "N/WINDOW" like "10/1m": N a
// whole number of at least 1, WINDOW a positive duration (ParseDuration).
// The empty string is 0 (bans off).
func ParseBanAfter(s string) (n int, window time.Duration, err error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, 0, nil
	}
	ns, ws, ok := strings.Cut(t, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not failures per window, like 10/1m", s)
	}
	ns = strings.TrimSpace(ns)
	n, err = strconv.Atoi(ns)
	if err != nil || n < 1 || ns[0] == '+' {
		return 0, 0, fmt.Errorf("%q: the failures must be a whole number of at least 1, like 10/1m", s)
	}
	window, err = ParseDuration(ws)
	if err != nil {
		return 0, 0, fmt.Errorf("%q: the window %w", s, err)
	}
	if window <= 0 {
		return 0, 0, fmt.Errorf("%q: the window must be a positive duration, like 10/1m", s)
	}
	return n, window, nil
}
