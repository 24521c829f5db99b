package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// A client that checks the certificate after the handshake, as curl checks
// the host name, and closes without a word passes.
func TestCloseAfterHandshakePasses(t *testing.T) {
	b := startBed(t, Options{}, "wrong-host")
	tc, err := tls.Dial("tcp", b.addr("wrong-host"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	tc.Close()
	g := b.next(t)
	if g.Result != Pass || !strings.Contains(g.Evidence, "closed without sending anything") {
		t.Errorf("grade %+v, want a pass for closing without a word", g)
	}
}

// A client that completes the handshake with a bad server and holds the
// connection in silence has accepted it.
func TestSilentAfterHandshakeFails(t *testing.T) {
	b := startBed(t, Options{SlowFor: 50 * time.Millisecond}, "expired")
	tc, err := tls.Dial("tcp", b.addr("expired"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	g := b.next(t)
	if g.Result != Fail || !strings.Contains(g.Evidence, "without a word") {
		t.Errorf("grade %+v, want a fail for holding the connection", g)
	}
}

// A client that fetches the missing intermediate from the issuer URL (AIA)
// and connects passes, and the evidence says so.
func TestMissingIntermediateFetchedPasses(t *testing.T) {
	b := startBed(t, Options{}, "missing-intermediate")
	roots := x509.NewCertPool()
	roots.AddCert(b.m.CA())
	cfg := &tls.Config{InsecureSkipVerify: true, // verified below, with the fetched intermediate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, url := range leaf.IssuingCertificateURL {
				resp, err := http.Get(url)
				if err != nil {
					return err
				}
				der, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				inter.AddCert(c)
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "localhost"})
			return err
		}}
	line, err := dial(t, b, "missing-intermediate", cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := b.next(t)
	if g.Result != Pass || !strings.Contains(g.Evidence, "fetched the missing intermediate") {
		t.Errorf("grade %+v, want a pass for fetching the intermediate", g)
	}
	if !strings.Contains(line, "PASS") {
		t.Errorf("the client was told %q", line)
	}
}

// A client without a handshake timeout waits out slow-handshake and
// connects: it fails.
func TestSlowHandshakeWaitedOutFails(t *testing.T) {
	b := startBed(t, Options{SlowFor: 100 * time.Millisecond}, "slow-handshake")
	if _, err := dial(t, b, "slow-handshake", correctClient(t, b.m), 0); err != nil {
		t.Fatal(err)
	}
	g := b.next(t)
	if g.Result != Fail || !strings.Contains(g.Evidence, "no handshake timeout") {
		t.Errorf("grade %+v, want a fail for waiting", g)
	}
}

// clientHello is the first record a Go client sends.
func clientHello(t *testing.T) []byte {
	t.Helper()
	c, s := net.Pipe()
	go func() { _ = tls.Client(c, &tls.Config{ServerName: "localhost"}).Handshake() }()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(buf[3])<<8|int(buf[4]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	return append(buf, body...)
}

// A client that keeps waiting after the server stopped mid-handshake
// hangs: it fails. One that closes passes (TestCorrectGoClientPassesEveryCase).
func TestAbortHeldFails(t *testing.T) {
	b := startBed(t, Options{SlowFor: 100 * time.Millisecond}, "abort-mid-handshake")
	c, err := net.Dial("tcp", b.addr("abort-mid-handshake"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(clientHello(t)); err != nil {
		t.Fatal(err)
	}
	g := b.next(t) // the client holds the connection until graded
	if g.Result != Fail || !strings.Contains(g.Evidence, "it hangs") {
		t.Errorf("grade %+v, want a fail for hanging", g)
	}
}

// require-client-cert fails a client without a certificate, and one whose
// certificate is from another CA; the issuers given are accepted.
func TestRequireClientCert(t *testing.T) {
	other, err := pki.NewCA(pki.CAOptions{CommonName: "Other Client CA"})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueClient(pki.ClientOptions{CommonName: "stranger"})
	if err != nil {
		t.Fatal(err)
	}
	b := startBed(t, Options{}, "require-client-cert")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"none", nil, "sent no certificate"},
		{"foreign", []tls.Certificate{foreign.TLSCertificate()}, "CN=stranger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := correctClient(t, b.m)
			cfg.Certificates = nil
			// Go's client sends only a certificate from a CA the server
			// names; this one sends its own regardless.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(tc.certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &tc.certs[0], nil
			}
			_, _ = dial(t, b, "require-client-cert", cfg, 0)
			g := b.next(t)
			if g.Result != Fail || !strings.Contains(g.Evidence, tc.want) {
				t.Errorf("grade %+v, want a fail naming %q", g, tc.want)
			}
		})
	}
	t.Run("given-issuer", func(t *testing.T) {
		m, err := NewMaterial(t.TempDir(), MaterialOptions{HTTPBase: "http://127.0.0.1:1",
			ClientIssuers: []*x509.Certificate{other.Certificate}})
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyClient(m)(tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign.Certificate}}); err != nil {
			t.Errorf("a client certificate from a given issuer: %v", err)
		}
	})
}

// A connection that sends nothing, or plaintext, is not graded; the
// plaintext client is told the port speaks TLS.
func TestNotGraded(t *testing.T) {
	b := startBed(t, Options{}, "good")
	c, err := net.Dial("tcp", b.addr("good"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if g := b.next(t); g.Result != NotGraded || !strings.Contains(g.Evidence, "without sending a ClientHello") {
		t.Errorf("grade %+v", g)
	}
	c, err = net.Dial("tcp", b.addr("good"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	reply, _ := io.ReadAll(c)
	if !strings.Contains(string(reply), "speaks TLS") {
		t.Errorf("plaintext client told %q", reply)
	}
	if g := b.next(t); g.Result != NotGraded || !strings.Contains(g.Evidence, `plaintext, not a TLS ClientHello: "hello"`) {
		t.Errorf("grade %+v", g)
	}
	if r := b.Card().Report(); r.NotGraded != 2 || r.Cases[0].Result != NotTried {
		t.Errorf("card: %d not graded, good %s", r.NotGraded, r.Cases[0].Result)
	}
}

// A busy port is an error naming it and its case, and nothing stays open.
func TestBusyPort(t *testing.T) {
	dir := t.TempDir()
	for try := 0; try < 20; try++ {
		hold, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		base := hold.Addr().(*net.TCPAddr).Port - 3 // wrong-host's port
		if base < 1024 {
			continue
		}
		m, err := NewMaterial(dir, MaterialOptions{HTTPBase: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Listen(Options{Host: "127.0.0.1", BasePort: base, Cases: Cases(), Material: m})
		var pe *PortError
		if !errors.As(err, &pe) {
			t.Fatalf("Listen with a busy port: %v", err)
		}
		if pe.Port != base+3 && pe.Port > base+3 {
			t.Fatalf("port error on %d, want %d", pe.Port, base+3)
		}
		if pe.Port != base+3 {
			continue // a port before it was busy too: try elsewhere
		}
		want := fmt.Sprintf("cannot listen on port %d for case wrong-host", base+3)
		if !strings.Contains(pe.Error(), want) {
			t.Errorf("error %q, want %q", pe, want)
		}
		// The ports opened before the busy one are closed again.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base))
		if err != nil {
			t.Errorf("the good case's port stayed open: %v", err)
		} else {
			ln.Close()
		}
		return
	}
	t.Fatal("found no free range of ports")
}

// The CA is kept between runs; a CA that is not the testbed's is refused.
func TestMaterialKeepsItsCA(t *testing.T) {
	dir := t.TempDir()
	opts := MaterialOptions{HTTPBase: "http://127.0.0.1:1"}
	if _, err := NewMaterial(dir, opts); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	m, err := NewMaterial(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(m.CAFile)
	if !bytes.Equal(first, second) {
		t.Error("the testbed CA changed between runs")
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	for _, c := range cases {
		if !strings.Contains(string(readme), "| "+c.Name+" |") {
			t.Errorf("README.md does not explain %s", c.Name)
		}
	}

	foreign := t.TempDir()
	if _, err := pki.Init(foreign, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = NewMaterial(foreign, opts)
	if err == nil || !strings.Contains(err.Error(), "not the testbed's own CA") {
		t.Errorf("a certs init CA: %v, want a refusal", err)
	}
}

// The JSON card has the documented fields, and nothing else.
func TestReportSchema(t *testing.T) {
	card := NewCard(Cases()[:3], 8600)
	card.Add(Grade{Case: "good", Client: "127.0.0.1:1", Time: time.Now(), Result: Pass, Evidence: "ok"})
	card.Add(Grade{Case: "expired", Client: "127.0.0.1:2", Time: time.Now(), Result: Fail, Evidence: "bad"})
	card.Add(Grade{Case: "expired", Client: "127.0.0.1:3", Time: time.Now(), Result: Pass, Evidence: "fine"})
	var buf bytes.Buffer
	if err := card.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version int            `json:"version"`
		Passed  bool           `json:"passed"`
		Started time.Time      `json:"started"`
		Ended   time.Time      `json:"ended"`
		Totals  map[string]int `json:"totals"`
		Cases   []struct {
			Case        string `json:"case"`
			Port        int    `json:"port"`
			Expect      string `json:"expect"`
			Result      string `json:"result"`
			Evidence    string `json:"evidence"`
			Connections int    `json:"connections"`
			Pass        int    `json:"pass"`
			Fail        int    `json:"fail"`
			NotChecked  int    `json:"not_checked"`
		} `json:"cases"`
		Connections []struct {
			Case     string    `json:"case"`
			Client   string    `json:"client"`
			Time     time.Time `json:"time"`
			Result   string    `json:"result"`
			Evidence string    `json:"evidence"`
		} `json:"connections"`
		ConnectionsDropped int `json:"connections_dropped"`
		NotGraded          int `json:"not_graded"`
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || doc.Passed || doc.Totals["pass"] != 1 || doc.Totals["fail"] != 1 || doc.Totals["not-tried"] != 1 || len(doc.Totals) != 4 {
		t.Errorf("version %d passed %v totals %v", doc.Version, doc.Passed, doc.Totals)
	}
	if e := doc.Cases[1]; e.Case != "expired" || e.Port != 8601 || e.Result != "fail" || e.Evidence != "bad" ||
		e.Connections != 2 || e.Pass != 1 || e.Fail != 1 || e.Expect != "refuses" {
		t.Errorf("expired on the card: %+v", e)
	}
	if len(doc.Connections) != 3 || doc.Connections[2].Client != "127.0.0.1:3" {
		t.Errorf("connections: %+v", doc.Connections)
	}
	var table bytes.Buffer
	if err := card.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "1 PASS, 1 FAIL, 1 NOT-TRIED: a case failed") {
		t.Errorf("table:\n%s", table.String())
	}
}

// The end of the run closes every connection, whatever its stage, and
// grades none of them; Serve returns once all are done.
func TestServeStopsEverything(t *testing.T) {
	cs := Cases()
	m, err := NewMaterial(t.TempDir(), MaterialOptions{HTTPBase: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	var tb *Testbed
	var base int
	for try := 0; tb == nil; try++ {
		base = 20000 + rand.IntN(20000)
		tb, err = Listen(Options{Host: "127.0.0.1", BasePort: base, Cases: cs, Material: m})
		var pe *PortError
		if err != nil && (!errors.As(err, &pe) || try > 20) {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tb.Serve(ctx); close(done) }()
	addr := func(name string) string {
		c, _ := Select([]string{name})
		return c[0].Addr("127.0.0.1", base)
	}
	var conns []net.Conn
	// Waiting for a ClientHello; stalled by slow-handshake; served after
	// a good handshake.
	silent, err := net.Dial("tcp", addr("good"))
	if err != nil {
		t.Fatal(err)
	}
	slow, err := net.Dial("tcp", addr("slow-handshake"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Write(clientHello(t)); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(m.CA())
	served, err := tls.Dial("tcp", addr("good"), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	// Its grade is in before the end: it is answered with it.
	fmt.Fprintf(served, "hello\n")
	if _, err := bufio.NewReader(served).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	conns = append(conns, silent, slow, served)
	for guard := time.Now().Add(hangGuard); tb.active.Load() != 3; runtime.Gosched() {
		if time.Now().After(guard) {
			t.Fatalf("%d connections accepted, want 3", tb.active.Load())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Serve did not return")
	}
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		if _, err := c.Read(make([]byte, 512)); err == nil {
			// The slow case may have been mid-answer: read to the end.
			_, err = io.Copy(io.Discard, c)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
			}
		}
		c.Close()
	}
	if n := tb.active.Load(); n != 0 {
		t.Errorf("%d connections still active", n)
	}
	// The served one was graded when its handshake completed; the two cut
	// by the end are not.
	if r := tb.Card().Report(); len(r.Connections) != 1 || r.NotGraded != 0 {
		t.Errorf("connections cut by the end were graded: %+v", r)
	}
}
