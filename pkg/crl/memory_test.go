package crl_test

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"runtime"
	"testing"

	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/pki"
)

// bigCRLEntries is the size of the CRL of issue 14: 300,000 revoked
// certificates, about 6.6 MB of PEM.
const bigCRLEntries = 300_000

// maxBytesPerEntry is the memory a revoked serial may cost once parsed.
const maxBytesPerEntry = 64

// bigCRL is a PEM CRL of n random 128-bit serials (what CAs issue), signed
// by ca.
func bigCRL(tb testing.TB, ca *pki.CA, n int) []byte {
	tb.Helper()
	serials := make([]*big.Int, n)
	buf := make([]byte, 16)
	for i := range serials {
		if _, err := rand.Read(buf); err != nil {
			tb.Fatal(err)
		}
		buf[0] &= 0x7f
		serials[i] = new(big.Int).SetBytes(buf)
	}
	data, err := ca.CRL(pki.CRLOptions{Revoked: serials})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// retained parses data and returns the lists and the heap bytes they
// hold, measured after a full GC on either side.
func retained(tb testing.TB, data []byte, issuers []*x509.Certificate) ([]*crl.List, uint64) {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lists, err := crl.Parse(data, issuers)
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(data)
	if after.HeapAlloc < before.HeapAlloc {
		return lists, 0
	}
	return lists, after.HeapAlloc - before.HeapAlloc
}

// TestParseMemoryPerEntry proves issue 14's memory bound: a parsed CRL
// keeps under 64 bytes per revoked serial (the parse itself, hundreds of
// bytes per entry, is dropped at once). A memory bound, not a timing one.
func TestParseMemoryPerEntry(t *testing.T) {
	ca := newCA(t, "Big CA")
	data := bigCRL(t, ca, bigCRLEntries)
	lists, held := retained(t, data, []*x509.Certificate{ca.Certificate})
	if n := lists[0].Len(); n != bigCRLEntries {
		t.Fatalf("list holds %d serials, want %d", n, bigCRLEntries)
	}
	per := float64(held) / bigCRLEntries
	t.Logf("%d entries, %d bytes retained, %.1f bytes/entry (PEM %d bytes)", bigCRLEntries, held, per, len(data))
	if per >= maxBytesPerEntry {
		t.Errorf("%.1f bytes per entry retained, want < %d", per, maxBytesPerEntry)
	}
	runtime.KeepAlive(lists)
}

// BenchmarkParseBigCRL parses the 300,000-entry CRL and reports the bytes
// per entry it retains.
func BenchmarkParseBigCRL(b *testing.B) {
	ca := newCA(b, "Big CA")
	data := bigCRL(b, ca, bigCRLEntries)
	issuers := []*x509.Certificate{ca.Certificate}
	b.ResetTimer()
	var held uint64
	for b.Loop() {
		var lists []*crl.List
		lists, held = retained(b, data, issuers)
		runtime.KeepAlive(lists)
	}
	b.ReportMetric(float64(held)/bigCRLEntries, "retained-B/entry")
}
