package systemd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// listenFDsStart is the first passed descriptor (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS: a unit with more sockets than this is a
// mistake, and a huge number would only make Listeners try descriptors
// that do not exist.
const maxListenFDs = 256

// ErrNotForUs means LISTEN_PID names another process: the variables were
// inherited from a parent that was socket-activated, and the descriptors
// are not this process's to serve.
var ErrNotForUs = errors.New("LISTEN_PID is another process")

// ParseListenEnv parses LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES for the
// process self: how many descriptors were passed (from 3 on) and their
// names (FileDescriptorName= of the socket unit; "" where none was given).
// n is 0 when fds is empty; the error is ErrNotForUs when pid is another
// process.
func ParseListenEnv(pid, fds, names string, self int) (n int, fdNames []string, err error) {
	if fds == "" {
		return 0, nil, nil
	}
	// As sd_listen_fds(3): without LISTEN_PID, the descriptors are not
	// known to be ours.
	p, err := strconv.Atoi(pid)
	if err != nil || p <= 0 {
		return 0, nil, fmt.Errorf("LISTEN_PID %q: not a process ID", pid)
	}
	if p != self {
		return 0, nil, ErrNotForUs
	}
	n, err = strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, nil, fmt.Errorf("LISTEN_FDS %q: not a number of file descriptors", fds)
	}
	if n > maxListenFDs {
		return 0, nil, fmt.Errorf("LISTEN_FDS %d: more than %d sockets", n, maxListenFDs)
	}
	fdNames = make([]string, n)
	if names != "" {
		list := strings.Split(names, ":")
		if len(list) != n {
			return 0, nil, fmt.Errorf("LISTEN_FDNAMES %q: %d names for %d file descriptors", names, len(list), n)
		}
		for i, name := range list {
			if name == "unknown" { // systemd's name for an unnamed one
				name = ""
			}
			fdNames[i] = name
		}
	}
	return n, fdNames, nil
}

// Socket is one inherited listening socket.
type Socket struct {
	// FD is the descriptor it was passed as (3, 4, …). The listener
	// holds a duplicate; FD itself is closed.
	FD int
	// Name is its FileDescriptorName=, or "".
	Name string
	// Listener accepts on it.
	Listener net.Listener
}

// String describes s for a log line: `fd 3 "https" ([::]:443)`.
func (s Socket) String() string {
	d := "fd " + strconv.Itoa(s.FD)
	if s.Name != "" {
		d += " " + strconv.Quote(s.Name)
	}
	if s.Listener != nil {
		d += " (" + s.Listener.Addr().String() + ")"
	}
	return d
}

// Listeners makes listeners of the n descriptors from 3 on, named by names
// (as ParseListenEnv returns them). Each must be a listening stream socket
// (TCP or unix); anything else is an error naming the descriptor, and then
// every descriptor is closed. The listeners' descriptors are close-on-exec,
// so a child inherits none.
func Listeners(n int, names []string) ([]Socket, error) {
	socks := make([]Socket, 0, n)
	var errs []error
	for i := range n {
		fd := listenFDsStart + i
		name := ""
		if i < len(names) {
			name = names[i]
		}
		s := Socket{FD: fd, Name: name}
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		if f == nil {
			errs = append(errs, fmt.Errorf("inherited %s: not a file descriptor", s))
			continue
		}
		ln, err := net.FileListener(f)
		_ = f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("inherited %s: not a listening stream socket: %w", s, err))
			continue
		}
		s.Listener = ln
		socks = append(socks, s)
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range socks {
			_ = s.Listener.Close()
		}
		return nil, err
	}
	return socks, nil
}

// Match reports whether s is the socket a listener configured with want
// serves: want is s's name, or an address s is bound to. A host in want
// must be the socket's IP address ("" and "0.0.0.0" or "::" match a socket
// on every address); a port must be equal; a unix socket matches its path.
func (s Socket) Match(want string) bool {
	if want == "" {
		return false
	}
	if s.Name != "" && want == s.Name {
		return true
	}
	switch a := s.Listener.Addr().(type) {
	case *net.TCPAddr:
		host, port, err := net.SplitHostPort(want)
		if err != nil {
			return false
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || int(p) != a.Port || p == 0 {
			return false
		}
		got, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return false
		}
		got = got.Unmap()
		if host == "" {
			return got.IsUnspecified()
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return false
		}
		ip = ip.Unmap()
		return ip == got || ip.IsUnspecified() && got.IsUnspecified()
	case *net.UnixAddr:
		return a.Name == want
	}
	return false
}
