//go:build unix

package tlsconf

import (
	"io/fs"
	"syscall"
)

// inode is the file's inode number, so that a file replaced by another of
// the same size and modification time (a rename over it) still changes
// the material's fingerprint.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) // not a uint64 on every unix
	}
	return 0
}
