// Package park waits for many idle connections at once without a goroutine
// each: a connection with nothing buffered is parked on one Poller, and
// its wake function runs once, when the peer sends bytes or hangs up, when
// its deadline passes, or when Wake is called (shutdown, a reload closing
// it). Only Linux has a Poller (epoll); elsewhere New returns
// ErrUnsupported and connections keep their goroutine.
package park

import "errors"

// ErrUnsupported is returned by New on systems without a Poller.
var ErrUnsupported = errors.New("park: not supported on this system")
