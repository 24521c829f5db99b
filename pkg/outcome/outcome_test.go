package outcome_test

import (
	"testing"

	"github.com/seclisten/seclisten/pkg/outcome"
)

// Every code has one kind and a text; the kinds partition the codes.
func TestCodes(t *testing.T) {
	n := 0
	for _, k := range []outcome.Kind{outcome.Admission, outcome.Handshake, outcome.Verdict, outcome.Notice, outcome.Close} {
		for _, c := range outcome.All(k) {
			if c.Kind() != k || c.Text() == "" || !c.Known() {
				t.Errorf("%s: kind %s, text %q", c, c.Kind(), c.Text())
			}
			n++
		}
	}
	if all := outcome.All(0); len(all) != n {
		t.Errorf("%d codes in all, %d in the kinds", len(all), n)
	}
	if outcome.Code("other").Known() || outcome.Code("other").Kind() != 0 {
		t.Error(`"other" is a code`)
	}
}
