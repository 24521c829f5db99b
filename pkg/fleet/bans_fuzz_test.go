package fleet

import (
	"encoding/json"
	"testing"
)

// ParseBanRecord and parseBanEvent never panic, and what they accept
// marshals back to a value they read the same.
func FuzzParseBan(f *testing.F) {
	f.Add([]byte(`{"key":"192.0.2.1","since":"2026-01-01T00:00:00Z","until":"2026-01-01T00:10:00Z","count":3,"last_reason":"not-tls","window":60000000000,"origin":"h/1"}`))
	f.Add([]byte(`{"op":"ban","ban":{"key":"2001:db8::/64","since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"},"origin":"h/2"}`))
	f.Add([]byte(`{"op":"lift","key":"192.0.2.1","origin":"h/3"}`))
	f.Add([]byte(`{"op":"ban"}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseBanRecord(data); err == nil {
			b, _ := json.Marshal(r)
			if again, err := ParseBanRecord(b); err != nil || !again.Until.Equal(r.Until) || again.Key != r.Key {
				t.Fatalf("round trip of %q: %v", data, err)
			}
		}
		if e, err := parseBanEvent(data); err == nil {
			b, _ := json.Marshal(e)
			if again, err := parseBanEvent(b); err != nil || again.Op != e.Op || again.Origin != e.Origin {
				t.Fatalf("round trip of %q: %v", data, err)
			}
		}
	})
}
