package acme

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Gate decides which names may get a certificate on demand. Issuance on
// demand is never unrestricted: a name must match an allow pattern (if any
// are set) and the ask URL must answer 200 for it (if set), and each name
// is tried at most once per RetryEvery. At least one of the two checks is
// required.
type Gate struct {
	// Patterns are exact names or patterns with a leading "*." that matches
	// exactly one label ("*.example.com" matches "a.example.com", not
	// "example.com" or "a.b.example.com").
	Patterns []string
	// Ask is a URL asked GET ?domain=NAME; 200 means yes (Caddy's
	// convention, so existing ask endpoints work).
	Ask string
	// RetryEvery limits issuance attempts per name (default 10 minutes).
	RetryEvery time.Duration
	// Client asks the Ask URL (a client with a 10 s timeout if nil).
	Client *http.Client

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// maxTracked bounds the per-name limiter table: past it, the table is
// cleared, which can only let a name try again sooner, never more often
// than the ask and allow checks permit.
const maxTracked = 10000

// Allow is certmagic's on-demand DecisionFunc: nil allows issuance.
func (g *Gate) Allow(ctx context.Context, name string) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if len(g.Patterns) > 0 && !g.matches(name) {
		return fmt.Errorf("%q matches none of the allowed patterns", name)
	}
	if g.Ask != "" {
		if err := g.ask(ctx, name); err != nil {
			return err
		}
	}
	if !g.limiter(name).Allow() {
		return fmt.Errorf("%q was tried less than %s ago", name, g.retryEvery())
	}
	return nil
}

func (g *Gate) retryEvery() time.Duration {
	if g.RetryEvery > 0 {
		return g.RetryEvery
	}
	return 10 * time.Minute
}

func (g *Gate) limiter(name string) *rate.Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limiters == nil || len(g.limiters) >= maxTracked {
		g.limiters = make(map[string]*rate.Limiter)
	}
	l, ok := g.limiters[name]
	if !ok {
		l = rate.NewLimiter(rate.Every(g.retryEvery()), 1)
		g.limiters[name] = l
	}
	return l
}

// Match reports whether name matches a pattern: an exact name, or "*."
// followed by a suffix that matches all but exactly one leading label.
func Match(pattern, name string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, found := strings.Cut(name, ".")
		return found && label != "" && rest == suffix
	}
	return pattern == name
}

func (g *Gate) matches(name string) bool {
	for _, p := range g.Patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

func (g *Gate) ask(ctx context.Context, name string) error {
	u, err := url.Parse(g.Ask)
	if err != nil {
		return fmt.Errorf("parse ask URL: %w", err)
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	client := g.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s about %q: %w", g.Ask, name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask %s refused %q (HTTP %d)", g.Ask, name, resp.StatusCode)
	}
	return nil
}
