//go:build !unix

package tlsconf

import "io/fs"

// inode is 0 where files have no inode number in their FileInfo
// (Windows): the material's fingerprint then rests on the size and the
// modification time alone.
func inode(fs.FileInfo) uint64 { return 0 }
