package systemd_test

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/systemd"
)

func TestParseListenEnv(t *testing.T) {
	const self = 4242
	for _, tc := range []struct {
		name            string
		pid, fds, names string
		n               int
		fdNames         []string
		err             string
		notForUs        bool
	}{
		{name: "none"},
		{name: "one", pid: "4242", fds: "1", n: 1, fdNames: []string{""}},
		{name: "named", pid: "4242", fds: "2", names: "https:acme-http", n: 2, fdNames: []string{"https", "acme-http"}},
		{name: "unknown is unnamed", pid: "4242", fds: "1", names: "unknown", n: 1, fdNames: []string{""}},
		{name: "zero", pid: "4242", fds: "0", n: 0, fdNames: []string{}},
		{name: "another process", pid: "1", fds: "1", notForUs: true},
		{name: "no pid", fds: "1", err: `LISTEN_PID "": not a process ID`},
		{name: "bad pid", pid: "x", fds: "1", err: `LISTEN_PID "x": not a process ID`},
		{name: "negative pid", pid: "-4242", fds: "1", err: `LISTEN_PID "-4242": not a process ID`},
		{name: "bad count", pid: "4242", fds: "two", err: `LISTEN_FDS "two": not a number of file descriptors`},
		{name: "negative count", pid: "4242", fds: "-1", err: `LISTEN_FDS "-1": not a number of file descriptors`},
		{name: "too many", pid: "4242", fds: "100000", err: "LISTEN_FDS 100000: more than 256 sockets"},
		{name: "names mismatch", pid: "4242", fds: "2", names: "one", err: `LISTEN_FDNAMES "one": 1 names for 2 file descriptors`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, names, err := systemd.ParseListenEnv(tc.pid, tc.fds, tc.names, self)
			switch {
			case tc.notForUs:
				if !errors.Is(err, systemd.ErrNotForUs) {
					t.Fatalf("err = %v, want ErrNotForUs", err)
				}
			case tc.err != "":
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case n != tc.n || strings.Join(names, ",") != strings.Join(tc.fdNames, ",") || len(names) != len(tc.fdNames):
				t.Errorf("= %d, %q; want %d, %q", n, names, tc.n, tc.fdNames)
			}
		})
	}
}

func FuzzParseListenEnv(f *testing.F) {
	f.Add("4242", "1", "")
	f.Add("4242", "2", "https:acme-http")
	f.Add("1", "3", "a:b:c")
	f.Add("4242", "1", "unknown")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, pid, fds, names string) {
		n, list, err := systemd.ParseListenEnv(pid, fds, names, 4242)
		if err != nil {
			if n != 0 || list != nil {
				t.Fatalf("error %v with results %d, %q", err, n, list)
			}
			return
		}
		if n < 0 || n > 256 || (fds != "" && len(list) != n) {
			t.Fatalf("%d descriptors, %d names", n, len(list))
		}
	})
}

func TestWatchdogInterval(t *testing.T) {
	const self = 4242
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       string
	}{
		{"", "", 0, ""},
		{"30000000", "", 30 * time.Second, ""},
		{"30000000", "4242", 30 * time.Second, ""},
		{"30000000", "1", 0, "watchdog is for another process"},
		{"30000000", "pid", 0, `WATCHDOG_PID "pid": not a process ID`},
		{"0", "", 0, `WATCHDOG_USEC "0": not a positive number of microseconds`},
		{"30s", "", 0, `WATCHDOG_USEC "30s": not a positive number of microseconds`},
		{"-5", "", 0, `WATCHDOG_USEC "-5": not a positive number of microseconds`},
		{"99999999999999999999", "", 0, `WATCHDOG_USEC "99999999999999999999": not a positive number of microseconds`},
		{"9223372036854775", "", 0, `WATCHDOG_USEC "9223372036854775": too large`},
	} {
		got, err := systemd.WatchdogInterval(tc.usec, tc.pid, self)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("WatchdogInterval(%q, %q): err %v, want %q", tc.usec, tc.pid, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("WatchdogInterval(%q, %q) = %v, %v; want %v", tc.usec, tc.pid, got, err, tc.want)
		}
	}
}

// Notify sends each message as one datagram, to a path or an abstract
// socket; a nil Notifier sends nothing; a socket nobody listens on is an
// error (and the next send, once it exists, works).
func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@seclisten-systemd-test-" + time.Now().Format("150405.000000000"),
	} {
		t.Run(name[:1], func(t *testing.T) {
			n, err := systemd.NewNotifier(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(systemd.Ready); err == nil {
				t.Fatal("notify to a socket nobody listens on: no error")
			}
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := n.Notify(systemd.Reloading(1500*time.Millisecond), systemd.Status("reloading\nnow")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 1024)
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(buf[:k]), "RELOADING=1\nMONOTONIC_USEC=1500000\nSTATUS=reloading now"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	var none *systemd.Notifier
	if err := none.Notify(systemd.Ready); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
	for _, bad := range []string{"relative", "vsock:2:1234", "/" + strings.Repeat("x", 200)} {
		if _, err := systemd.NewNotifier(bad); err == nil {
			t.Errorf("NewNotifier(%q): no error", bad)
		}
	}
	if n, err := systemd.NewNotifier(""); n != nil || err != nil {
		t.Errorf(`NewNotifier("") = %v, %v; want nil, nil`, n, err)
	}
}

func TestMonotonic(t *testing.T) {
	a := systemd.Monotonic()
	b := systemd.Monotonic()
	if a <= 0 || b < a {
		t.Errorf("Monotonic() = %v then %v", a, b)
	}
}

// Match: by name, by address (a wildcard host matches a socket on every
// address), never by a wrong port or host.
func TestMatch(t *testing.T) {
	ln4, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	lo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	unixPath := filepath.Join(t.TempDir(), "s")
	lu, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lu.Close()
	p4, plo := port(ln4), port(lo)

	wild := systemd.Socket{FD: 3, Name: "https", Listener: ln4}
	local := systemd.Socket{FD: 4, Listener: lo}
	unixS := systemd.Socket{FD: 5, Name: "u", Listener: lu}
	for _, tc := range []struct {
		s    systemd.Socket
		want string
		ok   bool
	}{
		{wild, "https", true},
		{wild, ":" + p4, true},
		{wild, "0.0.0.0:" + p4, true},
		{wild, "[::]:" + p4, true},
		{wild, "127.0.0.1:" + p4, false},
		{wild, "localhost:" + p4, false},
		{wild, ":1", false},
		{wild, "", false},
		{wild, "http", false},
		{local, "127.0.0.1:" + plo, true},
		{local, "[::ffff:127.0.0.1]:" + plo, true},
		{local, ":" + plo, false},
		{local, "127.0.0.2:" + plo, false},
		{local, "127.0.0.1:x", false},
		{local, "", false},
		{unixS, unixPath, true},
		{unixS, "u", true},
		{unixS, "/elsewhere", false},
	} {
		if got := tc.s.Match(tc.want); got != tc.ok {
			t.Errorf("%s matches %q: %v, want %v", tc.s, tc.want, got, tc.ok)
		}
	}
}

func port(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// Listeners itself is tested end to end in cmd/seclisten (systemd_test.go):
// its descriptors must be 3, 4, …, which this process does not control.
