package listener

import (
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// countingConn counts the deadlines set on it.
type countingConn struct {
	net.Conn
	reads, writes, boths int
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.boths++
	return c.Conn.SetDeadline(t)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.reads++
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.writes++
	return c.Conn.SetWriteDeadline(t)
}

// pipeConn is a Conn on one end of a net.Pipe (wrapped by wrap, if not
// nil) with idle and write timeouts of timeout, and the other end; both
// close when the test ends.
func pipeConn(t *testing.T, timeout time.Duration, wrap func(net.Conn) net.Conn) (*Conn, net.Conn) {
	srv, cli := net.Pipe()
	t.Cleanup(func() { _ = cli.Close(); _ = srv.Close() })
	if wrap != nil {
		srv = wrap(srv)
	}
	return &Conn{Conn: srv, start: time.Now(), idleTimeout: timeout, write: timeout}, cli
}

// Reads keep the deadline an earlier read set, and still each waits its
// whole idle timeout: a read 6 s after the first waits until 16 s, not
// until the first read's 10 s.
func TestReadKeepsEarlierDeadlineAndWaitsItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cc *countingConn
		c, cli := pipeConn(t, 10*time.Second, func(c net.Conn) net.Conn { cc = &countingConn{Conn: c}; return cc })
		go func() { _, _ = cli.Write([]byte("ab")) }()
		var b [1]byte
		for range 2 {
			if _, err := c.Read(b[:]); err != nil {
				t.Fatal(err)
			}
		}
		if cc.reads != 1 {
			t.Fatalf("%d read deadlines set for two reads in a row, want 1", cc.reads)
		}
		time.Sleep(6 * time.Second) // fake time (synctest): advances the bubble's clock at once
		start := time.Now()
		_, err := c.Read(b[:])
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the idle timeout", err)
		}
		if waited := time.Since(start); waited != 10*time.Second {
			t.Fatalf("the read waited %v, want its idle timeout, 10s", waited)
		}
	})
}

// A read that parks waits ParkAfter from its own start, though the
// deadline of an earlier read comes sooner; then it reports ErrParkDue.
func TestReadParkDueFromItsOwnStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cli := pipeConn(t, time.Minute, nil)
		c.parkAfter = time.Second
		go func() { _, _ = cli.Write([]byte("a")) }()
		var b [1]byte
		c.Idle(true)
		if _, err := c.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // fake time (synctest): advances the bubble's clock at once
		start := time.Now()
		_, err := c.Read(b[:])
		if !c.ParkDue(err) {
			t.Fatalf("read: %v, want ErrParkDue", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("the read waited %v before parking, want 1s", waited)
		}
	})
}

// A write keeps an earlier write's deadline, and a write it interrupts
// goes on until its own: blocked 6 s after the first, it fails at 16 s.
func TestWriteKeepsEarlierDeadlineAndWaitsItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cc *countingConn
		c, cli := pipeConn(t, 10*time.Second, func(c net.Conn) net.Conn { cc = &countingConn{Conn: c}; return cc })
		go func() {
			var b [2]byte
			_, _ = cli.Read(b[:]) // the first write only
		}()
		if _, err := c.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second) // fake time (synctest): advances the bubble's clock at once
		start := time.Now()
		_, err := c.Write([]byte("b")) // nobody reads
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %v, want the write timeout", err)
		}
		if waited := time.Since(start); waited != 10*time.Second {
			t.Fatalf("the write waited %v, want its write timeout, 10s", waited)
		}
		if cc.writes != 2 {
			t.Fatalf("%d write deadlines set, want 2 (the first write's, then the second's when the first fired)", cc.writes)
		}
	})
}

// Shutdown interrupts a read that kept an earlier deadline.
func TestReadKeepingDeadlineDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cli := pipeConn(t, 10*time.Second, nil)
		go func() { _, _ = cli.Write([]byte("a")) }()
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // fake time (synctest): advances the bubble's clock at once
		errc := make(chan error, 1)
		go func() {
			_, err := c.Read(b[:])
			errc <- err
		}()
		synctest.Wait()
		c.drain()
		if err := <-errc; !errors.Is(err, ErrShutdown) {
			t.Fatalf("read: %v, want ErrShutdown", err)
		}
	})
}

// A write deadline set from outside (crypto/tls's close_notify: 5 s
// ahead, then now) is kept by the next Write as one it set itself, so
// the alert's write sets none of its own; a write it interrupts still
// goes on until its own write timeout.
func TestWriteKeepsDeadlineSetFromOutside(t *testing.T) {
	t.Run("close_notify", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var cc *countingConn
			c, cli := pipeConn(t, 10*time.Second, func(c net.Conn) net.Conn { cc = &countingConn{Conn: c}; return cc })
			go func() {
				var b [1]byte
				_, _ = cli.Read(b[:])
			}()
			if err := c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("a")); err != nil {
				t.Fatal(err)
			}
			if err := c.SetWriteDeadline(time.Now()); err != nil {
				t.Fatal(err)
			}
			if cc.writes != 2 {
				t.Fatalf("%d write deadlines set, want 2: the caller's two, none by Write", cc.writes)
			}
		})
	})
	t.Run("blocked write", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipeConn(t, 10*time.Second, nil)
			if err := c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := c.Write([]byte("a")) // nobody reads
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v, want the write timeout", err)
			}
			if waited := time.Since(start); waited != 10*time.Second {
				t.Fatalf("the write waited %v, want its write timeout, 10s", waited)
			}
		})
	})
}

// In a phase (the TLS handshake), the first read sets the phase's
// deadline for the reads and the writes with one call, and the first
// write keeps it; a shutdown then still fails the phase's writes.
func TestPhaseDeadlineSetOnce(t *testing.T) {
	t.Run("read then write", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var cc *countingConn
			c, cli := pipeConn(t, time.Minute, func(c net.Conn) net.Conn { cc = &countingConn{Conn: c}; return cc })
			c.SetPhaseDeadline(time.Now().Add(10 * time.Second))
			go func() {
				_, _ = cli.Write([]byte("a"))
				var b [1]byte
				_, _ = cli.Read(b[:])
			}()
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if cc.boths != 1 || cc.reads != 0 || cc.writes != 0 {
				t.Fatalf("deadlines set: %d both, %d read, %d write; want one call for both", cc.boths, cc.reads, cc.writes)
			}
		})
	})
	t.Run("write timeout sooner", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var cc *countingConn
			c, cli := pipeConn(t, 5*time.Second, func(c net.Conn) net.Conn { cc = &countingConn{Conn: c}; return cc })
			c.idleTimeout = time.Minute
			c.SetPhaseDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = cli.Write([]byte("a")) }()
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			if cc.boths != 0 || cc.reads != 1 {
				t.Fatalf("deadlines set: %d both, %d read; want the read's own: the write timeout comes before the phase's end", cc.boths, cc.reads)
			}
		})
	})
	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, cli := pipeConn(t, time.Minute, nil)
			c.SetPhaseDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = cli.Write([]byte("a")) }()
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			c.drain()
			if _, err := c.Write([]byte("b")); !errors.Is(err, ErrShutdown) {
				t.Fatalf("write after the shutdown began: %v, want ErrShutdown", err)
			}
		})
	})
}
