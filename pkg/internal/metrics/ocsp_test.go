package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestOCSP(t *testing.T) {
	m := New()
	m.StapleRefreshed(true) // before OCSP: no counter yet, no panic
	age, stapled := time.Duration(0), false
	m.OCSP(func() (uint64, uint64, uint64, uint64) { return 4, 3, 2, 1 }, func() int { return 7 },
		func() (time.Duration, bool) { return age, stapled })
	m.StapleRefreshed(true)
	m.StapleRefreshed(false)
	m.StapleRefreshed(false)
	ready := func() (bool, string) { return true, "" }
	_, body := scrape(t, m.Handler(ready), "/metrics")
	for _, want := range []string{
		`seclisten_ocsp_checks_total{result="good"} 4`,
		`seclisten_ocsp_checks_total{result="revoked"} 3`,
		`seclisten_ocsp_checks_total{result="unknown"} 2`,
		`seclisten_ocsp_checks_total{result="error"} 1`,
		`seclisten_ocsp_cache_entries 7`,
		`seclisten_ocsp_staple_age_seconds -1`,
		`seclisten_ocsp_staple_refreshes_total{result="ok"} 1`,
		`seclisten_ocsp_staple_refreshes_total{result="failed"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	age, stapled = 90*time.Second, true
	if _, body := scrape(t, m.Handler(ready), "/metrics"); !strings.Contains(body, "seclisten_ocsp_staple_age_seconds 90\n") {
		t.Error("staple age not exported")
	}
}
