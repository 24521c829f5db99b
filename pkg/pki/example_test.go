package pki_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"

	"github.com/seclisten/seclisten/pkg/pki"
)

// A test's own PKI, in memory: a CA, a server certificate for localhost
// and a client certificate, then a mutual TLS handshake between them.
func Example() {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		log.Fatal(err)
	}
	server, err := ca.IssueServer(pki.ServerOptions{Hosts: []string{"localhost"}})
	if err != nil {
		log.Fatal(err)
	}
	client, err := ca.IssueClient(pki.ClientOptions{CommonName: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.CertPool(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "hello\n")
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs:      ca.CertPool(),
		ServerName:   "localhost",
		Certificates: []tls.Certificate{client.TLSCertificate()},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.ConnectionState().PeerCertificates[0].Subject.CommonName)
	// Output: localhost
}
