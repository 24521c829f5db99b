package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/internal/output"
	"github.com/seclisten/seclisten/pkg/outcome"
	"github.com/seclisten/seclisten/pkg/slogtext"
)

// goClientHello is what Go's crypto/tls client offers by default
// (seclisten bench's ClientHello, X25519 only).
var goClientHello = &tls.ClientHelloInfo{
	CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256},
	SupportedCurves: []tls.CurveID{tls.X25519},
	SupportedPoints: []uint8{0},
	SignatureSchemes: []tls.SignatureScheme{tls.PSSWithSHA256, tls.ECDSAWithP256AndSHA256, tls.Ed25519,
		tls.PSSWithSHA384, tls.PSSWithSHA512, tls.PKCS1WithSHA256, tls.PKCS1WithSHA384, tls.PKCS1WithSHA512,
		tls.ECDSAWithP384AndSHA384, tls.ECDSAWithP521AndSHA512},
	SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	Extensions:        []uint16{0, 5, 10, 11, 13, 16, 18, 23, 35, 43, 45, 51, 65281},
}

// BenchmarkLogHandshake is the handshake record of one full handshake
// at info, as serve writes it: the facts, the record, slog's text format
// (pkg/slogtext); with kind=MTLS, with a client certificate's facts.
func BenchmarkLogHandshake(b *testing.B) {
	id := &identity.Identity{Name: "CN=client", Subject: "CN=client,O=seclisten development",
		Issuer: "CN=seclisten Dev CA,O=seclisten development", DNSNames: []string{"client"}, Serial: "0x2a",
		Fingerprint: "d80baafc8e89e92f7655daa58da192fcece139ed4b5c7916f51c4c4f6ec16a7a",
		NotBefore:   time.Unix(1764550000, 0), NotAfter: time.Unix(1796086000, 0)}
	for _, k := range []struct {
		name string
		cert *identity.Identity
	}{{"Full", nil}, {"MTLS", id}} {
		b.Run("kind="+k.name, func(b *testing.B) {
			// At debug every line is built and written: none is sampled out.
			log := slog.New(slogtext.New(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
			sample := newHandshakeLog(log)
			c := connLog{l: log, id: 42, remote: "127.0.0.1:45182"}
			f := &output.Facts{Identity: c.remote, Remote: c.remote, TLS: &output.TLS{Version: "TLS 1.3",
				Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519", ClientAuth: "none"}}
			if k.cert != nil {
				f.Identity, f.Cert, f.TLS.ClientAuth = k.cert.Name, k.cert, "require"
				f.Verdict, f.VerdictText = outcome.OK, "client certificate verified"
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Hello = clienthello.New(goClientHello)
				c.handshake(f, sample)
			}
		})
	}
}
