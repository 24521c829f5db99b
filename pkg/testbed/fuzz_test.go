package testbed

import "testing"

// The record sniffer reads whatever a client sends: it never panics, and
// finds the same alert however the bytes are split.
func FuzzRecordSniffer(f *testing.F) {
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30}, uint8(3))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01, 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2a}, uint8(1))
	f.Add([]byte{0x17, 0x03, 0x03, 0xff, 0xff}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		whole := newRecordSniffer()
		whole.feed(b)
		parts := newRecordSniffer()
		step := int(split)%7 + 1
		for i := 0; i < len(b); i += step {
			parts.feed(b[i:min(i+step, len(b))])
		}
		if whole.Alert != parts.Alert || whole.Alert < -1 || whole.Alert > 255 {
			t.Fatalf("alert %d whole, %d in parts of %d", whole.Alert, parts.Alert, step)
		}
	})
}

// An alert in the clear after the ClientHello is found; one inside a
// longer record is not an alert.
func TestRecordSniffer(t *testing.T) {
	s := newRecordSniffer()
	s.feed([]byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01})
	if s.Alert != -1 {
		t.Fatalf("alert %d after a handshake record", s.Alert)
	}
	s.feed([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30})
	if s.Alert != 48 {
		t.Fatalf("alert %d, want 48 (unknown_ca)", s.Alert)
	}
	s = newRecordSniffer()
	s.feed([]byte{0x15, 0x03, 0x03, 0x00, 0x13})
	if s.Alert != -1 {
		t.Fatalf("an encrypted 19-byte alert read as %d", s.Alert)
	}
}
