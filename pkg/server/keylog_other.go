//go:build !unix

package server

import "io/fs"

// noFollow is 0 where open has no O_NOFOLLOW (Windows).
const noFollow = 0

// ownedByUs is false where FileInfo names no owner (Windows): an existing
// key log is refused there (its mode, which Windows reports as 0666 for a
// writable file, already is), and only a new one, made by openKeyLog, is
// used.
func ownedByUs(fs.FileInfo) bool { return false }
