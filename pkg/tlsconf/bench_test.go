package tlsconf_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"testing"

	"github.com/seclisten/seclisten/pkg/tlsconf"
)

// The handshake benchmarks run a full handshake in process over net.Pipe,
// against the server config seclisten serves (ephemeral ECDSA P-256
// certificate, X25519MLKEM768 preferred). The Crypto benchmarks are the
// public-key operations one handshake costs the server: one ECDSA sign
// (CertificateVerify), one ML-KEM-768 encapsulation and one X25519 exchange
// (the hybrid key share); the client adds an ECDSA verify and a
// decapsulation. Together they explain most of the handshake time.

func benchServerConfig(b *testing.B) *tls.Config {
	b.Helper()
	src, err := tlsconf.New(tlsconf.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return src.Config()
}

// handshakeOnce runs one handshake over a fresh pipe and closes both ends.
func handshakeOnce(b *testing.B, srvCfg, cliCfg *tls.Config) tls.ConnectionState {
	c1, c2 := net.Pipe()
	srv := tls.Server(c1, srvCfg)
	cli := tls.Client(c2, cliCfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	st := cli.ConnectionState()
	c1.Close()
	c2.Close()
	return st
}

func benchHandshake(b *testing.B, resume bool) {
	srvCfg := benchServerConfig(b)
	cliCfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, ServerName: "localhost"}
	if resume {
		cliCfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		// In TLS 1.3 the ticket arrives after the handshake: read it by
		// exchanging one byte on a first connection.
		c1, c2 := net.Pipe()
		srv, cli := tls.Server(c1, srvCfg), tls.Client(c2, cliCfg)
		go func() { _ = srv.Handshake(); _, _ = srv.Write([]byte{1}) }()
		if _, err := cli.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st := handshakeOnce(b, srvCfg, cliCfg)
		if st.Version != tls.VersionTLS13 || st.DidResume != resume {
			b.Fatalf("version %x, resumed %v; want TLS 1.3, resumed %v", st.Version, st.DidResume, resume)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkHandshake is a full TLS 1.3 handshake, client and server in one
// process (both sides' costs are counted).
func BenchmarkHandshake(b *testing.B) { benchHandshake(b, false) }

// BenchmarkHandshakeResumed is a TLS 1.3 PSK resumption (with a fresh
// key exchange, psk_dhe_ke, as crypto/tls always does).
func BenchmarkHandshakeResumed(b *testing.B) { benchHandshake(b, true) }

func BenchmarkCryptoECDSASign(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("seclisten"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCryptoECDSAVerify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("seclisten"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkCryptoECDHX25519 is one side of an X25519 exchange: a new key
// and the shared secret with the peer's public key.
func BenchmarkCryptoECDHX25519(b *testing.B) {
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCryptoMLKEM768 is an encapsulation (the server's part) and a
// decapsulation (the client's part) with a fixed key.
func BenchmarkCryptoMLKEM768(b *testing.B) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		b.Fatal(err)
	}
	ek := dk.EncapsulationKey()
	b.ReportAllocs()
	for b.Loop() {
		_, ct := ek.Encapsulate()
		if _, err := dk.Decapsulate(ct); err != nil {
			b.Fatal(err)
		}
	}
}
