package exchange

import (
	"errors"
	"io"
)

// Observer is told what happens on a connection, in order. The exchange
// calls Message before it writes the reply, so a message a client got an
// answer for has always been observed (printed) first.
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
	f := NewFramer(rw, opts.MaxLine)
	// Messages are only lent to obs during Run: the buffer can go back to
	// the pool however Run ends (with Once, the Framer would drop it).
	defer f.release()
	out := make([]byte, 0, len(opts.Reply)+1)
	out = append(append(out, opts.Reply...), '\n')
	var res Result
	for {
		if opts.Pace != nil {
			if err := opts.Pace(); err != nil {
				res.End, res.Err, res.BytesIn = EndReadError, err, f.BytesRead()
				return res
			}
		}
		msg, err := f.Next()
		if err != nil {
			res.BytesIn = f.BytesRead()
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
