package main

import (
	"fmt"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// curl fetches a URL with the real curl and returns the status and body.
func curl(t *testing.T, url string) (int, string) {
	t.Helper()
	out, err := osexec.Command("curl", "-s", "-m", "5", "-w", "\n%{http_code}", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v (is curl installed? make test installs it)", url, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, strings.TrimSuffix(s[:i], "\n")
}

// metric finds one sample in a Prometheus text exposition: name{labels} value.
func metric(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in:\n%s", series, body)
	return 0
}

// A scripted session: the metrics scraped with curl show its counts, and
// they agree with the --json event stream.
func TestMetricsAgreeWithEvents(t *testing.T) {
	dir := pkiDir(t)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startServe(t, mtlsArgs(dir, "--json", "--metrics-addr", maddr, "--deny-cidr", "127.0.0.9",
		"--rate", "0")...)

	// Three good clients, two lines each.
	for i := range 3 {
		c := tlsClient(t, dir, p.addr)
		for j := range 2 {
			c.send(fmt.Sprintf("client %d line %d\n", i, j))
			c.expectLine(defaultReply)
		}
		c.tc.Close()
	}
	// Two refused certificates, and plaintext on the TLS port.
	for _, name := range []string{"client-expired", ""} {
		sc := startSClient(t, p.addr, certArgs(dir, name)...)
		sc.send("x\n")
		sc.wait()
	}
	plain := newClient(t, p.addr)
	plain.send("GET / HTTP/1.1\r\n\r\n")
	plain.expectLine("HTTP/1.0 400 Bad Request\r")
	// One refused at admission.
	if c, err := dialFrom(t, "127.0.0.9", p.addr); err == nil {
		if _, err := exchangeRaw(c, "denied"); err == nil {
			t.Errorf("denied address served")
		}
	}

	var body string
	waitFor(t, "all connections closed in the metrics", func() bool {
		_, body = curl(t, "http://"+maddr+"/metrics")
		return strings.Contains(body, "\nseclisten_connections_active 0\n") &&
			metric(t, body, "seclisten_connections_accepted_total") == 7
	})

	// An event reaches stdout a moment after the metrics may count it
	// (pkg/batch): wait for the events the checks below expect.
	var events map[string]int
	p.await("the sessions' events printed", func() bool {
		events = map[string]int{}
		for _, l := range splitLines(completeLines(p.stdout.String())) {
			for _, e := range []string{"connect", "handshake", "message", "reply", "reject", "close"} {
				if strings.Contains(l, `"event":"`+e+`"`) {
					events[e]++
				}
			}
		}
		return events["message"] >= 6 && events["reject"] >= 4 && events["connect"] >= 6
	})
	rejected := metric(t, body, `seclisten_connections_rejected_total{reason="deny-list"}`)
	failures := 0.0
	for _, v := range []string{"expired", "no-certificate", "not-tls"} {
		n := metric(t, body, `seclisten_handshake_failures_total{verdict="`+v+`"}`)
		if n != 1 {
			t.Errorf("handshake failures %s = %v, want 1", v, n)
		}
		failures += n
	}
	for _, check := range []struct {
		what          string
		metric, event float64
	}{
		{"messages", metric(t, body, "seclisten_messages_received_total"), float64(events["message"])},
		{"replies", metric(t, body, "seclisten_replies_sent_total"), float64(events["reply"])},
		{"refusals", failures + rejected, float64(events["reject"])},
		{"admitted connections", metric(t, body, "seclisten_connections_accepted_total") - rejected, float64(events["connect"])},
		{"completed handshakes", metric(t, body, "seclisten_handshake_duration_seconds_count"), float64(events["handshake"])},
	} {
		if check.metric != check.event {
			t.Errorf("%s: metrics say %v, the event stream %v", check.what, check.metric, check.event)
		}
	}
	if events["message"] != 6 || events["reject"] != 4 || rejected != 1 || events["connect"] != 6 {
		t.Errorf("unexpected session counts: events %v, denied %v", events, rejected)
	}
	// Every code a reject event shows is the label of a counted metric:
	// one spelling for both.
	for _, rec := range parseJSONLines(t, p.stdout.String()) {
		if rec["event"] != "reject" {
			continue
		}
		code := rec["code"].(string)
		series := `seclisten_connections_rejected_total{reason="` + code + `"}`
		if !strings.Contains(body, series) {
			series = `seclisten_handshake_failures_total{verdict="` + code + `"}`
		}
		if metric(t, body, series) < 1 {
			t.Errorf("reject event code %q is no counted metric label", code)
		}
	}
	if in := metric(t, body, "seclisten_bytes_received_total"); in < float64(6*len("client 0 line 0\n")) {
		t.Errorf("bytes received = %v", in)
	}

	// The server certificate's expiry, as a Unix time.
	leaf := readLeaf(t, filepath.Join(dir, "server.pem"))
	if got := metric(t, body, `seclisten_certificate_expiry_timestamp_seconds{name="localhost",source="file"}`); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("certificate expiry = %v, want %d", got, leaf.NotAfter.Unix())
	}
	// Label sets are bounded: no series names a client address.
	if strings.Contains(body, "127.0.0.") {
		t.Errorf("a metric is labelled with a client address")
	}

	if code, text := curl(t, "http://"+maddr+"/healthz"); code != 200 || text != "ok" {
		t.Errorf("/healthz = %d %q", code, text)
	}
	if code, text := curl(t, "http://"+maddr+"/readyz"); code != 200 || text != "ready" {
		t.Errorf("/readyz = %d %q", code, text)
	}
	p.stop()
}

// While a replica drains, /readyz says 503 so the load balancer sends new
// clients elsewhere; /healthz stays 200 until the process ends.
func TestReadyzDuringShutdown(t *testing.T) {
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Timeouts longer than the hang guard: only the client below holds the
	// drain open, and only its leaving ends it.
	p := startServer(t, append(stuckArgs, "--metrics-addr", maddr, "--shutdown-timeout", "1h", "--write-timeout", "1h")...)
	c := stuckClient(t, p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog("shutting down: finishing what clients already sent", 1)
	waitFor(t, "/readyz to say 503", func() bool {
		code, text := curl(t, "http://"+maddr+"/readyz")
		return code == 503 && strings.Contains(text, "shutting down")
	})
	if code, _ := curl(t, "http://"+maddr+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d during the drain", code)
	}
	// The client leaves: the server's write fails, and the drain ends.
	c.conn.Close()
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		t.Fatal("no exit after the drain")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after the drain, want 0", code)
	}
}

// The collector's heap floor (pkg/gcfloor) is on unless GOGC is set:
// go_gc_gogc_percent, Go's own metric of the setting, says which.
func TestHeapFloor(t *testing.T) {
	for _, tc := range []struct {
		name, gogc string
		want       float64
	}{
		// A small live heap at start: GOGC 400, a 16 MiB goal.
		{"GOGC unset: a 16 MiB floor", "", 400},
		{"GOGC set: left alone", "150", 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			startServeEnv(t, []string{"GOGC=" + tc.gogc}, "--plain", "--metrics-addr", maddr)
			code, body := curl(t, "http://"+maddr+"/metrics")
			if code != 200 {
				t.Fatalf("/metrics = %d", code)
			}
			if got := metric(t, body, "go_gc_gogc_percent"); got != tc.want {
				t.Errorf("go_gc_gogc_percent = %v, want %v", got, tc.want)
			}
		})
	}
}
