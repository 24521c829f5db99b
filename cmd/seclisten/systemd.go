package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/systemd"
)

// systemdEnv is what the service manager passed: where to send
// notifications, the watchdog interval, and inherited sockets (socket
// activation). takeSystemdEnv reads it and unsets the variables, so that no
// child process inherits them.
type systemdEnv struct {
	notifier *systemd.Notifier
	watchdog time.Duration
	sockets  []systemd.Socket
	// warnings are problems that do not stop serving (a bad
	// NOTIFY_SOCKET, say), logged once the logger exists.
	warnings []error
	// err is a problem with the inherited sockets: serve refuses to
	// start rather than bind something else.
	err error

	// main and acmeHTTP are the sockets --addr and --acme-http-addr
	// named by their FileDescriptorName= (see resolveNames).
	main, acmeHTTP *systemd.Socket
}

// takeSystemdEnv reads and unsets NOTIFY_SOCKET, WATCHDOG_USEC,
// WATCHDOG_PID, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.
func takeSystemdEnv() systemdEnv {
	take := func(k string) string {
		v := os.Getenv(k)
		_ = os.Unsetenv(k)
		return v
	}
	var e systemdEnv
	self := os.Getpid()
	var err error
	if e.notifier, err = systemd.NewNotifier(take("NOTIFY_SOCKET")); err != nil {
		e.warnings = append(e.warnings, fmt.Errorf("NOTIFY_SOCKET: %w; not notifying the service manager", err))
	}
	e.watchdog, err = systemd.WatchdogInterval(take("WATCHDOG_USEC"), take("WATCHDOG_PID"), self)
	if err != nil && !errors.Is(err, systemd.ErrWatchdogPID) {
		e.warnings = append(e.warnings, fmt.Errorf("%w; not pinging the watchdog", err))
	}
	pid := take("LISTEN_PID")
	n, names, err := systemd.ParseListenEnv(pid, take("LISTEN_FDS"), take("LISTEN_FDNAMES"), self)
	switch {
	case errors.Is(err, systemd.ErrNotForUs):
		// Inherited from a socket-activated parent: the descriptors are
		// not ours.
		e.warnings = append(e.warnings, fmt.Errorf("LISTEN_FDS ignored: LISTEN_PID is %q, not this process (%d); binding --%s", pid, self, flagAddr))
	case err != nil:
		e.err = err
	case n > 0:
		e.sockets, e.err = systemd.Listeners(n, names)
	}
	return e
}

// resolveNames replaces a FileDescriptorName= given to --addr or
// --acme-http-addr by that socket's address, so that the settings
// validate as addresses (and TLS-ALPN-01 knows the port), and remembers
// the socket. A name (no colon) matching no inherited socket is an error.
func (e *systemdEnv) resolveNames(c *cli.Context) error {
	if len(e.sockets) == 0 {
		return nil
	}
	for _, f := range []struct {
		flag string
		to   **systemd.Socket
	}{{flagAddr, &e.main}, {flagACMEHTTPAddr, &e.acmeHTTP}} {
		v := c.String(f.flag)
		if v == "" || strings.Contains(v, ":") || v == "off" {
			continue
		}
		s := e.byName(v)
		if s == nil {
			return fmt.Errorf("--%s %q: no socket the service manager passed is named so (it passed %s)", f.flag, v, e.list())
		}
		if err := c.Set(f.flag, s.Listener.Addr().String()); err != nil {
			return err
		}
		*f.to = s
	}
	return nil
}

func (e *systemdEnv) byName(name string) *systemd.Socket {
	for i := range e.sockets {
		if e.sockets[i].Name == name {
			return &e.sockets[i]
		}
	}
	return nil
}

// list names the inherited sockets for an error message.
func (e *systemdEnv) list() string {
	var l []string
	for _, s := range e.sockets {
		l = append(l, s.String())
	}
	return strings.Join(l, ", ")
}

// pick decides which inherited socket each listener serves: --addr's is
// the one it names, or the one bound to its address, or, with --addr unset,
// the only one passed; --acme-http-addr's is the one it names or the one
// bound to its address (without one, it binds as usual). A socket left
// over, or an --addr that matches none, is an error: a socket nobody
// serves leaves its clients waiting. With no sockets it does nothing.
func (e *systemdEnv) pick(cfg *config.Config) error {
	if len(e.sockets) == 0 {
		return nil
	}
	used := map[int]bool{}
	match := func(want string) *systemd.Socket {
		for i := range e.sockets {
			if !used[e.sockets[i].FD] && e.sockets[i].Match(want) {
				return &e.sockets[i]
			}
		}
		return nil
	}
	if e.main != nil {
		used[e.main.FD] = true
	}
	if e.acmeHTTP == nil && cfg.ACME.Enabled() {
		e.acmeHTTP = match(cfg.ACME.HTTPListen())
	}
	if e.acmeHTTP != nil {
		used[e.acmeHTTP.FD] = true
	}
	if e.main == nil {
		e.main = match(cfg.ListenAddr())
	}
	if e.main == nil && cfg.Addr == "" && len(e.sockets)-len(used) == 1 {
		for i := range e.sockets {
			if !used[e.sockets[i].FD] {
				e.main = &e.sockets[i]
			}
		}
	}
	if e.main == nil {
		return fmt.Errorf("--%s %s: no socket the service manager passed has that name or address (it passed %s)",
			flagAddr, cfg.ListenAddr(), e.list())
	}
	used[e.main.FD] = true
	// The listener's real address: TLS-ALPN-01 is answered on its port.
	cfg.Addr = e.main.Listener.Addr().String()
	for _, s := range e.sockets {
		if !used[s.FD] {
			return fmt.Errorf("the service manager passed %s, which would serve nothing: name it (FileDescriptorName=) in --%s or --%s",
				s, flagAddr, flagACMEHTTPAddr)
		}
	}
	return nil
}

// log says which sockets are served and the problems that do not stop
// serving.
func (e *systemdEnv) log(log *slog.Logger) {
	for _, w := range e.warnings {
		log.Warn("systemd: " + w.Error())
	}
	for _, r := range []struct {
		flag string
		s    *systemd.Socket
	}{{flagAddr, e.main}, {flagACMEHTTPAddr, e.acmeHTTP}} {
		if r.s != nil {
			log.Info("serving a socket the service manager passed (socket activation)",
				"addr", r.s.Listener.Addr().String(), "fd", r.s.FD, "fd_name", r.s.Name, "for", "--"+r.flag)
		}
	}
}

// close closes the inherited sockets (when serve does not start).
func (e *systemdEnv) close() {
	for _, s := range e.sockets {
		_ = s.Listener.Close()
	}
}
