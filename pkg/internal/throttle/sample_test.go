package throttle

import (
	"slices"
	"testing"
	"time"
)

func TestSampler(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Sampler{Window: time.Second, First: 3, Every: 4}
	// run records n events at now and returns which were let through
	// (1-based) and which one was first held back.
	run := func(n int) (through []int, first []int) {
		t.Helper()
		for i := 1; i <= n; i++ {
			ok, f := s.Allow(now)
			if ok {
				through = append(through, i)
			}
			if f {
				first = append(first, i)
			}
		}
		return through, first
	}
	through, first := run(12)
	if want := []int{1, 2, 3, 7, 11}; !slices.Equal(through, want) || !slices.Equal(first, []int{4}) {
		t.Fatalf("window 1: through %v, first held %v; want %v, [4]", through, first, want)
	}
	// The window has not ended: the count goes on from 12.
	now = now.Add(999 * time.Millisecond)
	if through, first = run(4); !slices.Equal(through, []int{3}) || first != nil {
		t.Fatalf("window 1, later: through %v, first held %v; want [3], none", through, first)
	}
	if n := s.Take(); n != 7+3 {
		t.Fatalf("Take = %d, want 10 (held back: 12-5, then 4-1)", n)
	}
	if n := s.Take(); n != 0 {
		t.Fatalf("second Take = %d, want 0", n)
	}
	// A new window lets the first First through again; the first held
	// back after a Take is the cue again.
	now = now.Add(time.Millisecond)
	if through, first = run(5); !slices.Equal(through, []int{1, 2, 3}) || !slices.Equal(first, []int{4}) {
		t.Fatalf("window 2: through %v, first held %v; want [1 2 3], [4]", through, first)
	}
	if n := s.Take(); n != 2 {
		t.Fatalf("Take = %d, want 2", n)
	}

	// Every zero: nothing after the first First.
	none := Sampler{Window: time.Second, First: 1}
	if ok, _ := none.Allow(now); !ok {
		t.Fatal("first event held back")
	}
	for range 1000 {
		if ok, _ := none.Allow(now); ok {
			t.Fatal("an event after First let through with Every 0")
		}
	}
	if n := none.Take(); n != 1000 {
		t.Fatalf("Take = %d, want 1000", n)
	}
}
