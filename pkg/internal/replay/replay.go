// Package replay gives back bytes that were read from a connection to
// look at them (a PROXY header's tail, the first bytes of a ClientHello), so
// the next stage reads the stream from where it really starts.
package replay

import "net"

// Conn replays prefix before reading from the connection.
type Conn struct {
	net.Conn
	prefix  []byte
	release func() // called once when prefix has been replayed
}

// New returns c with prefix replayed first. prefix is not copied.
func New(c net.Conn, prefix []byte) *Conn { return &Conn{Conn: c, prefix: prefix} }

// NewReleased is New, and calls release once every byte of prefix has been
// read, when prefix is no longer used (a pooled buffer goes back).
func NewReleased(c net.Conn, prefix []byte, release func()) *Conn {
	c2 := Released(c, prefix, release)
	return &c2
}

// Released is NewReleased as a value, for a connection type that embeds
// a Conn: its Read and Write then reach c without loading a pointer to
// the Conn first (a memory access every call).
func Released(c net.Conn, prefix []byte, release func()) Conn {
	return Conn{Conn: c, prefix: prefix, release: release}
}

// Read returns the replayed bytes first.
func (c *Conn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			// Keep no reference to the buffer for the rest of the
			// connection's life.
			c.prefix = nil
			if c.release != nil {
				c.release()
				c.release = nil
			}
		}
		return n, nil
	}
	return c.Conn.Read(b)
}
