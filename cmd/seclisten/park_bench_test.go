//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"slices"
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
	dir := pkiDir(b)
	pm := freeAddr(b)
	parkedSrv := benchServe(b, dir, "--park-after", "1ms", "--metrics-addr", pm)
	plainSrv := benchServe(b, dir, "--park-after", "0")
	cfg := clientTLS(b, dir)
	pc, err := dialLine(parkedSrv.addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.close()
	uc, err := dialLine(plainSrv.addr, cfg)
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
	for i := range b.N {
		// The silence: both connections are quiet until the parking
		// server has parked its connection (the gauge counts it; it
		// counts it no longer once its client's line wakes it). The
		// other server never parks, so its connection has been quiet as
		// long; which one answers first alternates.
		waitMetric(b, pm, "seclisten_connections_parked", equals(1))
		if i%2 == 0 {
			parked = append(parked, rtt(pc))
			unparked = append(unparked, rtt(uc))
		} else {
			unparked = append(unparked, rtt(uc))
			parked = append(parked, rtt(pc))
		}
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
	dir := pkiDir(b)
	cfg := clientTLS(b, dir)
	for _, park := range []string{"1ms", "0"} {
		b.Run("park-after="+park, func(b *testing.B) {
			for range b.N {
				maddr := freeAddr(b)
				srv := benchServe(b, dir, "--park-after", park, "--metrics-addr", maddr, "--max-conns", "3000")
				warm, err := dialLine(srv.addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := warm.exchange("warm-up"); err != nil {
					b.Fatal(err)
				}
				warm.close()
				before := srv.status("VmRSS")
				conns := make([]*lineConn, n)
				for i := range conns {
					c, err := dialLine(srv.addr, cfg)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.exchange("hello"); err != nil {
						b.Fatal(err)
					}
					conns[i] = c
				}
				if park != "0" {
					waitMetric(b, maddr, "seclisten_connections_parked", equals(n))
				}
				b.ReportMetric(float64(srv.status("VmRSS")-before)/n, "KiB/conn")
				b.ReportMetric(scrape(b, maddr, "go_goroutines"), "goroutines")
				for _, c := range conns {
					c.close()
				}
			}
		})
	}
}

// --- the benchmarks' own helpers

func freeAddr(b *testing.B) string { return fmt.Sprintf("127.0.0.1:%d", freePort(b)) }

// benchServe starts a TLS server (mTLS, the PKI's certificates, no CRL)
// with args and returns it once it listens.
func benchServe(b *testing.B, dir string, args ...string) *proc {
	return startServe(b, append([]string{
		"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--client-ca", filepath.Join(dir, "ca.pem")}, args...)...)
}
