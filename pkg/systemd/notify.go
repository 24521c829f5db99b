package systemd

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Notifier sends sd_notify(3) messages to the service manager. A nil
// *Notifier sends nothing: a program not started by systemd (or with
// Type=exec) notifies no one.
type Notifier struct {
	addr *net.UnixAddr
}

// NewNotifier returns a Notifier for the socket NOTIFY_SOCKET names: a path,
// or an abstract socket written with a leading "@". The socket is not
// contacted here; Notify opens it for each message, so a service manager
// that re-executes itself (and re-creates the socket) is still reached. An
// empty socket gives a nil Notifier.
func NewNotifier(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return nil, nil
	case strings.HasPrefix(socket, "@"):
		// Go's net package writes the abstract namespace with "@" too.
	case strings.HasPrefix(socket, "/"):
	default:
		// systemd also accepts "vsock:CID:PORT"; seclisten does not
		// run in virtual machines that would need it.
		return nil, fmt.Errorf("notify socket %q: not an absolute path or an abstract socket (@name)", socket)
	}
	if len(socket) > 107 {
		return nil, fmt.Errorf("notify socket %q: longer than a unix socket address allows", socket)
	}
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Notify sends one message of newline-separated assignments ("READY=1",
// "STATUS=…"). With a nil Notifier it does nothing.
func (n *Notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	msg := strings.Join(state, "\n")
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Socket is where messages go.
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.addr.Name
}

// Messages of sd_notify(3).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Status is the STATUS= message: one line systemctl status shows.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// Reloading is the message that starts a reload: RELOADING=1 with the
// CLOCK_MONOTONIC time in microseconds, which Type=notify-reload (systemd
// 253) requires to tell this reload from an earlier one.
func Reloading(monotonic time.Duration) string {
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonic.Microseconds(), 10)
}

// ErrWatchdogPID means WATCHDOG_PID names another process: the watchdog is
// not this process's to ping.
var ErrWatchdogPID = errors.New("watchdog is for another process")

// WatchdogInterval parses WATCHDOG_USEC and WATCHDOG_PID: how often the
// service manager expects WATCHDOG=1. It returns 0 when usec is empty or
// pid names another process than self (a child that inherited the
// variables); an unset pid means this process.
func WatchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("WATCHDOG_PID %q: not a process ID", pid)
		}
		if p != self {
			return 0, ErrWatchdogPID
		}
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q: not a positive number of microseconds", usec)
	}
	if u > uint64(time.Duration(1<<62)/time.Microsecond) {
		return 0, fmt.Errorf("WATCHDOG_USEC %q: too large", usec)
	}
	return time.Duration(u) * time.Microsecond, nil
}
