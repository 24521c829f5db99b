package listener

import (
	"context"
	"net"
)

// TCP keepalive as Go sets it on every accepted connection by default:
// the first probe after 15 s of silence, then every 15 s, 9 unanswered
// probes and the connection is dropped.
const (
	keepAliveIdle     = 15 // seconds
	keepAliveInterval = 15 // seconds
	keepAliveCount    = 9
)

// Listen listens on a TCP address with Go's TCP keepalive for every
// accepted connection. On Linux the options are set once, on the
// listening socket, and every accepted socket inherits them: four
// setsockopt calls fewer per connection than Go's per-connection
// keepalive (net.ListenConfig.KeepAlive), which is off for this listener.
// Elsewhere it is net.ListenConfig's default.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	return listenConfig().Listen(ctx, "tcp", addr)
}
