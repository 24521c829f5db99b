package listener_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/seclisten/seclisten/pkg/internal/lockedbuf"
	"github.com/seclisten/seclisten/pkg/listener"
)

// Refuse sends its message and closes: the peer reads the message, then EOF.
func TestRefuse(t *testing.T) {
	checkGoroutines(t)
	f := start(t, listener.Options{}, func(_ context.Context, c *listener.Conn) {
		c.Refuse([]byte("error: refused: test\n"))
	})
	got, err := readAll(t, dial(t, f.addr))
	if got != "error: refused: test\n" || err != nil {
		t.Fatalf("read %q, %v; want the refusal line, then EOF", got, err)
	}
}

// With MaxAccepts, Serve stops accepting after that many connections,
// waits for their handlers, and returns ErrAcceptLimit; a connection still
// open is served to its end first.
func TestMaxAccepts(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := listener.New(listener.Options{MaxConns: 10, IdleTimeout: wait, WriteTimeout: wait, MaxAccepts: 2,
		Logger: slog.New(slog.NewTextHandler(&lockedbuf.Buffer{}, nil))},
		func(_ context.Context, c *listener.Conn) {
			fmt.Fprintf(c, "conn %d\n", c.ID())
			if c.ID() == 2 {
				<-release
			}
		})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	for i := 1; i <= 2; i++ {
		c := dial(t, ln.Addr().String())
		if got, err := readLine(c); got != fmt.Sprintf("conn %d\n", i) {
			t.Fatalf("connection %d read %q, %v", i, got, err)
		}
		if i == 1 {
			_ = c.Close()
		}
	}
	// The listener is closed after the second accept; Serve waits for the
	// second handler.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	select {
	case err := <-serveErr:
		t.Fatalf("Serve returned %v while a connection was being served", err)
	default:
	}
	close(release)
	if err := recv(t, serveErr, "Serve to return"); !errors.Is(err, listener.ErrAcceptLimit) {
		t.Fatalf("Serve = %v, want ErrAcceptLimit", err)
	}
}

// readLine reads up to a newline within the bound.
func readLine(c net.Conn) (string, error) {
	buf := make([]byte, 0, 64)
	b := make([]byte, 1)
	for {
		n, err := c.Read(b)
		if n > 0 {
			buf = append(buf, b[0])
			if b[0] == '\n' {
				return string(buf), nil
			}
		}
		if err != nil {
			return string(buf), err
		}
	}
}
