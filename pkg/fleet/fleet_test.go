package fleet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
	"github.com/seclisten/seclisten/pkg/fleet/fleettest"
)

// logBuf is a log that tests can wait on.
type logBuf struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func newLog() (*logBuf, *slog.Logger) {
	l := &logBuf{wake: make(chan struct{})}
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.wake)
	l.wake = make(chan struct{})
	return l.buf.Write(p)
}

// wait waits until the log holds n lines containing s.
func (l *logBuf) wait(t *testing.T, s string, n int) {
	t.Helper()
	guard := time.After(30 * time.Second) // a hang guard
	for {
		l.mu.Lock()
		got := bytes.Count(l.buf.Bytes(), []byte(s))
		wake := l.wake
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-wake:
		case <-guard:
			t.Fatalf("log never had %d lines with %q:\n%s", n, s, l.String())
		}
	}
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte(s))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func client(t *testing.T, url string) (*fleet.Client, *logBuf) {
	t.Helper()
	l, log := newLog()
	c, err := fleet.New(fleet.Options{URL: url, Prefix: "test:", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(func() { c.Close() })
	return c, l
}

// pemCert is a self-signed certificate and its key, PEM: values the
// storage accepts under .crt and .key names.
func pemCert(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// Garbage under a certificate's name is missing to certmagic (Load and
// Stat), so that it obtains the certificate again and overwrites it.
func TestStorageGarbage(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, l := client(t, r.URL(0))
	s := fleet.NewStorage(c, 0)
	ctx := context.Background()
	for _, k := range []string{"certificates/ca/a/a.crt", "certificates/ca/a/a.key", "certificates/ca/a/a.json"} {
		if err := s.Store(ctx, k, []byte("\x00garbage{")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%s) of garbage: %v, want fs.ErrNotExist", k, err)
		}
		if s.Exists(ctx, k) {
			t.Errorf("Exists(%s) of garbage: true", k)
		}
	}
	if n := l.count("redis key holds garbage: treated as missing"); n != 3 {
		t.Errorf("%d garbage lines for three values read twice each, want 3", n)
	}
}

// The storage keeps what certmagic stores, lists it like a file system
// and stats files and directories, as certmagic's FileStorage does.
func TestStorageRoundTrip(t *testing.T) {
	r := fleettest.StartRedis(t)
	c, _ := client(t, r.URL(0))
	s := fleet.NewStorage(c, 0)
	ctx := context.Background()
	cert, key := pemCert(t)
	files := map[string]string{
		"certificates/ca/example.com/example.com.crt": cert,
		"certificates/ca/example.com/example.com.key": key,
		"certificates/ca/other.test/other.test.crt":   cert + cert,
		"acme/ca/users/ops/ops.json":                  "{}",
		"certificatesx/not-under":                     "x",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, v)
		}
	}
	if _, err := s.Load(ctx, "certificates/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	list, err := s.List(ctx, "certificates", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"certificates/ca"}; !slices.Equal(list, want) {
		t.Errorf("List(certificates) = %q, want %q", list, want)
	}
	list, _ = s.List(ctx, "certificates/ca", true)
	slices.Sort(list)
	want := []string{"certificates/ca/example.com", "certificates/ca/example.com/example.com.crt",
		"certificates/ca/example.com/example.com.key", "certificates/ca/other.test", "certificates/ca/other.test/other.test.crt"}
	if !slices.Equal(list, want) {
		t.Errorf("List(certificates/ca, recursive) = %q, want %q", list, want)
	}
	if _, err := s.List(ctx, "nothing", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing directory: %v, want fs.ErrNotExist", err)
	}
	before := time.Now()
	info, err := s.Stat(ctx, "certificates/ca/example.com/example.com.key")
	if err != nil || !info.IsTerminal || info.Size != int64(len(key)) || info.Modified.After(time.Now()) || before.Sub(info.Modified) > time.Minute {
		t.Errorf("Stat(file) = %+v, %v", info, err)
	}
	if info, err := s.Stat(ctx, "certificates/ca"); err != nil || info.IsTerminal {
		t.Errorf("Stat(directory) = %+v, %v", info, err)
	}
	if !s.Exists(ctx, "certificates/ca") || !s.Exists(ctx, "acme/ca/users/ops/ops.json") || s.Exists(ctx, "certificates/c") {
		t.Error("Exists wrong for a directory, a file or a partial name")
	}
	if err := s.Delete(ctx, "certificates/ca/example.com"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/example.com") || s.Exists(ctx, "certificates/ca/example.com/example.com.crt") {
		t.Error("a deleted directory or its files still exist")
	}
	if !s.Exists(ctx, "certificates/ca/other.test/other.test.crt") || !s.Exists(ctx, "certificatesx/not-under") {
		t.Error("Delete removed a neighbour")
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

// A lock held by one replica blocks another until it is released, and a
// holder that stops renewing (crashes) loses it after the TTL; a holder
// that renews keeps it past the TTL.
func TestStorageLocks(t *testing.T) {
	r := fleettest.StartRedis(t)
	ctx := context.Background()
	const ttl = 600 * time.Millisecond
	ca, _ := client(t, r.URL(0))
	cb, _ := client(t, r.URL(0))
	a, b := fleet.NewStorage(ca, ttl), fleet.NewStorage(cb, ttl)

	t.Run("blocks until unlock", func(t *testing.T) {
		if err := a.Lock(ctx, "issue"); err != nil {
			t.Fatal(err)
		}
		// Held through several TTLs by renewal: b cannot have it.
		short, cancel := context.WithTimeout(ctx, 4*ttl)
		defer cancel()
		if err := b.Lock(short, "issue"); err == nil {
			t.Fatal("b took a lock a holds and renews")
		}
		got := make(chan error, 1)
		go func() { got <- b.Lock(ctx, "issue") }()
		if err := a.Unlock(ctx, "issue"); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if err := b.Unlock(ctx, "issue"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expires after a crash", func(t *testing.T) {
		crashed := fleet.NewStorage(ca, ttl)
		if err := crashed.Lock(ctx, "renew"); err != nil {
			t.Fatal(err)
		}
		crashed.Close() // stops renewing, releases nothing
		start := time.Now()
		guard, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang guard
		defer cancel()
		if err := b.Lock(guard, "renew"); err != nil {
			t.Fatalf("the crashed holder's lock never expired: %v", err)
		}
		if waited := time.Since(start); waited < ttl/2 {
			t.Errorf("took the lock after %s: the crashed holder's lock did not hold", waited)
		}
		if err := b.Unlock(ctx, "renew"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unlock of a lock not held", func(t *testing.T) {
		if err := a.Unlock(ctx, "never"); err == nil {
			t.Error("Unlock of a lock never taken: no error")
		}
	})
}

// Two replicas' Tickets share one key set: the first makes it, the second
// applies the same keys; after a rotation, the new key comes first and the
// old one still decrypts.
func TestTicketsShared(t *testing.T) {
	r := fleettest.StartRedis(t)
	ctx := context.Background()
	type replica struct {
		t    *fleet.Tickets
		keys [][32]byte
	}
	mk := func() *replica {
		c, _ := client(t, r.URL(0))
		rp := &replica{}
		_, log := newLog()
		rp.t = fleet.NewTickets(c, fleet.NewStorage(c, 0), fleet.TicketOptions{Rotation: time.Hour, Logger: log,
			Apply: func(k [][32]byte) { rp.keys = k }})
		return rp
	}
	a, b := mk(), mk()
	a.t.Refresh(ctx)
	b.t.Refresh(ctx)
	if len(a.keys) != 1 || !slices.Equal(a.keys, b.keys) {
		t.Fatalf("replicas apply %d and %d keys, different: want one shared key", len(a.keys), len(b.keys))
	}
	// A rotation is due when the set is older than Rotation; make one by
	// writing an old set.
	c, _ := client(t, r.URL(0))
	old := fleet.TicketKeys{Rotated: time.Now().Add(-2 * time.Hour), Keys: a.keys}
	if err := c.Redis().Set(ctx, c.Key("tickets"), old.Marshal(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	b.t.Refresh(ctx)
	a.t.Refresh(ctx)
	if len(b.keys) != 2 || b.keys[1] != old.Keys[0] || !slices.Equal(a.keys, b.keys) {
		t.Fatalf("after a rotation: a %d keys, b %d keys; want the same 2, the old one second", len(a.keys), len(b.keys))
	}
}

// A ticket key set with garbage in it is reported once, ignored, and
// replaced by a fresh set.
func TestTicketsGarbage(t *testing.T) {
	r := fleettest.StartRedis(t)
	ctx := context.Background()
	c, _ := client(t, r.URL(0))
	if err := c.Redis().Set(ctx, c.Key("tickets"), "not json at all", 0).Err(); err != nil {
		t.Fatal(err)
	}
	l, log := newLog()
	var keys [][32]byte
	tk := fleet.NewTickets(c, fleet.NewStorage(c, 0), fleet.TicketOptions{Rotation: time.Hour, Logger: log,
		Apply: func(k [][32]byte) { keys = k }})
	tk.Refresh(ctx)
	if n := l.count("redis key holds garbage"); n != 1 {
		t.Errorf("%d garbage reports, want 1:\n%s", n, l)
	}
	if len(keys) != 1 {
		t.Errorf("%d keys applied, want a fresh set of 1", len(keys))
	}
	data, _ := c.Redis().Get(ctx, c.Key("tickets")).Bytes()
	if _, err := fleet.ParseTicketKeys(data); err != nil {
		t.Errorf("the garbage was not replaced: %v", err)
	}
}

// Redis down at start is logged once, its return once, and a kill
// mid-run once more; the probes back off (a handful of errors, no spin).
func TestClientStateChanges(t *testing.T) {
	r := fleettest.StartRedis(t)
	r.Stop()
	c, l := client(t, r.URL(0))
	l.wait(t, "redis unreachable: serving with local state", 1)
	if c.Up() {
		t.Error("Up with Redis down")
	}
	r.Start()
	l.wait(t, "redis back", 1)
	r.Stop()
	l.wait(t, "redis unreachable: serving with local state", 2)
	r.Start()
	l.wait(t, "redis back", 2)
	if n := l.count("redis unreachable"); n != 2 {
		t.Errorf("%d unreachable lines for two outages, want 2", n)
	}
}

// A wrong password is a state (logged with Redis's refusal), never a
// crash; a bad URL is an error that does not repeat the password.
func TestClientBadCredentialsAndURLs(t *testing.T) {
	r := fleettest.StartRedis(t, "--requirepass", "right")
	c, l := client(t, "redis://:wrong@"+r.Addr()+"/0")
	l.wait(t, "redis unreachable", 1)
	if !bytes.Contains([]byte(l.String()), []byte("WRONGPASS")) {
		t.Errorf("the log does not say the password is wrong:\n%s", l)
	}
	if bytes.Contains([]byte(l.String()), []byte("wrong@")) {
		t.Errorf("the log repeats the password:\n%s", l)
	}
	_ = c
	ok, _ := client(t, "redis://:right@"+r.Addr()+"/0")
	if !ok.Up() {
		t.Error("the right password: not up")
	}
	for _, u := range []string{"http://h:1", "redis://", "redis://:sekrit@h:1/notadb", "::"} {
		_, err := fleet.New(fleet.Options{URL: u, Prefix: "p:", Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			t.Errorf("%q: no error", u)
		} else if bytes.Contains([]byte(err.Error()), []byte("sekrit")) {
			t.Errorf("%q: the error repeats the password: %v", u, err)
		}
	}
}
