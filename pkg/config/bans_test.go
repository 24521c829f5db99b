package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBanAfter(t *testing.T) {
	for _, tc := range []struct {
		in     string
		n      int
		window time.Duration
	}{{"", 0, 0}, {"10/1m", 10, time.Minute}, {" 3 / 30s ", 3, 30 * time.Second}, {"1/1d", 1, 24 * time.Hour}} {
		n, w, err := ParseBanAfter(tc.in)
		if err != nil || n != tc.n || w != tc.window {
			t.Errorf("ParseBanAfter(%q) = %d, %s, %v; want %d, %s", tc.in, n, w, err, tc.n, tc.window)
		}
	}
	for _, bad := range []string{"0/1m", "10", "x/1m", "10/0s", "-1/1m", "10/-1m", "+1/1m", "10/", "/1m", "10/1", "10/1m/2", "1e3/1m"} {
		if _, _, err := ParseBanAfter(bad); err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseBanAfter(%q): error %v, want one quoting the value", bad, err)
		}
	}
}

func TestBansValidate(t *testing.T) {
	for _, tc := range []struct {
		b    Bans
		want string
	}{
		{Bans{After: 1, Window: time.Minute, For: time.Hour, Max: time.Minute}, "`ban-max` (1m0s) must be at least `ban-for` (1h0m0s)"},
		{Bans{For: 0, Max: time.Hour}, "`ban-for` must be a positive duration"},
		{Bans{After: 1, For: time.Minute, Max: time.Hour}, "`ban-after`"},
	} {
		c := Default()
		c.Bans = tc.b
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
	}
}

// FuzzParseBanAfter: never panics; what it accepts is at least 1 failure
// in a positive window, and an error is one line.
func FuzzParseBanAfter(f *testing.F) {
	for _, s := range []string{"10/1m", "0/1m", "10", "x/1m", "10/0s", "-1/1m", "1/1d12h", " 5 / 2h "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, w, err := ParseBanAfter(s)
		switch {
		case err != nil:
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Errorf("%q: error of more than one line: %v", s, err)
			}
		case strings.TrimSpace(s) == "":
			if n != 0 || w != 0 {
				t.Errorf("%q = %d, %s", s, n, w)
			}
		case n < 1 || w <= 0:
			t.Errorf("%q accepted as %d/%s", s, n, w)
		}
	})
}
