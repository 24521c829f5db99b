package throttle

import (
	"fmt"
	"maps"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	th := Throttle[string]{Window: 10 * time.Second, Now: func() time.Time { return now }}
	allow := func(k string, wantN int, wantOK bool) {
		t.Helper()
		if n, ok := th.Allow(k); n != wantN || ok != wantOK {
			t.Fatalf("Allow(%q) = %d, %v; want %d, %v", k, n, ok, wantN, wantOK)
		}
	}
	allow("a", 0, true)
	for range 5 {
		allow("a", 0, false)
	}
	allow("b", 0, true) // keys are independent
	now = now.Add(9 * time.Second)
	allow("a", 0, false)
	now = now.Add(time.Second)
	allow("a", 6, true) // a new window, with the count of the last one
	allow("a", 0, false)
	now = now.Add(time.Hour)
	allow("a", 1, true)
	allow("b", 0, true)
}

func TestFlush(t *testing.T) {
	var th Throttle[string] // windows end at Flush
	flush := func() map[string]int {
		got := map[string]int{}
		th.Flush(func(k string, n int) { got[k] = n })
		return got
	}
	for range 3 {
		th.Allow("a")
	}
	th.Allow("b")
	if _, ok := th.Allow("c"); !ok {
		t.Fatal("first event of c held back")
	}
	if got, want := flush(), map[string]int{"a": 2}; !maps.Equal(got, want) {
		t.Fatalf("Flush = %v, want %v", got, want)
	}
	if n, ok := th.Allow("a"); n != 0 || !ok {
		t.Fatalf("after Flush: Allow = %d, %v; want the count handed to Flush, not again", n, ok)
	}
	if got := flush(); len(got) != 0 {
		t.Fatalf("second Flush = %v, want nothing", got)
	}
}

// Past MaxKeys keys, new keys are counted under Other's key: a spray of
// keys gives at most MaxKeys lines at once and one summary.
func TestMaxKeys(t *testing.T) {
	th := Throttle[string]{MaxKeys: 4, Other: func(string) string { return "other" }}
	let := 0
	for i := range 20 {
		if _, ok := th.Allow(fmt.Sprint(i)); ok {
			let++
		}
	}
	if let != 4 {
		t.Fatalf("%d of 20 keys let through, want 4", let)
	}
	th.Allow("0") // a tracked key is still counted as itself
	got := map[string]int{}
	th.Flush(func(k string, n int) { got[k] = n })
	if want := map[string]int{"0": 1, "other": 16}; !maps.Equal(got, want) {
		t.Fatalf("Flush = %v, want %v", got, want)
	}
}
