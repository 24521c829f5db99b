package fleet_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
)

// ParseTicketKeys never panics, and what it accepts marshals back to a
// value it reads the same.
func FuzzParseTicketKeys(f *testing.F) {
	k := fleet.TicketKeys{Rotated: time.Unix(1700000000, 5), Keys: [][32]byte{{1}, {2}}}
	f.Add(k.Marshal())
	f.Add([]byte(`{"rotated":1,"keys":["AA=="]}`))
	f.Add([]byte(`{"rotated":-1,"keys":[]}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := fleet.ParseTicketKeys(data)
		if err != nil {
			return
		}
		again, err := fleet.ParseTicketKeys(k.Marshal())
		if err != nil || !again.Rotated.Equal(k.Rotated) || len(again.Keys) != len(k.Keys) ||
			!bytes.Equal(again.Marshal(), k.Marshal()) {
			t.Fatalf("round trip of %q: %v", data, err)
		}
	})
}
