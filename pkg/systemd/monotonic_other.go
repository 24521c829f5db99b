//go:build !unix

package systemd

import "time"

// Monotonic is 0 where there is no CLOCK_MONOTONIC (and no systemd).
func Monotonic() time.Duration { return 0 }
