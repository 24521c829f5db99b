package testbed

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
)

// SuggestedTimeout is the handshake timeout of the client the
// slow-handshake command line plays (timeout(1) around openssl, which
// has none of its own).
const SuggestedTimeout = 5

// Addr is case's address on a testbed listening on host from basePort.
func (c Case) Addr(host string, basePort int) string {
	return net.JoinHostPort(host, strconv.Itoa(basePort+c.Offset))
}

// OpenSSL is the command line that tries case the way a correct client
// does: openssl s_client, refusing what it cannot verify, trusting only
// the testbed CA and checking the host name, sending one line once
// connected. dir is the testbed's
// directory as the user wrote it.
func (c Case) OpenSSL(host string, basePort int, dir, clientCert, clientKey string) string {
	cmd := "openssl s_client -connect " + c.Addr(host, basePort) +
		" -verify_return_error -CAfile " + filepath.Join(dir, "ca.pem") + " -verify_hostname localhost"
	switch c.Name {
	case "revoked":
		cmd += " -crl_check -crl_download"
	case "require-client-cert":
		cmd += " -cert " + clientCert + " -key " + clientKey
	case "slow-handshake":
		cmd = "timeout " + strconv.Itoa(SuggestedTimeout) + " " + cmd
	}
	// A line to send: a client that accepts a bad server sends its data.
	return "echo hello | " + cmd
}

// readme is the README.md written into the testbed's directory.
func (m *Material) readme(opts MaterialOptions) []byte {
	var b bytes.Buffer
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	fmt.Fprintf(&b, `# seclisten testbed

Made by `+"`seclisten testbed`"+`: servers that misbehave on purpose, one per port,
to test that a TLS client refuses them. Give the client under test `+"`ca.pem`"+`
as its only trust anchor. The CA is kept between runs; everything else is
made afresh at each start (validity is relative to now, and the
certificates name the testbed's HTTP address).

## Files

| file | what it is |
|---|---|
| ca.pem, ca-key.pem | %s: the root a client under test trusts |
| intermediate.pem | %s, signed by the CA; signs the servers' certificates |
| intermediate.crl | the intermediate's CRL (PEM): it lists the revoked case's certificate |
| client.pem, client-key.pem | a client certificate (CN=%s) from the CA, for require-client-cert |
| servers/CASE.pem | the chain each case serves (leaf first) |

The HTTP server at %s publishes %s (the intermediate, DER, named by each
leaf's issuer-certificate URL), %s (the intermediate's CRL, each leaf's CRL
distribution point) and %s (the CA's CRL, the intermediate's).

## Cases

Each case has a fixed port: the base port plus its offset.

| port | case | the server | a correct client | try it |
|---|---|---|---|---|
`, CACommonName, IntermediateCommonName, ClientCommonName, m.HTTPBase, IntermediatePath, IntermediateCRLPath, CACRLPath)
	for _, c := range cases {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | `%s` |\n", opts.BasePort+c.Offset, c.Name, c.Does, c.Expect,
			c.OpenSSL(host, opts.BasePort, m.Dir, m.ClientCertFile, m.ClientKeyFile))
	}
	b.WriteString(`
## Grading

On a case a correct client refuses, a completed handshake is FAIL (the
client accepted a bad server) and an alert from the client, or a close
during the handshake, is PASS; the alert is named. On good and
require-client-cert, a completed handshake (with a certificate from the
CA, for require-client-cert) is PASS. missing-intermediate passes a client
that refuses, or that fetches the intermediate over HTTP and connects.
revoked is NOT-CHECKED for a client that connects without fetching the
CRL, FAIL for one that fetched it and connected anyway. slow-handshake
passes a client that gives up before the server answers; abort-mid-handshake
one that closes (or sends an alert) after the server stops.
`)
	return b.Bytes()
}
