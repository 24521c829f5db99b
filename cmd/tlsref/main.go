// Command tlsref is a benchmark reference, not a product: the plainest
// crypto/tls line server Go allows, the baseline seclisten is measured
// against in scripts/bench.sh (BENCHMARKS.md).
//
// It reads lines, prints each one to stdout as "[addr] line\n" (one write
// per line, as seclisten does, so printing costs both the same) and answers
// each with --reply. TLS uses Go's defaults with the given certificate;
// session tickets stay on. There are no limits and no timeouts: a
// reference must not do work seclisten is being compared for. With --plain
// it serves plain TCP, as a TLS proxy's backend (HAProxy's in the idle
// runs). With --client-ca it requires and verifies a client certificate
// (tls.RequireAndVerifyClientCert), the reference for seclisten's
// --client-ca with --client-auth require.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
)

// defaultReply is seclisten's default reply (pkg/config.Default).
const defaultReply = "Message received! Thank you for connecting."

func main() {
	addr := flag.String("addr", "127.0.0.1:8444", "`HOST:PORT` to listen on")
	cert := flag.String("cert", "", "server certificate `FILE` (PEM)")
	key := flag.String("key", "", "private key `FILE` (PEM) of --cert")
	plain := flag.Bool("plain", false, "serve plain TCP instead of TLS")
	clientCA := flag.String("client-ca", "", "CA `FILE` (PEM): require and verify a client certificate it issued")
	reply := flag.String("reply", defaultReply, "reply sent, with a newline, after every line")
	flag.Parse()

	ln, err := listen(*addr, *cert, *key, *clientCA, *plain)
	if err != nil {
		log.Fatalf("tlsref: %v", err)
	}
	log.Printf("tlsref: listening on %s (plain=%v)", ln.Addr(), *plain)
	log.Fatalf("tlsref: %v", serve(ln, os.Stdout, *reply))
}

// listen opens the listener: TLS with Go's defaults and the certificate
// (requiring a client certificate from clientCA if not empty), or plain
// TCP.
func listen(addr, certFile, keyFile, clientCA string, plain bool) (net.Listener, error) {
	if plain {
		if clientCA != "" {
			return nil, fmt.Errorf("--client-ca needs TLS: drop --plain")
		}
		return net.Listen("tcp", addr)
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("--cert and --key are required without --plain")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{c}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("load client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("load client CA %q: no PEM certificate in it", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tls.Listen("tcp", addr, cfg)
}

// serve accepts until the listener fails, one goroutine per connection.
func serve(ln net.Listener, out io.Writer, reply string) error {
	var mu sync.Mutex // one write per line, lines never interleaved
	resp := []byte(reply + "\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c, out, &mu, resp)
	}
}

// handle prints and answers each line until the peer closes.
func handle(c net.Conn, out io.Writer, mu *sync.Mutex, resp []byte) {
	defer c.Close()
	prefix := "[" + c.RemoteAddr().String() + "] "
	r := bufio.NewReader(c)
	var line []byte
	for {
		b, err := r.ReadSlice('\n')
		line = append(append(line[:0], prefix...), b...)
		for err == bufio.ErrBufferFull { // a line longer than the buffer
			b, err = r.ReadSlice('\n')
			line = append(line, b...)
		}
		if err != nil { // EOF or a broken connection; a partial line is dropped
			return
		}
		mu.Lock()
		_, werr := out.Write(line)
		mu.Unlock()
		if werr != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}
