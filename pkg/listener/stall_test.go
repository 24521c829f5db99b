package listener

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// watchedListener reports each call of Accept as it begins and each
// connection it returns: the events of the accept loop the test waits on.
type watchedListener struct {
	net.Listener
	entered, returned chan struct{}
}

func (l *watchedListener) Accept() (net.Conn, error) {
	l.entered <- struct{}{}
	c, err := l.Listener.Accept()
	if err == nil {
		l.returned <- struct{}{}
	}
	return c, err
}

// await waits for the next event on ch, within a hang guard.
func await(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("not %s within 30s", what)
	}
}

// Stalled tells an accept loop waiting for clients (healthy, however long)
// from one stuck elsewhere: here on the server's lock, held by the test as
// a deadlock would hold it, after Accept returned a connection.
func TestStalled(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &watchedListener{Listener: inner, entered: make(chan struct{}, 16), returned: make(chan struct{}, 16)}
	// Timeouts is asked for each connection after Accept returned it and
	// before the server's lock: the loop is then away from Accept.
	starting := make(chan struct{}, 16)
	s := New(Options{MaxConns: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Timeouts: func() (idle, write, lifetime time.Duration) {
			starting <- struct{}{}
			return time.Minute, time.Minute, 0
		}}, func(context.Context, *Conn) {})
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
	await(t, "in Accept", ln.entered)
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	await(t, "the first connection accepted", ln.returned)
	await(t, "the first connection started", starting)
	await(t, "back in Accept", ln.entered)
	if stuck, away := s.Stalled(0); stuck || away != 0 || s.Accepted() != 1 {
		t.Fatalf("waiting in Accept after one connection: stuck %v, away %v, accepted %d", stuck, away, s.Accepted())
	}

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
	// The loop accepts c, then blocks on the lock in start.
	await(t, "the second connection accepted", ln.returned)
	await(t, "the second connection starting", starting)
	stuck, away := s.Stalled(0)
	if !stuck || away <= 0 {
		t.Errorf("blocked after Accept: stuck %v, away %v; want counted as away", stuck, away)
	}
	if stuck, _ := s.Stalled(time.Hour); stuck {
		t.Errorf("stuck for less than an hour, but Stalled(1h) says so")
	}
	s.mu.Unlock()
	locked = false

	// Released, it serves c and goes back to Accept.
	await(t, "back in Accept after the lock", ln.entered)
	if stuck, away := s.Stalled(0); stuck || away != 0 || s.Accepted() != 2 {
		t.Errorf("back in Accept: stuck %v, away %v, accepted %d", stuck, away, s.Accepted())
	}
}
