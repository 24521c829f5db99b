//go:build !unix

package listener

// tryWrite does nothing where a single non-blocking write is not available:
// the refused peer sees the connection close.
func (c *Conn) tryWrite([]byte) {}
