//go:build !linux

package park

import (
	"syscall"
	"time"
)

// Poller is not available on this system.
type Poller struct{}

// Waiter is not available on this system.
type Waiter struct{}

// New returns ErrUnsupported.
func New() (*Poller, error) { return nil, ErrUnsupported }

// Park returns ErrUnsupported.
func (p *Poller) Park(syscall.RawConn, time.Time, func(bool)) (*Waiter, error) {
	return nil, ErrUnsupported
}

// Parked is 0.
func (p *Poller) Parked() int { return 0 }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Wake does nothing.
func (w *Waiter) Wake() {}
