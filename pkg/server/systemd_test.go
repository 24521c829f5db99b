package server

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/systemd"
)

// The watchdog is pinged while the accept loop is healthy, and not once it
// has been stuck for longer than its threshold (half the watchdog
// interval, at least minStall): then an error says why, and the STATUS=
// line too.
func TestPingWatchdog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n, err := systemd.NewNotifier(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil)), Notifier: n, Watchdog: 30 * time.Second}
	read := func() string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 1024)
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:k])
	}

	var asked time.Duration
	s.pingWatchdog(func(d time.Duration) (bool, time.Duration) { asked = d; return false, 0 })
	if got := read(); got != "WATCHDOG=1" {
		t.Errorf("healthy loop: sent %q, want WATCHDOG=1", got)
	}
	if asked != 15*time.Second {
		t.Errorf("threshold %v, want half of WatchdogSec=30s", asked)
	}

	s.pingWatchdog(func(time.Duration) (bool, time.Duration) { return true, 16 * time.Second })
	if got := read(); got != "STATUS=accept loop stuck for 16s" {
		t.Errorf("stuck loop: sent %q, want only a STATUS=", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"accept loop stuck: not pinging the watchdog") {
		t.Errorf("no error logged: %s", logs.String())
	}

	s.Watchdog = 100 * time.Millisecond
	s.pingWatchdog(func(d time.Duration) (bool, time.Duration) { asked = d; return false, 0 })
	read()
	if asked != minStall {
		t.Errorf("threshold %v with a short watchdog, want at least %v (above the accept backoff)", asked, minStall)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 3456: "3,456", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
