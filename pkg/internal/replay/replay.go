// Package replay gives back bytes that were read from a connection to
// look at them (a PROXY header's tail, the first bytes of a ClientHello), so
// the next stage reads the stream from where it really starts.
package replay

import "net"

// Conn replays prefix before reading from the connection.
type Conn struct {
	net.Conn
	prefix []byte
}

// New returns c with prefix replayed first. prefix is not copied.
func New(c net.Conn, prefix []byte) *Conn { return &Conn{Conn: c, prefix: prefix} }

// Read returns the replayed bytes first.
func (c *Conn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
