package ban

import (
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// A ban imposed from the fleet is in force, listed, ended by Sweep and
// lifted like one of the table's own; an older or shorter one, an ended
// one, an exempt key and a bad key change nothing.
func TestImpose(t *testing.T) {
	c := newClock()
	tb := table(c, Options{ExemptLoopback: true})
	b := Ban{Key: "192.0.2.1", Since: c.t, Until: c.t.Add(time.Minute), Count: 7, LastReason: outcome.Rate, Window: time.Hour}
	got, ok, err := tb.Impose(b)
	if err != nil || !ok {
		t.Fatalf("Impose = %v, %v", ok, err)
	}
	if want := "ban 192.0.2.1 for 1m0s after 7 failures in 1h0m0s (last: rate)"; got.Message() != want {
		t.Errorf("Message = %q, want %q", got.Message(), want)
	}
	if !tb.Banned(addr("192.0.2.1")) || len(tb.List()) != 1 || tb.Active() != 1 {
		t.Fatalf("imposed ban not in force: %v %v", tb.List(), tb.Active())
	}
	shorter := b
	shorter.Until = c.t.Add(time.Second)
	for name, bad := range map[string]Ban{
		"shorter": shorter,
		"ended":   {Key: "192.0.2.2", Since: c.t.Add(-time.Hour), Until: c.t.Add(-time.Minute)},
		"exempt":  {Key: "127.0.0.2", Since: c.t, Until: c.t.Add(time.Minute)},
		"reverse": {Key: "192.0.2.3", Since: c.t.Add(time.Hour), Until: c.t.Add(time.Minute)},
	} {
		if _, ok, err := tb.Impose(bad); ok || err != nil {
			t.Errorf("%s: Impose = %v, %v; want nothing changed", name, ok, err)
		}
	}
	if _, _, err := tb.Impose(Ban{Key: "not an address", Since: c.t, Until: c.t.Add(time.Minute)}); err == nil {
		t.Error("a bad key imposed")
	}
	longer := b
	longer.Until = c.t.Add(time.Hour)
	if _, ok, _ := tb.Impose(longer); !ok || tb.Active() != 1 {
		t.Errorf("a longer ban: %v, active %d", ok, tb.Active())
	}
	c.add(time.Hour)
	if ended, _, _ := tb.Sweep(); len(ended) != 1 || tb.Banned(addr("192.0.2.1")) {
		t.Errorf("Sweep after the end: %v", ended)
	}
	tb.Impose(Ban{Key: "192.0.2.4", Since: c.t, Until: c.t.Add(time.Minute)})
	if _, ok, _ := tb.Lift("192.0.2.4"); !ok || tb.Banned(addr("192.0.2.4")) {
		t.Error("imposed ban not lifted")
	}
}

// Reached bans on the fleet's count as Record does on its own: not below
// After, not an exempt key or an outcome that does not count, not twice;
// and the ban escalates like one of the table's own.
func TestReached(t *testing.T) {
	c := newClock()
	tb := table(c, Options{ExemptLoopback: true})
	a := addr("192.0.2.1")
	for name, tc := range map[string]struct {
		addr  string
		why   outcome.Code
		count int
	}{
		"below After":    {"192.0.2.1", outcome.NotTLS, 2},
		"exempt":         {"127.0.0.1", outcome.NotTLS, 5},
		"does not count": {"192.0.2.1", outcome.NoALPN, 5},
	} {
		if _, ok := tb.Reached(addr(tc.addr), tc.why, tc.count); ok {
			t.Errorf("%s: banned", name)
		}
	}
	b, ok := tb.Reached(a, outcome.NotTLS, 3)
	if !ok || b.For != 10*time.Second || !tb.Banned(a) {
		t.Fatalf("Reached = %+v, %v", b, ok)
	}
	if want := "ban 192.0.2.1 for 10s after 3 failures in 1m0s (last: not-tls)"; b.Message() != want {
		t.Errorf("Message = %q, want %q", b.Message(), want)
	}
	if _, again := tb.Reached(a, outcome.NotTLS, 4); again {
		t.Error("banned twice")
	}
	c.add(11 * time.Second)
	if b, ok := tb.Reached(a, outcome.NotTLS, 3); !ok || b.For != 20*time.Second {
		t.Errorf("second ban on the fleet's count: %+v, %v; want 20s", b, ok)
	}
}
