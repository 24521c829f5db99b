package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seclisten/seclisten/pkg/clienthello"
	"github.com/seclisten/seclisten/pkg/crl"
	"github.com/seclisten/seclisten/pkg/identity"
	"github.com/seclisten/seclisten/pkg/verdict"
)

// ClientAuth is how client certificates are handled.
type ClientAuth int

// The client authentication modes.
const (
	// NoClientCert does not ask for a certificate.
	NoClientCert ClientAuth = iota
	// Request asks for a certificate and does not verify it: the mode for
	// seeing what a client presents.
	Request
	// VerifyIfGiven verifies a certificate if the client sends one.
	VerifyIfGiven
	// Require requires a verified certificate.
	Require
	// Audit verifies like Require and reports the verdict, but serves the
	// client whatever it is: for rolling mTLS out without locking anyone out.
	Audit
)

var clientAuthNames = []string{"none", "request", "verify-if-given", "require", "audit"}

func (m ClientAuth) String() string { return clientAuthNames[m] }

// ParseClientAuth parses a mode name: request, verify-if-given, require,
// audit (or none). Its error is a phrase to follow the setting's name:
// "must be request, ..., got ...".
func ParseClientAuth(s string) (ClientAuth, error) {
	if i := slices.Index(clientAuthNames, s); i >= 0 {
		return ClientAuth(i), nil
	}
	return 0, fmt.Errorf("must be request, verify-if-given, require or audit, got %q", s)
}

// versions are the lowest TLS versions a Source may serve, by the names
// ParseVersion reads: TLS 1.2 (Mozilla intermediate) or 1.3 (modern).
// Nothing older: TLS 1.0 and 1.1 are deprecated (RFC 8996).
var versions = []version{{"1.2", tls.VersionTLS12}, {"1.3", tls.VersionTLS13}}

type version struct {
	name string
	v    uint16
}

// ParseVersion parses a minimum TLS version: 1.2 or 1.3. Its error is a
// phrase to follow the setting's name: "must be 1.2 or 1.3, got ...".
func ParseVersion(s string) (uint16, error) {
	for _, v := range versions {
		if s == v.name {
			return v.v, nil
		}
	}
	return 0, fmt.Errorf("must be 1.2 or 1.3, got %q", s)
}

// VersionName is the name ParseVersion reads for v ("1.2"), or v in hex
// if it is not one of them.
func VersionName(v uint16) string {
	for _, known := range versions {
		if v == known.v {
			return known.name
		}
	}
	return fmt.Sprintf("%#04x", v)
}

// CipherSuites are the TLS 1.2 suites offered: exactly the six ECDHE AEAD
// suites of Mozilla's intermediate profile (no CBC, no RSA key exchange).
// TLS 1.3 suites are not configurable in crypto/tls, and all three are AEAD.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CurvePreferences are the key-exchange groups, in order: the hybrid
// post-quantum X25519MLKEM768 first, then X25519, P-256 and P-384 (Mozilla
// v6.0; no P-521).
var CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// Options say where the TLS material comes from. Zero values: no file
// certificate (an ephemeral one is made), no client authentication, TLS 1.2
// minimum, no ALPN. The comments say what each field may hold; New panics
// on options that break them, a programming error: user input is checked
// before it gets here (seclisten's in config.Validate).
type Options struct {
	// CertFile and KeyFile are the certificate (PEM, chain allowed) and
	// its key: both set, or both empty.
	CertFile, KeyFile string
	// ClientCAFiles are PEM bundles of the CAs that sign client certificates.
	ClientCAFiles []string
	// CRLFiles are CRLs (PEM or DER) signed by those CAs.
	CRLFiles []string
	// CRLAllowStale accepts CRLs past their NextUpdate.
	CRLAllowStale bool
	ClientAuth    ClientAuth
	Allow         identity.Allowlist
	// Explain, with ClientAuth VerifyIfGiven or Require, lets a client the
	// mode refuses complete the handshake, so the server can tell it why
	// over TLS before closing (see Judge); crypto/tls then only requests
	// the certificate. The caller must call Judge after every handshake,
	// resumed ones included, and serve no client it refuses.
	Explain bool
	// MinVersion is tls.VersionTLS12 (the zero value means that) or
	// tls.VersionTLS13, as ParseVersion reads them.
	MinVersion uint16
	// ALPN lists the application protocols offered, in order of preference.
	ALPN []string
	// GetCertificate, if set, is the certificate source (ACME) instead of
	// CertFile/KeyFile.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ACMEChallenges answers TLS-ALPN-01 validation handshakes (see
	// isACMEChallenge) through GetCertificate, which must be set, without
	// client authentication.
	ACMEChallenges bool
	// HideCANames asks clients for a certificate without listing the
	// client CAs in the CertificateRequest (RFC 8446 section 4.2.4): the
	// chain is then verified here, not by crypto/tls, which would fall
	// back to the system roots without ClientCAs.
	HideCANames bool
	// KeyLogWriter, if set, receives the TLS secrets of every session in
	// the NSS key log format (tls.Config.KeyLogWriter): whoever reads it
	// can decrypt the traffic.
	KeyLogWriter io.Writer
	// Now is the clock (time.Now if nil), for tests.
	Now func() time.Time

	// ReplicaID, if set, marks every session ticket issued with this
	// replica's name (in the encrypted state, SessionState.Extra) and
	// tells each resumption's connection, if it is a TicketRecorder,
	// whether the ticket came from another replica sharing the ticket
	// keys (a fleet). Read once, by New.
	ReplicaID string

	// Revocation, if set, checks each verified chain after CRLFiles: CRLs
	// fetched from the certificates' distribution points, OCSP (package
	// revocation). ctx is the handshake's, or the caller's of Verify and
	// Judge; its error refuses the client.
	Revocation Revoker
}

// ContextUsed reports whether a handshake's context reaches work the
// handshake waits for besides reading and writing: a revocation check
// that may fetch, or a certificate source (ACME) that may issue. A
// handshake without either can run on a context that never ends, if
// ending its reads and writes is enough to end it.
func (o Options) ContextUsed() bool {
	return o.Revocation != nil || o.GetCertificate != nil
}

// Revoker checks a verified chain (leaf first) for revocation.
type Revoker interface {
	Check(ctx context.Context, chain []*x509.Certificate) error
}

// acmeTLSALPN is the ALPN protocol of TLS-ALPN-01 (RFC 8737 section 6).
const acmeTLSALPN = "acme-tls/1"

// isACMEChallenge recognises an ACME CA's TLS-ALPN-01 validation handshake:
// RFC 8737 section 3 requires it to offer exactly one ALPN protocol,
// acme-tls/1. No real client does that.
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSALPN
}

// IsACMEChallenge reports whether a completed handshake was a TLS-ALPN-01
// validation: such a connection is closed at once and never reaches the
// exchange.
func IsACMEChallenge(st tls.ConnectionState) bool {
	return st.NegotiatedProtocol == acmeTLSALPN
}

// bigCRLFiles is the total size of CRL files past which load returns the
// memory of their parse to the OS at once.
const bigCRLFiles = 1 << 20

// Material is one consistent set of TLS material, loaded together.
type Material struct {
	Cert      *tls.Certificate // nil when Options.GetCertificate serves certificates
	Ephemeral bool             // Cert is self-signed and made at start
	CAs       []*x509.Certificate
	Pool      *x509.CertPool
	CRLs      []*crl.List
	// Staple describes the OCSP response stapled to Cert (see SetStaple);
	// zero when none is.
	Staple StapleInfo
	config *tls.Config
	// verify is config's VerifyConnection with the handshake's context
	// (nil when config has none).
	verify func(context.Context, tls.ConnectionState) error
	// opts are the options the material was loaded under, and files
	// the files it was loaded from (for Watch).
	opts  Options
	files []string
}

// StapleInfo is the validity of a stapled OCSP response.
type StapleInfo struct {
	ThisUpdate, NextUpdate time.Time
}

// Source holds the current Material and hands out TLS configs that always
// use it. It is safe for concurrent use.
type Source struct {
	current atomic.Pointer[Material]
	base    *tls.Config

	// changed is closed, and cleared, when Reload replaces the material.
	changedMu sync.Mutex
	changed   chan struct{}
}

// checked fills opts's defaults and panics on options that break their
// rules (see Options).
func checked(opts Options) Options {
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case (opts.CertFile == "") != (opts.KeyFile == ""):
		panic("tlsconf: Options.CertFile and KeyFile go together")
	case !slices.ContainsFunc(versions, func(v version) bool { return v.v == opts.MinVersion }):
		// Never below TLS 1.2, whoever asks.
		panic("tlsconf: Options.MinVersion " + VersionName(opts.MinVersion) + " is not TLS 1.2 or 1.3")
	case opts.ACMEChallenges && opts.GetCertificate == nil:
		panic("tlsconf: Options.ACMEChallenges needs GetCertificate")
	case opts.Explain && opts.ClientAuth != VerifyIfGiven && opts.ClientAuth != Require:
		panic("tlsconf: Options.Explain needs ClientAuth VerifyIfGiven or Require")
	}
	return opts
}

// New loads the material and returns a Source. A missing or broken file is
// an error here; after start, Reload keeps the old material instead.
func New(opts Options) (*Source, error) {
	opts = checked(opts)
	s := &Source{}
	m, err := s.load(opts, nil)
	if err != nil {
		return nil, err
	}
	s.current.Store(m)
	// The base config only dispatches to the current material. Session
	// ticket keys live here and survive reloads: crypto/tls uses the parent
	// config's keys for configs returned by GetConfigForClient.
	var challenge *tls.Config
	if opts.ACMEChallenges {
		// The one exception to client authentication: the CA's validation
		// connection carries no client certificate, and refusing it would
		// make every issuance and renewal fail, silently, under mTLS. It
		// gets only the challenge certificate and the acme-tls/1
		// protocol, and the server closes it after the handshake.
		challenge = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: opts.GetCertificate,
			NextProtos:     []string{acmeTLSALPN},
		}
	}
	s.base = &tls.Config{
		MinVersion: opts.MinVersion,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.current.Load()
			cfg := m.config
			if challenge != nil && isACMEChallenge(hello) {
				cfg = challenge
			} else {
				if m.verify != nil && opts.Revocation != nil {
					// The revocation check may fetch: bound it by this
					// handshake's context, which crypto/tls does not pass to
					// VerifyConnection.
					ctx := hello.Context()
					cfg = cfg.Clone()
					cfg.VerifyConnection = func(cs tls.ConnectionState) error { return m.verify(ctx, cs) }
				}
				if opts.ReplicaID != "" {
					if cfg == m.config {
						cfg = cfg.Clone()
					}
					s.markTickets(cfg, opts.ReplicaID, hello.Conn)
				}
			}
			// Every ClientHello is recorded for its connection, the
			// refused ones too: what the client offered explains why.
			clienthello.Record(hello, cfg)
			// A server name that is no host name is refused here, before
			// it reaches certificate selection, the logs or an ACME
			// on-demand policy. crypto/tls answers with an
			// internal_error alert; the log says why.
			if err := clienthello.CheckServerName(hello.ServerName); err != nil {
				return nil, err
			}
			return cfg, nil
		},
	}
	return s, nil
}

// Config is the *tls.Config to serve with.
func (s *Source) Config() *tls.Config { return s.base }

// Current is the material in service.
func (s *Source) Current() *Material { return s.current.Load() }

// Options are the options the Source was made with.
func (s *Source) Options() Options { return s.current.Load().opts }

// Reload loads every file again. On any error the material in service stays
// as it was, and the error says why.
func (s *Source) Reload() error {
	old := s.current.Load()
	m, err := s.load(old.opts, old)
	if err != nil {
		return err
	}
	s.current.Store(m)
	s.notifyChanged()
	return nil
}

// notifyChanged closes the channel Changed handed out: the material was
// replaced.
func (s *Source) notifyChanged() {
	s.changedMu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.changedMu.Unlock()
}

// Changed is closed when Reload or Update next replaces the material. Take it before
// Current, so that no reload falls between them unseen.
func (s *Source) Changed() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// SetStaple staples an OCSP response (DER; nil removes the staple) to the
// certificate in service, if its leaf is still leaf (DER), and reports
// whether it did. The material is replaced as a whole, as by Reload, so a
// handshake sees the old staple or the new one. The caller checks the
// response: it must be a verified "good" answer, not expired.
func (s *Source) SetStaple(leaf, staple []byte, info StapleInfo) bool {
	for {
		cur := s.current.Load()
		if cur.Cert == nil || len(cur.Cert.Certificate) == 0 || !bytes.Equal(cur.Cert.Certificate[0], leaf) {
			return false
		}
		m := *cur
		cert := *cur.Cert
		cert.OCSPStaple = staple
		m.Cert, m.Staple = &cert, info
		if staple == nil {
			m.Staple = StapleInfo{}
		}
		m.config = s.tlsConfig(&m)
		if s.current.CompareAndSwap(cur, &m) {
			return true
		}
	}
}

// Update loads the material under new options and puts it in service with
// them, at once for every new handshake; on any error the material and
// options in service stay as they were. The certificate source
// (GetCertificate, ACMEChallenges) and KeyLogWriter must be those New was
// given: they are wired into the base config at start. opts must keep
// Options' rules, as New's must.
func (s *Source) Update(opts Options) error {
	opts = checked(opts)
	m, err := s.load(opts, s.current.Load())
	if err != nil {
		return err
	}
	s.current.Store(m)
	s.notifyChanged()
	return nil
}

func (s *Source) load(opts Options, old *Material) (*Material, error) {
	m := &Material{opts: opts}
	for _, f := range append(append([]string{opts.CertFile, opts.KeyFile}, opts.ClientCAFiles...), opts.CRLFiles...) {
		if f != "" {
			m.files = append(m.files, f)
		}
	}
	if opts.GetCertificate != nil {
		// Certificates come from elsewhere (ACME).
	} else if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate %q and key %q: %w", opts.CertFile, opts.KeyFile, err)
		}
		m.Cert = &cert
		if old != nil && old.Cert != nil && old.Cert.OCSPStaple != nil && len(old.Cert.Certificate) > 0 &&
			bytes.Equal(old.Cert.Certificate[0], cert.Certificate[0]) && opts.Now().Before(old.Staple.NextUpdate) {
			// The same certificate keeps its staple across a reload
			// until it is refreshed.
			m.Cert.OCSPStaple, m.Staple = old.Cert.OCSPStaple, old.Staple
		}
	} else if old != nil {
		m.Cert, m.Ephemeral = old.Cert, old.Ephemeral
	} else {
		cert, err := selfSigned(opts.Now())
		if err != nil {
			return nil, fmt.Errorf("make ephemeral certificate: %w", err)
		}
		m.Cert, m.Ephemeral = cert, true
	}
	if len(opts.ClientCAFiles) > 0 {
		m.Pool = x509.NewCertPool()
		for _, f := range opts.ClientCAFiles {
			certs, err := loadCerts(f)
			if err != nil {
				return nil, fmt.Errorf("load client CA %q: %w", f, err)
			}
			for _, c := range certs {
				m.Pool.AddCert(c)
				m.CAs = append(m.CAs, c)
			}
		}
	}
	var crlBytes int
	for _, f := range opts.CRLFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load CRL %q: %w", f, err)
		}
		lists, err := crl.Parse(data, m.CAs)
		if err != nil {
			return nil, fmt.Errorf("load CRL %q: %w", f, err)
		}
		crlBytes += len(data)
		m.CRLs = append(m.CRLs, lists...)
	}
	if crlBytes >= bigCRLFiles {
		// Parsing a big CRL peaks at hundreds of bytes an entry, and the
		// runtime gives that back to the OS only slowly: the RSS would stay
		// at the peak (issue 14: 182 MB for 300,000 entries, 339 MB after
		// one reload). What is kept is about 20 bytes an entry, so return
		// the rest now; this runs only at start and on reload.
		debug.FreeOSMemory()
	}
	m.config = s.tlsConfig(m)
	return m, nil
}

func loadCerts(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

func (s *Source) tlsConfig(m *Material) *tls.Config {
	cfg := &tls.Config{
		MinVersion:       m.opts.MinVersion,
		CipherSuites:     CipherSuites,
		CurvePreferences: CurvePreferences,
		NextProtos:       m.opts.ALPN,
		KeyLogWriter:     m.opts.KeyLogWriter,
		ClientCAs:        m.Pool,
	}
	if m.opts.HideCANames {
		cfg.ClientCAs = nil
	}
	if m.Cert != nil {
		cfg.Certificates = []tls.Certificate{*m.Cert}
	} else {
		cfg.GetCertificate = m.opts.GetCertificate
	}
	switch m.opts.ClientAuth {
	case NoClientCert:
		cfg.ClientAuth = tls.NoClientCert
	case Request, Audit:
		// Audit verifies after the handshake (Verify), to report the
		// verdict without refusing anyone.
		cfg.ClientAuth = tls.RequestClientCert
	case VerifyIfGiven, Require:
		if m.opts.Explain {
			// Security decision: in TLS 1.3 the client's handshake is over
			// before the server has judged its certificate, so an alert
			// from crypto/tls arrives after the client has moved on, and
			// most tools never show it. With Explain the handshake accepts
			// any certificate and Judge refuses afterwards, with a line
			// the client reads over TLS. Judge applies the same checks as
			// the branch below (chain, clientAuth usage, CRLs, allowlists)
			// on every handshake, resumed ones included.
			cfg.ClientAuth = tls.RequestClientCert
			return cfg
		}
		if m.opts.HideCANames {
			// Security decision: without ClientCAs crypto/tls would verify
			// against the system roots, so it only asks, and
			// VerifyConnection verifies everything against the client CAs.
			cfg.ClientAuth = tls.RequestClientCert
			if m.opts.ClientAuth == Require {
				cfg.ClientAuth = tls.RequireAnyClientCert
			}
			m.verify = func(ctx context.Context, cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 && m.opts.ClientAuth == VerifyIfGiven && m.opts.Allow.Empty() {
					return nil
				}
				if err := s.verifyWith(ctx, m, cs.PeerCertificates); err != nil {
					r := &Rejection{Err: err}
					if len(cs.PeerCertificates) > 0 {
						r.Leaf = cs.PeerCertificates[0]
					}
					return r
				}
				return nil
			}
			cfg.VerifyConnection = func(cs tls.ConnectionState) error { return m.verify(context.Background(), cs) }
			return cfg
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if m.opts.ClientAuth == Require {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if m.opts.ClientAuth == VerifyIfGiven || m.opts.ClientAuth == Require {
		// crypto/tls has checked the chain (and sent the matching alert:
		// unknown_ca, certificate_expired, certificate_required). What it
		// does not check, we do here: CRLs and the allowlists. This runs on
		// resumed handshakes too, so a revocation or a narrower allowlist
		// applies to resumed sessions after a reload.
		m.verify = func(ctx context.Context, cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 {
				if len(cs.PeerCertificates) == 0 && !m.opts.Allow.Empty() {
					return &Rejection{Err: verdict.ErrNoCertificate}
				}
				return nil
			}
			if err := s.checkChain(ctx, m, cs.VerifiedChains[0]); err != nil {
				return &Rejection{Leaf: cs.VerifiedChains[0][0], Err: err}
			}
			return nil
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return m.verify(context.Background(), cs) }
	}
	return cfg
}

// Rejection is a client refused by the checks crypto/tls leaves to us.
type Rejection struct {
	Leaf *x509.Certificate // nil when no certificate was sent
	Err  error
}

func (r *Rejection) Error() string { return r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

// checkChain applies the CRLs, the allowlists and the revocation checker
// to a verified chain. The allowlists go first: they cost nothing, and a
// client they refuse causes no fetch.
func (s *Source) checkChain(ctx context.Context, m *Material, chain []*x509.Certificate) error {
	if err := crl.Check(m.CRLs, chain, m.opts.Now(), m.opts.CRLAllowStale); err != nil {
		return err
	}
	if err := m.opts.Allow.Check(identity.FromCertificate(chain[0])); err != nil {
		return err
	}
	if m.opts.Revocation != nil {
		return m.opts.Revocation.Check(ctx, chain)
	}
	return nil
}

// Verify checks certificates a client sent (leaf first) the way Require
// does: chain to a client CA, clientAuth usage, CRLs, allowlists. It is what
// Audit mode reports after a handshake. An empty certs is
// verdict.ErrNoCertificate.
func (s *Source) Verify(certs []*x509.Certificate) error {
	return s.VerifyContext(context.Background(), certs)
}

// VerifyContext is Verify with a context that bounds the revocation check.
func (s *Source) VerifyContext(ctx context.Context, certs []*x509.Certificate) error {
	return s.verifyWith(ctx, s.current.Load(), certs)
}

func (s *Source) verifyWith(ctx context.Context, m *Material, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return verdict.ErrNoCertificate
	}
	if m.Pool == nil {
		return errors.New("no client CA configured")
	}
	opts := x509.VerifyOptions{
		Roots:         m.Pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   m.opts.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		// As crypto/tls reports it: with what the client sent, so the
		// verdict can say what is missing from the chain.
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return s.checkChain(ctx, m, chains[0])
}

// Judge decides, after a handshake in Explain mode, what the handshake
// itself decides without it: nil when the client is accepted, else a
// *Rejection. certs are what the client sent (tls.ConnectionState's
// PeerCertificates, restored from the ticket on a resumed handshake), and
// are checked against the current material, so a reload applies to
// resumed sessions too. A client without a certificate is accepted in
// VerifyIfGiven mode unless an allowlist is set, as without Explain.
func (s *Source) Judge(certs []*x509.Certificate) error {
	return s.JudgeContext(context.Background(), certs)
}

// JudgeContext is Judge with a context that bounds the revocation check.
func (s *Source) JudgeContext(ctx context.Context, certs []*x509.Certificate) error {
	if o := s.Options(); len(certs) == 0 && o.ClientAuth == VerifyIfGiven && o.Allow.Empty() {
		return nil
	}
	if err := s.VerifyContext(ctx, certs); err != nil {
		r := &Rejection{Err: err}
		if len(certs) > 0 {
			r.Leaf = certs[0]
		}
		return r
	}
	return nil
}

// ClientCANames are the subjects of the current client CAs, in the order
// of their files.
func (s *Source) ClientCANames() []string {
	cas := s.current.Load().CAs
	names := make([]string, len(cas))
	for i, c := range cas {
		names[i] = c.Subject.String()
	}
	return names
}

// Watch reloads the material whenever one of its files changes (size,
// modification time or inode, polled every interval: this also sees the
// symlink swaps of Kubernetes secrets), until ctx ends. Each attempt's
// outcome goes to report.
func (s *Source) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	if len(s.current.Load().files) == 0 {
		return
	}
	last := s.fingerprint()
	looked()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if fp := s.fingerprint(); fp != last {
			last = fp
			report(s.Reload())
		}
		looked()
	}
}

// testHookWatchLooked, when a test sets it, is called each time Watch has
// looked at the files (the first look, then one per tick, after any reload
// it triggered). Nothing else tells a test that Watch has its baseline, so
// a change it makes will be seen, or that Watch saw files that did not
// change. Nil outside tests.
var testHookWatchLooked func()

func looked() {
	if testHookWatchLooked != nil {
		testHookWatchLooked()
	}
}

// fingerprint summarises the files' identities and mtimes.
func (s *Source) fingerprint() string {
	var b strings.Builder
	for _, f := range s.current.Load().files {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", f)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d:%v;", f, fi.Size(), fi.ModTime().UnixNano(), inode(fi))
	}
	return b.String()
}
