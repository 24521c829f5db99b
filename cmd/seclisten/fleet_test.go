package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// fleetPair starts two replicas on r and waits until both have the
// fleet's ticket keys; it returns them and their metrics addresses.
func fleetPair(t *testing.T, dir string, r *fleettest.Redis) (a, b *proc, ma, mb string) {
	t.Helper()
	a, ma = fleetReplica(t, dir, "--redis", r.URL(0))
	b, mb = fleetReplica(t, dir, "--redis", r.URL(0))
	for _, p := range []*proc{a, b} {
		p.waitLog("session ticket keys applied", 1)
	}
	return a, b, ma, mb
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
	a, b, ma, mb := fleetPair(t, dir, r)
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
	start := time.Now()
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
	// Probes back off from 250 ms to 10 s while Redis is away: a few a
	// second at most, never a spin.
	if n, elapsed := roundTrips(t, m), time.Since(start).Seconds(); n > 20+20*elapsed {
		t.Errorf("%v Redis round trips in %.1fs with Redis away: a busy loop", n, elapsed)
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
		if rec := p.logRecord("listening"); rec["redis"] != "redis://:xxxxx@"+r.Addr()+"/0" || rec["redis_fail"] != "open" {
			t.Errorf("start-up line: redis=%v redis_fail=%v, want the URL redacted and open", rec["redis"], rec["redis_fail"])
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

// fillRedis writes 2 MiB of values, then sets maxmemory (noeviction) to
// 1 MiB under what Redis uses: every write is refused with OOM from then on,
// whatever buffers come and go, until the values are deleted.
func fillRedis(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	big := strings.Repeat("x", 64<<10)
	for i := range 32 {
		if err := rdb.Set(ctx, fmt.Sprintf("fill:%d", i), big, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if used < 2<<20 {
		t.Fatalf("redis uses %d bytes after 2 MiB of values", used)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	// 1 MiB under what it uses: full now; deleting the values frees 2 MiB.
	if err := rdb.ConfigSet(ctx, "maxmemory", fmt.Sprint(used-1<<20)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM ") {
		t.Fatalf("a write to the full redis: %v, want OOM", err)
	}
}

// roundTrips is the replica's seclisten_redis_roundtrip_seconds_count.
func roundTrips(t *testing.T, m string) float64 {
	t.Helper()
	_, body := curl(t, "http://"+m+"/metrics")
	return metric(t, body, "seclisten_redis_roundtrip_seconds_count")
}

// A full Redis (maxmemory reached, noeviction: every write refused with
// OOM, reads answered) is logged once, the replica serves with its local
// ticket keys, retries at its usual pace (no busy loop: a bounded number
// of Redis commands per second), and when memory is freed says so once
// and gets the fleet's keys.
func TestFleetRedisFull(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	fillRedis(t, rdb)
	start := time.Now()
	p, m := fleetReplica(t, dir, "--redis", r.URL(0))
	rec := p.waitLog("redis full: writes refused (maxmemory); serving with local state", 1)
	if err, _ := rec["err"].(string); !strings.Contains(err, "OOM") {
		t.Errorf("err %q does not quote Redis's OOM", err)
	}
	c := tlsDial(t, "127.0.0.1", p.addr)
	c.send("served while redis is full\n")
	c.expectLine(defaultReply)
	if code, body := readyz(t, m); code != 200 {
		t.Errorf("fail open, redis full: /readyz %d %q, want 200", code, body)
	}

	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	p.waitLog("redis takes writes again", 1)
	p.waitLog("session ticket keys applied", 1)
	elapsed := time.Since(start).Seconds()
	loggedOnce(t, p, "redis full: writes refused (maxmemory); serving with local state")
	loggedOnce(t, p, "redis takes writes again")
	if n := len(p.logRecords("session ticket keys: refresh failed; keeping the last keys")); n > 1 {
		t.Errorf("%d refresh-failed lines, want at most 1 (no line per retry)", n)
	}
	// A probe every 5 s and a key refresh every 5 s, a few commands
	// each: far below 20 a second; a retry loop would be thousands.
	if n := roundTrips(t, m); n > 20+20*elapsed {
		t.Errorf("%v Redis round trips in %.1fs with Redis full: a busy loop", n, elapsed)
	}
	c = tlsDial(t, "127.0.0.1", p.addr)
	c.send("served after\n")
	c.expectLine(defaultReply)
}

// A slow Redis (DEBUG SLEEP stalls it) does not hold handshakes: the
// ticket keys and certificates are local. The stall is logged once as
// Redis unreachable (the probe's timeout, quoted), and its end once.
func TestFleetRedisSlow(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t, "--enable-debug-command", "yes")
	p, _ := fleetReplica(t, dir, "--redis", r.URL(0))
	p.waitLog("session ticket keys applied", 1)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ReadTimeout: time.Minute})
	defer rdb.Close()
	stalled := make(chan error, 1)
	go func() { stalled <- rdb.Do(context.Background(), "DEBUG", "SLEEP", "20").Err() }()
	rec := p.waitLogWithin("redis unreachable: serving with local state", 1, 20*time.Second)
	if err, _ := rec["err"].(string); !strings.Contains(err, "timeout") {
		t.Errorf("err %q does not say Redis timed out", err)
	}
	// Redis is still asleep: the handshake and the answer must not wait
	// for it.
	c := tlsDial(t, "127.0.0.1", p.addr)
	c.send("served while redis sleeps\n")
	c.expectLine(defaultReply)
	select {
	case err := <-stalled:
		t.Fatalf("the stall ended (%v) before the exchange: the test proves nothing", err)
	default:
	}
	if err := <-stalled; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	p.waitLog("redis back", 1)
	loggedOnce(t, p, "redis unreachable: serving with local state")
	loggedOnce(t, p, "redis back")
}

// A lock key with garbage and no expiry (no replica writes one) would
// block the fleet's key rotation forever: the replica gives it an expiry,
// says so once, and takes the lock when it expires.
func TestFleetGarbageLock(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "seclisten:lock/tickets", "\x00not a token", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p, _ := fleetReplica(t, dir, "--redis", r.URL(0), "--redis-lock-ttl", "2s")
	p.waitLog("redis lock key has no expiry (garbage): it expires like a crashed holder's", 1)
	p.waitLog("session ticket keys rotated", 1)
	p.waitLog("session ticket keys applied", 1)
	loggedOnce(t, p, "redis lock key has no expiry (garbage): it expires like a crashed holder's")
}

// Redis killed (SIGKILL) and restarted, empty, in the middle of a bounded
// load over two replicas (at most 100 connections a second, at most
// 2,000): every message a client got an answer for was printed by exactly
// one replica, once; no replica exited; every connection was answered or
// refused, none hung. The load runs until both replicas have seen Redis
// go and come back.
func TestFleetRedisKilledUnderLoad(t *testing.T) {
	dir := pkiDir(t)
	r := fleettest.StartRedis(t)
	a, b, _, _ := fleetPair(t, dir, r)
	const maxConns, workers = 2000, 6
	var (
		mu                    sync.Mutex
		answered              []string
		refused, hung, issued int
		next                  = make(chan int)
		wg                    sync.WaitGroup
		warm                  = make(chan struct{})
		stop                  = make(chan struct{})
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				addr := []string{a.addr, b.addr}[i%2]
				msg := fmt.Sprintf("load-%d", i)
				got, err := exchangeOnce(addr, &tls.Config{InsecureSkipVerify: true}, msg)
				mu.Lock()
				switch {
				case err == nil && got == defaultReply:
					answered = append(answered, msg)
					if len(answered) == 50 {
						close(warm)
					}
				case isTimeout(err):
					hung++
				default:
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	go func() {
		defer close(next)
		pace := time.NewTicker(10 * time.Millisecond) // the load's rate bound, not a wait
		defer pace.Stop()
		for i := range maxConns {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			select {
			case <-stop:
				return
			case next <- i:
				mu.Lock()
				issued++
				mu.Unlock()
			}
		}
	}()
	select {
	case <-warm:
	case <-time.After(hangGuard):
		t.Fatal("no 50 answers under load")
	}
	r.Stop()
	for _, p := range []*proc{a, b} {
		p.waitLog("redis unreachable: serving with local state", 1)
	}
	r.Start()
	for _, p := range []*proc{a, b} {
		p.waitLog("redis back", 1)
	}
	close(stop)
	wg.Wait()
	for _, p := range []*proc{a, b} {
		select {
		case <-p.done:
			t.Fatalf("a replica exited under load: %v", p.err)
		default:
		}
		// A graceful stop, so that all it printed has arrived.
		if code, _ := p.signal(syscall.SIGTERM, hangGuard); code != 0 {
			t.Errorf("replica exit status %d after SIGTERM, want 0", code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hung > 0 {
		t.Errorf("%d connections hung (no answer, no refusal within 30s)", hung)
	}
	printed := a.stdout.String() + b.stdout.String()
	for _, m := range answered {
		if n := strings.Count(printed, "] "+m+"\n"); n != 1 {
			t.Errorf("answered message %q printed %d times, want 1", m, n)
		}
	}
	if len(answered)+refused+hung != issued {
		t.Errorf("%d answered + %d refused + %d hung != %d connections", len(answered), refused, hung, issued)
	}
	if refused > issued/10 {
		t.Errorf("%d of %d connections refused: the replicas should serve without Redis", refused, issued)
	}
	t.Logf("%d connections: %d answered, %d refused, %d hung, across a Redis kill and restart", issued, len(answered), refused, hung)
}

// loggedOnce checks that p logged msg exactly once: a state change, not
// a line per retry.
func loggedOnce(t *testing.T, p *proc, msg string) {
	t.Helper()
	if n := len(p.logRecords(msg)); n != 1 {
		t.Errorf("%q logged %d times, want once", msg, n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Redis restarted empty under three ACME replicas: the certificate they
// serve from memory is written back to Redis (by whichever notices
// first; the others find it there), so a replica started afterwards
// loads it, and Pebble sees one order for the fleet, not one more per
// replica.
func TestFleetACMERedisRestartedEmpty(t *testing.T) {
	r := fleettest.StartRedis(t)
	port1, port2, port3, port4 := freePort(t), freePort(t), freePort(t), freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port1, httpPort: freePort(t)})
	start := func(port int) *proc {
		return startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--acme-domain", "fleet.seclisten.test", "--acme-http-addr", "off", "--redis", r.URL(0))...)
	}
	ps := []*proc{start(port1)}
	ps[0].waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	ps = append(ps, start(port2), start(port3))
	for _, p := range ps {
		p.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	}
	if n := peb.orders(); n != 1 {
		t.Fatalf("pebble saw %d orders before the restart, want 1", n)
	}
	s1 := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port1), "fleet.seclisten.test")

	r.Stop()
	for _, p := range ps {
		p.waitLog("redis unreachable: serving with local state", 1)
	}
	r.Start() // empty
	for _, p := range ps {
		p.waitLog("redis back", 1)
	}
	restored := 0
	for _, p := range ps {
		p.waitLog("ACME certificates checked in redis", 2) // at start, and after the return
		restored += len(p.logRecords("ACME certificate was missing from the shared storage: restored from memory"))
	}
	if restored < 1 {
		t.Errorf("no replica restored the certificate to the empty redis")
	}
	fourth := start(port4)
	fourth.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	if n := peb.orders(); n != 1 {
		t.Errorf("pebble saw %d orders after redis restarted empty and a replica started, want 1 (restored from memory)", n)
	}
	for _, port := range []int{port1, port2, port3, port4} {
		if s := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port), "fleet.seclisten.test"); s != s1 {
			t.Errorf("replica on %d serves serial %s, want %s", port, s, s1)
		}
	}
	for _, p := range ps {
		if n := len(p.logRecords("redis unreachable: serving with local state")); n != 1 {
			t.Errorf("%d unreachable lines for one outage, want 1", n)
		}
	}
}

// Garbage in the stored certificate (written by hand, another program, a
// truncation) is logged once as such and treated as missing: a replica
// started afterwards obtains the certificate again, once, and overwrites
// it; the replica already serving keeps its certificate from memory.
func TestFleetACMEGarbageCertificate(t *testing.T) {
	r := fleettest.StartRedis(t)
	port1, port2 := freePort(t), freePort(t)
	peb := startPebble(t, pebbleOptions{tlsPort: port2, httpPort: freePort(t)})
	start := func(port int) *proc {
		return startServe(t, peb.acmeArgs(t, t.TempDir(), "--addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--acme-domain", "fleet.seclisten.test", "--acme-http-addr", "off", "--redis", r.URL(0))...)
	}
	// Pebble validates TLS-ALPN-01 on port2: the replica there orders;
	// the one on port1 starts once the certificate is stored.
	second := start(port2)
	second.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	first := start(port1)
	first.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	if n := peb.orders(); n != 1 {
		t.Fatalf("pebble saw %d orders, want 1", n)
	}
	s1 := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port1), "fleet.seclisten.test")
	second.stop()

	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "seclisten:acme/certificates/*/fleet.seclisten.test.crt").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored certificate keys %v (%v), want one", keys, err)
	}
	if err := rdb.HSet(ctx, keys[0], "v", "\x00garbage-----BEGIN CERTIFICATE-----").Err(); err != nil {
		t.Fatal(err)
	}
	again := start(port2)
	rec := again.waitLogWithin("redis key holds garbage: treated as missing", 1, 40*time.Second)
	if k, _ := rec["key"].(string); k != keys[0] {
		t.Errorf("garbage reported at %q, want %q", k, keys[0])
	}
	again.waitLogWithin("ACME certificate in service", 1, 40*time.Second)
	if n := peb.orders(); n != 2 {
		t.Errorf("pebble saw %d orders, want 2 (one again for the garbage, once)", n)
	}
	if s := servedSerial(t, fmt.Sprintf("127.0.0.1:%d", port1), "fleet.seclisten.test"); s != s1 {
		t.Errorf("the replica already serving changed certificate: %s, was %s", s, s1)
	}
	if v, err := rdb.HGet(ctx, keys[0], "v").Result(); err != nil || !strings.HasPrefix(v, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("stored certificate after the new order: %.40q (%v), want PEM", v, err)
	}
	loggedOnce(t, again, "redis key holds garbage: treated as missing")
}
