package exchange

import (
	"errors"
	"io"
)

// Observer is told what happens on a connection, in order. The exchange
// calls Message before it writes the reply, so a message a client got an
// answer for has always been observed (handed to the printer) first.
type Observer interface {
	// Message is a message received, without its line terminator. The slice
	// is only valid during the call.
	Message(msg []byte)
	// Reply is a reply written in full to the client, without its newline.
	Reply(reply []byte)
}

// Options configure one exchange. The zero value is not usable: Reply and
// MaxLine must be set.
type Options struct {
	// Reply is written after every message, followed by a newline.
	Reply []byte
	// MaxLine is the longest message accepted, in bytes, not counting the
	// line terminator. A longer line gets an error reply and ends the
	// exchange.
	MaxLine int
	// Once ends the exchange after the first reply.
	Once bool
	// Pace, if set, is called before each message is read, and may block
	// to slow a chatty client (a per-connection rate limit costs the
	// server nothing but a sleeping goroutine). An error ends the exchange
	// as a read error.
	Pace func() error
	// Parker, if set, lets the exchange stop at a line boundary while
	// the client is silent (End EndParked) and go on later with Resume.
	Parker Parker
}

// Parker is told when the exchange reads with nothing buffered (framed
// and unread), and says which errors of such a read mean "park now".
// Such an error must be temporary for the reader: a tls.Conn, for one,
// stays usable after a read that timed out, keeping a partial record.
type Parker interface {
	// Idle is called with true before a read that starts with nothing
	// buffered, and with false after it.
	Idle(on bool)
	// ParkDue reports whether err, from a read made while idle, means
	// the exchange should stop and park.
	ParkDue(err error) bool
}

// End says why an exchange ended.
type End int

// The ways an exchange ends.
const (
	// EndEOF: the client closed its side (after any final message was answered).
	EndEOF End = iota
	// EndOnce: one message was answered and Options.Once is set.
	EndOnce
	// EndLineTooLong: a line over Options.MaxLine; the client got an error reply.
	EndLineTooLong
	// EndReadError: reading failed (Result.Err says why: a deadline, a reset, ...).
	EndReadError
	// EndWriteError: writing a reply failed (Result.Err says why).
	EndWriteError
	// EndParked: the client was silent with nothing buffered and
	// Options.Parker said to park. The exchange is not over: Resume it
	// with this Result once the client sends or hangs up.
	EndParked
)

func (e End) String() string {
	switch e {
	case EndEOF:
		return "client closed"
	case EndOnce:
		return "once"
	case EndLineTooLong:
		return "line too long"
	case EndReadError:
		return "read error"
	case EndWriteError:
		return "write error"
	case EndParked:
		return "parked"
	}
	return "unknown"
}

// Result sums up an exchange.
type Result struct {
	End      End
	Err      error // the read or write error behind EndReadError and EndWriteError
	Messages int
	BytesIn  int64
	BytesOut int64
}

// Run reads messages from rw until the client closes, an error occurs, the
// line limit is exceeded or, with Once, the first reply is written. Each
// message goes to obs and is answered with the reply. Data after the last
// newline is answered too when the stream ends, so a client that half-closes
// without a final newline still gets its answer.
//
// Run does not close rw.
func Run(rw io.ReadWriter, opts Options, obs Observer) Result {
	return Resume(rw, opts, obs, Result{})
}

// Resume goes on with an exchange that ended with EndParked, where it
// stopped: at a line boundary, with nothing buffered. prev is the Result
// it returned; the new Result counts on from it. With a zero prev it is
// Run.
func Resume(rw io.ReadWriter, opts Options, obs Observer, prev Result) Result {
	f := NewFramer(rw, opts.MaxLine)
	f.park = opts.Parker
	f.total = prev.BytesIn
	// The message the exchange was waiting for when it parked was paced
	// already.
	paced := prev.End == EndParked
	// Messages are only lent to obs during Run: the buffer can go back to
	// the pool however Run ends (with Once, the Framer would drop it).
	defer f.release()
	out := make([]byte, 0, len(opts.Reply)+1)
	out = append(append(out, opts.Reply...), '\n')
	res := Result{Messages: prev.Messages, BytesOut: prev.BytesOut}
	for {
		if opts.Pace != nil && !paced {
			if err := opts.Pace(); err != nil {
				res.End, res.Err, res.BytesIn = EndReadError, err, f.BytesRead()
				return res
			}
		}
		paced = false
		msg, err := f.Next()
		if err != nil {
			res.BytesIn = f.BytesRead()
			if err == errParked {
				res.End = EndParked
				return res
			}
			var tooLong *LineTooLongError
			switch {
			case errors.As(err, &tooLong):
				res.End = EndLineTooLong
				n, _ := io.WriteString(rw, "error: "+tooLong.Error()+"\n")
				res.BytesOut += int64(n)
			case errors.Is(err, io.EOF):
				res.End = EndEOF
			default:
				res.End, res.Err = EndReadError, err
			}
			return res
		}
		res.Messages++
		obs.Message(msg)
		n, err := rw.Write(out)
		res.BytesOut += int64(n)
		if err != nil {
			res.End, res.Err, res.BytesIn = EndWriteError, err, f.BytesRead()
			return res
		}
		obs.Reply(opts.Reply)
		if opts.Once {
			res.End, res.BytesIn = EndOnce, f.BytesRead()
			return res
		}
	}
}
