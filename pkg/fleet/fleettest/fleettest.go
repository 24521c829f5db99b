// Package fleettest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped at the test's end.
package fleettest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server started by StartRedis.
type Redis struct {
	t    testing.TB
	Port int
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server with extra arguments (e.g. "--requirepass",
// "secret") and waits until it says it accepts connections. A missing
// redis-server fails the test: make test installs it.
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &Redis{t: t, Port: port, args: args}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

// URL is redis://127.0.0.1:port/db.
func (r *Redis) URL(db int) string { return fmt.Sprintf("redis://%s/%d", r.Addr(), db) }

// Start (re)starts the server on its port, empty.
func (r *Redis) Start() {
	r.t.Helper()
	args := append([]string{"--port", fmt.Sprint(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.t.TempDir(), "--loglevel", "notice"}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server (is it installed? make test installs it): %v", err)
	}
	ready := make(chan struct{})
	r.done = make(chan struct{})
	var log strings.Builder
	go func() {
		s := bufio.NewScanner(out)
		signalled := false
		for s.Scan() {
			if !signalled {
				log.WriteString(s.Text() + "\n")
			}
			if !signalled && strings.Contains(s.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		_ = r.cmd.Wait()
		if !signalled {
			close(ready)
		}
		close(r.done)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second): // a hang guard
		r.t.Fatalf("redis-server did not start within 30s")
	}
	select {
	case <-r.done:
		r.t.Fatalf("redis-server exited at start:\n%s", log.String())
	default:
	}
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}
