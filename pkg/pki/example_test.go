package pki_test

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/seclisten/seclisten/pkg/pki"
)

// A test makes its own CA, a server certificate and a client certificate,
// in memory, and runs a mutual TLS handshake with them.
func Example() {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	server, _ := ca.IssueServer(pki.ServerOptions{Hosts: []string{"localhost", "127.0.0.1"}})
	client, _ := ca.IssueClient(pki.ClientOptions{CommonName: "alice"})

	serverConf := &tls.Config{
		Certificates: []tls.Certificate{server.TLSCertificate()},
		ClientCAs:    ca.CertPool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// Nobody reads after the handshake on this pipe, so the server
		// must not write session tickets.
		SessionTicketsDisabled: true,
	}
	clientConf := &tls.Config{
		Certificates: []tls.Certificate{client.TLSCertificate()},
		RootCAs:      ca.CertPool(),
		ServerName:   "localhost",
	}

	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	clientDone := make(chan error, 1)
	go func() { clientDone <- tls.Client(cc, clientConf).Handshake() }()
	s := tls.Server(sc, serverConf)
	if err := s.Handshake(); err != nil {
		fmt.Println("server:", err)
		return
	}
	if err := <-clientDone; err != nil {
		fmt.Println("client:", err)
		return
	}
	fmt.Println("verified client:", s.ConnectionState().VerifiedChains[0][0].Subject)
	// Output: verified client: CN=alice,O=seclisten development
}
