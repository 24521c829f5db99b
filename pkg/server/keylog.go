package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// openKeyLog opens the key log file for appending. It must be new (it is
// made with mode 0600) or a regular file of ours that no one else can read
// or write: it holds every session's secrets.
func openKeyLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open key log %q: %w", path, err)
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("open key log %q: %w", path, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("key log %q: %w", path, err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("key log %q is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		err = fmt.Errorf("key log %q has mode %04o: others could read the session keys; use a new file, or chmod 600 it", path, fi.Mode().Perm())
	case !ownedByUs(fi):
		err = fmt.Errorf("key log %q belongs to another user", path)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}
