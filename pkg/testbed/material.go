package testbed

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/seclisten/seclisten/pkg/pki"
)

// The testbed's names.
const (
	// CACommonName is the subject CN of the testbed CA, the root a client
	// under test is given (ca.pem).
	CACommonName = "seclisten Testbed CA"
	// IntermediateCommonName is the CA that signs the servers' leaves.
	IntermediateCommonName = "seclisten Testbed Intermediate"
	// UnknownCACommonName is the root of the unknown-ca case, never
	// written where a client would find it.
	UnknownCACommonName = "seclisten Testbed Unknown CA"
	// OtherHost is the only name in the wrong-host certificate.
	OtherHost = "other.test"
	// ClientCommonName is the CN of the client certificate the testbed
	// writes for require-client-cert.
	ClientCommonName = "testbed-client"
)

// The paths the HTTP server publishes.
const (
	// IntermediatePath is the intermediate certificate (DER), named by the
	// leaves' issuer-certificate URL (AIA caIssuers).
	IntermediatePath = "/intermediate.crt"
	// IntermediateCRLPath is the intermediate's CRL (DER), listing the
	// revoked case's leaf; every leaf's CRL distribution point.
	IntermediateCRLPath = "/intermediate.crl"
	// CACRLPath is the root's CRL (DER), empty; the intermediate's CRL
	// distribution point.
	CACRLPath = "/ca.crl"
)

// leafDays is how long the good leaves are valid: they are made afresh at
// each start.
const leafDays = 30

// Material is the testbed's PKI: the CA kept in Dir, and every case's
// certificate, made at each start.
type Material struct {
	// Dir is where the files are.
	Dir string
	// CAFile is the testbed CA, the trust anchor for the client under test.
	CAFile string
	// ClientCertFile and ClientKeyFile are a client certificate from the
	// testbed CA, for require-client-cert.
	ClientCertFile, ClientKeyFile string
	// HTTPBase is the URL the certificates point to for CRLs and the
	// intermediate, without a final slash.
	HTTPBase string

	ca, inter *pki.CA
	servers   map[string]tls.Certificate   // each case's chain, by case name
	leaves    map[string]*x509.Certificate // each case's leaf
	published map[string][]byte            // what the HTTP server serves, by path
	clientCAs *x509.CertPool               // what require-client-cert accepts
}

// MaterialOptions configures NewMaterial.
type MaterialOptions struct {
	// Hosts are the good certificates' names; localhost, 127.0.0.1 and ::1
	// are always among them.
	Hosts []string
	// HTTPBase is the URL of the testbed's HTTP server, such as
	// "http://127.0.0.1:8615".
	HTTPBase string
	// BasePort is the port of the first case, for the README.
	BasePort int
	// Host is the address the cases listen on, for the README.
	Host string
	// ClientIssuers are more certificates require-client-cert accepts
	// client certificates from (the issuer of the client's own one).
	ClientIssuers []*x509.Certificate
}

// NewMaterial reuses the testbed CA in dir (creating dir and the CA if
// missing) and makes every case's certificate, writing them into dir with
// a README.md. A CA in dir that is not a testbed CA is an error: the
// testbed never signs with another CA (`certs init`'s, say).
func NewMaterial(dir string, opts MaterialOptions) (*Material, error) {
	m := &Material{
		Dir:            dir,
		CAFile:         filepath.Join(dir, "ca.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
		HTTPBase:       opts.HTTPBase,
		servers:        map[string]tls.Certificate{},
		leaves:         map[string]*x509.Certificate{},
		published:      map[string][]byte{},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed PKI: %w", err)
	}
	ca, err := loadOrMakeCA(m.CAFile, filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, err
	}
	m.ca = ca
	if err := m.make(opts); err != nil {
		return nil, fmt.Errorf("testbed PKI in %s: %w", dir, err)
	}
	return m, nil
}

// loadOrMakeCA loads the testbed CA, or makes it if neither file exists.
func loadOrMakeCA(certFile, keyFile string) (*pki.CA, error) {
	_, errCert := os.Stat(certFile)
	_, errKey := os.Stat(keyFile)
	if errors.Is(errCert, fs.ErrNotExist) && errors.Is(errKey, fs.ErrNotExist) {
		ca, err := pki.NewCA(pki.CAOptions{CommonName: CACommonName, Intermediates: true})
		if err != nil {
			return nil, fmt.Errorf("testbed CA: %w", err)
		}
		if err := ca.WriteFiles(certFile, keyFile, false); err != nil {
			return nil, fmt.Errorf("testbed CA: %w", err)
		}
		return ca, nil
	}
	ca, err := pki.LoadCA(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("testbed CA: %w", err)
	}
	if cn := ca.Certificate.Subject.CommonName; cn != CACommonName {
		return nil, fmt.Errorf("testbed CA: %s holds %q, not the testbed's own CA (%q): the testbed never signs with another CA; use another directory",
			certFile, cn, CACommonName)
	}
	return ca, nil
}

// make issues every case's certificate, the client certificate and the
// CRLs, and writes them with the README.
func (m *Material) make(opts MaterialOptions) error {
	now := time.Now()
	hosts := pki.DefaultHosts()
	for _, h := range opts.Hosts {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	inter, err := m.ca.IssueIntermediate(pki.IntermediateOptions{CommonName: IntermediateCommonName,
		CRLDistributionPoints: []string{m.HTTPBase + CACRLPath}})
	if err != nil {
		return err
	}
	m.inter = inter
	good := pki.ServerOptions{
		Hosts:                 hosts,
		CRLDistributionPoints: []string{m.HTTPBase + IntermediateCRLPath},
		IssuingCertificateURL: []string{m.HTTPBase + IntermediatePath},
		Validity:              pki.Validity{Days: leafDays},
	}
	day := 24 * time.Hour
	variants := map[string]func(o *pki.ServerOptions){
		"expired": func(o *pki.ServerOptions) {
			o.Validity = pki.Validity{NotBefore: now.Add(-30 * day), NotAfter: now.Add(-day)}
		},
		"not-yet-valid": func(o *pki.ServerOptions) {
			o.Validity = pki.Validity{NotBefore: now.Add(day), NotAfter: now.Add(30 * day)}
		},
		"wrong-host": func(o *pki.ServerOptions) { o.Hosts = []string{OtherHost} },
		"wrong-eku":  func(o *pki.ServerOptions) { o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} },
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return fmt.Errorf("weak-key: %w", err)
	}
	variants["weak-key"] = func(o *pki.ServerOptions) { o.Key = weak }

	var revoked *x509.Certificate
	for _, c := range cases {
		var cert tls.Certificate
		switch c.Name {
		case "self-signed":
			leaf, err := pki.NewSelfSignedServer(pki.ServerOptions{Hosts: hosts, Validity: pki.Validity{Days: leafDays}})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			cert = leaf.TLSCertificate()
		case "unknown-ca":
			unknown, err := pki.NewCA(pki.CAOptions{CommonName: UnknownCACommonName})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			leaf, err := unknown.IssueServer(pki.ServerOptions{Hosts: hosts, Validity: pki.Validity{Days: leafDays}})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			cert = leaf.TLSCertificate()
			cert.Certificate = append(cert.Certificate, unknown.Certificate.Raw)
		default:
			o := good
			if v := variants[c.Name]; v != nil {
				v(&o)
			}
			leaf, err := inter.IssueServer(o)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			cert = leaf.TLSCertificate()
			if c.Name != "missing-intermediate" {
				cert.Certificate = append(cert.Certificate, inter.Certificate.Raw)
			}
			if c.Name == "revoked" {
				revoked = leaf.Certificate
			}
		}
		m.servers[c.Name] = cert
		m.leaves[c.Name] = cert.Leaf
	}

	client, err := m.ca.IssueClient(pki.ClientOptions{CommonName: ClientCommonName, Validity: pki.Validity{Days: leafDays}})
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if err := client.WriteFiles(m.ClientCertFile, m.ClientKeyFile, true); err != nil {
		return err
	}
	m.clientCAs = x509.NewCertPool()
	m.clientCAs.AddCert(m.ca.Certificate)
	for _, c := range opts.ClientIssuers {
		m.clientCAs.AddCert(c)
	}

	crl, err := inter.CRL(pki.CRLOptions{Revoked: []*big.Int{revoked.SerialNumber}})
	if err != nil {
		return err
	}
	rootCRL, err := m.ca.CRL(pki.CRLOptions{})
	if err != nil {
		return err
	}
	m.published[IntermediatePath] = inter.Certificate.Raw
	m.published[IntermediateCRLPath] = derOf(crl)
	m.published[CACRLPath] = derOf(rootCRL)
	return m.write(crl, opts)
}

// derOf is the DER inside a PEM block made by pki.
func derOf(pemBytes []byte) []byte {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil
	}
	return b.Bytes
}

// write writes what a user may want to look at or give a client: the
// intermediate, each server's chain, the intermediate's CRL and the
// README. The CA and the client certificate are written already.
func (m *Material) write(crl []byte, opts MaterialOptions) error {
	files := map[string][]byte{
		"intermediate.pem": pki.EncodeCertPEM(m.inter.Certificate),
		"intermediate.crl": crl,
		"README.md":        m.readme(opts),
	}
	for name, cert := range m.servers {
		var chain []byte
		for _, der := range cert.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		files[filepath.Join("servers", name+".pem")] = chain
	}
	if err := os.MkdirAll(filepath.Join(m.Dir, "servers"), 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(m.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Certificate is the chain case serves.
func (m *Material) Certificate(name string) tls.Certificate { return m.servers[name] }

// Leaf is case's certificate.
func (m *Material) Leaf(name string) *x509.Certificate { return m.leaves[name] }

// ClientCAs is what require-client-cert accepts client certificates from.
func (m *Material) ClientCAs() *x509.CertPool { return m.clientCAs }

// Published is what the HTTP server serves at path, nil for nothing.
func (m *Material) Published(path string) []byte { return m.published[path] }

// CA is the testbed CA.
func (m *Material) CA() *x509.Certificate { return m.ca.Certificate }
