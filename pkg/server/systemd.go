package server

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/systemd"
)

// statusInterval is how often the STATUS= line is refreshed between state
// changes: systemctl status shows the counts at most this old.
const statusInterval = 10 * time.Second

// minStall is the least time the accept loop must be away from Accept
// before the watchdog stops being pinged: more than the accept backoff
// (at most 1 s), so a loop retrying EMFILE is not taken for a stuck one.
const minStall = 2 * time.Second

// sdState is what the notifications have said so far.
type sdState struct {
	// certs receives a value when a certificate comes into service, so
	// READY=1 goes out at once rather than at the next status refresh.
	certs chan struct{}

	mu      sync.Mutex
	ready   bool   // READY=1 sent
	failing bool   // the last message could not be sent
	addr    string // the listening address, for STATUS=
	srv     *listener.Server
}

func newSDState() sdState {
	return sdState{certs: make(chan struct{}, 1)}
}

// certChanged says that a certificate came into service.
func (d *sdState) certChanged() {
	select {
	case d.certs <- struct{}{}:
	default:
	}
}

// notify sends state to the service manager, and reports whether it could.
// A failure is logged once, as a warning (serving goes on: the manager may
// not want to hear), and its end once. Called with sd.mu held.
func (s *Server) notify(state ...string) bool {
	err := s.Notifier.Notify(state...)
	switch {
	case err != nil && !s.sd.failing:
		s.sd.failing = true
		s.log.Warn("cannot notify the service manager (NOTIFY_SOCKET); serving continues", "err", err)
	case err == nil && s.sd.failing:
		s.sd.failing = false
		s.log.Info("notifying the service manager again", "socket", s.Notifier.Socket())
	}
	return err == nil
}

// superviseSystemd tells the service manager when the server listening on
// addr is ready, refreshes STATUS=, and pings the watchdog while srv's
// accept loop is not stuck. stop ends it.
func (s *Server) superviseSystemd(addr net.Addr, srv *listener.Server) (stop func()) {
	if s.Notifier == nil {
		return func() {}
	}
	s.sd.mu.Lock()
	s.sd.addr, s.sd.srv = addr.String(), srv
	s.sd.mu.Unlock()
	s.notifyIfReady()

	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		status := time.NewTicker(statusInterval)
		defer status.Stop()
		var ping <-chan time.Time
		if s.Watchdog > 0 {
			t := time.NewTicker(max(s.Watchdog/2, time.Millisecond))
			defer t.Stop()
			ping = t.C
			s.pingWatchdog(srv.Stalled)
		}
		for {
			select {
			case <-done:
				return
			case <-s.sd.certs:
				s.notifyIfReady()
			case <-status.C:
				s.notifyIfReady()
			case <-ping:
				s.pingWatchdog(srv.Stalled)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// notifyIfReady sends READY=1 the first time the server is ready, and the
// STATUS= line every time.
func (s *Server) notifyIfReady() {
	s.sd.mu.Lock()
	defer s.sd.mu.Unlock()
	ok, why := s.ready()
	switch {
	case ok && !s.sd.ready:
		// Sent again at the next refresh if it could not be sent.
		s.sd.ready = s.notify(systemd.Ready, systemd.Status(s.statusLine("")))
	default:
		s.notify(systemd.Status(s.statusLine(why)))
	}
}

// pingWatchdog sends WATCHDOG=1 unless the accept loop is stuck: then
// systemd's watchdog runs out and it restarts the service, which is what a
// listener that no longer accepts needs.
// stalled is listener.Server.Stalled.
func (s *Server) pingWatchdog(stalled func(time.Duration) (bool, time.Duration)) {
	stuck, away := stalled(max(s.Watchdog/2, minStall))
	s.sd.mu.Lock()
	defer s.sd.mu.Unlock()
	if stuck {
		s.log.Error("accept loop stuck: not pinging the watchdog, so the service manager restarts the service",
			"stuck_for", away.Round(time.Millisecond), "watchdog", s.Watchdog)
		s.notify(systemd.Status("accept loop stuck for " + away.Round(time.Second).String()))
		return
	}
	s.notify(systemd.Watchdog)
}

// notifyReloading sends RELOADING=1 (if READY=1 was sent: systemd heeds a
// reload only in a running service) and returns the function that sends
// READY=1 when the reload is done.
func (s *Server) notifyReloading() (done func()) {
	s.sd.mu.Lock()
	defer s.sd.mu.Unlock()
	if s.Notifier == nil || !s.sd.ready {
		return func() {}
	}
	s.notify(systemd.Reloading(systemd.Monotonic()), systemd.Status("reloading"))
	return func() {
		s.sd.mu.Lock()
		defer s.sd.mu.Unlock()
		s.notify(systemd.Ready, systemd.Status(s.statusLine("")))
	}
}

// notifyStopping sends STOPPING=1: the drain starts.
func (s *Server) notifyStopping(srv *listener.Server) {
	if s.Notifier == nil {
		return
	}
	s.sd.mu.Lock()
	defer s.sd.mu.Unlock()
	s.notify(systemd.Stopping, systemd.Status("shutting down: "+counts(srv)))
}

// statusLine is the STATUS= text: "serving 127.0.0.1:8443: 12 open, 3,456
// served", or why the server is not ready. Called with sd.mu held.
func (s *Server) statusLine(notReady string) string {
	if notReady != "" {
		return notReady + "; listening on " + s.sd.addr + ": " + counts(s.sd.srv)
	}
	return "serving " + s.sd.addr + ": " + counts(s.sd.srv)
}

func counts(srv *listener.Server) string {
	if srv == nil {
		return "0 open, 0 served"
	}
	return thousands(uint64(srv.Active())) + " open, " + thousands(srv.Accepted()) + " served"
}

// thousands writes n with commas: 3,456.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
