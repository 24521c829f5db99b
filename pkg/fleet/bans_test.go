package fleet_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
)

// banSink collects what Bans applies, and wakes the tests waiting on it.
type banSink struct {
	mu     sync.Mutex
	bans   []fleet.BanRecord
	lifted []string
	loads  int
	wake   chan struct{}
}

func newSink() *banSink { return &banSink{wake: make(chan struct{})} }

func (s *banSink) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *banSink) apply(r fleet.BanRecord) { s.record(func() { s.bans = append(s.bans, r) }) }
func (s *banSink) lift(k, _ string)        { s.record(func() { s.lifted = append(s.lifted, k) }) }
func (s *banSink) loaded()                 { s.record(func() { s.loads++ }) }

// wait waits until cond (called under the sink's lock) holds.
func (s *banSink) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.After(30 * time.Second) // a hang guard
	for {
		s.mu.Lock()
		ok, wake := cond(), s.wake
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wake:
		case <-guard:
			t.Fatalf("the sink never got %s", what)
		}
	}
}

func runBans(t *testing.T, c *fleet.Client, name string, sink *banSink) (*fleet.Bans, *logBuf) {
	t.Helper()
	l, log := newLog()
	b := fleet.NewBans(c, fleet.BanOptions{Replica: name, Apply: sink.apply, Lift: sink.lift, Logger: log, Loaded: sink.loaded})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return b, l
}

// Garbage in a ban key or on the channel is logged once (per key, and
// once for the channel) and ignored; the good ban beside it is applied.
func TestBansGarbage(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	ctx := context.Background()
	good := `{"key":"192.0.2.1","since":"2026-01-01T00:00:00Z","until":"2999-01-01T00:00:00Z","count":3,"last_reason":"not-tls","window":60000000000,"origin":"other"}`
	for k, v := range map[string]string{
		"test:ban:192.0.2.1": good,
		"test:ban:junk":      "garbage",
		"test:ban:backwards": `{"key":"192.0.2.2","since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z","origin":"x"}`,
	} {
		if err := c.Redis().Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sink := newSink()
	_, l := runBans(t, c, "me", sink)
	l.wait(t, "redis ban record holds garbage: ignored", 2)
	if err := c.Redis().Publish(ctx, "test:bans", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	l.wait(t, "redis ban record holds garbage: ignored", 3)
	if err := c.Redis().Publish(ctx, "test:bans", "still not json").Err(); err != nil {
		t.Fatal(err)
	}
	// Once per key: a second ban applied after the second garbage message
	// shows it was read, and not logged.
	if err := c.Redis().Publish(ctx, "test:bans", `{"op":"lift","key":"192.0.2.1","origin":"other"}`).Err(); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, "the lift", func() bool { return len(sink.lifted) == 1 })
	if n := l.count("holds garbage"); n != 3 {
		t.Errorf("%d garbage lines, want 3 (two keys, the channel once):\n%s", n, l.String())
	}
	sink.mu.Lock()
	if len(sink.bans) != 1 || sink.bans[0].Key != "192.0.2.1" || sink.bans[0].Origin != "other" {
		t.Errorf("applied %+v, want the one good ban", sink.bans)
	}
	sink.mu.Unlock()
}

// A ban published by one replica reaches another, not itself; a lift
// too; a replica that subscribes later loads the stored ban.
func TestBansShared(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	sa, sb, sc := newSink(), newSink(), newSink()
	a, _ := runBans(t, c, "a", sa)
	runBans(t, c, "b", sb)
	for _, s := range []*banSink{sa, sb} {
		s.wait(t, "a subscription", func() bool { return s.loads > 0 })
	}
	now := time.Now().UTC()
	a.Publish(fleet.BanRecord{Key: "192.0.2.7", Since: now, Until: now.Add(time.Hour), Count: 3, LastReason: "rate", Window: time.Minute})
	sb.wait(t, "the ban", func() bool { return len(sb.bans) == 1 })
	if sb.bans[0].Origin != "a" || sb.bans[0].Key != "192.0.2.7" {
		t.Errorf("b learned %+v", sb.bans[0])
	}
	runBans(t, c, "c", sc)
	sc.wait(t, "the stored ban", func() bool { return len(sc.bans) == 1 })
	if held, err := a.Lift(context.Background(), "192.0.2.7"); !held || err != nil {
		t.Errorf("Lift = %v, %v; want held", held, err)
	}
	sb.wait(t, "the lift", func() bool { return len(sb.lifted) == 1 })
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if len(sa.bans) != 0 || len(sa.lifted) != 0 {
		t.Errorf("a applied its own events: %+v %+v", sa.bans, sa.lifted)
	}
}
