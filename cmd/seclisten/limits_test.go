package main

import (
	"fmt"
	"strings"
	"sync/atomic"
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
		{"127.0.0.66", false, "deny-list"},
		{"127.0.1.1", false, "not-in-allow-list"},
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
			p.await("refusal of "+tt.src, func() bool {
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
	const lifetime = time.Second
	p := startServer(t, "--max-lifetime", lifetime.String(), "--json")
	// Before the dial: the lifetime, counted from accept, cannot start
	// earlier.
	start := time.Now()
	c := newClient(t, p.addr)
	// A busy client: a message every 100 ms (the pause is the behaviour
	// under test: never idle, never flooding), until the server closes.
	for i := 0; ; i++ {
		if time.Since(start) > hangGuard {
			t.Fatalf("connection still open after %s", hangGuard)
		}
		c.send(fmt.Sprintf("still busy %d\n", i))
		if _, err := c.readLine(); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < lifetime {
		t.Errorf("connection closed after %s, before its %s lifetime", d, lifetime)
	}
	p.await("the close event", func() bool { return strings.Contains(p.stdout.String(), `"reason":"max-lifetime"`) })
	p.stop()
}

// --msg-rate slows a chatty client, without slowing anyone else.
func TestMessageRate(t *testing.T) {
	// 1,000 lines at 5/s take over three minutes to answer: the chatty
	// client is being paced all through the test, however slow the
	// machine.
	const lines = 1000
	p := startServer(t, "--msg-rate", "5", "--msg-burst", "1", "--reply", "ok")
	chatty := newClient(t, p.addr)
	start := time.Now()
	chatty.send(strings.Repeat("chat\n", lines))
	var answered atomic.Int64
	paced := make(chan struct{})         // closed at the second reply: pacing has begun
	sixth := make(chan time.Duration, 1) // when the sixth reply came
	go func() {
		_ = chatty.conn.SetReadDeadline(time.Now().Add(hangGuard))
		for {
			if _, err := chatty.r.ReadString('\n'); err != nil {
				return // closed below
			}
			switch answered.Add(1) {
			case 2:
				close(paced)
			case 6:
				sixth <- time.Since(start)
			}
		}
	}()
	select {
	case <-paced:
	case <-time.After(hangGuard):
		t.Fatal("the chatty client got no second reply")
	}
	// Meanwhile another client is answered.
	other := newClient(t, p.addr)
	other.send("quick\n")
	other.expectLine("ok")
	if n := answered.Load(); n >= lines {
		t.Errorf("the other client was answered only after all %d paced replies", n)
	}
	// The replies are paced: the first at once, then one every 200 ms, so
	// the sixth a second or more after the lines were sent.
	select {
	case d := <-sixth:
		if d < 900*time.Millisecond {
			t.Errorf("6 messages at 5/s (burst 1) were answered in %s, want 1s or more", d)
		}
	case <-time.After(hangGuard):
		t.Fatal("the chatty client got no sixth reply")
	}
	chatty.conn.Close()
	other.conn.Close()
	p.stop()
}
