package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
)

// The limits of the fleet tests: 5 connections a second, a burst of 5.
const (
	fleetRate  = 5
	fleetBurst = 5
)

// limitedReplica starts a TLS replica behind HAProxy (PROXY v2 from
// 127.0.0.1), one exchange per connection, that limits loopback clients
// to fleetRate and fleetBurst, with the extra args.
func limitedReplica(t *testing.T, dir string, extra ...string) replica {
	t.Helper()
	return limitedServer(t, dir, append([]string{"--proxy-protocol", "--trusted-proxy", "127.0.0.1"}, extra...)...)
}

// limitedServer is limitedReplica without the load balancer: clients
// connect directly.
func limitedServer(t *testing.T, dir string, extra ...string) replica {
	t.Helper()
	m := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, append([]string{"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--once", "--metrics-addr", m, "--limit-loopback",
		"--rate", fmt.Sprint(fleetRate), "--burst", fmt.Sprint(fleetBurst), "--json"}, extra...)...)
	return replica{p, m}
}

// roundRobin runs the shipped HAProxy configuration's roundrobin backend
// in front of three replicas, and waits until it serves a TLS client.
func roundRobin(t *testing.T, reps ...replica) string {
	t.Helper()
	fe := runHAProxy(t, []string{"BACKEND=roundrobin"}, reps...)
	waitFor(t, "haproxy to send clients", func() bool { return tlsExchangeFrom(t, "127.0.0.1", fe) == nil })
	return fe
}

// floodFrom opens TLS connections from src to addr, from three workers
// each paced to one attempt every 10 ms, for d or 900 attempts, and
// returns how many were answered and how long the flood took.
func floodFrom(t *testing.T, src, addr string, d time.Duration) (answered int, took time.Duration) {
	t.Helper()
	var n, attempts atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 3 {
		wg.Go(func() {
			pace := time.NewTicker(10 * time.Millisecond) // the flood's pace, not a wait for an event
			defer pace.Stop()
			for attempts.Add(1) <= 900 && time.Since(start) < d {
				if tlsExchangeFrom(t, src, addr) == nil {
					n.Add(1)
				}
				<-pace.C
			}
		})
	}
	wg.Wait()
	return int(n.Load()), time.Since(start)
}

// fleetBound is what one bucket allows in d, within 10%, plus one burst,
// plus one connection per replica (the free shares round up; see
// pkg/internal/admit's fleet.go).
func fleetBound(d time.Duration, replicas int) float64 {
	return 1.1*(fleetBurst+fleetRate*d.Seconds()) + fleetBurst + float64(replicas)
}

// A flood from one client through HAProxy without affinity (roundrobin,
// send-proxy-v2) to three replicas sharing --redis is held to one limit
// fleet-wide; the same flood to three replicas without --redis gets about
// three limits.
func TestFleetLimitsThroughHAProxy(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	var shared []replica
	for range 3 {
		shared = append(shared, limitedReplica(t, dir, "--redis", r.URL(0)))
	}
	for _, rep := range shared {
		rep.waitLog("per-IP rate limits shared with the fleet", 1)
	}
	fe := roundRobin(t, shared...)
	got, took := floodFrom(t, "127.0.0.2", fe, 3*time.Second)
	one := fleetBurst + fleetRate*took.Seconds()
	t.Logf("with --redis: %d answered in %s; one limit allows %.0f", got, took.Round(time.Millisecond), one)
	if float64(got) > fleetBound(took, 3) {
		t.Errorf("with --redis: %d answered in %s, want at most %.0f (one limit, +10%%, + a burst)", got, took, fleetBound(took, 3))
	}
	if got < fleetBurst {
		t.Errorf("with --redis: %d answered, not even a burst (%d)", got, fleetBurst)
	}
	// Redis commands per accepted connection: the syncs (one script call
	// each) over the connections the replicas accepted.
	var syncs, accepted float64
	for i, rep := range shared {
		if rep.rejects("rate") == 0 {
			t.Errorf("replica %d refused nothing for rate: did the flood reach it?", i+1)
		}
		_, body := curl(t, "http://"+rep.metrics+"/metrics")
		syncs += metric(t, body, `seclisten_fleet_limiter_syncs_total{result="ok"}`)
		accepted += metric(t, body, "seclisten_connections_accepted_total")
	}
	t.Logf("%.0f syncs for %.0f accepted connections: %.2f Redis commands per connection", syncs, accepted, syncs/accepted)
	if syncs/accepted >= 1 {
		t.Errorf("%.0f syncs for %.0f connections: Redis on every accept", syncs, accepted)
	}

	var alone []replica
	for range 3 {
		alone = append(alone, limitedReplica(t, dir))
	}
	fe = roundRobin(t, alone...)
	gotAlone, tookAlone := floodFrom(t, "127.0.0.2", fe, 3*time.Second)
	t.Logf("without --redis: %d answered in %s", gotAlone, tookAlone.Round(time.Millisecond))
	if float64(gotAlone) <= fleetBound(tookAlone, 3) {
		t.Errorf("without --redis: %d answered in %s, within the fleet's bound %.0f: the test cannot tell shared limits from local ones",
			gotAlone, tookAlone, fleetBound(tookAlone, 3))
	}
}

// Redis down: each replica applies its local limits (no crash, no
// refusal of everything), says so once, and shares them again when Redis
// returns.
func TestFleetLimitsRedisDown(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	a := limitedServer(t, dir, "--redis", r.URL(0))
	a.waitLog("per-IP rate limits shared with the fleet", 1)
	r.Stop()
	a.waitLog("redis unreachable: serving with local state", 1)
	got, took := floodFrom(t, "127.0.0.3", a.addr, 2*time.Second)
	t.Logf("redis down: %d answered in %s", got, took.Round(time.Millisecond))
	if got < fleetBurst || float64(got) > 1.1*(fleetBurst+fleetRate*took.Seconds())+1 {
		t.Errorf("redis down: %d answered in %s, want the local limit (%.0f)", got, took, fleetBurst+fleetRate*took.Seconds())
	}
	a.waitLog("per-IP rate limits: fleet sync failed; local limits only", 1)
	r.Start()
	a.waitLog("redis back", 1)
	a.waitLog("per-IP rate limits shared with the fleet", 2)
	servedFrom(t, "127.0.0.4", a.addr)
}

// banReplica starts a TLS replica on Redis r that bans loopback clients
// after 3 failures in a minute, for 10 minutes.
func banReplica(t *testing.T, dir string, r *fleettest.Redis) replica {
	t.Helper()
	m := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, "--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--once", "--metrics-addr", m, "--limit-loopback", "--ban-after", "3/1m", "--ban-for", "10m", "--json",
		"--redis", r.URL(0))
	p.waitLog("serving metrics", 1)
	return replica{p, m}
}

// replicaName is how the fleet names a replica in logs.
func replicaName(t *testing.T, p *proc) string {
	t.Helper()
	name, _ := p.logRecord("listening")["replica"].(string)
	if host, _ := os.Hostname(); !strings.HasPrefix(name, fmt.Sprintf("%s/%d/", host, p.pid())) {
		t.Fatalf("start-up line: replica=%q, want host/pid/random", name)
	}
	return name
}

// A ban made on replica A (a scanner's failures sent to A) refuses the
// client on B and C, which log it with A's name; a replica started after
// the ban knows it; DELETE /bans/KEY on B lifts it on A, C and D.
func TestFleetBans(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	a, b, c := banReplica(t, dir, r), banReplica(t, dir, r), banReplica(t, dir, r)
	const msg = "ban 127.0.0.2 for 10m0s after 3 failures in 1m0s (last: not-tls)"
	for range 3 {
		scan(t, "127.0.0.2", a.addr)
	}
	banned := a.waitLog(msg, 1)
	learned := msg + " (from replica " + replicaName(t, a.proc) + ")"
	for _, p := range []replica{b, c} {
		rec := p.waitLog(learned, 1)
		t.Logf("ban made at %s on A, learned at %s", banned["time"], rec["time"])
		if err := tlsExchangeFrom(t, "127.0.0.2", p.addr); err == nil {
			t.Errorf("banned client served on another replica")
		}
		p.awaitRejects("banned", 1)
		servedFrom(t, "127.0.0.3", p.addr) // another client is served
		if list := listBans(t, p.metrics); len(list) != 1 || list[0].Key != "127.0.0.2" || list[0].LastReason != "not-tls" {
			t.Errorf("GET /bans on another replica: %+v", list)
		}
	}

	// A replica started after the ban loads it.
	d := banReplica(t, dir, r)
	d.waitLog(learned, 1)
	if err := tlsExchangeFrom(t, "127.0.0.2", d.addr); err == nil {
		t.Errorf("banned client served on a replica started after the ban")
	}

	// Lifted on B: lifted everywhere.
	if code, body := curlMethod(t, "DELETE", "http://"+b.metrics+"/bans/127.0.0.2"); code != 204 {
		t.Fatalf("DELETE /bans/127.0.0.2 on B: %d %s", code, body)
	}
	b.waitLog("unban 127.0.0.2 (lifted)", 1)
	lifted := "unban 127.0.0.2 (lifted, from replica " + replicaName(t, b.proc) + ")"
	for _, p := range []replica{a, c, d} {
		p.waitLog(lifted, 1)
		servedFrom(t, "127.0.0.2", p.addr)
	}
	servedFrom(t, "127.0.0.2", b.addr)
	// Lifted in Redis too: a new replica does not learn it.
	e := banReplica(t, dir, r)
	servedFrom(t, "127.0.0.2", e.addr)
	if recs := e.logRecords(learned); len(recs) != 0 {
		t.Errorf("a replica started after the lift learned the ban: %v", recs)
	}
}

// A ban made while Redis is away stays local (and says so); when Redis
// returns (empty), its replica writes it back and announces it, and the
// other replica refuses the client too.
func TestFleetBansRedisDown(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	a, b := banReplica(t, dir, r), banReplica(t, dir, r)
	r.Stop()
	for _, p := range []replica{a, b} {
		p.waitLog("redis unreachable: serving with local state", 1)
	}
	for range 3 {
		scan(t, "127.0.0.5", a.addr)
	}
	const msg = "ban 127.0.0.5 for 10m0s after 3 failures in 1m0s (last: not-tls)"
	a.waitLog(msg, 1)
	a.waitLog("ban not shared with the fleet", 1)
	servedFrom(t, "127.0.0.5", b.addr) // B does not know yet
	r.Start()
	b.waitLog(msg+" (from replica "+replicaName(t, a.proc)+")", 1)
	if err := tlsExchangeFrom(t, "127.0.0.5", b.addr); err == nil {
		t.Error("the ban made while Redis was away is not in force on B after it returned")
	}
}

// A scanner spreading its failures over three replicas (one each, as
// round-robin would) is banned after --ban-after failures fleet-wide, not
// three times as many: the replica whose count reached it bans, the others
// learn it.
func TestFleetBansCountFailures(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	reps := []replica{banReplica(t, dir, r), banReplica(t, dir, r), banReplica(t, dir, r)}
	for _, p := range reps {
		scan(t, "127.0.0.6", p.addr)
		p.awaitRejects("not-tls", 1)
	}
	const msg = "ban 127.0.0.6 for 10m0s after 3 failures in 1m0s (last: not-tls)"
	var by *replica
	waitFor(t, "a replica to ban on the fleet's count", func() bool {
		for i := range reps {
			if len(reps[i].logRecords(msg+" (counted by the fleet)")) > 0 {
				by = &reps[i]
				return true
			}
		}
		return false
	})
	learned := msg + " (from replica " + replicaName(t, by.proc) + ")"
	for i := range reps {
		if &reps[i] != by {
			reps[i].waitLog(learned, 1)
		}
		if err := tlsExchangeFrom(t, "127.0.0.6", reps[i].addr); err == nil {
			t.Errorf("replica %d serves the scanner banned on the fleet's count", i+1)
		}
	}
}
