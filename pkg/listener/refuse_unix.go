//go:build unix

package listener

import "syscall"

// tryWrite makes one non-blocking write of b to the socket under c, if
// there is one, and never waits: a refusal must cost the server no more
// than one system call, whatever the peer does. A socket's send buffer is
// empty when it has just been accepted, so a short message goes out whole.
func (c *Conn) tryWrite(b []byte) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Write(func(fd uintptr) bool {
		_, _ = syscall.Write(int(fd), b)
		return true // done, whether it wrote or would have blocked
	})
}
