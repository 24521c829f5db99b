package output

import (
	"io"
	"net"
	"strconv"
	"time"

	"github.com/seclisten/seclisten/pkg/batch"
	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/sanitize"
)

// Format selects how events are printed.
type Format int

// The output formats.
const (
	// Text prints each message as "[peer] message" and nothing else.
	Text Format = iota
	// JSON prints one JSON object per event, one per line.
	JSON
)

// Printer writes events to one writer. Lines from concurrent connections
// never interleave: each is built whole, under a lock, at the end of the
// lines waiting to be written (package batch).
//
// The waiting lines are written together, in one Write, as soon as the
// goroutines ready to run have run: under load the lines of many
// connections cost one system call instead of one each, and a lone
// client's line is written at once. A line may so reach the writer just
// after its reply reaches the client; Flush writes what waits (the
// server flushes once its connections have ended). A writer that falls
// behind slows the connections that print: at most batch.MaxPending
// bytes wait, plus one line. It is safe for concurrent use.
type Printer struct {
	out    *batch.Writer
	format Format
	now    func() time.Time
}

// New returns a Printer writing to w in the given format.
func New(w io.Writer, format Format) *Printer {
	return &Printer{out: batch.New(w), format: format, now: time.Now}
}

// Flush writes the lines printed so far, if any, and returns once they
// are written.
func (p *Printer) Flush() { p.out.Flush() }

// Conn returns the printer of one connection. id numbers the connection in
// JSON events; peer names it (an address now; a certificate identity once
// one is known) and prefixes every message in text mode.
func (p *Printer) Conn(id uint64, peer string) *Conn {
	return &Conn{p: p, id: id, name: peer}
}

// Conn prints the events of one connection. Its methods must not be called
// concurrently with each other.
type Conn struct {
	p      *Printer
	id     uint64
	name   string // the peer's name as given
	prefix []byte // "[name] ", sanitized; made when first printed
}

// SetPeer changes how the connection is named from now on.
func (c *Conn) SetPeer(peer string) {
	c.name, c.prefix = peer, c.prefix[:0]
}

// named is "[peer] ", made once per name: a connection that prints
// nothing, such as a handshake alone in text mode, never makes it.
func (c *Conn) named() []byte {
	if len(c.prefix) == 0 {
		// A certificate name can be megabytes long: the prefix of every
		// message is bounded like any client string.
		c.prefix = sanitize.Append(append(c.prefix, '['), []byte(clienthello.String(c.name)))
		c.prefix = append(c.prefix, "] "...)
	}
	return c.prefix
}

// Connect prints the connect event (JSON only). The local address is
// formatted only then.
func (c *Conn) Connect(remote string, local net.Addr) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("connect")
	b = appendField(b, "remote_addr", []byte(remote))
	b = appendField(b, "local_addr", []byte(local.String()))
	c.end(b)
}

// Message prints a message received. In text mode that is the whole output:
// "[peer] message".
func (c *Conn) Message(msg []byte) {
	if c.p.format != JSON {
		p := c.named()
		b := append(c.p.out.Lock(), p...)
		b = sanitize.Append(b, msg)
		c.p.out.Unlock(append(b, '\n'))
		return
	}
	b := c.begin("message")
	b = appendField(b, "text", msg)
	b = appendInt(b, "bytes", int64(len(msg)))
	c.end(b)
}

// Reply prints a reply sent (JSON only).
func (c *Conn) Reply(reply []byte) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("reply")
	b = appendField(b, "text", reply)
	b = appendInt(b, "bytes", int64(len(reply)))
	c.end(b)
}

// Summary is what the close event reports.
type Summary struct {
	Reason   outcome.Code
	Messages int
	BytesIn  int64
	BytesOut int64
	Duration time.Duration
}

// Close prints the close event (JSON only).
func (c *Conn) Close(s Summary) {
	if c.p.format != JSON {
		return
	}
	b := c.begin("close")
	b = appendField(b, "reason", []byte(s.Reason))
	b = appendInt(b, "messages", int64(s.Messages))
	b = appendInt(b, "bytes_in", s.BytesIn)
	b = appendInt(b, "bytes_out", s.BytesOut)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(s.Duration.Microseconds())/1000, 'f', 3, 64)
	c.end(b)
}

// begin starts a JSON event at the end of the waiting lines, under the
// printer's lock (batch.Writer.Lock): the lines so far and the event's start.
func (c *Conn) begin(event string) []byte {
	p := c.named()
	b := c.p.out.Lock()
	b = append(b, `{"time":"`...)
	b = c.p.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event":"`...)
	b = append(b, event...)
	b = append(b, '"')
	b = appendInt(b, "conn_id", int64(c.id))
	b = append(b, `,"peer":`...)
	return appendString(b, p[1:len(p)-2])
}

// end ends the event that b ends with, and unlocks the printer.
func (c *Conn) end(b []byte) {
	c.p.out.Unlock(append(b, '}', '\n'))
}

// appendField appends ,"key":"value" with value sanitized: into b, then
// escaped where it lies (a message printed allocates nothing).
func appendField(b []byte, key string, value []byte) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	start := len(b)
	b = escapeTail(sanitize.Append(b, value), start)
	return append(b, '"')
}

// escapeTail escapes b[start:], sanitized text, for a JSON string: a
// backslash before each quote and backslash, moving the text up in place.
func escapeTail(b []byte, start int) []byte {
	n := 0
	for _, c := range b[start:] {
		if c == '"' || c == '\\' {
			n++
		}
	}
	if n == 0 {
		return b
	}
	end := len(b)
	b = append(b, make([]byte, n)...)
	j := len(b)
	for i := end - 1; i >= start; i-- {
		c := b[i]
		j--
		b[j] = c
		if c == '"' || c == '\\' {
			j--
			b[j] = '\\'
		}
	}
	return b
}

func sanitizeString(s string) []byte { return sanitize.Append(nil, []byte(s)) }

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

// appendString appends s, already sanitized, as a JSON string. Sanitized text
// holds no control characters, so only the quote and the backslash need
// escaping.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := len(b)
	return append(escapeTail(append(b, s...), start), '"')
}

// JSON reports whether the printer prints JSON events.
func (p *Printer) JSON() bool { return p.format == JSON }
