package listener

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig sets the keepalive on the listening socket, which Linux
// copies to each socket it accepts (sk_clone_lock copies the socket whole,
// the keepalive flag and timers with it; TestListenKeepAliveInherited
// reads them back from an accepted socket).
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1, // not per connection: inherited
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				for _, o := range []struct{ level, opt, v int }{
					{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
					{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdle},
					{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveInterval},
					{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
				} {
					if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}
