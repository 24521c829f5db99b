package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// Options configure the Manager. The comments say what each field must
// hold; New panics on options that break that, a programming error: user
// input is checked before it gets here (seclisten's in config.Validate).
type Options struct {
	// Domains are managed from the start (obtained, then renewed forever).
	// With no Domains and no OnDemand, the Manager manages nothing.
	Domains []string
	// Email is the ACME account's contact address (optional but advised:
	// CAs warn there of problems).
	Email string
	// Agreed accepts the CA's terms of service. Required: it is the
	// operator's to give, never a default.
	Agreed bool
	// CA is the ACME directory URL.
	CA string
	// CARoots, if set, are trusted for the CA's API (a private CA, Pebble).
	CARoots *x509.CertPool
	// EABKeyID and EABHMAC are the External Account Binding credentials
	// some CAs require (RFC 8555 section 7.3.4).
	EABKeyID, EABHMAC string
	// Profile names the CA's certificate profile (draft-aaron-acme-profiles),
	// e.g. Let's Encrypt's "shortlived". Empty: the CA's default.
	Profile string
	// StorageDir holds the account, keys and certificates. Required
	// unless Storage is set. Replicas sharing it coordinate through
	// certmagic's file locks.
	StorageDir string
	// Storage, if set, holds them instead of StorageDir (a store shared by
	// replicas on several machines, with its own locks).
	Storage certmagic.Storage
	// HTTPAddr is where HTTP-01 is answered; empty disables HTTP-01.
	HTTPAddr string
	// TLSALPNPort is the port the listener serves on, where TLS-ALPN-01 is
	// answered; 0 disables TLS-ALPN-01.
	TLSALPNPort int
	// AltHTTPPort and AltTLSALPNPort tell certmagic which ports the CA
	// validates on when they differ from 80 and 443 (port forwarding, or a
	// test CA that validates elsewhere).
	AltHTTPPort, AltTLSALPNPort int
	// OnDemand obtains certificates at the first handshake for names not
	// known in advance, when Gate allows.
	OnDemand bool
	// Gate decides which names may be obtained on demand. Required with
	// OnDemand, with Patterns or Ask set: issuance on demand is never
	// unrestricted.
	Gate *Gate
	// RenewCheckInterval is how often certificates are checked for renewal
	// at most (certmagic's default, 10 minutes, if zero): a tenth of the
	// shortest lifetime in service, if shorter (see CheckInterval).
	RenewCheckInterval time.Duration
	// Logger gets lifecycle events.
	Logger *slog.Logger
	// OnCertificate, if set, is told of every certificate put in service
	// (loaded, obtained or renewed), for expiry metrics.
	OnCertificate func(domain string, notAfter time.Time)
}

// Manager obtains, renews and serves ACME certificates.
type Manager struct {
	opts   Options
	cache  *certmagic.Cache
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	// noARI is cfg without ACME Renewal Information: its renewal orders
	// do not name the certificate they replace (renewDue).
	noARI  *certmagic.Config
	log    *slog.Logger
	http   *http.Server
	wake   chan struct{} // tells renewLoop of a certificate put in service
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// New proves the storage directory usable and prepares certmagic; an
// unusable directory is an error. It binds nothing and contacts no CA:
// Start does.
func New(opts Options) (*Manager, error) {
	switch {
	case !opts.Agreed:
		panic("acme: Options.Agreed is required")
	case opts.StorageDir == "" && opts.Storage == nil:
		panic("acme: Options.StorageDir is required (or Storage)")
	case opts.OnDemand && (opts.Gate == nil || len(opts.Gate.Patterns) == 0 && opts.Gate.Ask == ""):
		panic("acme: Options.OnDemand needs a Gate with Patterns or Ask")
	}
	storage := opts.Storage
	if storage == nil {
		if err := checkStorage(opts.StorageDir); err != nil {
			return nil, err
		}
		storage = &certmagic.FileStorage{Path: opts.StorageDir}
	}
	m := &Manager{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
	zl := newZapLogger(opts.Logger)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	if len(opts.Domains) > 0 {
		// Handshakes without SNI (an IP address, or openssl without
		// -servername) get the first domain's certificate.
		m.cfg.DefaultServerName = opts.Domains[0]
	}
	if opts.OnDemand {
		m.cfg.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: opts.Gate.Allow}
	}
	tmpl := certmagic.ACMEIssuer{
		CA:                      opts.CA,
		Email:                   opts.Email,
		Agreed:                  opts.Agreed,
		TrustedRoots:            opts.CARoots,
		Profile:                 opts.Profile,
		DisableHTTPChallenge:    opts.HTTPAddr == "",
		DisableTLSALPNChallenge: opts.TLSALPNPort == 0,
		AltHTTPPort:             opts.AltHTTPPort,
		AltTLSALPNPort:          opts.AltTLSALPNPort,
		Logger:                  zl,
	}
	if opts.EABKeyID != "" {
		tmpl.ExternalAccount = &acme.EAB{KeyID: opts.EABKeyID, MACKey: opts.EABHMAC}
	}
	if tmpl.AltHTTPPort == 0 && opts.HTTPAddr != "" {
		tmpl.AltHTTPPort = portOf(opts.HTTPAddr)
	}
	if tmpl.AltTLSALPNPort == 0 {
		tmpl.AltTLSALPNPort = opts.TLSALPNPort
	}
	m.issuer = certmagic.NewACMEIssuer(m.cfg, tmpl)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	// The same storage, account, challenges and events, one setting
	// apart. It renews into storage only; renewDue puts the certificate
	// in service through cfg.
	m.noARI = certmagic.New(m.cache, certmagic.Config{
		Storage:    storage,
		Logger:     zl,
		OnEvent:    m.onEvent,
		DisableARI: true,
	})
	m.noARI.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.noARI, tmpl)}
	return m, nil
}

// checkStorage makes the directory if needed and proves it writable, so an
// unusable storage is a start-up error, not a failure at the first renewal.
func checkStorage(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ACME storage %q: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("ACME storage %q is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// DefaultStorageDir is $XDG_DATA_HOME/seclisten/acme, or
// ~/.local/share/seclisten/acme.
func DefaultStorageDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "seclisten", "acme")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "seclisten", "acme")
	}
	return filepath.Join(home, ".local", "share", "seclisten", "acme")
}

// Start starts the HTTP-01 server (if any) and begins obtaining the
// domains' certificates in the background: certificates already in storage
// are loaded without a new order; missing ones are obtained, retrying with
// backoff while the CA is unreachable. It returns once the HTTP-01 address
// is bound. httpLn, if not nil, is served for HTTP-01 instead of binding
// the HTTP address (a socket the service manager passed, say); Stop
// closes it.
func (m *Manager) Start(ctx context.Context, httpLn net.Listener) error {
	ctx, m.cancel = context.WithCancel(ctx)
	if m.opts.HTTPAddr != "" || httpLn != nil {
		ln := httpLn
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", m.opts.HTTPAddr); err != nil {
				return fmt.Errorf("ACME HTTP-01 listener: %w", err)
			}
		}
		m.http = &http.Server{
			Handler:           m.issuer.HTTPChallengeHandler(http.HandlerFunc(notFound)),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		}
		m.log.Info("ACME HTTP-01 challenges answered", "addr", ln.Addr().String())
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_ = m.http.Serve(ln)
		}()
	}
	for _, d := range m.opts.Domains {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.manage(ctx, d)
		}()
	}
	if len(m.opts.Domains) > 0 {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.renewLoop(ctx)
		}()
	}
	return nil
}

// Retry schedule for a domain whose first certificate cannot be had: 5 s
// doubling to 10 min, with jitter. A CA that is down costs a few requests,
// never a spin; validation failures stay well within Let's Encrypt's limit
// of 5 per hour per name.
const (
	minRetry = 5 * time.Second
	maxRetry = 10 * time.Minute
)

// manage gets the domain under management, retrying until it is or ctx
// ends. From then on certmagic's maintenance loop renews it.
func (m *Manager) manage(ctx context.Context, domain string) {
	wait := minRetry
	for attempt := 1; ; attempt++ {
		err := m.cfg.ManageSync(ctx, []string{domain})
		if err == nil {
			attrs := []any{"domain", domain}
			if certs := m.cache.AllMatchingCertificates(domain); len(certs) > 0 && certs[0].Leaf != nil {
				leaf := certs[0].Leaf
				attrs = append(attrs, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
					"expires_in", time.Until(leaf.NotAfter).Round(time.Second).String(), "serial", "0x"+leaf.SerialNumber.Text(16),
					"renew_check", m.CheckInterval().String())
			}
			m.log.Info("ACME certificate in service", attrs...)
			if certs := m.cache.AllMatchingCertificates(domain); len(certs) > 0 && certs[0].Leaf != nil {
				m.tell(domain, certs[0].Leaf.NotAfter)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		d := wait/2 + rand.N(wait/2+1)
		m.log.Warn("ACME: no certificate yet; retrying", "domain", domain, "attempt", attempt,
			"retry_in", d.Round(time.Second), "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, maxRetry)
	}
}

// GetCertificate serves the managed certificate for a ClientHello (and the
// TLS-ALPN-01 challenge certificate for the CA's validation handshakes).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cfg.GetCertificate(hello)
}

func (m *Manager) tell(domain string, notAfter time.Time) {
	select {
	case m.wake <- struct{}{}:
	default:
	}
	if m.opts.OnCertificate != nil {
		m.opts.OnCertificate(domain, notAfter)
	}
}

// Ready reports whether every configured domain has a certificate in
// service (on-demand names are obtained at their first handshake, so they
// do not count).
func (m *Manager) Ready() bool {
	for _, d := range m.opts.Domains {
		if len(m.cache.AllMatchingCertificates(d)) == 0 {
			return false
		}
	}
	return true
}

// Stop stops the HTTP-01 server, the retries and the renewal loop.
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	if m.http != nil {
		_ = m.http.Close()
	}
	m.wg.Wait()
	m.cache.Stop()
}

func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		name, _ := data["identifier"].(string)
		renewal, _ := data["renewal"].(bool)
		msg := "ACME certificate obtained"
		if renewal {
			msg = "ACME certificate renewed"
		}
		attrs := []any{"domain", name, "issuer", data["issuer"]}
		if path, ok := data["certificate_path"].(string); ok {
			if leaf, err := m.loadLeaf(ctx, path); err == nil {
				attrs = append(attrs, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
					"serial", "0x"+leaf.SerialNumber.Text(16))
				m.tell(name, leaf.NotAfter)
			}
		}
		m.log.Info(msg, attrs...)
	case "cert_failed":
		renewal, _ := data["renewal"].(bool)
		level := slog.LevelWarn
		if renewal {
			// The renewal loop logs its failures with the next attempt.
			level = slog.LevelDebug
		}
		m.log.Log(ctx, level, "ACME certificate request failed", "domain", data["identifier"], "renewal", renewal, "err", data["error"])
	case "cached_managed_cert":
		if sans, ok := data["sans"].([]string); ok {
			m.log.Debug("ACME certificate in service", "sans", sans)
		}
	}
	return nil
}

func (m *Manager) loadLeaf(ctx context.Context, key string) (*x509.Certificate, error) {
	data, err := m.cfg.Storage.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "seclisten: only ACME HTTP-01 challenges are answered here", http.StatusNotFound)
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
