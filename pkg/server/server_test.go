package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/internal/lockedbuf"
)

// hangGuard bounds every wait for an event a test expects: far beyond what
// even a loaded machine needs, it only stops a broken test from hanging.
const hangGuard = 30 * time.Second

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// 1,000 connections through the real listener, every way a client can end:
// afterwards no goroutine and no file descriptor is left behind, and Serve
// returns after the shutdown.
func TestServeLeaksNothing(t *testing.T) {
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Plain = true
	cfg.IdleTimeout = 2 * time.Second
	cfg.Limits.Rate, cfg.Limits.MaxConnsPerIP = 0, 0 // 1,000 clients from one address, on purpose
	out := &lockedbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- srv.Serve(ctx, ln) }()

	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(hangGuard))
			switch i % 5 {
			case 0:
				fmt.Fprintf(c, "line %d\n", i)
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					t.Errorf("read reply: %v", err)
				}
			case 1: // leave at once
			case 2: // reset mid-line
				fmt.Fprint(c, "partial")
				_ = c.(*net.TCPConn).SetLinger(0)
			case 3: // over-long line
				fmt.Fprint(c, strings.Repeat("x", 70<<10))
				_, _ = io.Copy(io.Discard, c)
			case 4: // half-close without newline
				fmt.Fprint(c, "tail")
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}
		}()
	}
	wg.Wait()
	// One client stays connected through the shutdown: served (it has its
	// answer), and idle in the server's read when the shutdown comes.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetDeadline(time.Now().Add(hangGuard))
	fmt.Fprint(idle, "idle from now on\n")
	if _, err := bufio.NewReader(idle).ReadString('\n'); err != nil {
		t.Fatalf("idle client: read reply: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Serve did not return after the shutdown")
	}
	idle.Close()

	// Nothing reports the last goroutines' exit or descriptors' close:
	// poll the counts, under the hang guard.
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > baseG || openFDs(t) > baseFD) {
		time.Sleep(20 * time.Millisecond) // between polls, not to synchronise
	}
	if g := runtime.NumGoroutine(); g > baseG {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, baseline %d:\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n > baseFD {
		t.Errorf("%d fds open, baseline %d", n, baseFD)
	}
	if got := strings.Count(out.String(), "] line "); got != 200 {
		t.Errorf("%d full-exchange lines printed, want 200", got)
	}
	if got := strings.Count(out.String(), "] tail\n"); got != 200 {
		t.Errorf("%d half-close tails printed, want 200", got)
	}
}
