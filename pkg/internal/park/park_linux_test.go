package park_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/park"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

func rawConn(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newPoller(t *testing.T) *park.Poller {
	t.Helper()
	p, err := park.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// woken waits for one wake-up, with a generous hang guard.
func woken(t *testing.T, ch <-chan bool) bool {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up")
	}
	return false
}

func TestPoller(t *testing.T) {
	t.Run("bytes wake it, once, and it parks again", func(t *testing.T) {
		p := newPoller(t)
		s, c := pair(t)
		ch := make(chan bool, 4)
		w, err := p.Park(rawConn(t, s), time.Time{}, func(to bool) { ch <- to })
		if err != nil {
			t.Fatal(err)
		}
		if p.Parked() != 1 {
			t.Fatalf("Parked = %d, want 1", p.Parked())
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if woken(t, ch) {
			t.Fatal("woken as timed out")
		}
		w.Wake() // a second wake-up is a no-op
		if p.Parked() != 0 || len(ch) != 0 {
			t.Fatalf("Parked = %d, extra wake-ups %d", p.Parked(), len(ch))
		}
		// Readable already: parking again wakes at once (level-triggered).
		if _, err := p.Park(rawConn(t, s), time.Time{}, func(to bool) { ch <- to }); err != nil {
			t.Fatal(err)
		}
		woken(t, ch)
	})
	t.Run("a hang-up wakes it", func(t *testing.T) {
		p := newPoller(t)
		s, c := pair(t)
		ch := make(chan bool, 1)
		if _, err := p.Park(rawConn(t, s), time.Time{}, func(to bool) { ch <- to }); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		woken(t, ch)
	})
	t.Run("the deadline wakes it as timed out", func(t *testing.T) {
		p := newPoller(t)
		s, _ := pair(t)
		ch := make(chan bool, 1)
		if _, err := p.Park(rawConn(t, s), time.Now().Add(time.Millisecond), func(to bool) { ch <- to }); err != nil {
			t.Fatal(err)
		}
		if !woken(t, ch) {
			t.Fatal("not timed out")
		}
	})
	t.Run("Wake and Close wake it", func(t *testing.T) {
		p := newPoller(t)
		s1, _ := pair(t)
		s2, _ := pair(t)
		ch := make(chan bool, 2)
		w, err := p.Park(rawConn(t, s1), time.Time{}, func(to bool) { ch <- to })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Park(rawConn(t, s2), time.Time{}, func(to bool) { ch <- to }); err != nil {
			t.Fatal(err)
		}
		w.Wake()
		woken(t, ch)
		_ = p.Close()
		woken(t, ch)
		if _, err := p.Park(rawConn(t, s1), time.Time{}, func(bool) {}); err == nil {
			t.Fatal("parked on a closed poller")
		}
	})
	t.Run("a closed socket is refused", func(t *testing.T) {
		p := newPoller(t)
		s, _ := pair(t)
		rc := rawConn(t, s)
		_ = s.Close()
		if _, err := p.Park(rc, time.Time{}, func(bool) {}); err == nil {
			t.Fatal("parked a closed socket")
		}
		if p.Parked() != 0 {
			t.Fatalf("Parked = %d", p.Parked())
		}
	})
}
