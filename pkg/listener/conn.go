package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/park"
)

// ErrShutdown is returned by Conn.Read once the server is shutting down: the
// handler should finish what it has already read, then return.
var ErrShutdown = errors.New("server shutting down")

// lingerTimeout bounds the lingering close. See Conn.closeGracefully.
const lingerTimeout = time.Second

// aLongTimeAgo is a deadline in the past, to interrupt a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Conn is an accepted connection. Each Read extends the idle deadline and
// each Write sets the write deadline, so no phase of a connection waits
// forever on the peer.
type Conn struct {
	net.Conn
	id          uint64
	start       time.Time
	idleTimeout time.Duration
	write       time.Duration
	draining    atomic.Bool
	phase       atomic.Int64 // absolute deadline of the current phase, UnixNano; 0 if none
	end         time.Time    // end of the connection's allowed lifetime; zero if unbounded
	closed      atomic.Bool  // CloseNow was called
	peerDone    bool         // the peer ends its stream: EOF read, or PeerDone

	// The socket's read and write deadlines as Read and Write last set
	// them; zero when unknown (see Read).
	readDL, writeDL time.Time

	// Parking (Options.Poller): parkAfter is 0 when the connection
	// cannot park. Only the connection's goroutine of the moment uses
	// idle, parkAt and resume; waiter is the Poller's while parked.
	parkAfter time.Duration
	idle      bool      // Idle(true): the next reads may end in ErrParkDue
	parkAt    time.Time // the read deadline of the read that ended in ErrParkDue
	resume    func(timedOut bool)
	waiter    atomic.Pointer[park.Waiter]
}

// parkDue is the error of a read that waited ParkAfter with nothing
// buffered. It is a temporary timeout, as crypto/tls needs to keep the
// connection usable (its tls.Conn keeps a partial record and reads on).
type parkDue struct{}

func (parkDue) Error() string   { return "idle: park due" }
func (parkDue) Timeout() bool   { return true }
func (parkDue) Temporary() bool { return true }

// ErrParkDue is returned by Read, only between Idle(true) and Idle(false),
// when the client sent nothing for Options.ParkAfter (and its read
// deadline is later).
var ErrParkDue net.Error = parkDue{}

// Idle says whether the reads that follow start with nothing buffered
// above the socket, so they may end early with ErrParkDue.
func (c *Conn) Idle(on bool) { c.idle = on && c.parkAfter > 0 }

// ParkDue reports whether err is ErrParkDue.
func (c *Conn) ParkDue(err error) bool { return errors.Is(err, ErrParkDue) }

// Suspend makes the handler's return leave the connection open, counted
// and holding its slot, parked without a goroutine; resume runs, on a new
// goroutine, as the rest of the handler once the client sends or hangs up
// (timedOut false), the server drains or closes the connection (false:
// the next Read says so), or the read deadline of the read that returned
// ErrParkDue passes (timedOut true: the handler ends it as an idle
// timeout). Call it only after such a read, just before returning.
func (c *Conn) Suspend(resume func(timedOut bool)) { c.resume = resume }

// CloseNow closes the connection at once, without the lingering close: for
// connections refused before anything was written to them.
func (c *Conn) CloseNow() {
	c.closed.Store(true)
	c.wakeParked()
	_ = c.Conn.Close()
}

// Refuse sends msg, if the socket takes it at once, and closes the
// connection: for connections refused before anything was read, so the
// peer's tool can show why (a TLS alert record, or one line of text)
// without the refusal costing more than one non-blocking write. An empty
// msg closes at once.
func (c *Conn) Refuse(msg []byte) {
	c.closed.Store(true)
	if len(msg) > 0 {
		c.tryWrite(msg)
	}
	_ = c.Conn.Close()
}

// LifetimeOver reports whether the connection has reached its maximum
// lifetime (so a deadline error means that, not idleness).
func (c *Conn) LifetimeOver() bool {
	return !c.end.IsZero() && !time.Now().Before(c.end)
}

// SetPhaseDeadline bounds every read and write until t, whatever the idle
// and write timeouts say: an absolute deadline for a phase such as the TLS
// handshake, which a client cannot extend by dripping bytes. The zero time
// removes it.
func (c *Conn) SetPhaseDeadline(t time.Time) {
	if t.IsZero() {
		c.phase.Store(0)
		return
	}
	c.phase.Store(t.UnixNano())
}

// deadlineAt is now+d, or the phase deadline or the end of the lifetime
// if one of those comes first.
func (c *Conn) deadlineAt(now time.Time, d time.Duration) time.Time {
	t := now.Add(d)
	if p := c.phase.Load(); p != 0 && p < t.UnixNano() {
		t = time.Unix(0, p)
	}
	if !c.end.IsZero() && c.end.Before(t) {
		t = c.end
	}
	return t
}

// ID numbers the connection, from 1, in accept order.
func (c *Conn) ID() uint64 { return c.id }

// Start is when the connection was accepted.
func (c *Conn) Start() time.Time { return c.start }

// Read reads with the idle deadline. After the server starts shutting down it
// returns ErrShutdown instead of waiting for more.
//
// The socket's deadline is set only when the one set for an earlier read
// would come after this read's, or has passed: a deadline that comes
// earlier is kept, which saves a timer update per read, and if it fires
// before this read's deadline the read is made again with the right one.
// Each read still waits exactly until its own deadline.
func (c *Conn) Read(b []byte) (int, error) {
	if c.draining.Load() {
		return 0, ErrShutdown
	}
	now := time.Now()
	d := c.deadlineAt(now, c.idleTimeout)
	short := false
	if c.idle {
		if t := now.Add(c.parkAfter); t.Before(d) {
			c.parkAt, d, short = d, t, true
		}
	}
	early := keeps(c.readDL, d, now)
	if !early {
		set := c.setReadDeadline
		if w := c.deadlineAt(now, c.write); !short && c.phase.Load() != 0 && w.Equal(d) && !keeps(c.writeDL, w, now) {
			// In a phase (the handshake) its deadline bounds the reads
			// and the writes alike: one call sets both, and the phase's
			// first write keeps it.
			set = c.setDeadline
		}
		if err := set(d); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if early && n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.draining.Load() && time.Now().Before(d) {
		// The earlier read's deadline: wait on until this one's.
		if err := c.setReadDeadline(d); err != nil {
			return 0, err
		}
		n, err = c.Conn.Read(b)
	}
	if err == io.EOF {
		c.peerDone = true
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		switch {
		case c.draining.Load():
			err = ErrShutdown
		case short:
			err = ErrParkDue
		}
	}
	return n, err
}

// keeps reports whether set, the deadline on the socket, can stay for an
// operation starting now whose deadline is d: it is known, comes no later
// than d, and has not passed.
func keeps(set, d, now time.Time) bool {
	return !set.IsZero() && !set.After(d) && set.After(now)
}

// setReadDeadline sets the socket's read deadline to d, and returns
// ErrShutdown if the server started shutting down: drain sets its flag,
// then a past deadline, so checking the flag after setting d means one of
// the two always wins: either this sees the flag, or drain's deadline
// comes after d.
func (c *Conn) setReadDeadline(d time.Time) error {
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return err
	}
	c.readDL = d
	if c.draining.Load() {
		return ErrShutdown
	}
	return nil
}

// setDeadline sets both of the socket's deadlines to d, and returns
// ErrShutdown as setReadDeadline does. A write it races with drain for
// meets drain's flag: Write checks it on the deadline it keeps.
func (c *Conn) setDeadline(d time.Time) error {
	if err := c.Conn.SetDeadline(d); err != nil {
		return err
	}
	c.readDL, c.writeDL = d, d
	if c.draining.Load() {
		return ErrShutdown
	}
	return nil
}

// Write writes with the write deadline, set as Read sets its own: an
// earlier write's deadline that comes sooner is kept, and a write it
// interrupts goes on with this one's.
//
// Once the server starts shutting down, a write during a phase (the TLS
// handshake: see SetPhaseDeadline) returns ErrShutdown: the phase is
// abandoned, as its reads are. Later writes, the answers to what the
// client already sent, go on.
func (c *Conn) Write(b []byte) (int, error) {
	now := time.Now()
	d := c.deadlineAt(now, c.write)
	early := keeps(c.writeDL, d, now)
	if !early {
		if err := c.setWriteDeadline(d); err != nil {
			return 0, err
		}
	} else if c.phaseAbandoned() {
		return 0, ErrShutdown
	}
	n, err := c.Conn.Write(b)
	if early && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(d) {
		if err := c.setWriteDeadline(d); err != nil {
			return n, err
		}
		var m int
		m, err = c.Conn.Write(b[n:])
		n += m
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.phaseAbandoned() {
		err = ErrShutdown
	}
	return n, err
}

// setWriteDeadline sets the socket's write deadline to d, and returns
// ErrShutdown if the server started shutting down during a phase: as for
// setReadDeadline, drain sets its flag and then a past write deadline, so
// either this sees the flag or drain's deadline comes after d.
func (c *Conn) setWriteDeadline(d time.Time) error {
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return err
	}
	c.writeDL = d
	if c.phaseAbandoned() {
		return ErrShutdown
	}
	return nil
}

// phaseAbandoned reports whether the server is shutting down while the
// connection is in a phase (its handshake).
func (c *Conn) phaseAbandoned() bool {
	return c.draining.Load() && c.phase.Load() != 0
}

// SetReadDeadline sets the socket's read deadline. The next Read keeps it
// if it comes no later than its own, as it keeps one it set itself.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.readDL = time.Time{}
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	c.readDL = t
	return nil
}

// SetWriteDeadline sets the socket's write deadline. crypto/tls does
// around its close_notify: 5 s ahead, which the alert's Write keeps
// instead of setting its own (the write timeout, if longer, still
// bounds the write: Write goes on after the earlier deadline), then
// now, after it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.writeDL = time.Time{}
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.writeDL = t
	return nil
}

// SetDeadline sets both deadlines, which the next Read and Write keep as
// they keep their own.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL, c.writeDL = time.Time{}, time.Time{}
	if err := c.Conn.SetDeadline(t); err != nil {
		return err
	}
	c.readDL, c.writeDL = t, t
	return nil
}

// drain makes a blocked or future Read return ErrShutdown, and so a
// blocked or future Write during a phase (the handshake). Bytes already
// read and buffered by the handler are still handled.
func (c *Conn) drain() {
	c.draining.Store(true)
	_ = c.Conn.SetReadDeadline(aLongTimeAgo)
	if c.phase.Load() != 0 {
		_ = c.Conn.SetWriteDeadline(aLongTimeAgo)
	}
	c.wakeParked()
}

// wakeParked wakes the connection if it is parked.
func (c *Conn) wakeParked() {
	if w := c.waiter.Load(); w != nil {
		w.Wake()
	}
}

// closeGracefully closes the connection so the peer gets everything written
// to it. Closing a TCP socket with unread input makes the kernel send a
// reset, and a reset can make the peer's kernel drop replies the peer has
// not read yet, such as the error reply to an over-long line. So: send FIN,
// discard input until the peer closes too or lingerTimeout passes, then
// close. (net/http's closeWriteAndWait does the same.)
//
// A peer that ended its stream (Read met EOF, or the handler called
// PeerDone) sends nothing more to discard: its connection closes at once.
func (c *Conn) closeGracefully() {
	if c.closed.Load() {
		return
	}
	if c.peerDone {
		_ = c.Conn.Close()
		return
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		if c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
			_, _ = io.Copy(io.Discard, c.Conn)
		}
	}
	_ = c.Conn.Close()
}

// Reason describes in a few words why reading or writing on a connection
// failed, for logs and close events.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrShutdown):
		return "shutdown"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return err.Error()
}

// PeerDone tells the listener that the peer ended its stream above TCP
// (a TLS close_notify, say): it promised to send nothing more, so the
// lingering close has nothing to wait for.
func (c *Conn) PeerDone() { c.peerDone = true }

// CanPark reports whether the connection can park: the server has a
// Poller and a park delay, and the connection a socket.
func (c *Conn) CanPark() bool { return c.parkAfter > 0 }
