package ocsp_test

import (
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/seclisten/seclisten/pkg/ocsp"
)

// FuzzVerify: whatever a responder sends, Verify returns an answer or an
// error, never panics, and never calls an answer good unless it verified.
func FuzzVerify(f *testing.F) {
	root := newCA(f, "Client CA")
	cert := leaf(f, root, "http://127.0.0.1:1/")
	now := time.Now()
	good, err := xocsp.CreateResponse(root.cert, root.cert, xocsp.Response{Status: xocsp.Good,
		SerialNumber: cert.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, root.key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x01}) // malformedRequest
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := ocsp.Verify(der, cert, root.cert, now, time.Minute, time.Hour)
		if err == nil && a.Status == 0 {
			t.Fatalf("no error and no status: %+v", a)
		}
	})
}
