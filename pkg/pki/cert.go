package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultCACommonName is the subject common name NewCA uses when
// CAOptions.CommonName is empty.
const DefaultCACommonName = "seclisten Dev CA"

// Organization is the subject organization of every certificate this package
// makes, so that a development certificate is recognisable as one.
const Organization = "seclisten development"

// DefaultCADays is how long a CA is valid when CAOptions gives no validity:
// ten years, as mkcert does, so a development CA outlives its leaves.
const DefaultCADays = 3650

// DefaultLeafDays is how long a server or client certificate is valid when
// its options give no validity. A year is long enough for a development
// setup and well under the 825 days some platforms accept for leaves of
// private CAs.
const DefaultLeafDays = 365

// Backdate is how far before now a certificate's validity starts when its
// options give no NotBefore, so that a peer whose clock is slightly behind
// still accepts a certificate made a moment ago.
const Backdate = time.Hour

// DefaultHosts returns the hosts of a development server certificate when
// none are given: localhost, 127.0.0.1 and ::1.
func DefaultHosts() []string {
	return []string{"localhost", "127.0.0.1", "::1"}
}

// Cert is a certificate and its private key.
type Cert struct {
	// Certificate is the parsed certificate; Certificate.Raw is its DER.
	Certificate *x509.Certificate
	// Key is the private key for Certificate's public key.
	Key crypto.Signer
}

// CertPEM returns c's certificate as a "CERTIFICATE" PEM block.
func (c *Cert) CertPEM() []byte {
	return EncodeCertPEM(c.Certificate)
}

// KeyPEM returns c's private key as an unencrypted PKCS #8 "PRIVATE KEY" PEM
// block.
func (c *Cert) KeyPEM() ([]byte, error) {
	return encodeKeyPEM(c.Key)
}

// TLSCertificate returns c as a tls.Certificate for in-process servers and
// clients. The chain holds the leaf only: peers are expected to trust the CA
// directly, as they do with the files Init writes.
func (c *Cert) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{c.Certificate.Raw},
		PrivateKey:  c.Key,
		Leaf:        c.Certificate,
	}
}

// CA is a certificate authority: a CA certificate and its key, which can
// issue server and client certificates and sign CRLs.
type CA struct {
	Cert
}

// CertPool returns a pool holding only ca's certificate, for
// tls.Config.RootCAs, tls.Config.ClientCAs or x509.VerifyOptions.Roots.
func (ca *CA) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate)
	return pool
}

// Validity is when a certificate is valid. The zero value means "from an
// hour ago (Backdate) for the default number of days".
type Validity struct {
	// NotBefore is the start of validity. Zero means now minus Backdate.
	NotBefore time.Time
	// NotAfter is the end of validity. Zero means Days days after
	// NotBefore, or after now when NotBefore is zero (so the backdating
	// does not shorten the validity).
	NotAfter time.Time
	// Days is the length of validity when NotAfter is zero. Zero means the
	// default: DefaultCADays for a CA, DefaultLeafDays otherwise.
	Days int
}

// window resolves v into concrete bounds, with defaultDays for Days == 0.
func (v Validity) window(now time.Time, defaultDays int) (notBefore, notAfter time.Time, err error) {
	if v.Days < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("validity of %d days is negative", v.Days)
	}
	days := v.Days
	if days == 0 {
		days = defaultDays
	}
	start := now
	notBefore = now.Add(-Backdate)
	if !v.NotBefore.IsZero() {
		start, notBefore = v.NotBefore, v.NotBefore
	}
	notAfter = v.NotAfter
	if notAfter.IsZero() {
		notAfter = start.AddDate(0, 0, days)
	}
	if !notAfter.After(notBefore) {
		return time.Time{}, time.Time{}, fmt.Errorf("validity ends (%s) before it starts (%s)",
			notAfter.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	return notBefore, notAfter, nil
}

// CAOptions configures NewCA. The zero value makes an ECDSA P-256 CA named
// DefaultCACommonName, valid for DefaultCADays.
type CAOptions struct {
	// CommonName is the CA's subject CN. Empty means DefaultCACommonName.
	CommonName string
	// KeyType is the CA key's type. The zero value is ECDSAP256.
	KeyType KeyType
	// Validity is when the CA is valid; Days defaults to DefaultCADays.
	Validity
	// Intermediates lets the CA sign one level of intermediate CAs
	// (CA.IssueIntermediate): MaxPathLen 1 instead of 0. False keeps the
	// CA to leaves only.
	Intermediates bool
}

// NewCA makes a self-signed certificate authority with a new key.
//
// By default the CA may sign leaves only (MaxPathLen 0, RFC 5280 section
// 4.2.1.9) and CRLs (KeyUsageCRLSign), so a leaked development CA key cannot
// mint intermediates. With opts.Intermediates it may also sign one level of
// intermediate CAs (MaxPathLen 1), which in turn sign leaves only.
func NewCA(opts CAOptions) (*CA, error) {
	cn := opts.CommonName
	if cn == "" {
		cn = DefaultCACommonName
	}
	notBefore, notAfter, err := opts.window(time.Now(), DefaultCADays)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", cn, err)
	}
	tmpl, key, err := caTemplate(cn, opts.KeyType, notBefore, notAfter)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", cn, err)
	}
	if opts.Intermediates {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 1, false
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", cn, err)
	}
	return &CA{Cert{Certificate: cert, Key: key}}, nil
}

// IntermediateOptions configures CA.IssueIntermediate. The zero value makes
// an ECDSA P-256 intermediate CA named after its parent, valid for
// DefaultCADays or until the parent expires, whichever is sooner.
type IntermediateOptions struct {
	// CommonName is the intermediate's subject CN. Empty means the
	// parent's CN followed by " Intermediate".
	CommonName string
	// KeyType is the intermediate key's type. The zero value is ECDSAP256.
	KeyType KeyType
	// Validity is when the intermediate is valid; Days defaults to
	// DefaultCADays. NotAfter is capped at the parent's NotAfter, so the
	// intermediate never outlives the CA that signed it.
	Validity
	// CRLDistributionPoints are the URLs of the parent's CRLs, which a
	// verifier checking the whole chain fetches; each an absolute
	// http(s) URL.
	CRLDistributionPoints []string
}

// IssueIntermediate makes an intermediate CA, with a new key, signed by ca.
// The intermediate may sign leaves and CRLs but no further CAs (MaxPathLen
// 0). ca must allow intermediates: a CA made by NewCA with
// CAOptions.Intermediates, or a loaded CA without a zero path length.
func (ca *CA) IssueIntermediate(opts IntermediateOptions) (*CA, error) {
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("issue intermediate CA: %w", err)
	}
	parent := ca.Certificate
	cn := opts.CommonName
	if cn == "" {
		cn = parent.Subject.CommonName + " Intermediate"
	}
	if parent.MaxPathLen == 0 && parent.MaxPathLenZero {
		return nil, fmt.Errorf("issue intermediate CA %q: CA %s may sign leaves only (make it with CAOptions.Intermediates)",
			cn, parent.Subject)
	}
	notBefore, notAfter, err := opts.window(time.Now(), DefaultCADays)
	if err != nil {
		return nil, fmt.Errorf("issue intermediate CA %q: %w", cn, err)
	}
	if notAfter.After(parent.NotAfter) {
		notAfter = parent.NotAfter
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("issue intermediate CA %q: validity starts (%s) after CA %s expires (%s)",
			cn, notBefore.UTC().Format(time.RFC3339), parent.Subject, parent.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl, key, err := caTemplate(cn, opts.KeyType, notBefore, notAfter)
	if err != nil {
		return nil, fmt.Errorf("issue intermediate CA %q: %w", cn, err)
	}
	tmpl.AuthorityKeyId = parent.SubjectKeyId
	for _, u := range opts.CRLDistributionPoints {
		if err := checkHTTPURL(u); err != nil {
			return nil, fmt.Errorf("issue intermediate CA %q: CRL distribution point: %w", cn, err)
		}
		tmpl.CRLDistributionPoints = append(tmpl.CRLDistributionPoints, u)
	}
	cert, err := sign(tmpl, parent, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue intermediate CA %q: %w", cn, err)
	}
	return &CA{Cert{Certificate: cert, Key: key}}, nil
}

// caTemplate is the template of a CA named cn valid from notBefore to
// notAfter, with a new key of type kt: it may sign certificates and CRLs,
// and leaves only (MaxPathLen 0) until the caller says otherwise.
func caTemplate(cn string, kt KeyType, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := generateKey(kt)
	if err != nil {
		return nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   cn,
			Organization: []string{Organization},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}, key, nil
}

// LoadCA reads a CA certificate and its private key from PEM files. The key
// may be PKCS #8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1
// ("RSA PRIVATE KEY"), unencrypted. LoadCA checks that the certificate is a
// CA allowed to sign certificates and that the key belongs to it; it does not
// check the CA's validity period.
func LoadCA(certPEMFile, keyPEMFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certPEMFile)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %q: %w", certPEMFile, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("load CA certificate %q: %s is not a CA certificate (basicConstraints CA:TRUE missing)",
			certPEMFile, cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA certificate %q: %s lacks the keyCertSign key usage", certPEMFile, cert.Subject)
	}
	keyPEM, err := os.ReadFile(keyPEMFile)
	if err != nil {
		return nil, fmt.Errorf("load CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA key %q: %w", keyPEMFile, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("load CA key %q: %w (certificate %q, %s)",
			keyPEMFile, ErrKeyMismatch, certPEMFile, cert.Subject)
	}
	return &CA{Cert{Certificate: cert, Key: key}}, nil
}

// ErrKeyMismatch reports a private key that does not belong to the
// certificate it was loaded with.
var ErrKeyMismatch = errors.New("private key does not match certificate")

// publicKeysEqual reports whether a and b are the same public key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// ServerOptions configures CA.IssueServer and NewSelfSignedServer. The zero
// value makes an ECDSA P-256 serverAuth certificate for DefaultHosts, valid
// for DefaultLeafDays.
type ServerOptions struct {
	// Hosts are the names the server is reached by. Each becomes an IP
	// address SAN if it parses as an IP, a URI SAN if it parses as an
	// absolute URI with a host or opaque part (spiffe://example.org/srv),
	// and a DNS SAN otherwise ("*.example.test" wildcards allowed). The
	// first host is also the subject CN (unless longer than the CN's
	// 64-character limit). Empty means DefaultHosts.
	Hosts []string
	// KeyType is the key's type. The zero value is ECDSAP256.
	KeyType KeyType
	// ExtKeyUsage replaces the extended key usages. Nil means serverAuth.
	ExtKeyUsage []x509.ExtKeyUsage
	// Validity is when the certificate is valid; Days defaults to
	// DefaultLeafDays.
	Validity
	// Key is the certificate's private key. Nil means a new key of
	// KeyType; otherwise KeyType is ignored, which lets a caller bring a
	// key this package would not make, such as RSA-1024 for a deliberately
	// weak certificate.
	Key crypto.Signer
	// CRLDistributionPoints are the URLs of the CRLs covering the
	// certificate (RFC 5280 section 4.2.1.13). Each must be an absolute
	// http or https URL.
	CRLDistributionPoints []string
	// IssuingCertificateURL are the AIA caIssuers URLs where the issuer's
	// certificate can be fetched (RFC 5280 section 4.2.2.1). Each must be
	// an absolute http or https URL.
	IssuingCertificateURL []string

	// OCSPServer are the AIA OCSP responder URLs (RFC 5280 section
	// 4.2.2.1). Each must be an absolute http or https URL.
	OCSPServer []string
}

// IssueServer makes a TLS server certificate signed by ca, with opts.Key or
// a new key of opts.KeyType.
func (ca *CA) IssueServer(opts ServerOptions) (*Cert, error) {
	tmpl, key, name, err := serverTemplate(opts)
	if err != nil {
		return nil, fmt.Errorf("issue server certificate%s: %w", name, err)
	}
	c, err := ca.issue(tmpl, key, opts.Validity)
	if err != nil {
		return nil, fmt.Errorf("issue server certificate%s: %w", name, err)
	}
	return c, nil
}

// NewSelfSignedServer makes a self-signed TLS server certificate, with
// opts.Key or a new key of opts.KeyType, for opts.Hosts (see ServerOptions).
// It is a leaf signed by its own key, not a CA (basicConstraints CA:FALSE):
// a peer trusts it only by trusting the certificate itself.
func NewSelfSignedServer(opts ServerOptions) (*Cert, error) {
	tmpl, key, name, err := serverTemplate(opts)
	if err != nil {
		return nil, fmt.Errorf("make self-signed server certificate%s: %w", name, err)
	}
	notBefore, notAfter, err := opts.window(time.Now(), DefaultLeafDays)
	if err != nil {
		return nil, fmt.Errorf("make self-signed server certificate%s: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("make self-signed server certificate%s: %w", name, err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make self-signed server certificate%s: %w", name, err)
	}
	return &Cert{Certificate: cert, Key: key}, nil
}

// serverTemplate builds the template of a server certificate for opts
// (subject, SANs, key usages, CRL and issuer URLs, but no serial or
// validity) and returns it with the certificate's key: opts.Key, or a new
// key of opts.KeyType. name is ` for "first host"` for error messages, or
// empty when the hosts are invalid.
func serverTemplate(opts ServerOptions) (tmpl *x509.Certificate, key crypto.Signer, name string, err error) {
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	tmpl = &x509.Certificate{}
	var first string
	for i, h := range hosts {
		norm, err := addSAN(tmpl, h)
		if err != nil {
			return nil, nil, "", err
		}
		if i == 0 {
			first = norm
		}
	}
	name = fmt.Sprintf(" for %q", first)
	tmpl.Subject = pkix.Name{Organization: []string{Organization}}
	// Verifiers match the SANs, not the CN (RFC 6125 section 6.4.4), but
	// people read the CN. A name over the CN's 64-character limit (RFC 5280
	// appendix A.1, ub-common-name) is left to the SANs alone.
	if len(first) <= 64 {
		tmpl.Subject.CommonName = first
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if opts.ExtKeyUsage != nil {
		tmpl.ExtKeyUsage = opts.ExtKeyUsage
	}
	for _, u := range opts.CRLDistributionPoints {
		if err := checkHTTPURL(u); err != nil {
			return nil, nil, name, fmt.Errorf("CRL distribution point: %w", err)
		}
		tmpl.CRLDistributionPoints = append(tmpl.CRLDistributionPoints, u)
	}
	for _, u := range opts.IssuingCertificateURL {
		if err := checkHTTPURL(u); err != nil {
			return nil, nil, name, fmt.Errorf("issuing certificate URL: %w", err)
		}
		tmpl.IssuingCertificateURL = append(tmpl.IssuingCertificateURL, u)
	}
	if err := addOCSPServers(tmpl, opts.OCSPServer); err != nil {
		return nil, nil, name, err
	}
	key = opts.Key
	if key == nil {
		if key, err = generateKey(opts.KeyType); err != nil {
			return nil, nil, name, err
		}
	}
	// RSA key exchange (TLS 1.2 without ECDHE) encrypts the premaster
	// secret to the server's key, which needs keyEncipherment (RFC 5246
	// section 7.4.2). seclisten never negotiates it, but other clients
	// pointed at these certificates may check the bit. It depends on the
	// key used, so a caller's RSA-1024 key gets it too.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	return tmpl, key, name, nil
}

// checkHTTPURL checks that s is an absolute http or https URL with a host,
// as CRL distribution points and AIA caIssuers URLs must be for verifiers
// to fetch them.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("URL %q is not an absolute http(s) URL (want http://host/path)", s)
	}
	return nil
}

// ClientOptions configures CA.IssueClient. The zero value makes an ECDSA
// P-256 clientAuth certificate with CN "client", valid for DefaultLeafDays.
type ClientOptions struct {
	// CommonName is the subject CN: the client's name in logs, and what a
	// CN allowlist matches (identity.Allowlist). Empty means "client".
	CommonName string
	// OrganizationalUnits are the subject OUs, matched by an OU allowlist.
	OrganizationalUnits []string
	// DNSNames are DNS SANs, matched by a DNS allowlist.
	DNSNames []string
	// URIs are URI SANs such as SPIFFE IDs (spiffe://example.org/client),
	// matched by a URI allowlist. Each must be an absolute URI.
	URIs []string
	// KeyType is the key's type. The zero value is ECDSAP256.
	KeyType KeyType
	// ExtKeyUsage replaces the extended key usages. Nil means clientAuth;
	// []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} makes the
	// deliberately wrong certificate a server must refuse.
	ExtKeyUsage []x509.ExtKeyUsage
	// Validity is when the certificate is valid; Days defaults to
	// DefaultLeafDays.
	Validity

	// OCSPServer are the AIA OCSP responder URLs (RFC 5280 section
	// 4.2.2.1). Each must be an absolute http or https URL.
	OCSPServer []string
}

// addOCSPServers puts the OCSP responder URLs in tmpl's AIA.
func addOCSPServers(tmpl *x509.Certificate, urls []string) error {
	for _, u := range urls {
		if err := checkHTTPURL(u); err != nil {
			return fmt.Errorf("OCSP responder: %w", err)
		}
		tmpl.OCSPServer = append(tmpl.OCSPServer, u)
	}
	return nil
}

// IssueClient makes a TLS client certificate, with a new key, signed by ca.
func (ca *CA) IssueClient(opts ClientOptions) (*Cert, error) {
	cn := opts.CommonName
	if cn == "" {
		cn = "client"
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:         cn,
			Organization:       []string{Organization},
			OrganizationalUnit: opts.OrganizationalUnits,
		},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if opts.ExtKeyUsage != nil {
		tmpl.ExtKeyUsage = opts.ExtKeyUsage
	}
	for _, name := range opts.DNSNames {
		if err := checkDNSName(name); err != nil {
			return nil, fmt.Errorf("issue client certificate %q: %w", cn, err)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	for _, s := range opts.URIs {
		u, err := parseURI(s)
		if err != nil {
			return nil, fmt.Errorf("issue client certificate %q: %w", cn, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if err := addOCSPServers(tmpl, opts.OCSPServer); err != nil {
		return nil, fmt.Errorf("issue client certificate %q: %w", cn, err)
	}
	key, err := generateKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("issue client certificate %q: %w", cn, err)
	}
	c, err := ca.issue(tmpl, key, opts.Validity)
	if err != nil {
		return nil, fmt.Errorf("issue client certificate %q: %w", cn, err)
	}
	return c, nil
}

// issue completes tmpl (serial, validity, basic constraints) and signs the
// certificate for key's public key with ca.
func (ca *CA) issue(tmpl *x509.Certificate, key crypto.Signer, v Validity) (*Cert, error) {
	if err := ca.check(); err != nil {
		return nil, err
	}
	notBefore, notAfter, err := v.window(time.Now(), DefaultLeafDays)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	// An explicit CA:FALSE, so no verifier can mistake a leaf for a CA.
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	cert, err := sign(tmpl, ca.Certificate, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &Cert{Certificate: cert, Key: key}, nil
}

// check reports a CA without a certificate or key, such as a zero CA.
func (ca *CA) check() error {
	if ca == nil || ca.Certificate == nil || ca.Key == nil {
		return errors.New("CA has no certificate or key (use NewCA or LoadCA)")
	}
	return nil
}

// sign creates the certificate tmpl, issued by parent, for pub, signed by
// signer, and parses the result.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate: %w", err)
	}
	return cert, nil
}

// randomSerial returns a random positive serial number of up to 128 bits.
// RFC 5280 section 4.1.2.2 allows up to 20 octets; random serials make two
// certificates from one development CA distinguishable even when made in the
// same second, and keep CRL entries unambiguous.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		serial, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if serial.Sign() > 0 {
			return serial, nil
		}
	}
}

// subjectKeyID computes a subject key identifier for pub: the leftmost 160
// bits of the SHA-256 hash of the subjectPublicKey BIT STRING (RFC 7093
// section 2, method 1), rather than RFC 5280's SHA-1.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	var spki struct {
		Algorithm        pkix.AlgorithmIdentifier
		SubjectPublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	sum := sha256.Sum256(spki.SubjectPublicKey.Bytes)
	return sum[:20], nil
}

// addSAN types host into tmpl's IP, URI or DNS SANs (see ServerOptions.Hosts)
// and returns it as added, without surrounding space or IPv6 brackets.
func addSAN(tmpl *x509.Certificate, host string) (string, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		return "", errors.New("empty host name")
	}
	// Accept the bracketed form used in URLs and host:port, "[::1]".
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if ip := net.ParseIP(h[1 : len(h)-1]); ip != nil {
			h = h[1 : len(h)-1]
		}
	}
	if ip := net.ParseIP(h); ip != nil {
		// Store IPv4 in its 4-byte form so that it encodes as 4 octets
		// (RFC 5280 section 4.2.1.6).
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		return h, nil
	}
	if strings.Contains(h, "://") || strings.HasPrefix(strings.ToLower(h), "spiffe:") {
		u, err := parseURI(h)
		if err != nil {
			return "", err
		}
		tmpl.URIs = append(tmpl.URIs, u)
		return h, nil
	}
	if err := checkDNSName(h); err != nil {
		return "", err
	}
	tmpl.DNSNames = append(tmpl.DNSNames, h)
	return h, nil
}

// parseURI parses s as an absolute URI for a URI SAN.
func parseURI(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse URI %q: %w", s, err)
	}
	if u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return nil, fmt.Errorf("URI %q is not absolute (want scheme://host/path, such as spiffe://example.org/client)", s)
	}
	return u, nil
}

// checkDNSName checks that name is a plausible DNS SAN: letters, digits,
// hyphens, underscores and dots, with at most one leading "*." wildcard
// label and no trailing dot. Anything else would be rejected or misread by
// verifiers.
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty DNS name")
	}
	if len(name) > 253 {
		return fmt.Errorf("DNS name %q is longer than 253 characters", name)
	}
	rest := strings.TrimPrefix(name, "*.")
	for _, label := range strings.Split(rest, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("DNS name %q has an empty or over-long label", name)
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			default:
				return fmt.Errorf("DNS name %q contains %q (want letters, digits, '-', '_', '.', or a leading \"*.\")", name, r)
			}
		}
	}
	return nil
}
