package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/outcome"
)

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestLabelsAreBounded(t *testing.T) {
	m := New()
	m.Rejected(outcome.Rate)
	m.HandshakeFailed(outcome.Expired)
	m.HandshakeFailed(outcome.HandshakeTimeout)
	m.Notice(outcome.Slowed)
	for i := range maxCertNames + 50 {
		m.CertExpiry("acme", strings.Repeat("n", i%40)+"x"+time.Duration(i).String(), time.Unix(int64(i), 0))
	}
	_, body := scrape(t, m.Handler(func() (bool, string) { return true, "" }), "/metrics")
	for _, want := range []string{
		`seclisten_connections_rejected_total{reason="rate"} 1`,
		`seclisten_connections_rejected_total{reason="deny-list"} 0`,
		`seclisten_handshake_failures_total{verdict="expired"} 1`,
		`seclisten_handshake_failures_total{verdict="handshake-timeout"} 1`,
		`seclisten_notices_total{code="slowed"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(body, `"other"`) {
		t.Error("a label value is \"other\": every outcome has its own")
	}
	if n := strings.Count(body, "seclisten_certificate_expiry_timestamp_seconds{"); n != maxCertNames {
		t.Errorf("%d certificate series, want the bound %d", n, maxCertNames)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	m := New()
	ready, why := false, "waiting for ACME certificates"
	h := m.Handler(func() (bool, string) { return ready, why })
	if code, body := scrape(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := scrape(t, h, "/readyz"); code != 503 || !strings.Contains(body, "waiting for ACME certificates") {
		t.Errorf("/readyz before = %d %q", code, body)
	}
	ready = true
	if code, body := scrape(t, h, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz after = %d %q", code, body)
	}
	m.Open()
	m.Message()
	m.Reply()
	m.Closed(outcome.ClientClosed, 10, 20)
	m.HandshakeDone(3 * time.Millisecond)
	_, body := scrape(t, h, "/metrics")
	for _, want := range []string{"seclisten_connections_active 0", "seclisten_messages_received_total 1",
		"seclisten_replies_sent_total 1", "seclisten_bytes_received_total 10", "seclisten_bytes_sent_total 20",
		"seclisten_handshake_duration_seconds_count 1", `seclisten_connections_closed_total{reason="client-closed"} 1`, "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

// Every outcome has its label from the start, at 0, and a code of the
// wrong kind is a programmer error, not "other".
func TestEveryOutcomeHasItsLabel(t *testing.T) {
	m := New()
	_, body := scrape(t, m.Handler(func() (bool, string) { return true, "" }), "/metrics")
	for _, c := range outcome.All(0) {
		var want string
		switch c.Kind() {
		case outcome.Admission:
			want = `seclisten_connections_rejected_total{reason="` + c.Label() + `"} 0`
		case outcome.Handshake:
			want = `seclisten_handshake_failures_total{verdict="` + c.Label() + `"} 0`
		case outcome.Verdict:
			if c == outcome.OK || c == outcome.Unverified {
				continue
			}
			want = `seclisten_handshake_failures_total{verdict="` + c.Label() + `"} 0`
		case outcome.Notice:
			want = `seclisten_notices_total{code="` + c.Label() + `"} 0`
		case outcome.Close:
			want = `seclisten_connections_closed_total{reason="` + c.Label() + `"} 0`
		default:
			t.Fatalf("%s has no kind", c)
		}
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a close reason counted as a refusal did not panic")
		}
	}()
	m.Rejected(outcome.IdleTimeout)
}
