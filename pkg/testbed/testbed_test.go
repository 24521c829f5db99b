package testbed

import (
	"bufio"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds every wait of these tests; they wait on events.
const hangGuard = 30 * time.Second

// bed is a running testbed and its grades.
type bed struct {
	*Testbed
	m      *Material
	base   int
	grades chan Grade
}

// startBed opens the cases named (all when none) on a free range of
// ports and serves them until the test ends.
func startBed(t *testing.T, opts Options, names ...string) *bed {
	t.Helper()
	cs, err := Select(names)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := &bed{grades: make(chan Grade, 64)}
	for try := 0; ; try++ {
		b.base = 20000 + rand.IntN(20000)
		m, err := NewMaterial(dir, MaterialOptions{HTTPBase: fmt.Sprintf("http://127.0.0.1:%d", b.base+HTTPOffset),
			BasePort: b.base, Host: "127.0.0.1", ClientIssuers: opts.Material.clientIssuersForTest()})
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Host, o.BasePort, o.Cases, o.Material = "127.0.0.1", b.base, cs, m
		o.Graded = func(g Grade) { b.grades <- g }
		tb, err := Listen(o)
		var pe *PortError
		if errors.As(err, &pe) && try < 20 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Testbed, b.m = tb, m
		break
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(hangGuard):
			t.Error("the testbed did not stop")
		}
	})
	return b
}

// clientIssuersForTest lets a test pass issuers through Options.Material
// before the material exists: nil here.
func (m *Material) clientIssuersForTest() []*x509.Certificate { return nil }

// next waits for the next grade.
func (b *bed) next(t *testing.T) Grade {
	t.Helper()
	select {
	case g := <-b.grades:
		return g
	case <-time.After(hangGuard):
		t.Fatal("no connection was graded")
	}
	return Grade{}
}

func (b *bed) addr(name string) string {
	for _, c := range cases {
		if c.Name == name {
			return c.Addr("127.0.0.1", b.base)
		}
	}
	panic("no case " + name)
}

// correctClient is a Go client configured as a careful client should be:
// it trusts only the testbed CA, checks the name, refuses RSA keys under
// 2048 bits (crypto/tls alone accepts 1024), checks revocation through
// the CRL distribution points, and presents the testbed's client
// certificate.
func correctClient(t *testing.T, m *Material) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA())
	client, err := tls.LoadX509KeyPair(m.ClientCertFile, m.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{client},
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			if k, ok := leaf.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
				return fmt.Errorf("server key of %d bits is too weak", k.N.BitLen())
			}
			return checkRevocation(cs)
		}}
}

// checkRevocation fetches the CRL each leaf points to and refuses a listed
// leaf.
func checkRevocation(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) < 2 {
		return nil
	}
	leaf, issuer := cs.VerifiedChains[0][0], cs.VerifiedChains[0][1]
	for _, url := range leaf.CRLDistributionPoints {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		der, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return err
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			return err
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return errors.New("server certificate is revoked")
			}
		}
	}
	return nil
}

// dial connects to case name with cfg and, if the handshake completes,
// sends a line and reads the testbed's answer. deadline bounds the
// handshake (zero: the hang guard).
func dial(t *testing.T, b *bed, name string, cfg *tls.Config, deadline time.Duration) (string, error) {
	t.Helper()
	if deadline == 0 {
		deadline = hangGuard
	}
	c, err := net.Dial("tcp", b.addr(name))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(deadline))
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	_ = tc.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(tc, "hello\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	return line, err
}

// A careful Go client passes every case, and is told so in-band where it
// connects.
func TestCorrectGoClientPassesEveryCase(t *testing.T) {
	b := startBed(t, Options{})
	cfg := correctClient(t, b.m)
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			deadline := time.Duration(0)
			if c.Name == "slow-handshake" {
				deadline = 200 * time.Millisecond // well under DefaultSlowFor
			}
			line, err := dial(t, b, c.Name, cfg.Clone(), deadline)
			g := b.next(t)
			if g.Case != c.Name || g.Result != Pass {
				t.Fatalf("grade %+v (client: %q, %v), want pass", g, line, err)
			}
			if goodServer(c) && !strings.Contains(line, "case "+c.Name+": PASS") {
				t.Errorf("the client was told %q, want its PASS", line)
			}
			t.Logf("%s (client: %v)", g, err)
		})
	}
	if b.Card().Failed() {
		t.Error("the card has a failure")
	}
}

// A client that verifies nothing accepts every bad server: FAIL on each,
// and it is told so in-band.
func TestInsecureClientFails(t *testing.T) {
	b := startBed(t, Options{}, "expired", "not-yet-valid", "wrong-host", "self-signed", "unknown-ca",
		"missing-intermediate", "wrong-eku", "weak-key", "tls10", "tls11")
	for _, c := range b.opts.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}
			line, err := dial(t, b, c.Name, cfg, 0)
			if err != nil {
				t.Fatalf("the insecure client did not connect: %v", err)
			}
			g := b.next(t)
			if g.Result != Fail {
				t.Fatalf("grade %+v, want fail", g)
			}
			if !strings.Contains(line, "FAIL") {
				t.Errorf("the client was told %q, want its FAIL", line)
			}
		})
	}
	if !b.Card().Failed() {
		t.Error("the card has no failure")
	}
}
