package main

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"
)

// --deny-cidr wins over --allow-cidr; addresses outside the allow list are
// refused before anything is read.
func TestAllowDenyCIDR(t *testing.T) {
	p := startServer(t, "--allow-cidr", "127.0.0.0/24", "--deny-cidr", "127.0.0.66", "--reject-log-interval", "200ms")
	for _, tt := range []struct {
		src    string
		served bool
		reason string
	}{
		{"127.0.0.65", true, ""},
		{"127.0.0.66", false, "deny list"},
		{"127.0.1.1", false, "not in allow list"},
	} {
		c, err := dialFrom(t, tt.src, p.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := exchangeRaw(c, "hello from "+tt.src)
		if served := err == nil && got == defaultReply; served != tt.served {
			t.Errorf("%s: served = %v (%q, %v), want %v", tt.src, served, got, err, tt.served)
		}
		if !tt.served {
			waitFor(t, "refusal of "+tt.src, func() bool {
				for _, r := range p.logRecords("refused connection") {
					if r["from"] == tt.src && r["reason"] == tt.reason {
						return true
					}
				}
				return false
			})
		}
	}
	if out := p.stdout.String(); strings.Contains(out, "127.0.0.66") || strings.Contains(out, "127.0.1.1") {
		t.Errorf("a refused client was printed: %q", out)
	}
	p.stop()
}

// --max-lifetime closes even a busy connection, and says why.
func TestMaxLifetime(t *testing.T) {
	p := startServer(t, "--max-lifetime", "1s", "--json")
	c := newClient(t, p.addr)
	start := time.Now()
	for i := 0; time.Since(start) < 5*time.Second; i++ {
		c.send(fmt.Sprintf("still busy %d\n", i))
		if _, err := c.readLine(); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("connection lived %s, want about 1s", d)
	}
	waitFor(t, "the close event", func() bool { return strings.Contains(p.stdout.String(), `"reason":"max lifetime"`) })
	p.stop()
}

// --msg-rate slows a chatty client, without slowing anyone else.
func TestMessageRate(t *testing.T) {
	p := startServer(t, "--msg-rate", "5", "--msg-burst", "1", "--reply", "ok")
	chatty := newClient(t, p.addr)
	start := time.Now()
	chatty.send(strings.Repeat("chat\n", 6))
	// The replies are paced: the first at once, then one every 200 ms.
	done := make(chan time.Duration, 1)
	go func() {
		r := bufio.NewReader(chatty.conn)
		_ = chatty.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range 6 {
			if _, err := r.ReadString('\n'); err != nil {
				break
			}
		}
		done <- time.Since(start)
	}()
	// Meanwhile another client is answered at once.
	time.Sleep(100 * time.Millisecond)
	other := newClient(t, p.addr)
	t0 := time.Now()
	other.send("quick\n")
	other.expectLine("ok")
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("the other client waited %s", d)
	}
	d := <-done
	if d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("6 messages at 5/s (burst 1) were answered in %s, want about 1s", d)
	}
	p.stop()
}
