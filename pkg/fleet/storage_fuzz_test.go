package fleet

import (
	"encoding/pem"
	"testing"
)

// checkValue never panics on any value under any key, and accepts a
// value only if it is what the key's extension says.
func FuzzCheckValue(f *testing.F) {
	for _, k := range []string{"certificates/ca/example.com/example.com.crt", "x/example.com.key", "x/example.com.json", "acme/users/a/b"} {
		f.Add(k, []byte("garbage"))
		f.Add(k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}))
		f.Add(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}))
		f.Add(k, []byte(`{"sans":["example.com"]}`))
	}
	f.Fuzz(func(t *testing.T, key string, v []byte) {
		if checkValue(key, v) == nil && len(key) > 4 && key[len(key)-4:] == ".crt" {
			if b, _ := pem.Decode(v); b == nil {
				t.Fatalf("a .crt value without PEM accepted: %q", v)
			}
		}
	})
}
