package main

import (
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// replica is a seclisten behind the load balancer.
type replica struct {
	*proc
	metrics string
}

// startHAProxy runs the shipped scripts/haproxy.cfg in front of two
// replicas, with a short health-check interval.
func startHAProxy(t *testing.T, r1, r2 replica) string {
	t.Helper()
	fe := runHAProxy(t, nil, r1, r2)
	waitFor(t, "haproxy to send clients", func() bool {
		c, err := net.DialTimeout("tcp", fe, 200*time.Millisecond)
		if err != nil {
			return false
		}
		defer c.Close()
		got, err := exchangeRaw(c, "probe")
		return err == nil && got == defaultReply
	})
	return fe
}

// runHAProxy runs the shipped scripts/haproxy.cfg with the extra
// environment in front of the replicas (REPLICA1, REPLICA2, ...), with a
// short health-check interval, and returns its frontend address.
func runHAProxy(t *testing.T, env []string, replicas ...replica) string {
	t.Helper()
	haproxy, err := osexec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not installed (make test installs Debian's haproxy): %v", err)
	}
	fe := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	cmd := osexec.Command(haproxy, "-db", "-f", filepath.Join("..", "..", "scripts", "haproxy.cfg"))
	cmd.Env = append(os.Environ(), "SECLISTEN_FRONTEND="+fe, "CHECK_INTER=100ms")
	for i, r := range replicas {
		cmd.Env = append(cmd.Env, fmt.Sprintf("REPLICA%d=%s", i+1, r.addr), fmt.Sprintf("REPLICA%d_METRICS_PORT=%s", i+1, port(r.metrics)))
	}
	cmd.Env = append(cmd.Env, env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", tail(out.String(), 3000))
		}
	})
	return fe
}

func startReplica(t *testing.T, args ...string) replica {
	t.Helper()
	m := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServer(t, append([]string{"--proxy-protocol", "--trusted-proxy", "127.0.0.1", "--metrics-addr", m,
		"--shutdown-timeout", "5s"}, args...)...)
	return replica{p, m}
}

// Two replicas behind HAProxy: clients are printed with their own
// addresses, each client address stays on one replica, and stopping a
// replica gracefully loses no answered message while new clients go to
// the other one.
func TestReplicasBehindHAProxy(t *testing.T) {
	r1, r2 := startReplica(t), startReplica(t)
	fe := startHAProxy(t, r1, r2)

	// 20 client addresses, two connections each: both land on the same
	// replica, and are printed with the client's address.
	where := map[string]*replica{}
	for i := range 20 {
		src := fmt.Sprintf("127.0.0.%d", 50+i)
		for j := range 2 {
			c, err := dialFrom(t, src, fe)
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("from %s #%d", src, j)
			if got, err := exchangeRaw(c, msg); err != nil || got != defaultReply {
				t.Fatalf("%s: %q, %v", msg, got, err)
			}
			c.Close()
			var on *replica
			waitFor(t, "the line printed", func() bool {
				for _, r := range []*replica{&r1, &r2} {
					if strings.Contains(r.stdout.String(), "] "+msg+"\n") {
						on = r
						return true
					}
				}
				return false
			})
			if !strings.Contains(on.stdout.String(), "["+src+":") {
				t.Errorf("%s not printed with the client's address", msg)
			}
			if j == 1 && where[src] != on {
				t.Errorf("%s moved between replicas (balance source)", src)
			}
			where[src] = on
		}
	}
	var on1 []string
	for src, r := range where {
		if r == &r1 {
			on1 = append(on1, src)
		}
	}
	if len(on1) == 0 || len(on1) == len(where) {
		t.Fatalf("all 20 clients on one replica: %d on replica 1", len(on1))
	}

	// Busy clients of replica 1, then a graceful stop of replica 1.
	var (
		mu       sync.Mutex
		answered []string
		wg       sync.WaitGroup
		busy     = make(chan struct{}, len(on1)) // one per client at its 5th answer
	)
	for k, src := range on1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom(t, src, fe)
			if err != nil {
				t.Errorf("dial from %s: %v", src, err)
				busy <- struct{}{}
				return
			}
			defer c.Close()
			for j := 0; j < 1000; j++ {
				msg := fmt.Sprintf("busy %d-%d", k, j)
				got, err := exchangeRaw(c, msg)
				if err != nil || got != defaultReply {
					if j < 5 {
						busy <- struct{}{} // stopped before the signal: counted, not waited for
					}
					return
				}
				mu.Lock()
				answered = append(answered, msg)
				mu.Unlock()
				if j == 4 {
					busy <- struct{}{}
				}
			}
		}()
	}
	// Every client is busy (5 answers each, and still sending) when the
	// signal comes.
	for range on1 {
		select {
		case <-busy:
		case <-time.After(hangGuard):
			t.Fatal("the busy clients did not get 5 answers each")
		}
	}
	code, took := r1.signal(syscall.SIGTERM, hangGuard)
	wg.Wait()
	if code != 0 {
		t.Errorf("replica 1 exit status %d", code)
	}
	printed := r1.stdout.String() + r2.stdout.String()
	mu.Lock()
	for _, m := range answered {
		if strings.Count(printed, "] "+m+"\n") != 1 {
			t.Errorf("answered message %q printed %d times", m, strings.Count(printed, "] "+m+"\n"))
		}
	}
	t.Logf("replica 1 stopped in %s; %d messages answered during the stop, none lost", took, len(answered))
	mu.Unlock()

	// Replica 1's clients are now served by replica 2.
	for _, src := range on1 {
		c, err := dialFrom(t, src, fe)
		if err != nil {
			t.Fatal(err)
		}
		msg := "after the stop from " + src
		if got, err := exchangeRaw(c, msg); err != nil || got != defaultReply {
			t.Errorf("%s: %q, %v", msg, got, err)
			continue
		}
		waitFor(t, "replica 2 to print it", func() bool {
			return strings.Contains(r2.stdout.String(), "["+src+":")
		})
	}
	r2.stop()
}

// Two ACME replicas sharing one storage directory obtain one certificate
// for the domain between them (certmagic's storage locks), and serve the
// same certificate.
func TestACMEReplicasShareStorage(t *testing.T) {
	port1, port2 := freePort(t), freePort(t)
	// Pebble validates TLS-ALPN-01 on replica 1; whichever replica orders,
	// the challenge is in the shared storage and replica 1 answers it.
	peb := startPebble(t, pebbleOptions{tlsPort: port1, httpPort: freePort(t)})
	storage := t.TempDir()
	var (
		ps []*proc
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, port := range []int{port1, port2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := startServe(t, peb.acmeArgs(t, storage, "--addr", fmt.Sprintf("127.0.0.1:%d", port),
				"--acme-domain", "shared.seclisten.test", "--acme-http-addr", "off")...)
			mu.Lock()
			ps = append(ps, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, p := range ps {
		p.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	}
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders from two replicas on one storage, want 1", n)
	}
	s1 := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port1), "shared.seclisten.test")
	s2 := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port2), "shared.seclisten.test")
	if s1 != s2 {
		t.Errorf("replicas serve different certificates: %s and %s", s1, s2)
	}
	for _, p := range ps {
		p.stop()
	}
}
