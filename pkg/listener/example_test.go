package listener_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/seclisten/seclisten/pkg/listener"
)

// An accept loop with a connection cap and deadlines on every read and
// write, and a graceful shutdown.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := listener.New(listener.Options{MaxConns: 100, IdleTimeout: time.Minute, WriteTimeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler)},
		func(_ context.Context, c *listener.Conn) {
			_, _ = io.WriteString(c, "hello\n")
		})
	go func() { _ = srv.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	line, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("%s", line)
	if err := srv.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output: hello
}
