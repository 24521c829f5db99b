package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/internal/ban"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// lifter is a ban.Table as Bans.
type lifter struct{ *ban.Table }

func (l lifter) Lift(key string) (bool, error) {
	_, ok, err := l.Table.Lift(key)
	return ok, err
}

func do(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// GET /bans lists the bans in JSON with RFC 3339 times; DELETE /bans/KEY
// lifts one, KEY an address or a path-escaped IPv6 prefix.
func TestBansAPI(t *testing.T) {
	m := New()
	h := m.Handler(func() (bool, string) { return true, "" })
	if code, body := do(t, h, "GET", "/bans"); code != 200 || body != "[]\n" {
		t.Errorf("GET /bans without a table = %d %q", code, body)
	}
	tb := ban.New(ban.Options{After: 1, Window: time.Minute, For: time.Minute, Max: time.Hour, IPv6Prefix: 64})
	m.ServeBans(lifter{tb})
	for _, a := range []string{"203.0.113.7", "2001:db8::1"} {
		if b, ok := tb.Record(netip.MustParseAddr(a), outcome.UnknownAuthority); ok {
			m.Banned(b.LastReason)
		}
	}
	code, body := do(t, h, "GET", "/bans")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 2 {
		t.Fatalf("GET /bans = %d %s (%v)", code, body, err)
	}
	for _, b := range list {
		for _, k := range []string{"since", "until"} {
			if _, err := time.Parse(time.RFC3339, b[k].(string)); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
		if b["count"] != 1.0 || b["last_reason"] != "unknown-authority" {
			t.Errorf("ban %v", b)
		}
	}
	_, metrics := do(t, h, "GET", "/metrics")
	for _, want := range []string{"seclisten_bans_active 2", `seclisten_bans_total{reason="unknown-authority"} 2`, `seclisten_bans_total{reason="rate"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/bans/" + url.PathEscape("2001:db8::/48"), 400},
		{"/bans/nonsense", 400},
		{"/bans/" + url.PathEscape("2001:db8::/64"), 204},
		{"/bans/2001:db8::/64", 404}, // lifted already; unescaped works too
		{"/bans/203.0.113.7", 204},
		{"/bans/203.0.113.7", 404},
	} {
		if code, body := do(t, h, "DELETE", tc.path); code != tc.code {
			t.Errorf("DELETE %s = %d %q, want %d", tc.path, code, body, tc.code)
		}
	}
	if _, metrics := do(t, h, "GET", "/metrics"); !strings.Contains(metrics, "seclisten_bans_active 0") {
		t.Error("gauge not 0 after lifting every ban")
	}
}
