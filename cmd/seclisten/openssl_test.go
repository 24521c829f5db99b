package main

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sclient is a running `openssl s_client`, the client users reach for.
// A missing openssl fails the test: make test installs it.
type sclient struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	done   chan struct{}
}

// startSClient runs `openssl s_client -quiet -connect addr` with extra args.
// -quiet also keeps the connection open when stdin ends (-ign_eof).
func startSClient(t *testing.T, addr string, args ...string) *sclient {
	t.Helper()
	full := append([]string{"s_client", "-connect", addr, "-quiet"}, args...)
	sc := &sclient{t: t, cmd: exec.Command("openssl", full...), lines: make(chan string, 100),
		stderr: &lockedBuffer{}, done: make(chan struct{})}
	sc.cmd.Stderr = sc.stderr
	var err error
	if sc.stdin, err = sc.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := sc.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.cmd.Start(); err != nil {
		t.Fatalf("start openssl s_client (is openssl installed? make test installs it): %v", err)
	}
	// Wait closes the stdout pipe once s_client exits: it must run only
	// after the reader has read everything, or a line printed just before
	// the exit (a refusal, say) can be lost.
	read := make(chan struct{})
	go func() {
		defer close(read)
		r := bufio.NewReader(out)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				select {
				case sc.lines <- strings.TrimSuffix(l, "\n"):
				default: // nobody reads this many lines: never block the exit
				}
			}
			if err != nil {
				close(sc.lines)
				return
			}
		}
	}()
	go func() {
		<-read
		_ = sc.cmd.Wait()
		close(sc.done)
	}()
	t.Cleanup(func() {
		_ = sc.cmd.Process.Kill()
		<-sc.done
	})
	return sc
}

func (sc *sclient) send(s string) {
	sc.t.Helper()
	if _, err := io.WriteString(sc.stdin, s); err != nil {
		sc.t.Fatalf("write to s_client: %v; stderr:\n%s", err, sc.stderr.String())
	}
}

// expectLine waits (within the hang guard) for the next line s_client
// prints.
func (sc *sclient) expectLine(want string) string {
	sc.t.Helper()
	select {
	case got, ok := <-sc.lines:
		if !ok {
			sc.t.Fatalf("s_client ended before printing %q; stderr:\n%s", want, sc.stderr.String())
		}
		if want != "" && got != want {
			sc.t.Fatalf("s_client printed %q, want %q", got, want)
		}
		return got
	case <-time.After(hangGuard):
		sc.t.Fatalf("s_client printed nothing in %s; stderr:\n%s", hangGuard, sc.stderr.String())
	}
	return ""
}

// wait waits (within the hang guard) for s_client to end and returns its
// exit status.
func (sc *sclient) wait() int {
	sc.t.Helper()
	select {
	case <-sc.done:
	case <-time.After(hangGuard):
		sc.t.Fatalf("s_client still running after %s; stderr:\n%s", hangGuard, sc.stderr.String())
	}
	return sc.cmd.ProcessState.ExitCode()
}

// exchange is one s_client session: the line sent, and the reply read.
func exchangeWith(t *testing.T, addr, line, reply string, args ...string) *sclient {
	t.Helper()
	sc := startSClient(t, addr, args...)
	sc.send(line + "\n")
	sc.expectLine(reply)
	return sc
}

// pkiDir makes the development PKI with the binary itself, as a user does.
func pkiDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	out, err := seclistenCmd(t, "certs", "init", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("seclisten certs init: %v\n%s", err, out)
	}
	return dir
}

// certArgs are s_client's arguments to present the client certificate NAME
// of a PKI directory, and trust its CA.
func certArgs(dir, name string) []string {
	args := []string{"-CAfile", filepath.Join(dir, "ca.pem"), "-verify_return_error", "-servername", "localhost"}
	if name != "" {
		args = append(args, "-cert", filepath.Join(dir, name+".pem"), "-key", filepath.Join(dir, name+"-key.pem"))
	}
	return args
}

// mtlsArgs are seclisten's arguments to serve the PKI's server certificate
// and verify clients against its CA and CRL.
func mtlsArgs(dir string, extra ...string) []string {
	return append([]string{
		"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--client-ca", filepath.Join(dir, "ca.pem"), "--crl", filepath.Join(dir, "crl.pem"),
	}, extra...)
}
