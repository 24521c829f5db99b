//go:build !linux

package systemd

import "time"

// Monotonic is 0 where there is no systemd (Linux only): MONOTONIC_USEC=
// is systemd's, and not every system has CLOCK_MONOTONIC (NetBSD's
// golang.org/x/sys/unix does not name it).
func Monotonic() time.Duration { return 0 }
