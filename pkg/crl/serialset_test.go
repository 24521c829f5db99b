package crl

import (
	"math/big"
	"testing"
)

// FuzzSerialSet: the set holds exactly the serials it was built from,
// negative and zero ones included.
func FuzzSerialSet(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 0xff, 0x80, 7}, []byte{2, 3})
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, data, probe []byte) {
		var in []*big.Int
		for i := 0; i+1 < len(data) && len(in) < 64; i += 2 {
			n := int(data[i]%20) + 1
			if i+2+n > len(data) {
				n = len(data) - i - 2
			}
			v := new(big.Int).SetBytes(data[i+2 : i+2+n])
			if data[i+1]&1 == 1 {
				v.Neg(v)
			}
			in = append(in, v)
			i += n
		}
		keys := make([][]byte, len(in))
		for i, v := range in {
			keys[i] = serialKey(v)
		}
		s := newSerialSet(keys)
		for _, v := range in {
			if !s.has(serialKey(v)) {
				t.Fatalf("%v missing", v)
			}
		}
		p := new(big.Int).SetBytes(probe)
		want := false
		for _, v := range in {
			if v.Cmp(p) == 0 {
				want = true
			}
		}
		if got := s.has(serialKey(p)); got != want {
			t.Fatalf("has(%v) = %v, want %v", p, got, want)
		}
	})
}
