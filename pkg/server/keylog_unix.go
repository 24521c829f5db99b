//go:build unix

package server

import (
	"io/fs"
	"os"
	"syscall"
)

// noFollow makes openKeyLog refuse a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// ownedByUs reports whether the file belongs to the effective user.
func ownedByUs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Geteuid()
}
