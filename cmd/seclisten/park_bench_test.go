//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Benchmarks of parked idle connections (BENCHMARKS.md, "Parked idle
// connections (issue [8/8])"):
//
//	go test ./cmd/seclisten -run '^$' -bench ParkFirstLine -benchtime 300x
//	go test ./cmd/seclisten -run '^$' -bench ParkIdleMemory -benchtime 1x -count 3
//
// (ParkIdleMemory opens 2,000 TLS connections per iteration: run it 1x.)

// BenchmarkParkFirstLine measures the round trip of the first line after
// a silence: on a connection parked during it, and on a connection of a
// server that never parks, interleaved, b.N samples each. It reports p50
// and p99 in µs and the p99 difference (target: at most 1 ms).
func BenchmarkParkFirstLine(b *testing.B) {
	dir := benchPKI(b)
	pm := freeAddrB(b)
	parkedSrv, _ := benchServe(b, dir, "--park-after", "1ms", "--metrics-addr", pm)
	plainSrv, _ := benchServe(b, dir, "--park-after", "0")
	cfg := clientTLS(b, dir)
	pc, err := dialLine(parkedSrv, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.close()
	uc, err := dialLine(plainSrv, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer uc.close()
	rtt := func(c *lineConn) time.Duration {
		start := time.Now()
		if err := c.exchange("x"); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	rtt(pc)
	rtt(uc)
	var parked, unparked []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		for scrape(b, pm, "seclisten_connections_parked") != 1 {
			time.Sleep(time.Millisecond) // between polls of the gauge (a benchmark, not a test)
		}
		parked = append(parked, rtt(pc))
		// The same silence for the connection that is never parked.
		time.Sleep(time.Since(start)) // the measured silence itself, not a synchronisation
		unparked = append(unparked, rtt(uc))
	}
	b.StopTimer()
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(q*float64(len(s))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(parked, .5), "parked-p50-µs")
	b.ReportMetric(pct(parked, .99), "parked-p99-µs")
	b.ReportMetric(pct(unparked, .5), "unparked-p50-µs")
	b.ReportMetric(pct(unparked, .99), "unparked-p99-µs")
	b.ReportMetric(pct(parked, .99)-pct(unparked, .99), "extra-p99-µs")
}

// BenchmarkParkIdleMemory measures the server's memory per idle TLS
// connection (VmRSS from /proc, before and after 2,000 connections that
// said hello and fell silent), parked and with a server that never parks.
func BenchmarkParkIdleMemory(b *testing.B) {
	const n = 2000
	dir := benchPKI(b)
	cfg := clientTLS(b, dir)
	for _, park := range []string{"1ms", "0"} {
		b.Run("park-after="+park, func(b *testing.B) {
			for range b.N {
				maddr := freeAddrB(b)
				addr, pid := benchServe(b, dir, "--park-after", park, "--metrics-addr", maddr, "--max-conns", "3000")
				warm, err := dialLine(addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := warm.exchange("warm-up"); err != nil {
					b.Fatal(err)
				}
				warm.close()
				before := rssKiB(b, pid)
				conns := make([]*lineConn, n)
				for i := range conns {
					c, err := dialLine(addr, cfg)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.exchange("hello"); err != nil {
						b.Fatal(err)
					}
					conns[i] = c
				}
				if park != "0" {
					for scrape(b, maddr, "seclisten_connections_parked") != n {
						time.Sleep(10 * time.Millisecond) // between polls of the gauge
					}
				}
				b.ReportMetric(float64(rssKiB(b, pid)-before)/n, "KiB/conn")
				b.ReportMetric(scrape(b, maddr, "go_goroutines"), "goroutines")
				for _, c := range conns {
					c.close()
				}
			}
		})
	}
}

// --- the benchmarks' own helpers (the tests' take a *testing.T)

func benchPKI(b *testing.B) string {
	dir := filepath.Join(b.TempDir(), "certs")
	if out, err := osexec.Command(binary, "certs", "init", "--dir", dir).CombinedOutput(); err != nil {
		b.Fatalf("certs init: %v\n%s", err, out)
	}
	return dir
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// benchServe starts a TLS server (mTLS, the PKI's certificates) with args
// and returns its address and pid once it accepts.
func benchServe(b *testing.B, dir string, args ...string) (string, int) {
	addr := freeAddrB(b)
	cmd := osexec.Command(binary, append([]string{"serve", "--addr", addr,
		"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--client-ca", filepath.Join(dir, "ca.pem"), "--log-level", "warn"}, args...)...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("server on %s did not start", addr)
		}
		time.Sleep(10 * time.Millisecond) // between polls of the port
	}
}

func rssKiB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
