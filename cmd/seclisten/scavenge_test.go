//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// heapReturned is the debug record of a return of the heap to the system
// (pkg/scavenge).
const heapReturned = "free heap returned to the system"

// After thousands of clients connect and fall silent, the server gives
// back the heap their handshakes left: a debug record says how much, the
// resident memory falls from its peak, and every connection stays open
// and served.
func TestIdleHeapReturned(t *testing.T) {
	const n = 6000
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, append([]string{"--log-level", "debug", "--metrics-addr", maddr}, noLimits...)...)
	// The real load generator holds n connections, each after a
	// handshake and one exchange, silent until it is killed.
	startCmd(t, seclistenCmd(t, "bench", "--addr", p.addr, "--mode", "idle", "--conns", fmt.Sprint(n),
		"--concurrency", "16", "--duration", "10m"))
	// The handshakes take seconds on a busy machine; the return comes a
	// second after the last of them.
	rec := p.waitLogWithin(heapReturned, 1, 4*hangGuard)
	// Twice the heap floor (32 MiB) was spare, less what the process
	// needed again by the time of the return.
	if b, _ := rec["bytes"].(float64); b < 16<<20 || rec["level"] != "DEBUG" {
		t.Errorf("record %v: want at least 16 MiB returned, at debug", rec)
	}
	waitMetric(t, maddr, "seclisten_connections_parked", equals(n))
	rss, peak := p.status("VmRSS"), p.status("VmHWM")
	t.Logf("%d idle connections: VmRSS %d kB, peak %d kB; %v", n, rss, peak, rec)
	if peak-rss < 16<<10 {
		t.Errorf("VmRSS %d kB, peak %d kB: want it at least 16 MiB below the peak", rss, peak)
	}
	// One more client is served as before.
	c, err := dialLine(p.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.exchange("after the return"); err != nil {
		t.Errorf("a client after the return: %v", err)
	}
	if got := scrape(t, maddr, "seclisten_connections_parked"); got < n {
		t.Errorf("%v connections parked after the return, want the %d still open", got, n)
	}
}
