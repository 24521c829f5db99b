package clienthello_test

import (
	"crypto/tls"
	"fmt"

	"github.com/seclisten/seclisten/pkg/clienthello"
)

// A ClientHello by name, with its JA4 fingerprint; GREASE values (0x0a0a
// here) are left out.
func Example() {
	h := clienthello.New(&tls.ClientHelloInfo{
		CipherSuites:      []uint16{0x0a0a, tls.TLS_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		SupportedCurves:   []tls.CurveID{tls.X25519},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedProtos:   []string{"h2"},
		ServerName:        "example.com",
		Extensions:        []uint16{0x0000, 0x000a, 0x000d, 0x0010, 0x002b},
	})
	fmt.Println(h.Versions, h.Suites, h.ALPN, h.SNI)
	fmt.Println(h.JA4)
	fmt.Println(clienthello.CheckServerName("bad\x1bname"))
	// Output:
	// [TLS 1.3 TLS 1.2] [TLS_AES_128_GCM_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256] [h2] example.com
	// t13d0205h2_777cda164f4b_9a0586ea5dd0
	// client sent a server name (SNI) that is not a valid host name (byte 0x1b is not allowed in a host name)
}
