package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlMethod runs the real curl with a method (DELETE, say) and returns
// the status and body.
func curlMethod(t *testing.T, method, u string) (int, string) {
	t.Helper()
	out, err := osexec.Command("curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}", u).Output()
	if err != nil {
		t.Fatalf("curl -X %s %s: %v (is curl installed? make test installs it)", method, u, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, strings.TrimSuffix(s[:i], "\n")
}

// scan sends plaintext to the TLS port from src, as a scanner does, and
// reads until the server closes: one not-tls failure. It returns what the
// server sent.
func scan(t *testing.T, src, addr string) []byte {
	t.Helper()
	c, err := dialFrom(t, src, addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	// A refused (banned) connection is closed at once: the write may meet
	// the reset, and what matters is what the server sent first.
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	got, _ := io.ReadAll(c)
	return got
}

// servedFrom completes a TLS handshake from src (no client certificate)
// and exchanges one line, or fails the test.
func servedFrom(t *testing.T, src, addr string) {
	t.Helper()
	if err := tlsExchangeFrom(t, src, addr); err != nil {
		t.Fatalf("client %s not served: %v", src, err)
	}
}

func tlsExchangeFrom(t *testing.T, src, addr string) error {
	raw, err := dialFrom(t, src, addr)
	if err != nil {
		return err
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // the ephemeral certificate; trust is not under test
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(hangGuard))
	reply, err := exchangeRaw(tc, "hello from "+src)
	if err != nil {
		return err
	}
	if reply != defaultReply {
		return fmt.Errorf("reply %q", reply)
	}
	return nil
}

// rejects counts the --json reject events with a code so far.
func (p *proc) rejects(code string) int {
	n := 0
	for _, l := range splitLines(p.stdout.String()) {
		if strings.Contains(l, `"event":"reject"`) && strings.Contains(l, `"code":"`+code+`"`) {
			n++
		}
	}
	return n
}

// awaitRejects waits for n reject events with code: each failure is
// counted towards a ban before its reject event is printed.
func (p *proc) awaitRejects(code string, n int) {
	p.t.Helper()
	p.await(fmt.Sprintf("%d reject events %s", n, code), func() bool { return p.rejects(code) >= n })
}

type banJSON struct {
	Key        string    `json:"key"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	Count      int       `json:"count"`
	LastReason string    `json:"last_reason"`
}

func listBans(t *testing.T, maddr string) []banJSON {
	t.Helper()
	code, body := curl(t, "http://"+maddr+"/bans")
	if code != 200 {
		t.Fatalf("GET /bans: %d %s", code, body)
	}
	var list []banJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /bans: %v in %s", err, body)
	}
	for _, f := range []string{`"key"`, `"since"`, `"until"`, `"count"`, `"last_reason"`} {
		if len(list) > 0 && !strings.Contains(body, f) {
			t.Errorf("GET /bans has no field %s: %s", f, body)
		}
	}
	return list
}

// A scanner sending plaintext to the TLS port is banned after --ban-after
// failures: its next connection is refused at once with the access_denied
// alert, another address is served throughout, /bans lists the ban and
// DELETE /bans/KEY lifts it.
func TestBanScanner(t *testing.T) {
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, "--json", "--limit-loopback", "--ban-after", "5/1m", "--ban-for", "10m", "--metrics-addr", maddr)

	for i := 0; p.logRecord("ban 127.0.0.2 for 10m0s after 5 failures in 1m0s (last: not-tls)") == nil; i++ {
		if i == 5 {
			t.Fatalf("no ban after 5 failures")
		}
		if got := scan(t, "127.0.0.2", p.addr); !bytes.Contains(got, []byte("HTTP/1.")) {
			t.Fatalf("scan %d: got %q, want the server's plaintext hint", i, got)
		}
		servedFrom(t, "127.0.0.3", p.addr)
	}
	rec := p.logRecord("ban 127.0.0.2 for 10m0s after 5 failures in 1m0s (last: not-tls)")
	if rec["level"] != "WARN" || rec["key"] != "127.0.0.2" || rec["count"] != 5.0 || rec["last"] != "not-tls" {
		t.Errorf("ban record %v", rec)
	}

	// Banned: refused at once with the alert alone, before any read.
	if got := scan(t, "127.0.0.2", p.addr); !bytes.Equal(got, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31}) {
		t.Errorf("banned client got %q, want only the access_denied alert", got)
	}
	if err := tlsExchangeFrom(t, "127.0.0.2", p.addr); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("banned TLS client: %v, want the access_denied alert", err)
	}
	refusal := p.waitLogMatch("refused connection", "reason=banned", func(r map[string]any) bool { return r["reason"] == "banned" })
	if refusal["from"] != "127.0.0.2" || refusal["flags"] != "--ban-after,--ban-for,--ban-max" {
		t.Errorf("refusal %v", refusal)
	}
	servedFrom(t, "127.0.0.3", p.addr)

	list := listBans(t, maddr)
	if len(list) != 1 || list[0].Key != "127.0.0.2" || list[0].Count != 5 || list[0].LastReason != "not-tls" ||
		list[0].Until.Sub(list[0].Since) != 10*time.Minute {
		t.Errorf("GET /bans = %+v", list)
	}
	_, body := curl(t, "http://"+maddr+"/metrics")
	for series, want := range map[string]float64{
		"seclisten_bans_active":                                 1,
		`seclisten_bans_total{reason="not-tls"}`:                1,
		`seclisten_bans_total{reason="unknown-authority"}`:      0,
		`seclisten_connections_rejected_total{reason="banned"}`: 2,
	} {
		if got := metric(t, body, series); got != want {
			t.Errorf("%s = %g, want %g", series, got, want)
		}
	}
	// Banned connections do not feed the count: 5 failures, 2 refusals.
	if n := p.rejects("not-tls"); n != 5 {
		t.Errorf("%d not-tls failures, want 5", n)
	}

	for _, bad := range []struct {
		key  string
		code int
	}{{"127.0.0.9", 404}, {"bogus", 400}, {url.PathEscape("2001:db8::/48"), 400}} {
		if code, body := curlMethod(t, "DELETE", "http://"+maddr+"/bans/"+bad.key); code != bad.code {
			t.Errorf("DELETE /bans/%s: %d %s, want %d", bad.key, code, body, bad.code)
		}
	}
	if code, body := curlMethod(t, "DELETE", "http://"+maddr+"/bans/127.0.0.2"); code != 204 {
		t.Fatalf("DELETE /bans/127.0.0.2: %d %s", code, body)
	}
	p.waitLog("unban 127.0.0.2 (lifted)", 1)
	servedFrom(t, "127.0.0.2", p.addr)
	if list := listBans(t, maddr); len(list) != 0 {
		t.Errorf("GET /bans after the lift = %+v", list)
	}
	if code, _ := curlMethod(t, "DELETE", "http://"+maddr+"/bans/127.0.0.2"); code != 404 {
		t.Errorf("second DELETE: %d, want 404", code)
	}
}

// Each new ban of the same key lasts twice as long, up to --ban-max; the
// end of each is logged once.
func TestBanEscalates(t *testing.T) {
	// Mostly waiting on certificates, CRLs and bans to expire: beside the others.
	t.Parallel()
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, "--json", "--limit-loopback", "--ban-after", "2/1m", "--ban-for", "1s", "--ban-max", "3s",
		"--metrics-addr", maddr)
	for i, d := range []string{"1s", "2s", "3s"} {
		msg := "ban 127.0.0.2 for " + d + " after 2 failures in 1m0s (last: not-tls)"
		scan(t, "127.0.0.2", p.addr)
		scan(t, "127.0.0.2", p.addr)
		rec := p.waitLog(msg, 1)
		if i == 1 {
			// Long enough to read back before it ends, even on a slow machine.
			if l := listBans(t, maddr); len(l) == 1 && l[0].Until.Sub(l[0].Since) != 2*time.Second {
				t.Errorf("second ban in /bans lasts %s, want 2s", l[0].Until.Sub(l[0].Since))
			}
		}
		if rec["for"] != float64(time.Duration(i+1)*time.Second) {
			t.Errorf("ban %d: for=%v", i+1, rec["for"])
		}
		p.waitLog("unban 127.0.0.2", i+1)
		servedFrom(t, "127.0.0.2", p.addr)
	}
	if n := len(p.logRecords("unban 127.0.0.2")); n != 3 {
		t.Errorf("%d unban lines for 3 bans", n)
	}
}

// Who is never banned: loopback without --limit-loopback, the allow list,
// and, in audit mode, clients for their certificates. A require server
// bans for refused certificates.
func TestBanExemptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"loopback exempt by default", nil},
		{"allow-cidr never banned", []string{"--limit-loopback", "--allow-cidr", "127.0.0.0/8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServe(t, append([]string{"--json", "--ban-after", "2/1m"}, tc.args...)...)
			for range 4 {
				scan(t, "127.0.0.2", p.addr)
			}
			p.awaitRejects("not-tls", 4)
			servedFrom(t, "127.0.0.2", p.addr)
			if rec := p.logRecord("ban 127.0.0.2 for 10m0s after 2 failures in 1m0s (last: not-tls)"); rec != nil {
				t.Errorf("banned: %v", rec)
			}
		})
	}
	t.Run("audit never bans for certificates", func(t *testing.T) {
		dir := pkiDir(t)
		p := startServe(t, mtlsArgs(dir, "--json", "--client-auth", "audit", "--limit-loopback", "--ban-after", "2/1m")...)
		for range 4 {
			servedFrom(t, "127.0.0.2", p.addr) // no certificate: verdict no-certificate, served
		}
		p.waitLog("audit: a require server would refuse this client; serving it anyway", 4)
		servedFrom(t, "127.0.0.2", p.addr)
		// Plaintext still counts in audit mode.
		scan(t, "127.0.0.2", p.addr)
		scan(t, "127.0.0.2", p.addr)
		p.waitLog("ban 127.0.0.2 for 10m0s after 2 failures in 1m0s (last: not-tls)", 1)
	})
	t.Run("require bans for refused certificates", func(t *testing.T) {
		dir := pkiDir(t)
		p := startServe(t, mtlsArgs(dir, "--json", "--limit-loopback", "--ban-after", "2/1m")...)
		for range 2 {
			if err := tlsExchangeFrom(t, "127.0.0.4", p.addr); err == nil {
				t.Fatal("client without a certificate served by a require server")
			}
		}
		p.waitLog("ban 127.0.0.4 for 10m0s after 2 failures in 1m0s (last: no-certificate)", 1)
	})
}

// A rate refusal counts towards a ban; the refusals of a banned client do
// not extend it.
func TestBanRateRefusals(t *testing.T) {
	p := startServer(t, "--json", "--limit-loopback", "--rate", "0.001", "--burst", "1", "--ban-after", "3/1m")
	c := newClientFrom(t, "127.0.0.2", p.addr)
	c.send("first\n")
	c.expectLine(defaultReply)
	for range 3 {
		r := newClientFrom(t, "127.0.0.2", p.addr)
		r.expectLine("error: refused: too many connections from your address (rate limit); try again later")
	}
	p.waitLog("ban 127.0.0.2 for 10m0s after 3 failures in 1m0s (last: rate)", 1)
	r := newClientFrom(t, "127.0.0.2", p.addr)
	r.expectLine("error: refused: your address is banned for a while after repeated failures; try again later")
	p.awaitRejects("banned", 1)
	if n := len(p.logRecords("ban 127.0.0.2 for 10m0s after 3 failures in 1m0s (last: rate)")); n != 1 {
		t.Errorf("%d ban lines", n)
	}
}

// A storm of scanners from many loopback addresses: each is banned once,
// /bans and the gauge agree, and the server's memory and descriptors stay
// bounded. (The table's cap under 20,000 addresses is proven in
// pkg/internal/ban, TestBanStormBounded.)
func TestBanStorm(t *testing.T) {
	const n = 1000
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, "--json", "--limit-loopback", "--ban-after", "1/1m", "--metrics-addr", maddr)
	servedFrom(t, "127.0.0.1", p.addr)
	base := p.fdsBelow(1 << 20)
	for i := range n {
		scan(t, fmt.Sprintf("127.0.%d.%d", 10+i/250, 1+i%250), p.addr)
	}
	p.awaitRejects("not-tls", n)
	if list := listBans(t, maddr); len(list) != n {
		t.Errorf("GET /bans lists %d bans, want %d", len(list), n)
	}
	_, body := curl(t, "http://"+maddr+"/metrics")
	if got := metric(t, body, "seclisten_bans_active"); got != n {
		t.Errorf("seclisten_bans_active = %g, want %d", got, n)
	}
	if rss := p.status("VmRSS"); rss > 200_000 {
		t.Errorf("RSS %d kB after %d bans", rss, n)
	}
	waitFDs(t, p, base)
}

// Bad values of the ban flags: one sentence, exit status 2, nothing listens.
func TestBanFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ban-after", "0/1m"}, `invalid --ban-after: "0/1m": the failures must be a whole number of at least 1, like 10/1m`},
		{[]string{"--ban-after", "10"}, `invalid --ban-after: "10" is not failures per window, like 10/1m`},
		{[]string{"--ban-after", "x/1m"}, `invalid --ban-after: "x/1m": the failures must be a whole number of at least 1, like 10/1m`},
		{[]string{"--ban-after", "10/0s"}, `invalid --ban-after: "10/0s": the window must be a positive duration, like 10/1m`},
		{[]string{"--ban-after", "-1/1m"}, `invalid --ban-after: "-1/1m": the failures must be a whole number of at least 1, like 10/1m`},
		{[]string{"--ban-after", "10/-1m"}, `invalid --ban-after: "10/-1m": the window must be a positive duration, like 10/1m`},
		{[]string{"--ban-for", "0"}, `--ban-for must be a positive duration, got 0s`},
		{[]string{"--ban-for", "soon"}, `invalid --ban-for: "soon" is not a duration like 30s, 2m or 1h30m`},
		{[]string{"--ban-max", "1m"}, `--ban-max (1m0s) must be at least --ban-for (10m0s)`},
		{[]string{"--ban-after", "10/1m", "--ban-for", "1h", "--ban-max", "30m"}, `--ban-max (30m0s) must be at least --ban-for (1h0m0s)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := seclistenCmd(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit %d (%v), want 2", code, err)
			}
			if got := stderr.String(); got != "seclisten: "+tc.want+"\n" {
				t.Errorf("stderr %q, want %q", got, "seclisten: "+tc.want+"\n")
			}
		})
	}
}

// Old TLS versions and silent clients count too: a scanner probing for
// TLS 1.1, and a slowloris that never finishes its handshake.
func TestBanCountsOutcomes(t *testing.T) {
	p := startServe(t, "--json", "--limit-loopback", "--ban-after", "2/1m", "--handshake-timeout", "300ms")
	for range 2 {
		raw, err := dialFrom(t, "127.0.0.5", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}) // the old version is the test
		_ = tc.SetDeadline(time.Now().Add(hangGuard))
		if err := tc.Handshake(); err == nil {
			t.Fatal("TLS 1.1 handshake completed")
		}
	}
	p.waitLog("ban 127.0.0.5 for 10m0s after 2 failures in 1m0s (last: protocol-version)", 1)
	for range 2 {
		c, err := dialFrom(t, "127.0.0.6", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		_, _ = io.ReadAll(c) // the server closes at the handshake timeout
	}
	p.waitLog("ban 127.0.0.6 for 10m0s after 2 failures in 1m0s (last: handshake-timeout)", 1)
}
