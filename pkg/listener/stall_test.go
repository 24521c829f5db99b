package listener

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// Stalled tells an accept loop waiting for clients (healthy, however long)
// from one stuck elsewhere: here on the server's lock, held by the test as
// a deadlock would hold it, after Accept returned a connection.
func TestStalled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{MaxConns: 4, IdleTimeout: time.Minute, WriteTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(context.Context, *Conn) {})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-served
	}()

	// A first connection served: the loop is running (and has
	// registered ln under the lock the test takes next).
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitUntil(t, "the first connection accepted and the loop back in Accept", func() bool {
		stuck, away := s.Stalled(0)
		return !stuck && away == 0 && s.Accepted() == 1
	})

	s.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The loop accepts c, then blocks on the lock in start. Nothing
	// reports that but Stalled itself: poll it.
	var away time.Duration
	waitUntil(t, "the accept loop counted as away from Accept", func() bool {
		var stuck bool
		stuck, away = s.Stalled(time.Millisecond)
		return stuck
	})
	if stuck, _ := s.Stalled(time.Hour); stuck {
		t.Errorf("stuck for less than an hour, but Stalled(1h) says so")
	}
	if away < time.Millisecond {
		t.Errorf("away %v, want more than the 1ms it was asked about", away)
	}
	s.mu.Unlock()
	locked = false

	// Released, it serves c and goes back to Accept.
	waitUntil(t, "the accept loop back in Accept", func() bool {
		stuck, away := s.Stalled(0)
		return !stuck && away == 0 && s.Accepted() == 2
	})
}

// waitUntil polls cond (for a state nothing reports) within a hang guard.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 30s", what)
		}
		time.Sleep(time.Millisecond) // between polls: nothing reports the loop's state
	}
}
