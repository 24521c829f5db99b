package main

import (
	"context"
	"fmt"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
)

// fleetReplica starts a TLS replica serving the PKI's server certificate,
// one exchange per connection, with metrics, and the extra args.
func fleetReplica(t *testing.T, dir string, extra ...string) (*proc, string) {
	t.Helper()
	m := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, append([]string{"--cert", filepath.Join(dir, "server.pem"), "--key", filepath.Join(dir, "server-key.pem"),
		"--once", "--metrics-addr", m}, extra...)...)
	return p, m
}

// sessionLine runs one exchange with openssl s_client against addr (with
// -sess_in or -sess_out FILE in args) and returns its "New, ..." or
// "Reused, ..." line.
func sessionLine(t *testing.T, dir, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
	defer cancel()
	full := append([]string{"s_client", "-connect", addr, "-ign_eof"}, append(certArgs(dir, ""), args...)...)
	cmd := osexec.CommandContext(ctx, "openssl", full...)
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "New, ") || strings.HasPrefix(l, "Reused, ") {
			return l
		}
	}
	t.Fatalf("openssl printed no New/Reused line:\n%s", out)
	return ""
}

// resumes reports whether a session made on replica a resumes on b, and
// the line openssl printed for b.
func resumes(t *testing.T, dir, a, b, version string) (bool, string) {
	t.Helper()
	sess := filepath.Join(t.TempDir(), "sess.pem")
	if l := sessionLine(t, dir, a, version, "-sess_out", sess); !strings.HasPrefix(l, "New, ") {
		t.Fatalf("first connection to %s: %q, want a new session", a, l)
	}
	l := sessionLine(t, dir, b, version, "-sess_in", sess)
	return strings.HasPrefix(l, "Reused, "), l
}

// A session ticket issued by one replica resumes on another when they
// share --redis (TLS 1.3 and 1.2), and does not without it: the test can
// tell. The replica that resumes another's ticket counts it in
// seclisten_handshake_resumptions_total{ticket="other-replica"} and says
// resumed_ticket=other-replica in its handshake line; a replica resuming
// its own ticket counts ticket="own".
func TestFleetResumptionAcrossReplicas(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	a, ma := fleetReplica(t, dir, "--redis", r.URL(0))
	b, mb := fleetReplica(t, dir, "--redis", r.URL(0))
	for _, p := range []*proc{a, b} {
		p.waitLog("session ticket keys applied", 1)
	}
	if n := len(a.logRecords("session ticket keys rotated")) + len(b.logRecords("session ticket keys rotated")); n != 1 {
		t.Errorf("%d rotations at start by two replicas, want 1 (under the lock)", n)
	}
	for _, v := range []struct{ flag, name string }{{"-tls1_3", "TLSv1.3"}, {"-tls1_2", "TLSv1.2"}} {
		t.Run(v.name, func(t *testing.T) {
			before := resumptions(t, mb)
			ok, line := resumes(t, dir, a.addr, b.addr, v.flag)
			if !ok || !strings.Contains(line, v.name) {
				t.Errorf("session from replica A on replica B: %q, want Reused, %s", line, v.name)
			}
			after := resumptions(t, mb)
			if after.other != before.other+1 || after.own != before.own {
				t.Errorf("replica B resumptions %+v then %+v, want other-replica +1, own unchanged", before, after)
			}
			b.waitLogMatch("handshake", "resumed_ticket=other-replica", func(rec map[string]any) bool {
				return rec["resumed_ticket"] == "other-replica"
			})
		})
	}
	t.Run("own ticket", func(t *testing.T) {
		before := resumptions(t, ma)
		if ok, line := resumes(t, dir, a.addr, a.addr, "-tls1_3"); !ok {
			t.Fatalf("replica A did not resume its own session: %q", line)
		}
		after := resumptions(t, ma)
		if after.own != before.own+1 || after.other != before.other {
			t.Errorf("replica A resumptions %+v then %+v, want own +1, other-replica unchanged", before, after)
		}
	})
	t.Run("without redis", func(t *testing.T) {
		c, _ := fleetReplica(t, dir)
		d, _ := fleetReplica(t, dir)
		if ok, line := resumes(t, dir, c.addr, d.addr, "-tls1_3"); ok {
			t.Errorf("without --redis a session resumed on another replica: %q", line)
		}
		// The same replica resumes its own: the refusal above is the keys'.
		if ok, line := resumes(t, dir, c.addr, c.addr, "-tls1_3"); !ok {
			t.Errorf("a replica did not resume its own session: %q", line)
		}
	})
}

type resumptionCounts struct{ own, other float64 }

// resumptions scrapes seclisten_handshake_resumptions_total from the
// metrics address m.
func resumptions(t *testing.T, m string) resumptionCounts {
	t.Helper()
	_, body := curl(t, "http://"+m+"/metrics")
	return resumptionCounts{
		own:   metric(t, body, `seclisten_handshake_resumptions_total{ticket="own"}`),
		other: metric(t, body, `seclisten_handshake_resumptions_total{ticket="other-replica"}`),
	}
}

// Redis down at start: with --redis-fail open the replica serves (and
// says so once); when Redis comes, it says so once; killed mid-run and
// restarted empty, both transitions are logged once each and the
// replicas share fresh keys again, so resumption across them works.
func TestFleetRedisDownAndBack(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	r.Stop()
	a, ma := fleetReplica(t, dir, "--redis", r.URL(0))
	b, _ := fleetReplica(t, dir, "--redis", r.URL(0))
	for _, p := range []*proc{a, b} {
		p.waitLog("redis unreachable: serving with local state", 1)
	}
	c := tlsDial(t, "127.0.0.1", a.addr)
	c.send("served without redis\n")
	c.expectLine("Message received! Thank you for connecting.")
	if code, body := readyz(t, ma); code != 200 {
		t.Errorf("fail open, redis down: /readyz %d %q, want 200", code, body)
	}

	r.Start()
	for _, p := range []*proc{a, b} {
		p.waitLog("redis back", 1)
		p.waitLog("session ticket keys applied", 1)
	}
	if ok, line := resumes(t, dir, a.addr, b.addr, "-tls1_3"); !ok {
		t.Errorf("after redis came: %q, want Reused", line)
	}

	r.Stop()
	for _, p := range []*proc{a, b} {
		p.waitLog("redis unreachable: serving with local state", 2)
	}
	// The keys are kept while Redis is away.
	if ok, line := resumes(t, dir, a.addr, b.addr, "-tls1_3"); !ok {
		t.Errorf("redis down, last keys kept: %q, want Reused", line)
	}
	r.Start() // empty: the keys are gone, and made again once
	for _, p := range []*proc{a, b} {
		p.waitLog("redis back", 2)
		p.waitLog("session ticket keys applied", 2)
	}
	if ok, line := resumes(t, dir, a.addr, b.addr, "-tls1_3"); !ok {
		t.Errorf("after redis restarted empty: %q, want Reused", line)
	}
	for _, p := range []*proc{a, b} {
		if n := len(p.logRecords("redis unreachable: serving with local state")); n != 2 {
			t.Errorf("%d unreachable lines for two outages, want 2", n)
		}
		if n := len(p.logRecords("redis back")); n != 2 {
			t.Errorf("%d back lines for two returns, want 2", n)
		}
	}
	_, metrics := curl(t, "http://"+ma+"/metrics")
	for _, m := range []string{"seclisten_redis_up 1", "seclisten_redis_roundtrip_seconds_count", "seclisten_redis_errors_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics has no %s", m)
		}
	}
	if v := metric(t, metrics, "seclisten_redis_errors_total"); v < 1 {
		t.Errorf("seclisten_redis_errors_total %v after two outages, want some", v)
	}
}

// With --redis-fail closed, /readyz says not ready while Redis is away and
// ready once it answers; the replica still serves (readiness is the load
// balancer's to act on).
func TestFleetFailClosed(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	r.Stop()
	p, m := fleetReplica(t, dir, "--redis", r.URL(0), "--redis-fail", "closed")
	p.waitLog("redis unreachable: serving with local state", 1)
	if code, body := readyz(t, m); code != 503 || !strings.Contains(body, "redis unreachable") {
		t.Errorf("fail closed, redis down: /readyz %d %q, want 503 saying redis unreachable", code, body)
	}
	r.Start()
	p.waitLog("redis back", 1)
	if code, body := readyz(t, m); code != 200 {
		t.Errorf("fail closed, redis back: /readyz %d %q, want 200", code, body)
	}
}

// A wrong password is logged, once, with Redis's refusal (never the
// password), and the replica serves; garbage in the ticket key is logged
// once and replaced.
func TestFleetBadRedisState(t *testing.T) {
	dir := pkiDir(t)
	t.Run("wrong password", func(t *testing.T) {
		r := fleettest.StartRedis(t, "--requirepass", "right-one")
		p, _ := fleetReplica(t, dir, "--redis", "redis://:wrong-one@"+r.Addr()+"/0")
		rec := p.waitLog("redis unreachable: serving with local state", 1)
		if err, _ := rec["err"].(string); !strings.Contains(err, "WRONGPASS") {
			t.Errorf("err %q does not say the password is wrong", err)
		}
		if strings.Contains(p.stderr.String(), "wrong-one") {
			t.Error("the log repeats the password")
		}
		c := tlsDial(t, "127.0.0.1", p.addr)
		c.send("hi\n")
		c.expectLine("Message received! Thank you for connecting.")
	})
	t.Run("garbage ticket keys", func(t *testing.T) {
		r := fleettest.StartRedis(t)
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
		defer rdb.Close()
		if err := rdb.Set(context.Background(), "seclisten:tickets", "\x00garbage{", 0).Err(); err != nil {
			t.Fatal(err)
		}
		p, _ := fleetReplica(t, dir, "--redis", r.URL(0))
		p.waitLog("redis key holds garbage: ignored and replaced", 1)
		p.waitLog("session ticket keys applied", 1)
	})
	t.Run("bad URLs", func(t *testing.T) {
		for _, tt := range []struct{ url, want string }{
			{"http://127.0.0.1:6379", "--redis must be a redis:// or rediss:// URL"},
			{"redis://:sekrit@127.0.0.1:6379/x", "--redis: the path must be a database number"},
			{"redis://", "--redis names no host"},
		} {
			out, err := seclistenCmd(t, "serve", "--redis", tt.url).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "sekrit") {
				t.Errorf("--redis %s: %v\n%s\nwant an error with %q, no password", tt.url, err, out, tt.want)
			}
		}
		out, err := seclistenCmd(t, "serve", "--plain", "--redis", "redis://127.0.0.1:1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs TLS") {
			t.Errorf("--plain --redis: %v\n%s\nwant a refusal", err, out)
		}
		out, err = seclistenCmd(t, "serve", "--redis-fail", "maybe").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--redis-fail") {
			t.Errorf("--redis-fail maybe: %v\n%s\nwant a refusal", err, out)
		}
	})
}

// Two ACME replicas with the same --redis (and separate --acme-storage
// directories, unused) get one Pebble order between them and serve the
// same certificate; a third started later loads it without an order.
func TestFleetACMEOneOrder(t *testing.T) {
	r := fleettest.StartRedis(t)
	port1, port2, port3 := freePort(t), freePort(t), freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port1, httpPort: freePort(t)})
	start := func(port int) *proc {
		return startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--acme-domain", "fleet.seclisten.test", "--acme-http-addr", "off", "--redis", r.URL(0))...)
	}
	// Pebble validates on port1: that replica must listen before any
	// order, or a fast order from replica 2 fails validation and a second
	// one follows. Replica 2 starts while replica 1's order is under way.
	ps := []*proc{start(port1), start(port2)}
	for _, p := range ps {
		p.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	}
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders from two replicas on one redis, want 1", n)
	}
	third := start(port3)
	third.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders after a third replica started, want 1", n)
	}
	s1 := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port1), "fleet.seclisten.test")
	for _, port := range []int{port2, port3} {
		if s := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port), "fleet.seclisten.test"); s != s1 {
			t.Errorf("replica on %d serves serial %s, replica 1 %s", port, s, s1)
		}
	}
}
