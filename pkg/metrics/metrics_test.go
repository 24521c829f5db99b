package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	m.Rejected("rate")
	m.Rejected("203.0.113.7") // never a label value
	m.HandshakeFailed("expired")
	m.HandshakeFailed("something new")
	for i := range maxCertNames + 50 {
		m.CertExpiry("acme", strings.Repeat("n", i%40)+"x"+time.Duration(i).String(), time.Unix(int64(i), 0))
	}
	_, body := scrape(t, m.Handler(func() (bool, string) { return true, "" }), "/metrics")
	for _, want := range []string{
		`seclisten_connections_rejected_total{reason="rate"} 1`,
		`seclisten_connections_rejected_total{reason="other"} 1`,
		`seclisten_connections_rejected_total{reason="deny"} 0`,
		`seclisten_handshake_failures_total{verdict="expired"} 1`,
		`seclisten_handshake_failures_total{verdict="other"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(body, "203.0.113.7") || strings.Contains(body, "something new") {
		t.Error("an unbounded value became a label")
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
	m.Closed(10, 20)
	m.HandshakeDone(3 * time.Millisecond)
	_, body := scrape(t, h, "/metrics")
	for _, want := range []string{"seclisten_connections_active 0", "seclisten_messages_received_total 1",
		"seclisten_replies_sent_total 1", "seclisten_bytes_received_total 10", "seclisten_bytes_sent_total 20",
		"seclisten_handshake_duration_seconds_count 1", "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
