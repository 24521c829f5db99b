package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Output says where IssueClientFiles and IssueServerFiles write. The zero
// value writes into the current directory, names the files after the
// certificate, and refuses to overwrite.
type Output struct {
	// Dir is the directory to write into, created (mode 0755) if missing.
	// Empty means the current directory.
	Dir string
	// Name is the base file name: the certificate goes to NAME.pem and its
	// key to NAME-key.pem. Empty means the client's CN, or the server's
	// first host, with characters unsafe in file names replaced by "_" and a
	// leading "*" spelled "_wildcard" (as mkcert does).
	Name string
	// Force allows replacing existing files.
	Force bool
}

// IssueResult is what IssueClientFiles and IssueServerFiles made.
type IssueResult struct {
	// Cert is the certificate issued, with its key.
	Cert *Cert
	// CertFile is the path of the certificate's PEM file.
	CertFile string
	// KeyFile is the path of the private key's PEM file.
	KeyFile string
}

// IssueClientFiles issues a client certificate from ca (see CA.IssueClient)
// and writes it as out.Name.pem and out.Name-key.pem in out.Dir, under the
// same rules as Init: neither file is written if either exists, unless
// out.Force.
func IssueClientFiles(ca *CA, out Output, opts ClientOptions) (*IssueResult, error) {
	c, err := ca.IssueClient(opts)
	if err != nil {
		return nil, err
	}
	return writeIssued(c, out, c.Certificate.Subject.CommonName)
}

// IssueServerFiles issues a server certificate from ca (see CA.IssueServer)
// and writes it as out.Name.pem and out.Name-key.pem in out.Dir, under the
// same rules as Init: neither file is written if either exists, unless
// out.Force.
func IssueServerFiles(ca *CA, out Output, opts ServerOptions) (*IssueResult, error) {
	c, err := ca.IssueServer(opts)
	if err != nil {
		return nil, err
	}
	first := DefaultHosts()[0]
	if len(opts.Hosts) > 0 {
		first = strings.Trim(strings.TrimSpace(opts.Hosts[0]), "[]")
	}
	return writeIssued(c, out, first)
}

// writeIssued writes c under out's rules, naming the files after
// defaultName when out.Name is empty.
func writeIssued(c *Cert, out Output, defaultName string) (*IssueResult, error) {
	name := out.Name
	if name == "" {
		name = fileName(defaultName)
	} else if err := checkFileName(name); err != nil {
		return nil, fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
	}
	dir := out.Dir
	if dir == "" {
		dir = "."
	}
	keyPEM, err := c.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
	}
	paths, err := writeFiles(dir, []file{
		{name: name + ".pem", data: c.CertPEM(), mode: certMode},
		{name: name + "-key.pem", data: keyPEM, mode: keyMode},
	}, out.Force)
	if err != nil {
		return nil, fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
	}
	return &IssueResult{Cert: c, CertFile: paths[0], KeyFile: paths[1]}, nil
}

// WriteFiles writes c's certificate to certFile (mode 0644) and its key to
// keyFile (mode 0600), each atomically. Unless force, it writes neither if
// either exists.
func (c *Cert) WriteFiles(certFile, keyFile string, force bool) error {
	keyPEM, err := c.KeyPEM()
	if err != nil {
		return fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
	}
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{certFile, c.CertPEM(), certMode},
		{keyFile, keyPEM, keyMode},
	}
	if !force {
		for _, f := range files {
			if err := checkAbsent(f.path); err != nil {
				return fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
			}
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), dirMode); err != nil {
			return fmt.Errorf("write certificate %s: create directory: %w", c.Certificate.Subject, err)
		}
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("write certificate %s: %w", c.Certificate.Subject, err)
		}
	}
	return nil
}

// File modes. Private keys are readable by their owner only; certificates
// and the README are public.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o755
)

// file is one file to write: its base name, contents and mode.
type file struct {
	name string
	data []byte
	mode fs.FileMode
}

// writeFiles writes files into dir, creating dir if needed, and returns
// their paths in order. Unless force, it first checks every target and
// writes nothing if any exists, so a refused run leaves dir as it was.
func writeFiles(dir string, files []file, force bool) ([]string, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f.name)
	}
	if !force {
		for _, p := range paths {
			if err := checkAbsent(p); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	for i, f := range files {
		if err := writeFileAtomic(paths[i], f.data, f.mode); err != nil {
			return paths[:i], err
		}
	}
	return paths, nil
}

// checkAbsent returns an error wrapping fs.ErrExist if path exists (even as a
// dangling symlink), naming it.
func checkAbsent(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("refusing to overwrite %s: %w", path, fs.ErrExist)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("check %s: %w", path, err)
	}
}

// writeFileAtomic writes data to path with mode through a temporary file in
// the same directory and a rename, so a reader (or a server reloading on
// SIGHUP) sees the old file or the new one, never a partial one. The
// temporary file is created with mode 0600, so a key is never readable by
// others, even for a moment.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fileName turns a CN or host into a safe base file name.
func fileName(s string) string {
	if rest, ok := strings.CutPrefix(s, "*"); ok {
		s = "_wildcard" + rest
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		default:
			return '_'
		}
	}, s)
	if name == "" || strings.Trim(name, ".") == "" {
		name = "cert"
	}
	return name
}

// checkFileName checks that an explicit base name names a file in the output
// directory, not a path elsewhere.
func checkFileName(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, os.PathSeparator) {
		return fmt.Errorf("file name %q must be a plain name, without a directory", name)
	}
	return nil
}
