package pki

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// OtherCACommonName is the CN of the second, untrusted CA that Init makes to
// sign client-unknown-ca.pem.
const OtherCACommonName = "seclisten Other CA"

// ClientURI is the SPIFFE ID URI SAN of the good client certificate Init
// writes (client.pem), for testing URI allowlists.
const ClientURI = "spiffe://seclisten.test/client"

// ClientOU is the subject OU of the good client certificate Init writes
// (client.pem), for testing OU allowlists.
const ClientOU = "dev"

// InitOptions configures Init. The zero value writes an ECDSA P-256 PKI for
// DefaultHosts, with leaves valid for DefaultLeafDays, and refuses to
// overwrite.
type InitOptions struct {
	// Force allows replacing existing files.
	Force bool
	// KeyType is the type of every key written. The zero value is
	// ECDSAP256.
	KeyType KeyType
	// Hosts are the server certificate's hosts (see ServerOptions.Hosts).
	// Empty means DefaultHosts.
	Hosts []string
	// Days is the validity of the server and the valid client
	// certificates. Zero means DefaultLeafDays.
	Days int
}

// InitResult is what Init wrote.
type InitResult struct {
	// Dir is the directory written into.
	Dir string
	// Files are the paths written, in the order written.
	Files []string
}

// brokenClient is one deliberately broken client certificate Init writes.
type brokenClient struct {
	name    string // base file name, also the CN
	about   string // what is wrong with it, for the README
	verdict string // what a server should say, for the README
}

// Init writes a complete development PKI into dir (created, mode 0755, if
// missing; empty means the current directory):
//
//   - ca.pem, ca-key.pem: the development CA (DefaultCACommonName)
//   - server.pem, server-key.pem: a server certificate for opts.Hosts; the
//     file holds the leaf only, without the CA
//   - client.pem, client-key.pem: a valid client certificate, CN "client",
//     OU ClientOU, URI SAN ClientURI
//   - client-expired.pem: valid from 30 days ago until 3 days ago
//   - client-not-yet-valid.pem: valid from 30 days from now
//   - client-unknown-ca.pem: signed by other-ca.pem (OtherCACommonName)
//   - client-wrong-eku.pem: serverAuth extended key usage only
//   - client-revoked.pem: valid, but listed in crl.pem
//   - other-ca.pem, other-ca-key.pem: the second, untrusted CA
//   - crl.pem: a CRL signed by the development CA, next update in
//     DefaultCRLDays
//   - FILES.md: what each file is for and how to try it with openssl
//
// Each broken client certificate NAME.pem has its key in NAME-key.pem. Keys
// are written with mode 0600, everything else 0644, each file atomically.
//
// Unless opts.Force, Init checks every target before writing anything and
// fails, writing nothing, if one exists; the error names the first such file
// and wraps fs.ErrExist. If a write fails part-way, the files already
// written are left in place and listed in the result.
func Init(dir string, opts InitOptions) (*InitResult, error) {
	if dir == "" {
		dir = "."
	}
	files, err := makePKI(opts)
	if err != nil {
		return nil, fmt.Errorf("init PKI in %s: %w", dir, err)
	}
	paths, err := writeFiles(dir, files, opts.Force)
	res := &InitResult{Dir: dir, Files: paths}
	if err != nil {
		return res, fmt.Errorf("init PKI in %s: %w", dir, err)
	}
	return res, nil
}

// makePKI makes every certificate, key, the CRL and the README in memory, so
// that nothing is written unless all of it could be made.
func makePKI(opts InitOptions) ([]file, error) {
	now := time.Now()
	kt := opts.KeyType
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	leaf := Validity{Days: opts.Days}
	days := opts.Days
	if days == 0 {
		days = DefaultLeafDays
	}

	ca, err := NewCA(CAOptions{KeyType: kt})
	if err != nil {
		return nil, err
	}
	other, err := NewCA(CAOptions{CommonName: OtherCACommonName, KeyType: kt})
	if err != nil {
		return nil, err
	}
	server, err := ca.IssueServer(ServerOptions{Hosts: hosts, KeyType: kt, Validity: leaf})
	if err != nil {
		return nil, err
	}
	client, err := ca.IssueClient(ClientOptions{
		CommonName:          "client",
		OrganizationalUnits: []string{ClientOU},
		URIs:                []string{ClientURI},
		KeyType:             kt,
		Validity:            leaf,
	})
	if err != nil {
		return nil, err
	}

	const day = 24 * time.Hour
	expired := Validity{NotBefore: now.Add(-30 * day), NotAfter: now.Add(-3 * day)}
	notYet := Validity{NotBefore: now.Add(30 * day), Days: days}
	broken := []struct {
		brokenClient
		ca   *CA
		opts ClientOptions
	}{
		{
			brokenClient{"client-expired", "expired: valid from " + formatTime(expired.NotBefore) + " to " + formatTime(expired.NotAfter),
				"rejected: client certificate expired (notAfter " + formatTime(expired.NotAfter) + ")"},
			ca, ClientOptions{Validity: expired},
		},
		{
			brokenClient{"client-not-yet-valid", "not yet valid: valid from " + formatTime(notYet.NotBefore),
				"rejected: client certificate not yet valid (notBefore " + formatTime(notYet.NotBefore) + ")"},
			ca, ClientOptions{Validity: notYet},
		},
		{
			brokenClient{"client-unknown-ca", "signed by other-ca.pem (" + OtherCACommonName + "), which the server does not trust",
				"rejected: signed by an unknown authority: issuer CN=" + OtherCACommonName},
			other, ClientOptions{Validity: leaf},
		},
		{
			brokenClient{"client-wrong-eku", "extended key usage serverAuth only, no clientAuth",
				"rejected: certificate lacks clientAuth extended key usage"},
			ca, ClientOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: leaf},
		},
		{
			brokenClient{"client-revoked", "valid, but revoked: listed in crl.pem",
				"rejected when the server has --crl crl.pem: revoked (serial %s, CRL of CN=" + DefaultCACommonName + "); accepted without --crl"},
			ca, ClientOptions{Validity: leaf},
		},
	}

	files := []file{}
	add := func(name string, c *Cert) error {
		keyPEM, err := c.KeyPEM()
		if err != nil {
			return err
		}
		files = append(files,
			file{name: name + ".pem", data: c.CertPEM(), mode: certMode},
			file{name: name + "-key.pem", data: keyPEM, mode: keyMode})
		return nil
	}
	if err := add("ca", &ca.Cert); err != nil {
		return nil, err
	}
	if err := add("server", server); err != nil {
		return nil, err
	}
	if err := add("client", client); err != nil {
		return nil, err
	}
	var revoked *big.Int
	readme := readmeData{
		keyType: kt,
		made:    now,
		ca:      ca.Certificate,
		server:  server.Certificate,
		client:  client.Certificate,
	}
	for _, b := range broken {
		o := b.opts
		o.CommonName, o.KeyType = b.name, kt
		c, err := b.ca.IssueClient(o)
		if err != nil {
			return nil, err
		}
		if err := add(b.name, c); err != nil {
			return nil, err
		}
		if b.name == "client-revoked" {
			revoked = c.Certificate.SerialNumber
			b.verdict = fmt.Sprintf(b.verdict, serialHex(revoked))
		}
		readme.broken = append(readme.broken, b.brokenClient)
	}
	if err := add("other-ca", &other.Cert); err != nil {
		return nil, err
	}
	// ThisUpdate is backdated like the certificates, so a verifier whose
	// clock is a little behind does not find the CRL not yet valid.
	crl, err := ca.CRL(CRLOptions{
		Revoked:    []*big.Int{revoked},
		ThisUpdate: now.Add(-Backdate),
		NextUpdate: now.AddDate(0, 0, DefaultCRLDays),
	})
	if err != nil {
		return nil, err
	}
	readme.crlNext = now.AddDate(0, 0, DefaultCRLDays)
	readme.revoked = revoked
	files = append(files, file{name: "crl.pem", data: crl, mode: certMode})
	files = append(files, file{name: "FILES.md", data: readme.render(), mode: certMode})
	return files, nil
}

// serialHex formats a serial number as seclisten's logs and OpenSSL show it.
func serialHex(n *big.Int) string {
	return fmt.Sprintf("%#x", n)
}

// formatTime formats t as a UTC date and time for the README.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// readmeData is what the generated FILES.md describes.
type readmeData struct {
	keyType            KeyType
	made               time.Time
	ca, server, client *x509.Certificate
	broken             []brokenClient
	revoked            *big.Int
	crlNext            time.Time
}

// render writes the FILES.md Init puts next to the files.
func (d readmeData) render() []byte {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	sans := append(append([]string{}, d.server.DNSNames...), ipStrings(d.server)...)
	for _, u := range d.server.URIs {
		sans = append(sans, u.String())
	}

	p("# seclisten development PKI: the files\n\n")
	p("Generated by `seclisten certs init` (package pkg/pki) on %s; key type %s.\n\n", formatTime(d.made), d.keyType)
	p("For development and testing only. The private keys are unencrypted, and\n")
	p("whoever holds ca-key.pem can make certificates this PKI trusts: do not\n")
	p("commit the *-key.pem files, and never install ca.pem as a trusted root\n")
	p("outside a test machine. Rerun `seclisten certs init --force` to remake\n")
	p("everything (the expired and not-yet-valid certificates are relative to\n")
	p("the time they were made).\n\n")

	p("## Files\n\n")
	p("Each certificate NAME.pem has its private key in NAME-key.pem (mode 0600).\n\n")
	p("| file | what it is |\n|---|---|\n")
	p("| ca.pem | development CA %q, valid until %s. Servers trust it for clients (`--client-ca ca.pem`); clients trust it for the server (`-CAfile ca.pem`). |\n",
		d.ca.Subject.CommonName, formatTime(d.ca.NotAfter))
	p("| server.pem | server certificate for %s (serverAuth), valid until %s. Leaf only: the CA is not appended, clients trust ca.pem directly. |\n",
		strings.Join(sans, ", "), formatTime(d.server.NotAfter))
	p("| client.pem | valid client certificate: CN=%s, OU=%s, URI SAN %s (clientAuth), valid until %s. |\n",
		d.client.Subject.CommonName, strings.Join(d.client.Subject.OrganizationalUnit, ","), ClientURI, formatTime(d.client.NotAfter))
	for _, c := range d.broken {
		p("| %s.pem | broken on purpose: %s. |\n", c.name, c.about)
	}
	p("| other-ca.pem | a second CA, %q, that the server does not trust; it signed client-unknown-ca.pem. |\n", OtherCACommonName)
	p("| crl.pem | CRL signed by %q listing client-revoked.pem (serial %s); next update %s. Give it to the server with `--crl crl.pem`. |\n",
		d.ca.Subject.CommonName, serialHex(d.revoked), formatTime(d.crlNext))
	p("| FILES.md | this file. |\n\n")

	p("## Try it\n\n")
	p("Start a server that requires client certificates and tells a refused\n")
	p("client why, from this directory:\n\n")
	p("    seclisten serve --cert server.pem --key server-key.pem --client-ca ca.pem --crl crl.pem --explain\n\n")
	p("Then pipe a line into s_client with each client certificate (change\n")
	p("127.0.0.1:8443 to the server's address). A refused client completes the\n")
	p("handshake and s_client prints the server's verdict, `error: refused: ...`.\n")
	p("Without --explain a client gets only a TLS alert (such as \"certificate\n")
	p("expired\"), which with TLS 1.3 arrives after its side of the handshake,\n")
	p("when it next reads.\n\n")

	try := func(title, args, verdict string) {
		p("### %s\n\n", title)
		p("    echo hi | openssl s_client -connect 127.0.0.1:8443 -CAfile ca.pem%s -quiet\n\n", args)
		p("Expected: %s.\n\n", verdict)
	}
	try("client.pem", " -cert client.pem -key client-key.pem", "accepted: identity CN=client")
	try("no client certificate", "", "rejected: no client certificate sent")
	for _, c := range d.broken {
		try(c.name+".pem", fmt.Sprintf(" -cert %s.pem -key %s-key.pem", c.name, c.name), c.verdict)
	}

	p("## Check without a server\n\n")
	p("    openssl verify -CAfile ca.pem -purpose sslclient client.pem                     # OK\n")
	p("    openssl verify -CAfile ca.pem -purpose sslserver server.pem                     # OK\n")
	p("    openssl verify -CAfile ca.pem -crl_check -CRLfile crl.pem client-revoked.pem    # certificate revoked\n")
	p("    openssl verify -CAfile ca.pem -purpose sslclient client-wrong-eku.pem           # unsuitable certificate purpose\n")
	p("    openssl verify -CAfile ca.pem client-unknown-ca.pem                             # unable to get local issuer certificate\n")
	p("    openssl x509 -in client-expired.pem -noout -dates -checkend 0                   # Certificate will expire\n")
	p("    openssl crl -in crl.pem -noout -text -CAfile ca.pem                             # verify OK, then the revoked serial\n")
	return []byte(b.String())
}

// ipStrings returns cert's IP address SANs as strings.
func ipStrings(cert *x509.Certificate) []string {
	s := make([]string, len(cert.IPAddresses))
	for i, ip := range cert.IPAddresses {
		s[i] = ip.String()
	}
	return s
}
